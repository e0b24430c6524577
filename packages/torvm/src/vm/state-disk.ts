/**
 * The VM's persistent state disk (Tor's DataDirectory: a cache, never
 * precious). Who does what:
 * - The host creates the raw file and formats it with mkfs.ext4 (the same
 *   options as the guest's `make_state_fs`) whenever it creates it, and
 *   recreates it (with a warning) when it is the wrong size or carries no
 *   ext4 superblock magic. Reading two magic bytes is the only parsing the
 *   host does of a disk the guest writes: the host never runs e2fsck (or
 *   mounts) it as root, because a compromised guest controls its contents.
 * - The guest init (image/guest/init, step 8) runs `e2fsck -p` at every boot,
 *   and recreates the filesystem with a `warning: state disk recreated`
 *   marker when it cannot be repaired; a blank disk is formatted there too.
 *
 * Exclusive use: QEMU's own image locking (`file.locking=on`, OFD locks) stops
 * a second QEMU from opening the disk for writing, and {@link acquireStateLock}
 * stops a second supervisor before it even starts QEMU.
 */
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync, readFileSync, readSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { TorvmError } from '../core/errors.ts';
import type { CommandRunner } from '../platform/exec.ts';

/** 64 MiB: Tor's cached consensus, descriptors and state fit many times over. */
export const STATE_DISK_BYTES = 64 * 1024 * 1024;

export type StateDiskStatus = 'created' | 'kept' | 'recreated';

/** Formats a freshly created disk file. */
export type StateDiskFormatter = (path: string) => Promise<void>;

/** mkfs.ext4 with the guest's options (image/guest/init `make_state_fs`). */
export function mkfsExt4Formatter(runner: CommandRunner, mkfs = '/usr/sbin/mkfs.ext4'): StateDiskFormatter {
  return async (path) => {
    await runner.run(mkfs, ['-q', '-F', '-t', 'ext4', '-L', 'torvm-state', '-m', '0', path], { timeoutMs: 60_000 });
  };
}

/** True if the ext4 superblock magic 0xEF53 is at byte 1080. Reads 2 bytes, nothing else. */
export function hasExt4Magic(path: string): boolean {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const magic = Buffer.alloc(2);
    return readSync(fd, magic, 0, 2, 1080) === 2 && magic[0] === 0x53 && magic[1] === 0xef;
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes sure `path` is a regular raw file of STATE_DISK_BYTES, mode 0600,
 * holding an ext4 filesystem. Creates it if missing; recreates it with a
 * warning if it is not a regular file of the right size or has no ext4
 * magic (a symlink is never followed). Without `format` a new disk stays
 * blank and the guest formats it. Idempotent.
 */
export async function ensureStateDisk(path: string, warn: (message: string) => void, format?: StateDiskFormatter): Promise<StateDiskStatus> {
  let status: StateDiskStatus = 'created';
  let existing: ReturnType<typeof lstatSync> | undefined;
  try {
    existing = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TorvmError('ERR_VM', `cannot inspect the state disk ${path}`, { cause: err });
  }
  if (existing) {
    let problem: string | null = null;
    if (!existing.isFile()) problem = 'is not a regular file';
    else if (existing.size !== STATE_DISK_BYTES) problem = `is ${existing.size} bytes, not ${STATE_DISK_BYTES}`;
    else if (format && !hasExt4Magic(path)) problem = 'has no ext4 superblock (corrupted)';
    if (problem === null) return 'kept';
    warn(`state disk ${path} ${problem}; recreating it (Tor's data there is only a cache)`);
    try {
      if (existing.isFile()) renameSync(path, `${path}.broken`);
      else unlinkSync(path);
    } catch (err) {
      throw new TorvmError('ERR_VM', `cannot move the broken state disk ${path} away`, { cause: err });
    }
    status = 'recreated';
  }
  // O_EXCL|O_NOFOLLOW: never write through a symlink planted at the path.
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new TorvmError('ERR_VM', `cannot create the state disk ${path}`, { cause: err });
  }
  try {
    ftruncateSync(fd, STATE_DISK_BYTES); // sparse zeros
  } finally {
    closeSync(fd);
  }
  if (format) {
    try {
      await format(path);
    } catch (err) {
      rmSync(path, { force: true });
      throw new TorvmError('ERR_VM', `cannot format the state disk ${path}`, { cause: err });
    }
  }
  rmSync(`${path}.broken`, { force: true });
  return status;
}

