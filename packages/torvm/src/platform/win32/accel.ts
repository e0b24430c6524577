/**
 * WHPX probe for Windows. NOT RUN on real Windows in this project's CI
 * (Linux only): written against the documented commands and tested with a
 * fake CommandRunner (test/unit/vm-accel.test.ts).
 * - The "Windows Hypervisor Platform" optional feature (FeatureName
 *   HypervisorPlatform) must be Enabled: `Get-WindowsOptionalFeature -Online`
 *   (Microsoft docs, DISM PowerShell module; needs an elevated shell, which
 *   the TorVM service has).
 * - `qemu-system-x86_64.exe -accel help` must list whpx.
 */
import type { CommandRunner } from '../exec.ts';
import type { AccelProbe, AccelProbeResult } from '../../vm/accel.ts';

const POWERSHELL = 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe';

export function createWin32AccelProbe(options: { runner: CommandRunner; qemuBinary: string; timeoutMs?: number }): AccelProbe {
  return {
    hardwareAccel: 'whpx',
    async probe(signal): Promise<AccelProbeResult> {
      const timeoutMs = options.timeoutMs ?? 20_000;
      try {
        const feature = await options.runner.run(POWERSHELL, ['-NoProfile', '-NonInteractive', '-Command',
          '(Get-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform).State'], { timeoutMs, ...(signal ? { signal } : {}) });
        const state = feature.stdout.trim();
        if (state !== 'Enabled') return { ok: false, reason: `the Windows Hypervisor Platform feature is ${JSON.stringify(state)}, not Enabled` };
        const help = await options.runner.run(options.qemuBinary, ['-accel', 'help'], { timeoutMs, ...(signal ? { signal } : {}) });
        if (!/^whpx$/m.test(help.stdout)) return { ok: false, reason: 'this QEMU was built without whpx' };
        return { ok: true };
      } catch (err) {
        return { ok: false, reason: err instanceof Error ? err.message : String(err) };
      }
    },
  };
}
