/** The QEMU binary check and the system user against the real system. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createCommandRunner } from '../../src/platform/exec.ts';
import { checkQemuBinary } from '../../src/platform/linux/qemu-binary.ts';
import { ensureSystemGroup, ensureSystemUser } from '../../src/platform/linux/system-user.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import { QEMU, makeTempDir, requirePrerequisites } from './vm-fixtures.ts';

test('the distribution QEMU is trusted and at least 7.2', async (t) => {
  if (!requirePrerequisites(t)) return;
  const qemu = await checkQemuBinary(QEMU, createCommandRunner());
  assert.equal(qemu.path, QEMU);
  assert.ok(qemu.version.major > 7 || (qemu.version.major === 7 && qemu.version.minor >= 2));
});

test('a copy of QEMU outside the allowlist is untrusted; a missing path is ERR_QEMU_MISSING', async (t) => {
  if (!requirePrerequisites(t)) return;
  const temp = makeTempDir('qbin');
  try {
    const copy = join(temp.dir, 'qemu-system-x86_64');
    copyFileSync(QEMU, copy);
    chmodSync(copy, 0o755);
    await assert.rejects(checkQemuBinary(copy, createCommandRunner()), (e) => isTorvmError(e, 'ERR_QEMU_UNTRUSTED') && /allowed directory/.test(e.message));
    await assert.rejects(checkQemuBinary(join(temp.dir, 'missing'), createCommandRunner()), (e) => isTorvmError(e, 'ERR_QEMU_MISSING'));
  } finally {
    temp.remove();
  }
});

test('ensureSystemUser creates the torvm-qemu system user idempotently, apart from the torvm API group', async (t) => {
  if (!requirePrerequisites(t, true)) return;
  const runner = createCommandRunner();
  const first = await ensureSystemUser(runner);
  const second = await ensureSystemUser(runner);
  assert.deepEqual(first, second);
  assert.equal(first.name, 'torvm-qemu');
  assert.ok(first.uid > 0 && first.uid < 1000, 'a system uid');
  const apiGid = await ensureSystemGroup(runner);
  assert.equal(await ensureSystemGroup(runner), apiGid);
  assert.notEqual(apiGid, first.gid, "QEMU's group is not the API group");
  const groups = (await runner.run('id', ['-G', first.name], { timeoutMs: 5_000 })).stdout.trim().split(/\s+/).map(Number);
  assert.ok(!groups.includes(apiGid), 'QEMU\'s user is not in the API group, so a guest escape cannot use the API socket');
});
