/**
 * A deterministic cpio "newc" archive writer (the format the kernel unpacks
 * as an initramfs). Entries are sorted by path, inode numbers are synthetic
 * (1, 2, 3, …), every mtime is 0, and the gzip wrapper has a fixed header, so
 * the same entries always give the same bytes.
 */
import { gzipSync, constants as zlibConstants } from 'node:zlib';

export type CpioEntry =
  | { kind: 'dir'; path: string; mode: number; uid?: number; gid?: number }
  | { kind: 'file'; path: string; mode: number; data: Buffer; uid?: number; gid?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio: field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(fields: { ino: number; mode: number; uid: number; gid: number; nlink: number; size: number; rdevMajor: number; rdevMinor: number; name: string }): Buffer {
  const name = Buffer.from(`${fields.name}\0`, 'utf8');
  const head = `070701${[fields.ino, fields.mode, fields.uid, fields.gid, fields.nlink, 0, fields.size, 0, 0, fields.rdevMajor, fields.rdevMinor, name.length, 0].map(hex8).join('')}`;
  return Buffer.concat([Buffer.from(head, 'ascii'), name, Buffer.alloc(pad4(110 + name.length))]);
}

/** Normalizes "/a/b" and "a/b" to "a/b"; rejects "..", empty and NUL paths. */
export function normalizeArchivePath(path: string): string {
  const trimmed = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '' || trimmed.includes('\0') || trimmed.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`cpio: bad path ${JSON.stringify(path)}`);
  }
  return trimmed;
}

/**
 * The uncompressed newc archive. Throws on duplicate paths or a missing parent
 * directory. `last` is written after all sorted entries: if the kernel runs
 * out of memory while unpacking, it keeps booting with whatever it unpacked,
 * so the guest checks that this final file exists.
 */
export function writeCpio(entries: readonly CpioEntry[], last?: CpioEntry): Buffer {
  const sorted = entries.map((e) => ({ ...e, path: normalizeArchivePath(e.path) }));
  sorted.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (last) sorted.push({ ...last, path: normalizeArchivePath(last.path) });
  const dirs = new Set<string>();
  const parts: Buffer[] = [];
  let ino = 0;
  let previous = '';
  for (const e of sorted) {
    if (e.path === previous) throw new Error(`cpio: duplicate path ${e.path}`);
    previous = e.path;
    const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
    if (parent !== '' && !dirs.has(parent)) throw new Error(`cpio: ${e.path} has no parent directory entry`);
    ino++;
    const base = { ino, name: e.path, rdevMajor: 0, rdevMinor: 0 };
    switch (e.kind) {
      case 'dir':
        dirs.add(e.path);
        parts.push(header({ ...base, mode: S_IFDIR | (e.mode & 0o7777), uid: e.uid ?? 0, gid: e.gid ?? 0, nlink: 2, size: 0 }));
        break;
      case 'file':
        parts.push(header({ ...base, mode: S_IFREG | (e.mode & 0o7777), uid: e.uid ?? 0, gid: e.gid ?? 0, nlink: 1, size: e.data.length }));
        parts.push(e.data, Buffer.alloc(pad4(e.data.length)));
        break;
      case 'symlink': {
        const target = Buffer.from(e.target, 'utf8');
        parts.push(header({ ...base, mode: S_IFLNK | 0o777, uid: 0, gid: 0, nlink: 1, size: target.length }));
        parts.push(target, Buffer.alloc(pad4(target.length)));
        break;
      }
      case 'chardev':
        parts.push(header({ ...base, mode: S_IFCHR | (e.mode & 0o7777), uid: 0, gid: 0, nlink: 1, size: 0, rdevMajor: e.major, rdevMinor: e.minor }));
        break;
    }
  }
  parts.push(header({ ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, size: 0, rdevMajor: 0, rdevMinor: 0, name: 'TRAILER!!!' }));
  return Buffer.concat(parts);
}

/** gzip with a fixed header: mtime 0, no name, OS byte 3 (Unix) whatever the build host. */
export function gzipDeterministic(data: Buffer): Buffer {
  const out = gzipSync(data, { level: 9, strategy: zlibConstants.Z_DEFAULT_STRATEGY });
  out.writeUInt32LE(0, 4);
  out[9] = 3;
  return out;
}
