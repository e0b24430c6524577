/**
 * Choosing the accelerator. PURE: the OS-specific probes live in
 * platform/<os>/accel.ts and are passed in.
 *
 * A probe must prove that the accelerator really runs guest code. Checking
 * that /dev/kvm exists is not enough: on some hosts (these CI machines) it
 * exists but `-accel kvm -cpu host` aborts with "failed to set MSR 0x10a".
 */
import type { Accel } from '../core/config.ts';
import { TorvmError } from '../core/errors.ts';
import type { QemuAccel } from './qemu-args.ts';

export type HardwareAccel = Exclude<QemuAccel, 'tcg'>;

export type AccelProbeResult = { ok: true } | { ok: false; reason: string };

/** The host's hardware accelerator and a real test of it. */
export interface AccelProbe {
  readonly hardwareAccel: HardwareAccel;
  /** Bounded in time; never throws (a failure is `{ ok: false, reason }`). */
  probe(signal?: AbortSignal): Promise<AccelProbeResult>;
}

/**
 * Resolves the configured accelerator to the one QEMU will use.
 * - `tcg`: no probe.
 * - `auto`: the hardware accelerator if its probe passes, else TCG with a warning.
 * - a named hardware accelerator: its probe must pass, else TorvmError
 *   ERR_ACCEL_UNAVAILABLE carrying the probe's reason (QEMU's stderr).
 */
export async function selectAccel(requested: Accel, probe: AccelProbe, warn: (message: string) => void, signal?: AbortSignal): Promise<QemuAccel> {
  if (requested === 'tcg') return 'tcg';
  if (requested !== 'auto' && requested !== probe.hardwareAccel) {
    throw new TorvmError('ERR_ACCEL_UNAVAILABLE', `accelerator ${requested} does not exist on this OS (it has ${probe.hardwareAccel})`, {
      hint: `set vm.accel to "auto", "${probe.hardwareAccel}" or "tcg"`,
    });
  }
  const result = await probe.probe(signal);
  if (result.ok) return probe.hardwareAccel;
  if (requested === 'auto') {
    warn(`${probe.hardwareAccel} does not work here (${result.reason}); using TCG software emulation, which is much slower`);
    return 'tcg';
  }
  throw new TorvmError('ERR_ACCEL_UNAVAILABLE', `accelerator ${requested} does not work here: ${result.reason}`, {
    hint: `set vm.accel to "auto" or "tcg" to use software emulation`,
    details: { accel: requested, reason: result.reason },
  });
}

/** The exit code of QEMU when the probe firmware ran: isa-debug-exit turns 0x2a into (0x2a << 1) | 1. */
export const PROBE_EXIT_CODE = 85;

/**
 * A 64 KiB x86 "BIOS" whose reset vector writes 0x2a to the isa-debug-exit
 * port 0xf4, so QEMU exits with {@link PROBE_EXIT_CODE} only if the
 * accelerator executed a guest instruction.
 */
export function x86ProbeFirmware(): Uint8Array {
  const image = new Uint8Array(64 * 1024); // PC firmware must be a multiple of 64 KiB
  // mov al, 0x2a; out 0xf4, al; hlt; jmp $-1   (at the reset vector, 16 bytes before the end)
  image.set([0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd], image.length - 16);
  return image;
}

/** QEMU argv of the x86 probe: the same machine and CPU model that the real VM uses with this accelerator. */
export function x86ProbeArgs(accel: QemuAccel, firmwarePath: string): string[] {
  if (firmwarePath.includes(',')) throw new TorvmError('ERR_UNSAFE_VALUE', 'probe firmware path must not contain a comma');
  return ['-nodefaults', '-no-user-config', '-display', 'none', '-machine', `q35,accel=${accel}`,
    '-cpu', accel === 'tcg' || accel === 'whpx' ? 'max' : 'host', '-m', '16', '-bios', firmwarePath,
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-action', 'reboot=shutdown'];
}

/** The last useful stderr line of a failed probe, for the error message. */
export function probeReason(stderr: string, fallback: string): string {
  const lines = stderr.split('\n').map((l) => l.replace(/^qemu-system-[a-z0-9_]+: /, '').trim()).filter(Boolean);
  const errorLine = lines.find((l) => /^error:|failed|Could not|not supported/i.test(l));
  return (errorLine ?? lines[lines.length - 1] ?? fallback).slice(0, 300);
}
