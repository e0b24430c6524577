/**
 * cleanupStale: leftovers of a crashed run (namespace, a process inside it,
 * /etc/netns dir, temp dir) are removed; those of a live run are left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupStale, createNamespace, deleteNamespace, listNamespaces, isProcessAlive, killPid } from '../harness/netns.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';

const skip = skipUnlessPrerequisites();
// Own prefix, so this never races a real harness run ("tvh").
const PREFIX = 'tvhclean';

test('cleanupStale removes a dead run and keeps a live one', { skip, timeout: 60_000 }, async () => {
  const deadPid = spawnSync('true').pid;
  assert.ok(deadPid !== undefined && !isProcessAlive(deadPid));
  const stale = `${PREFIX}${deadPid}-1-inet`;
  const live = `${PREFIX}${process.pid}-1-inet`;
  const staleTmp = join(tmpdir(), `${PREFIX}${deadPid}-1-abc`);
  let sleeper: number | undefined;
  try {
    await createNamespace(stale, 'nameserver 127.0.0.1\n');
    await createNamespace(live, 'nameserver 127.0.0.1\n');
    mkdirSync(staleTmp, { recursive: true });
    const child = spawn('ip', ['netns', 'exec', stale, 'sleep', '300'], { stdio: 'ignore' });
    sleeper = child.pid;
    assert.ok(sleeper !== undefined);
    // Wait until the sleeper really is inside the namespace (bounded).
    const deadline = Date.now() + 10_000;
    while (spawnSync('ip', ['netns', 'identify', String(sleeper)], { encoding: 'utf8' }).stdout.trim() !== stale) {
      assert.ok(Date.now() < deadline, 'sleeper never entered the namespace');
      await new Promise((r) => setTimeout(r, 20));
    }

    const removed = await cleanupStale(PREFIX);

    assert.ok(removed.includes(stale));
    assert.ok(removed.includes(staleTmp));
    const namespaces = await listNamespaces();
    assert.ok(!namespaces.includes(stale), 'stale namespace deleted');
    assert.ok(namespaces.includes(live), 'a live run is left alone');
    assert.equal(existsSync(join('/etc/netns', stale)), false);
    assert.equal(existsSync(staleTmp), false);
    assert.equal(isProcessAlive(sleeper), false, 'the process inside the stale namespace was ended');
    await assert.rejects(cleanupStale('x'), /unsafe prefix/);
  } finally {
    if (sleeper !== undefined) await killPid(sleeper);
    await deleteNamespace(stale);
    await deleteNamespace(live);
    rmSync(staleTmp, { recursive: true, force: true });
  }
});
