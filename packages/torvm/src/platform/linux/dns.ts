/**
 * The system resolver on Linux. Two backends:
 * - resolv.conf: replace the file (a symlink is replaced by a file, not
 *   followed), and put back exactly what was there, symlink included;
 * - systemd-resolved: give the TAP link the VM as its DNS server and the
 *   catch-all routing domain `~.`; deleting the TAP reverts it.
 * Either way the firewall's DNS capture is the real guarantee; this makes
 * lookups work and fast.
 */
import { lstat, readFile, readlink, symlink, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TorvmError } from '../../core/errors.ts';
import { renderResolvConf } from '../../core/route-plan.ts';
import type { CommandRunner } from '../exec.ts';
import type { Dns, DnsSnapshot } from '../host-network.ts';
import { writeFileDurable } from './journal.ts';

export const SYSTEM_RESOLV_CONF = '/etc/resolv.conf';

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Replaces a file atomically; falls back to writing in place when the path is a mount point (EBUSY, e.g. a container's bind mount). */
async function replaceFile(path: string, content: string, mode: number): Promise<void> {
  try {
    await writeFileDurable(path, content, mode);
  } catch (err) {
    if (errno(err) !== 'EBUSY' && errno(err) !== 'EXDEV') throw err;
    await writeFile(path, content, { mode });
  }
}

/** The resolv.conf backend. `path` is injectable so tests manage /etc/netns/NAME/resolv.conf, never the real file. */
export function createResolvConfDns(path: string = SYSTEM_RESOLV_CONF): Dns {
  async function snapshot(): Promise<DnsSnapshot> {
    try {
      const st = await lstat(path);
      if (st.isSymbolicLink()) return { kind: 'resolv-conf', path, symlinkTarget: await readlink(path), content: null, mode: null };
      return { kind: 'resolv-conf', path, symlinkTarget: null, content: await readFile(path, 'utf8'), mode: st.mode & 0o7777 };
    } catch (err) {
      if (errno(err) === 'ENOENT') return { kind: 'resolv-conf', path, symlinkTarget: null, content: null, mode: null };
      throw new TorvmError('ERR_NETWORK', `cannot read ${path}`, { cause: err });
    }
  }
  return {
    snapshot,
    async apply(nameserver) {
      try {
        await replaceFile(path, renderResolvConf(nameserver), 0o644);
      } catch (err) {
        throw new TorvmError('ERR_NETWORK', `cannot write ${path}`, { cause: err });
      }
    },
    async intact(nameserver) {
      try {
        const st = await lstat(path);
        return !st.isSymbolicLink() && (await readFile(path, 'utf8')) === renderResolvConf(nameserver);
      } catch {
        return false;
      }
    },
    async restore(saved) {
      if (saved.kind !== 'resolv-conf') throw new TorvmError('ERR_INTERNAL', `resolv.conf backend cannot restore a ${saved.kind} snapshot`);
      try {
        if (saved.symlinkTarget !== null) {
          const tmp = join(dirname(saved.path), `.torvm-link.${process.pid}`);
          await unlink(tmp).catch(() => {});
          await symlink(saved.symlinkTarget, tmp);
          await rename(tmp, saved.path);
        } else if (saved.content !== null) {
          await replaceFile(saved.path, saved.content, saved.mode ?? 0o644);
        } else {
          await unlink(saved.path).catch((err: unknown) => {
            if (errno(err) !== 'ENOENT') throw err;
          });
        }
      } catch (err) {
        throw new TorvmError('ERR_NETWORK', `cannot restore ${saved.path}`, { cause: err, details: { saved } });
      }
    },
  };
}

/** The systemd-resolved backend: per-link settings on the TAP, reverted when it goes away. */
export function createResolvedDns(runner: CommandRunner, tapName: string, options: { netns?: string } = {}): Dns {
  const resolvectl = (args: string[], okExitCodes: number[] = []) =>
    runner.run('resolvectl', args, { timeoutMs: 10_000, okExitCodes, ...(options.netns ? { netns: options.netns } : {}) });
  return {
    async snapshot() {
      return { kind: 'resolved', links: [] };
    },
    async apply(nameserver) {
      await resolvectl(['dns', tapName, nameserver]);
      await resolvectl(['domain', tapName, '~.']);
      await resolvectl(['default-route', tapName, 'yes']);
      await resolvectl(['flush-caches']);
    },
    async intact(nameserver) {
      const r = await resolvectl(['dns', tapName], [1]);
      return r.exitCode === 0 && r.stdout.includes(nameserver);
    },
    async restore() {
      await resolvectl(['revert', tapName], [1]); // exit 1: the link is already gone
      await resolvectl(['flush-caches'], [1]);
    },
  };
}

/** Whether systemd-resolved manages DNS here (its stub file is the resolv.conf target). */
export async function resolvedIsActive(runner: CommandRunner, options: { netns?: string } = {}): Promise<boolean> {
  try {
    const r = await runner.run('resolvectl', ['status'], { timeoutMs: 5_000, okExitCodes: [1], ...(options.netns ? { netns: options.netns } : {}) });
    return r.exitCode === 0;
  } catch {
    return false; // not installed
  }
}
