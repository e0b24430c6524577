/**
 * Finds and vets the QEMU binary on Linux: an allowlisted, root-owned,
 * non-writable file (symlinks resolved) of version >= 7.2.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TorvmError } from '../../core/errors.ts';
import type { CommandRunner } from '../exec.ts';
import {
  MIN_QEMU_VERSION, compareVersions, formatVersion, parseQemuVersion, qemuFeaturesFor, qemuTrustProblem,
  type PathFacts, type QemuVersion,
} from '../../vm/qemu-version.ts';

export interface TrustedQemu {
  /** The resolved path to execute. */
  path: string;
  version: QemuVersion;
  features: { runWith: boolean };
}

async function facts(path: string): Promise<PathFacts> {
  try {
    const s = await stat(path);
    return { path, exists: true, isFile: s.isFile(), isDirectory: s.isDirectory(), uid: s.uid, mode: s.mode };
  } catch {
    return { path, exists: false, isFile: false, isDirectory: false, uid: -1, mode: 0 };
  }
}

/**
 * Vets `configuredPath` (config `vm.qemuBinary`). Throws ERR_QEMU_MISSING when
 * it does not exist, ERR_QEMU_UNTRUSTED when location, owner, permissions or
 * version are wrong.
 */
export async function checkQemuBinary(configuredPath: string, runner: CommandRunner): Promise<TrustedQemu> {
  let real: string;
  try {
    real = await realpath(configuredPath);
  } catch (err) {
    throw new TorvmError('ERR_QEMU_MISSING', `QEMU binary ${configuredPath} was not found`, {
      cause: err, hint: 'install QEMU (Debian/Ubuntu: apt-get install qemu-system-x86) or set vm.qemuBinary',
    });
  }
  const problem = qemuTrustProblem(real, await facts(real), await facts(dirname(real)), 'linux');
  if (problem) {
    throw new TorvmError('ERR_QEMU_UNTRUSTED', `QEMU binary is not trusted: ${problem}`, {
      hint: 'use the distribution QEMU in /usr/bin, owned by root and not writable by others',
      details: { configuredPath, realPath: real },
    });
  }
  const out = await runner.run(real, ['--version'], { timeoutMs: 10_000 });
  const version = parseQemuVersion(out.stdout);
  if (!version) throw new TorvmError('ERR_QEMU_UNTRUSTED', `cannot read the version of ${real}: ${JSON.stringify(out.stdout.slice(0, 200))}`);
  if (compareVersions(version, MIN_QEMU_VERSION) < 0) {
    throw new TorvmError('ERR_QEMU_UNTRUSTED', `QEMU ${formatVersion(version)} is too old; TorVM needs ${formatVersion(MIN_QEMU_VERSION)} or newer`, {
      hint: 'upgrade QEMU', details: { version },
    });
  }
  return { path: real, version, features: qemuFeaturesFor(version) };
}
