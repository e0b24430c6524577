import type { PlatformDefaults } from '../../core/config.ts';

// macOS cannot run here; these follow Apple's conventions for system daemons
// and Homebrew's QEMU location, and are covered only by config tests.
export const darwinDefaults: PlatformDefaults = {
  stateDir: '/Library/Application Support/TorVM',
  imageDir: '/Library/Application Support/TorVM/image',
  qemuBinary: '/opt/homebrew/bin/qemu-system-aarch64',
  apiSocketPath: '/var/run/torvm/torvm.sock',
};
