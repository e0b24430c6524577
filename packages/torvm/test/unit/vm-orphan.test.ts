import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTorvmError } from '../../src/core/errors.ts';
import { stopOrphanQemu } from '../../src/vm/orphan.ts';
import type { ProcessInspector } from '../../src/vm/process-inspector.ts';

/** A real child of ours to signal, behind a pidfile, and an inspector that takes it for our QEMU. */
function orphan(isAlive: (child: ChildProcess) => boolean, argv = ['sleep', '30']) {
  const dir = mkdtempSync(join(tmpdir(), `torvm-orphan-${process.pid}-`));
  const child = spawn(argv[0] ?? 'sleep', argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
  const paths = { pidFilePath: join(dir, 'qemu.pid'), qmpSocketPath: join(dir, 'qmp.sock') };
  writeFileSync(paths.pidFilePath, `${child.pid}\n`);
  const inspector: ProcessInspector = {
    isAlive: () => isAlive(child),
    commandLine: () => ['qemu-system-x86_64', '-pidfile', paths.pidFilePath, '-qmp', `unix:${paths.qmpSocketPath},server=on`],
  };
  // Resolves once the child printed its first line (the TERM trap is set by then).
  const ready = new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
  return { child, paths, inspector, ready, cleanup: () => { child.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); } };
}

test('restore refuses to go on when the orphaned QEMU outlives SIGKILL (the network must stay blocked)', async () => {
  // Ignores SIGTERM, and the inspector plays a QEMU stuck in the kernel that SIGKILL does not end.
  const o = orphan(() => true, ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 1; done']);
  try {
    await o.ready;
    await assert.rejects(stopOrphanQemu(o.paths, o.inspector, { termMs: 50, killMs: 50 }), (e: unknown) => isTorvmError(e, 'ERR_VM'));
  } finally {
    o.cleanup();
  }
});

test('an orphaned QEMU that ends on SIGTERM is reported by pid', async () => {
  const o = orphan((child) => child.exitCode === null && child.signalCode === null);
  try {
    assert.equal(await stopOrphanQemu(o.paths, o.inspector, { termMs: 5_000, killMs: 1_000 }), o.child.pid);
    assert.equal(o.child.signalCode, 'SIGTERM');
  } finally {
    o.cleanup();
  }
});
