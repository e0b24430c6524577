/**
 * Which QEMU we accept, as data. PURE: the file checks are in
 * platform/linux/qemu-binary.ts.
 *
 * We support QEMU >= 7.2 (Debian bookworm). What differs from the seed, which
 * assumed 8.0:
 * - `-runas` is the 7.2 spelling; 9.1 deprecates it for `-run-with user=`
 *   (`features.runWith`).
 * - In 7.2 `-sandbox` is installed before `-runas`, so `elevateprivileges`
 *   must be `allow` together with `-runas` (see qemu-args.ts).
 * - `-action panic=exit-failure` is 7.1+; we use `panic=shutdown`, which 6.0+ has.
 * - QMP `human-monitor-command` is unchanged; `query-cpus` is gone since 6.2
 *   (use `query-cpus-fast`).
 */
import type { HostOs } from './qemu-args.ts';

export interface QemuVersion { major: number; minor: number; micro: number }

export const MIN_QEMU_VERSION: QemuVersion = { major: 7, minor: 2, micro: 0 };

/**
 * Directories a QEMU binary may live in. Linux: distribution and
 * /usr/local installs. macOS: Homebrew (Apple silicon, Intel) and MacPorts.
 * Windows: the official installer's default (qemu.weilnetz.de). A user-
 * writable location is never accepted.
 */
export const QEMU_ALLOWED_DIRS: Record<HostOs, readonly string[]> = {
  linux: ['/usr/bin', '/usr/local/bin'],
  darwin: ['/opt/homebrew/bin', '/usr/local/bin', '/opt/local/bin'],
  win32: ['C:\\Program Files\\qemu'],
};

/** Parses `qemu-system-x86_64 --version` ("QEMU emulator version 7.2.22 (Debian ...)"). */
export function parseQemuVersion(output: string): QemuVersion | null {
  const m = /QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3] ?? 0) };
}

export function compareVersions(a: QemuVersion, b: QemuVersion): number {
  return a.major - b.major || a.minor - b.minor || a.micro - b.micro;
}

export function formatVersion(v: QemuVersion): string {
  return `${v.major}.${v.minor}.${v.micro}`;
}

/** Option spellings that depend on the QEMU version (passed to buildQemuArgs). */
export function qemuFeaturesFor(v: QemuVersion): { runWith: boolean } {
  return { runWith: compareVersions(v, { major: 9, minor: 1, micro: 0 }) >= 0 };
}

/** The ownership/permission facts of one path, as the policy needs them. */
export interface PathFacts {
  path: string;
  exists: boolean;
  isFile: boolean;
  isDirectory: boolean;
  uid: number;
  mode: number;
}

/**
 * Returns why a QEMU binary (and its directory) is not trusted, or null:
 * the real path must sit directly in an allowed directory; the file and the
 * directory must be owned by root and not writable by group or others.
 */
export function qemuTrustProblem(realPath: string, file: PathFacts, dir: PathFacts, hostOs: Exclude<HostOs, 'win32'>): string | null {
  const parent = realPath.slice(0, realPath.lastIndexOf('/')) || '/';
  if (!QEMU_ALLOWED_DIRS[hostOs].includes(parent)) return `${realPath} is not in an allowed directory (${QEMU_ALLOWED_DIRS[hostOs].join(', ')})`;
  if (!file.exists) return `${realPath} does not exist`;
  if (!file.isFile) return `${realPath} is not a regular file`;
  if (file.uid !== 0) return `${realPath} is not owned by root (uid ${file.uid})`;
  if ((file.mode & 0o022) !== 0) return `${realPath} is writable by group or others (mode ${(file.mode & 0o7777).toString(8)})`;
  if (!dir.isDirectory || dir.uid !== 0) return `${parent} is not a root-owned directory`;
  if ((dir.mode & 0o022) !== 0) return `${parent} is writable by group or others (mode ${(dir.mode & 0o7777).toString(8)})`;
  return null;
}
