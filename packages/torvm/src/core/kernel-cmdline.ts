/**
 * The guest kernel command line. It is world-readable inside the guest
 * (/proc/cmdline) and size-limited, so it carries no secrets and no config:
 * only a few typed switches. Config and secrets travel through fw_cfg.
 */
import type { TorvmConfig } from './config.ts';
import { TorvmError } from './errors.ts';
import type { GuestArch } from './guest.ts';

const SERIAL_CONSOLE: Record<GuestArch, string> = { x86_64: 'ttyS0', aarch64: 'ttyAMA0' };

export function renderKernelCmdline(params: TorvmConfig['vm']['kernelParams'], arch: GuestArch): string {
  if (!Number.isInteger(params.loglevel) || params.loglevel < 0 || params.loglevel > 7) {
    throw new TorvmError('ERR_UNSAFE_VALUE', 'kernel cmdline: loglevel must be an integer 0–7');
  }
  const words = [
    `console=${SERIAL_CONSOLE[arch]}`,
    `loglevel=${params.loglevel}`,
    // Reboot on panic instead of hanging, so the supervisor sees the VM die.
    'panic=1',
    'oops=panic',
    // IPv6 is not used anywhere in the guest.
    'ipv6.disable=1',
    'rdinit=/init',
  ];
  if (params.debug) words.push('torvm.debug=1');
  for (const w of words) {
    if (!/^[A-Za-z0-9_.=/-]+$/.test(w)) throw new TorvmError('ERR_UNSAFE_VALUE', `kernel cmdline: unsafe word ${JSON.stringify(w)}`);
  }
  return words.join(' ');
}
