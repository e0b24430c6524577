import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectAccel, x86ProbeFirmware, x86ProbeArgs, probeReason, type AccelProbe } from '../../src/vm/accel.ts';
import { createDarwinAccelProbe } from '../../src/platform/darwin/accel.ts';
import { createWin32AccelProbe } from '../../src/platform/win32/accel.ts';
import { createLinuxAccelProbe } from '../../src/platform/linux/accel.ts';
import type { CommandRunner, RunOptions, RunResult } from '../../src/platform/exec.ts';
import { TorvmError, isTorvmError } from '../../src/core/errors.ts';

/** A fake runner answering by argv; records every call. */
function fakeRunner(answer: (file: string, args: readonly string[]) => RunResult | Error): CommandRunner & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    async run(file: string, args: readonly string[], _options?: RunOptions): Promise<RunResult> {
      calls.push([file, ...args]);
      const r = answer(file, args);
      if (r instanceof Error) throw r;
      return r;
    },
  };
}
const ok = (stdout: string): RunResult => ({ stdout, stderr: '', exitCode: 0 });
const fixedProbe = (works: boolean): AccelProbe => ({
  hardwareAccel: 'kvm',
  probe: async () => (works ? { ok: true } : { ok: false, reason: 'failed to set MSR 0x10a to 0x69' }),
});

test('selectAccel: auto uses a working accelerator', async () => {
  const warnings: string[] = [];
  assert.equal(await selectAccel('auto', fixedProbe(true), (w) => warnings.push(w)), 'kvm');
  assert.deepEqual(warnings, []);
});

test('selectAccel: auto falls back to TCG with a warning that names the reason', async () => {
  const warnings: string[] = [];
  assert.equal(await selectAccel('auto', fixedProbe(false), (w) => warnings.push(w)), 'tcg');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /kvm does not work here \(failed to set MSR 0x10a.*TCG/);
});

test('selectAccel: a forced accelerator that fails is ERR_ACCEL_UNAVAILABLE with the probe reason', async () => {
  await assert.rejects(selectAccel('kvm', fixedProbe(false), () => {}), (e) =>
    isTorvmError(e, 'ERR_ACCEL_UNAVAILABLE') && /failed to set MSR/.test(e.message) && e.isUserError);
  await assert.rejects(selectAccel('hvf', fixedProbe(true), () => {}), (e) => isTorvmError(e, 'ERR_ACCEL_UNAVAILABLE'));
  assert.equal(await selectAccel('tcg', { hardwareAccel: 'kvm', probe: () => assert.fail('tcg needs no probe') }, () => {}), 'tcg');
});

test('probe firmware: 64 KiB with the exit code at the reset vector', () => {
  const fw = x86ProbeFirmware();
  assert.equal(fw.length, 65536);
  assert.deepEqual([...fw.slice(-16, -9)], [0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]);
  assert.ok(x86ProbeArgs('kvm', '/tmp/p.bin').includes('host'), 'kvm probe uses -cpu host like the VM');
  assert.throws(() => x86ProbeArgs('kvm', '/tmp/a,b'), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
});

test('probeReason picks the error line of QEMU stderr', () => {
  const stderr = "qemu-system-x86_64: warning: host doesn't support requested feature\nqemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu-system-x86_64: ../kvm.c:3183: Assertion failed.\n";
  assert.equal(probeReason(stderr, 'x'), 'error: failed to set MSR 0x10a to 0x69');
  assert.equal(probeReason('', 'fallback'), 'fallback');
});

test('linux probe (fake runner): exit 85 is success, an abort carries stderr, a hang is reported', async () => {
  const good = createLinuxAccelProbe({ runner: fakeRunner(() => ({ stdout: '', stderr: '', exitCode: 85 })), qemuBinary: '/usr/bin/qemu-system-x86_64' });
  assert.deepEqual(await good.probe(), { ok: true });
  const aborted = createLinuxAccelProbe({
    runner: fakeRunner(() => new TorvmError('ERR_COMMAND_FAILED', 'exit -1', { details: { stderr: 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n' } })),
    qemuBinary: '/usr/bin/qemu-system-x86_64',
  });
  assert.deepEqual(await aborted.probe(), { ok: false, reason: 'error: failed to set MSR 0x10a to 0x69' });
  const hung = createLinuxAccelProbe({ runner: fakeRunner(() => new TorvmError('ERR_COMMAND_TIMEOUT', 'timed out')), qemuBinary: '/q' });
  const r = await hung.probe();
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /hung/);
  const other = createLinuxAccelProbe({ runner: fakeRunner(() => ({ stdout: '', stderr: 'qemu-system-x86_64: Could not access KVM kernel module: No such file or directory\n', exitCode: 1 })), qemuBinary: '/q' });
  assert.deepEqual(await other.probe(), { ok: false, reason: 'Could not access KVM kernel module: No such file or directory' });
});

test('darwin probe (fake runner): sysctl kern.hv_support and qemu -accel help', async () => {
  const runner = fakeRunner((file) => (file === '/usr/sbin/sysctl' ? ok('1\n') : ok('Accelerators supported in QEMU binary:\ntcg\nhvf\n')));
  assert.deepEqual(await createDarwinAccelProbe({ runner, qemuBinary: '/opt/homebrew/bin/qemu-system-aarch64' }).probe(), { ok: true });
  assert.deepEqual(runner.calls[0], ['/usr/sbin/sysctl', '-n', 'kern.hv_support']);
  const noHv = await createDarwinAccelProbe({ runner: fakeRunner(() => ok('0\n')), qemuBinary: '/q' }).probe();
  assert.equal(noHv.ok, false);
  const noHvfInQemu = await createDarwinAccelProbe({ runner: fakeRunner((f) => (f === '/usr/sbin/sysctl' ? ok('1') : ok('tcg\n'))), qemuBinary: '/q' }).probe();
  assert.deepEqual(noHvfInQemu, { ok: false, reason: 'this QEMU was built without hvf' });
});

test('win32 probe (fake runner): HypervisorPlatform feature state and qemu -accel help', async () => {
  const runner = fakeRunner((file) => (file.endsWith('powershell.exe') ? ok('Enabled\r\n') : ok('tcg\nwhpx\n')));
  assert.deepEqual(await createWin32AccelProbe({ runner, qemuBinary: 'C:\\Program Files\\qemu\\qemu-system-x86_64.exe' }).probe(), { ok: true });
  assert.match(runner.calls[0]?.join(' ') ?? '', /Get-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform/);
  const disabled = await createWin32AccelProbe({ runner: fakeRunner(() => ok('Disabled\r\n')), qemuBinary: 'q' }).probe();
  assert.deepEqual(disabled, { ok: false, reason: 'the Windows Hypervisor Platform feature is "Disabled", not Enabled' });
});
