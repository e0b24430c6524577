import type { PlatformDefaults } from '../../core/config.ts';

/** Where TorVM lives on a Linux system install. */
export const linuxDefaults: PlatformDefaults = {
  stateDir: '/var/lib/torvm',
  imageDir: '/usr/lib/torvm/image',
  qemuBinary: '/usr/bin/qemu-system-x86_64',
  apiSocketPath: '/run/torvm/torvm.sock',
};
