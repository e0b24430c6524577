/**
 * KVM probe for Linux: boots a 64 KiB firmware that exits QEMU through
 * isa-debug-exit, with `-accel kvm -cpu host` (what the real VM uses).
 * Only an exit code of PROBE_EXIT_CODE proves that KVM ran guest code.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTorvmError } from '../../core/errors.ts';
import type { CommandRunner } from '../exec.ts';
import { PROBE_EXIT_CODE, probeReason, x86ProbeArgs, x86ProbeFirmware, type AccelProbe, type AccelProbeResult } from '../../vm/accel.ts';

export interface LinuxAccelProbeOptions {
  runner: CommandRunner;
  qemuBinary: string;
  /** Bound of the probe run; a hanging KVM counts as not working. Default 10 s. */
  timeoutMs?: number;
}

export function createLinuxAccelProbe(options: LinuxAccelProbeOptions): AccelProbe {
  return {
    hardwareAccel: 'kvm',
    async probe(signal): Promise<AccelProbeResult> {
      const dir = await mkdtemp(join(tmpdir(), 'torvm-accel-'));
      try {
        const firmware = join(dir, 'probe.bin');
        await writeFile(firmware, x86ProbeFirmware(), { mode: 0o600 });
        // Every exit code is accepted here so that stderr can be read; only PROBE_EXIT_CODE means success.
        const result = await options.runner.run(options.qemuBinary, x86ProbeArgs('kvm', firmware), {
          timeoutMs: options.timeoutMs ?? 10_000,
          okExitCodes: Array.from({ length: 255 }, (_, i) => i + 1),
          ...(signal ? { signal } : {}),
        });
        if (result.exitCode === PROBE_EXIT_CODE) return { ok: true };
        return { ok: false, reason: probeReason(result.stderr, `KVM probe exited with ${result.exitCode}`) };
      } catch (err) {
        if (isTorvmError(err, 'ERR_COMMAND_TIMEOUT')) return { ok: false, reason: 'the KVM probe hung (killed after its time limit)' };
        if (isTorvmError(err)) {
          const stderr = typeof err.details?.stderr === 'string' ? err.details.stderr : '';
          return { ok: false, reason: probeReason(stderr, err.message) };
        }
        return { ok: false, reason: err instanceof Error ? err.message : String(err) };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
