import type { PlatformDefaults } from '../../core/config.ts';

// Windows cannot run here; these follow the usual install locations and are
// covered only by config tests. Paths use forward slashes, which QEMU and
// Node both accept on Windows.
export const win32Defaults: PlatformDefaults = {
  stateDir: 'C:/ProgramData/TorVM',
  imageDir: 'C:/Program Files/TorVM/image',
  qemuBinary: 'C:/Program Files/qemu/qemu-system-x86_64.exe',
  apiSocketPath: 'C:/ProgramData/TorVM/torvm.sock',
};
