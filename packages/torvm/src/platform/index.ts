/**
 * The one place that reads process.platform. Everything else receives what
 * it needs from here.
 */
import type { PlatformDefaults } from '../core/config.ts';
import { linuxDefaults } from './linux/defaults.ts';
import { darwinDefaults } from './darwin/defaults.ts';
import { win32Defaults } from './win32/defaults.ts';

export type HostOs = 'linux' | 'darwin' | 'win32';

export function currentOs(): HostOs {
  const p = process.platform;
  if (p === 'linux' || p === 'darwin' || p === 'win32') return p;
  throw new Error(`TorVM does not support ${p}`);
}

export function platformDefaults(os: HostOs = currentOs()): PlatformDefaults {
  return { linux: linuxDefaults, darwin: darwinDefaults, win32: win32Defaults }[os];
}