/** A held lock; `release()` is idempotent. */
export interface StateLock {
  readonly path: string;
  /** Records the QEMU pid that now uses the disk (for the next supervisor's staleness check). */
  setQemuPid(pid: number): void;
  release(): void;
}

interface LockContent { supervisorPid: number; qemuPid: number | null }

function readLock(path: string): LockContent | null {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null) return null;
    const p = parsed as Record<string, unknown>;
    return {
      supervisorPid: typeof p.supervisorPid === 'number' ? p.supervisorPid : 0,
      qemuPid: typeof p.qemuPid === 'number' ? p.qemuPid : null,
    };
  } catch {
    return null;
  }
}

/**
 * Takes the state disk's lock file (`<disk>.lock`, created with O_EXCL).
 * A lock whose supervisor and QEMU are both dead is stale and taken over.
 * `isAlive(pid)` is injected so the caller decides what "alive" means
 * (a Linux caller also checks that the pid is still that QEMU).
 * Throws TorvmError ERR_VM when another live supervisor or QEMU holds it.
 */
export function acquireStateLock(diskPath: string, isAlive: (pid: number) => boolean, selfPid = process.pid): StateLock {
  const path = `${diskPath}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new TorvmError('ERR_VM', `cannot create the lock ${path}`, { cause: err });
      const holder = readLock(path);
      const holders = [holder?.supervisorPid, holder?.qemuPid].filter((p): p is number => typeof p === 'number' && p > 0 && p !== selfPid);
      const live = holders.filter((p) => isAlive(p));
      if (live.length > 0) {
        throw new TorvmError('ERR_VM', `the state disk ${diskPath} is in use by process ${live.join(', ')}`, {
          hint: 'another TorVM VM is running; stop it first (two VMs must never share one state disk)',
          details: { lockPath: path, pids: live },
        });
      }
      unlinkSync(path); // stale: every holder is gone
      continue;
    }
    const content: LockContent = { supervisorPid: selfPid, qemuPid: null };
    const write = () => {
      const fdNow = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
      try {
        if (!fstatSync(fdNow).isFile()) throw new TorvmError('ERR_VM', `lock ${path} is not a regular file`);
        ftruncateSync(fdNow, 0);
        writeSync(fdNow, `${JSON.stringify(content)}\n`, 0);
      } finally {
        closeSync(fdNow);
      }
    };
    writeSync(fd, `${JSON.stringify(content)}\n`);
    closeSync(fd);
    let released = false;
    return {
      path,
      setQemuPid(pid: number) { content.qemuPid = pid; if (!released) write(); },
      release() {
        if (released) return;
        released = true;
        const now = readLock(path);
        if (now?.supervisorPid === selfPid) {
          try { unlinkSync(path); } catch { /* already gone */ }
        }
      },
    };
  }
  throw new TorvmError('ERR_VM', `cannot take the lock ${path}`);
}

/**
 * Adoption: a restarted controller takes over the lock of the QEMU it adopts
 * (the dead supervisor's pid is replaced by ours).
 */
export function takeOverStateLock(diskPath: string, qemuPid: number, isAlive: (pid: number) => boolean, selfPid = process.pid): StateLock {
  const path = `${diskPath}.lock`;
  const holder = readLock(path);
  if (holder && holder.supervisorPid !== selfPid && holder.supervisorPid > 0 && isAlive(holder.supervisorPid)) {
    throw new TorvmError('ERR_VM', `the VM is still supervised by process ${holder.supervisorPid}`, { details: { lockPath: path } });
  }
  try { unlinkSync(path); } catch { /* none */ }
  const lock = acquireStateLock(diskPath, isAlive, selfPid);
  lock.setQemuPid(qemuPid);
  return lock;
}
