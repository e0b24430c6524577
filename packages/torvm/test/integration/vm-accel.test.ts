/**
 * The accelerator probe against the real QEMU on this machine. Here /dev/kvm
 * exists but KVM fails ("failed to set MSR 0x10a"); the probe must see that,
 * `auto` must pick TCG, and a forced kvm must fail with QEMU's reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCommandRunner } from '../../src/platform/exec.ts';
import { createLinuxAccelProbe } from '../../src/platform/linux/accel.ts';
import { selectAccel, x86ProbeArgs, x86ProbeFirmware, PROBE_EXIT_CODE } from '../../src/vm/accel.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import { QEMU, makeTempDir, requirePrerequisites } from './vm-fixtures.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

test('anti-test: the probe firmware really exits with 85 under TCG (so a failure means the accelerator)', (t) => {
  if (!requirePrerequisites(t)) return;
  const temp = makeTempDir('accel');
  try {
    const fw = join(temp.dir, 'probe.bin');
    writeFileSync(fw, x86ProbeFirmware());
    const r = spawnSync(QEMU, x86ProbeArgs('tcg', fw), { timeout: 20_000 });
    assert.equal(r.status, PROBE_EXIT_CODE, String(r.stderr));
  } finally {
    temp.remove();
  }
});

test('auto picks a working accelerator; a forced kvm that does not work fails clearly', async (t) => {
  if (!requirePrerequisites(t, true)) return;
  const probe = createLinuxAccelProbe({ runner: createCommandRunner(), qemuBinary: QEMU, timeoutMs: 15_000 });
  const verdict = await probe.probe();
  t.diagnostic(`kvm probe: ${JSON.stringify(verdict)}`);
  const warnings: string[] = [];
  const chosen = await selectAccel('auto', probe, (w) => warnings.push(w));
  if (verdict.ok) {
    assert.equal(chosen, 'kvm');
    assert.equal(await selectAccel('kvm', probe, () => {}), 'kvm');
    return;
  }
  // The machines this project runs on: /dev/kvm present, KVM broken.
  assert.equal(chosen, 'tcg');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /using TCG/);
  await assert.rejects(selectAccel('kvm', probe, () => {}), (e) =>
    isTorvmError(e, 'ERR_ACCEL_UNAVAILABLE') && e.message.includes(verdict.reason) && verdict.reason.length > 0);
});
