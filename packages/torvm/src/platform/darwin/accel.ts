/**
 * HVF probe for macOS. NOT RUN on real macOS in this project's CI (Linux
 * only): written against the documented commands and tested with a fake
 * CommandRunner (test/unit/vm-accel.test.ts).
 * - `sysctl -n kern.hv_support` prints 1 when Hypervisor.framework is usable
 *   (Apple: "Hypervisor > Overview", checking for availability).
 * - `qemu-system-<arch> -accel help` must list hvf (QEMU built with it).
 */
import type { CommandRunner } from '../exec.ts';
import type { AccelProbe, AccelProbeResult } from '../../vm/accel.ts';

export function createDarwinAccelProbe(options: { runner: CommandRunner; qemuBinary: string; timeoutMs?: number }): AccelProbe {
  return {
    hardwareAccel: 'hvf',
    async probe(signal): Promise<AccelProbeResult> {
      const timeoutMs = options.timeoutMs ?? 10_000;
      try {
        const sysctl = await options.runner.run('/usr/sbin/sysctl', ['-n', 'kern.hv_support'], { timeoutMs, ...(signal ? { signal } : {}) });
        if (sysctl.stdout.trim() !== '1') return { ok: false, reason: `kern.hv_support is ${JSON.stringify(sysctl.stdout.trim())}, not 1 (no Hypervisor.framework support)` };
        const help = await options.runner.run(options.qemuBinary, ['-accel', 'help'], { timeoutMs, ...(signal ? { signal } : {}) });
        if (!/^hvf$/m.test(help.stdout)) return { ok: false, reason: 'this QEMU was built without hvf' };
        return { ok: true };
      } catch (err) {
        return { ok: false, reason: err instanceof Error ? err.message : String(err) };
      }
    },
  };
}
