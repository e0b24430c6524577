import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQemuVersion, compareVersions, qemuFeaturesFor, qemuTrustProblem, type PathFacts } from '../../src/vm/qemu-version.ts';
import { ensureSystemUser, parsePasswdLine } from '../../src/platform/linux/system-user.ts';
import type { CommandRunner, RunResult } from '../../src/platform/exec.ts';
import { isTorvmError } from '../../src/core/errors.ts';

test('parseQemuVersion reads Debian, upstream and two-part versions', () => {
  assert.deepEqual(parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright'), { major: 7, minor: 2, micro: 22 });
  assert.deepEqual(parseQemuVersion('QEMU emulator version 9.1.0\n'), { major: 9, minor: 1, micro: 0 });
  assert.deepEqual(parseQemuVersion('QEMU emulator version 8.0'), { major: 8, minor: 0, micro: 0 });
  assert.equal(parseQemuVersion('something else'), null);
});

test('version features: -run-with from 9.1 on', () => {
  assert.equal(qemuFeaturesFor({ major: 7, minor: 2, micro: 22 }).runWith, false);
  assert.equal(qemuFeaturesFor({ major: 9, minor: 0, micro: 9 }).runWith, false);
  assert.equal(qemuFeaturesFor({ major: 9, minor: 1, micro: 0 }).runWith, true);
  assert.ok(compareVersions({ major: 7, minor: 1, micro: 99 }, { major: 7, minor: 2, micro: 0 }) < 0);
});

const file = (over: Partial<PathFacts> = {}): PathFacts => ({ path: '/usr/bin/qemu-system-x86_64', exists: true, isFile: true, isDirectory: false, uid: 0, mode: 0o100755, ...over });
const dir = (over: Partial<PathFacts> = {}): PathFacts => ({ path: '/usr/bin', exists: true, isFile: false, isDirectory: true, uid: 0, mode: 0o40755, ...over });

test('qemuTrustProblem: allowlisted dir, root owner, no group/world write on file and dir', () => {
  const p = '/usr/bin/qemu-system-x86_64';
  assert.equal(qemuTrustProblem(p, file(), dir(), 'linux'), null);
  assert.equal(qemuTrustProblem('/usr/local/bin/qemu-system-x86_64', file(), dir(), 'linux'), null);
  assert.match(qemuTrustProblem('/home/u/qemu-system-x86_64', file(), dir(), 'linux') ?? '', /allowed directory/);
  assert.match(qemuTrustProblem('/usr/bin/sub/qemu', file(), dir(), 'linux') ?? '', /allowed directory/);
  assert.match(qemuTrustProblem(p, file({ uid: 1000 }), dir(), 'linux') ?? '', /not owned by root/);
  assert.match(qemuTrustProblem(p, file({ mode: 0o100775 }), dir(), 'linux') ?? '', /writable by group/);
  assert.match(qemuTrustProblem(p, file({ mode: 0o100757 }), dir(), 'linux') ?? '', /writable by group or others/);
  assert.match(qemuTrustProblem(p, file(), dir({ mode: 0o41777 }), 'linux') ?? '', /\/usr\/bin is writable/);
  assert.match(qemuTrustProblem(p, file({ exists: false }), dir(), 'linux') ?? '', /does not exist/);
  assert.equal(qemuTrustProblem('/opt/homebrew/bin/qemu-system-aarch64', file(), dir(), 'darwin'), null);
});

function fakeUserDb(existing: { group?: boolean; user?: string }): CommandRunner & { calls: string[][] } {
  const state = { group: existing.group ?? false, user: existing.user ?? null as string | null };
  const calls: string[][] = [];
  return {
    calls,
    async run(file, args): Promise<RunResult> {
      calls.push([file, ...args]);
      if (file === 'getent' && args[0] === 'group') return state.group ? { stdout: 'torvm:x:998:\n', stderr: '', exitCode: 0 } : { stdout: '', stderr: '', exitCode: 2 };
      if (file === 'getent' && args[0] === 'passwd') return state.user ? { stdout: `${state.user}\n`, stderr: '', exitCode: 0 } : { stdout: '', stderr: '', exitCode: 2 };
      if (file === 'groupadd') { state.group = true; return { stdout: '', stderr: '', exitCode: 0 }; }
      if (file === 'useradd') { state.user = 'torvm-qemu:x:998:998:TorVM QEMU:/nonexistent:/usr/sbin/nologin'; return { stdout: '', stderr: '', exitCode: 0 }; }
      throw new Error(`unexpected ${file}`);
    },
  };
}

test('ensureSystemUser creates group and user once, then is a no-op', async () => {
  const runner = fakeUserDb({});
  assert.deepEqual(await ensureSystemUser(runner), { name: 'torvm-qemu', uid: 998, gid: 998 });
  assert.ok(runner.calls.some((c) => c[0] === 'groupadd' && c.includes('--system')));
  const useradd = runner.calls.find((c) => c[0] === 'useradd') ?? [];
  assert.deepEqual(useradd, ['useradd', '--system', '--gid', 'torvm-qemu', '--no-create-home', '--home-dir', '/nonexistent',
    '--shell', '/usr/sbin/nologin', '--comment', 'TorVM QEMU', 'torvm-qemu']);
  const again = fakeUserDb({ group: true, user: 'torvm-qemu:x:998:998::/nonexistent:/usr/sbin/nologin' });
  await ensureSystemUser(again);
  assert.equal(again.calls.some((c) => c[0] === 'useradd' || c[0] === 'groupadd'), false);
});

test('ensureSystemUser refuses a torvm-qemu user with uid 0 and bad names', async () => {
  await assert.rejects(ensureSystemUser(fakeUserDb({ group: true, user: 'torvm-qemu:x:0:0::/:/bin/sh' })), (e) => isTorvmError(e, 'ERR_INTERNAL'));
  await assert.rejects(ensureSystemUser(fakeUserDb({}), 'bad name'), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
  assert.equal(parsePasswdLine('garbage'), null);
});
