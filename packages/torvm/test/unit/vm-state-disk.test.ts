import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, symlinkSync, existsSync, readFileSync, openSync, writeSync, closeSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_DISK_BYTES, acquireStateLock, ensureStateDisk, hasExt4Magic, takeOverStateLock } from '../../src/vm/state-disk.ts';
import { isTorvmError } from '../../src/core/errors.ts';

function withDir(fn: (dir: string) => Promise<void> | void) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvm-disk-'));
    try { await fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

/** A stand-in for mkfs: writes the ext4 magic where the superblock keeps it. */
async function fakeMkfs(path: string): Promise<void> {
  const fd = openSync(path, 'r+');
  try { writeSync(fd, Buffer.from([0x53, 0xef]), 0, 2, 1080); } finally { closeSync(fd); }
}

test('ensureStateDisk creates a 64 MiB 0600 disk once, then keeps it', withDir(async (dir) => {
  const disk = join(dir, 'state.img');
  const formatted: string[] = [];
  assert.equal(await ensureStateDisk(disk, () => assert.fail('no warning'), async (p) => { formatted.push(p); await fakeMkfs(p); }), 'created');
  assert.equal(statSync(disk).size, STATE_DISK_BYTES);
  assert.equal(statSync(disk).mode & 0o777, 0o600);
  assert.deepEqual(formatted, [disk]);
  assert.equal(hasExt4Magic(disk), true);
  assert.equal(await ensureStateDisk(disk, () => assert.fail('no warning'), fakeMkfs), 'kept');
}));

test('ensureStateDisk recreates a disk with a destroyed superblock or the wrong size, with a warning', withDir(async (dir) => {
  const disk = join(dir, 'state.img');
  await ensureStateDisk(disk, () => {}, fakeMkfs);
  const fd = openSync(disk, 'r+');
  try { writeSync(fd, Buffer.alloc(1024), 0, 1024, 1024); } finally { closeSync(fd); }
  const warnings: string[] = [];
  assert.equal(await ensureStateDisk(disk, (w) => warnings.push(w), fakeMkfs), 'recreated');
  assert.match(warnings[0] ?? '', /no ext4 superblock/);
  assert.equal(hasExt4Magic(disk), true);
  writeFileSync(disk, 'short');
  assert.equal(await ensureStateDisk(disk, (w) => warnings.push(w), fakeMkfs), 'recreated');
  assert.match(warnings[1] ?? '', /is 5 bytes/);
  assert.equal(existsSync(`${disk}.broken`), false);
}));

test('ensureStateDisk never writes through a symlink', withDir(async (dir) => {
  const target = join(dir, 'victim');
  writeFileSync(target, 'precious');
  const disk = join(dir, 'state.img');
  symlinkSync(target, disk);
  const warnings: string[] = [];
  assert.equal(await ensureStateDisk(disk, (w) => warnings.push(w)), 'recreated');
  assert.equal(readFileSync(target, 'utf8'), 'precious');
  assert.equal(lstatSync(disk).isSymbolicLink(), false);
}));

test('a failing formatter leaves no half-made disk behind', withDir(async (dir) => {
  const disk = join(dir, 'state.img');
  await assert.rejects(ensureStateDisk(disk, () => {}, async () => { throw new Error('mkfs failed'); }), (e) => isTorvmError(e, 'ERR_VM'));
  assert.equal(existsSync(disk), false);
}));

test('the state lock is exclusive while its holder lives, and stale locks are taken over', withDir((dir) => {
  const disk = join(dir, 'state.img');
  const alive = new Set<number>([1001, 2002]);
  const lock = acquireStateLock(disk, (p) => alive.has(p), 1001);
  assert.throws(() => acquireStateLock(disk, (p) => alive.has(p), 3003), (e) => isTorvmError(e, 'ERR_VM') && /in use/.test(e.message));
  lock.setQemuPid(2002);
  alive.delete(1001); // the supervisor died, its QEMU still runs: still in use
  assert.throws(() => acquireStateLock(disk, (p) => alive.has(p), 3003), (e) => isTorvmError(e, 'ERR_VM'));
  // Adoption takes it over explicitly.
  const adopted = takeOverStateLock(disk, 2002, (p) => alive.has(p), 3003);
  assert.deepEqual(JSON.parse(readFileSync(`${disk}.lock`, 'utf8')), { supervisorPid: 3003, qemuPid: 2002 });
  adopted.release();
  assert.equal(existsSync(`${disk}.lock`), false);
  // Every holder dead: stale, taken over.
  const stale = acquireStateLock(disk, () => false, 4004);
  stale.setQemuPid(5005);
  const fresh = acquireStateLock(disk, () => false, 6006);
  assert.deepEqual(JSON.parse(readFileSync(`${disk}.lock`, 'utf8')), { supervisorPid: 6006, qemuPid: null });
  stale.release(); // not ours any more: must not remove the new holder's lock
  assert.equal(existsSync(`${disk}.lock`), true);
  fresh.release();
  fresh.release();
  assert.equal(existsSync(`${disk}.lock`), false);
}));
