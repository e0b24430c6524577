import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { writeCpio, gzipDeterministic, normalizeArchivePath, type CpioEntry } from '../../src/cpio.ts';

/** Reads back a newc archive: [name, mode, uid, gid, ino, size, data]. */
function parseNewc(buf: Buffer) {
  const out: Array<{ name: string; mode: number; uid: number; gid: number; ino: number; mtime: number; data: Buffer; rdevMajor: number }> = [];
  let off = 0;
  for (;;) {
    assert.equal(buf.toString('ascii', off, off + 6), '070701');
    const field = (i: number) => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const namesize = field(11);
    const size = field(6);
    const name = buf.toString('utf8', off + 110, off + 110 + namesize - 1);
    let p = off + 110 + namesize;
    p += (4 - (p % 4)) % 4;
    const data = buf.subarray(p, p + size);
    p += size;
    p += (4 - (p % 4)) % 4;
    if (name === 'TRAILER!!!') return { entries: out, end: p };
    out.push({ name, mode: field(1), uid: field(2), gid: field(3), ino: field(0), mtime: field(5), data, rdevMajor: field(9) });
    off = p;
  }
}

const sample: CpioEntry[] = [
  { kind: 'file', path: '/usr/bin/tool', mode: 0o755, data: Buffer.from('abc') },
  { kind: 'dir', path: '/usr', mode: 0o755 },
  { kind: 'dir', path: '/usr/bin', mode: 0o755 },
  { kind: 'symlink', path: '/usr/bin/alias', target: 'tool' },
  { kind: 'dir', path: '/state', mode: 0o700, uid: 100, gid: 100 },
  { kind: 'dir', path: '/dev', mode: 0o755 },
  { kind: 'chardev', path: '/dev/console', mode: 0o600, major: 5, minor: 1 },
];

describe('cpio newc writer', () => {
  it('writes sorted entries with synthetic inodes, mtime 0 and the given owners', () => {
    const { entries, end } = parseNewc(writeCpio(sample));
    assert.deepEqual(entries.map((e) => e.name), ['dev', 'dev/console', 'state', 'usr', 'usr/bin', 'usr/bin/alias', 'usr/bin/tool']);
    assert.deepEqual(entries.map((e) => e.ino), [1, 2, 3, 4, 5, 6, 7]);
    assert.ok(entries.every((e) => e.mtime === 0));
    const state = entries.find((e) => e.name === 'state')!;
    assert.equal(state.uid, 100);
    assert.equal(state.mode, 0o040700);
    assert.equal(entries.find((e) => e.name === 'usr/bin/tool')!.data.toString(), 'abc');
    assert.equal(entries.find((e) => e.name === 'usr/bin/alias')!.data.toString(), 'tool');
    assert.equal(entries.find((e) => e.name === 'dev/console')!.rdevMajor, 5);
    assert.equal(end % 4, 0);
  });

  it('is independent of input order, and gzip output is byte-stable', () => {
    const a = writeCpio(sample);
    const b = writeCpio([...sample].reverse());
    assert.ok(a.equals(b));
    const gz = gzipDeterministic(a);
    assert.equal(gz.readUInt32LE(4), 0, 'gzip mtime is 0');
    assert.equal(gz[9], 3, 'gzip OS byte is Unix');
    assert.ok(gz.equals(gzipDeterministic(b)));
    assert.ok(gunzipSync(gz).equals(a));
  });

  it('puts the `last` entry after every sorted one', () => {
    const { entries } = parseNewc(writeCpio(sample, { kind: 'file', path: '/dev/zz-complete', mode: 0o644, data: Buffer.from('x') }));
    assert.equal(entries.at(-1)?.name, 'dev/zz-complete');
  });

  it('refuses duplicates, missing parents and unsafe paths', () => {
    assert.throws(() => writeCpio([{ kind: 'dir', path: '/a', mode: 0o755 }, { kind: 'dir', path: 'a', mode: 0o755 }]), /duplicate/);
    assert.throws(() => writeCpio([{ kind: 'file', path: '/a/b', mode: 0o644, data: Buffer.alloc(0) }]), /parent/);
    for (const bad of ['', '/', '../x', 'a/../b', 'a//b', 'a/./b', 'a\0b']) assert.throws(() => normalizeArchivePath(bad), /bad path/);
  });
});
