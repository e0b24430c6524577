import type { PlatformDefaults } from '../../src/core/config.ts';
import { linuxDefaults } from '../../src/platform/linux/defaults.ts';

/** Tests use the Linux defaults, whatever the host. */
export const testDefaults: PlatformDefaults = linuxDefaults;
