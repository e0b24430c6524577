/**
 * The unprivileged system user QEMU drops to (`-runas torvm-qemu`), and the
 * `torvm` group whose members may use the daemon's API socket. They are
 * separate on purpose: QEMU parses guest-controlled data, so a guest escape
 * lands in QEMU's account, which must not be able to stop the daemon, change
 * its settings or read its secrets through the API. Created idempotently with
 * groupadd/useradd (shadow-utils argv, no shell).
 */
import { TorvmError } from '../../core/errors.ts';
import type { CommandRunner } from '../exec.ts';

export const TORVM_SYSTEM_USER = 'torvm-qemu';
/** Members of this group may use the API socket (mode 0660). */
export const TORVM_API_GROUP = 'torvm';

export interface SystemUser { name: string; uid: number; gid: number }

const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Parses one `getent passwd NAME` line. */
export function parsePasswdLine(line: string): SystemUser | null {
  const fields = line.trim().split(':');
  if (fields.length < 7) return null;
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return null;
  return { name: fields[0] ?? '', uid, gid };
}

async function lookup(runner: CommandRunner, db: 'passwd' | 'group', name: string): Promise<string | null> {
  // getent exits 2 when the key is not found.
  const r = await runner.run('getent', [db, name], { timeoutMs: 5_000, okExitCodes: [2] });
  return r.exitCode === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** Makes sure the system group `name` exists and returns its gid. */
export async function ensureSystemGroup(runner: CommandRunner, name = TORVM_API_GROUP): Promise<number> {
  if (!NAME.test(name)) throw new TorvmError('ERR_UNSAFE_VALUE', `bad system group name ${JSON.stringify(name)}`);
  // Exit 9: the group appeared meanwhile (another start raced us).
  if ((await lookup(runner, 'group', name)) === null) await runner.run('groupadd', ['--system', name], { timeoutMs: 15_000, okExitCodes: [9] });
  const line = await lookup(runner, 'group', name);
  const gid = Number(line?.split(':')[2]);
  if (!Number.isInteger(gid)) throw new TorvmError('ERR_COMMAND_FAILED', `system group ${name} is missing after groupadd`);
  if (gid === 0) throw new TorvmError('ERR_INTERNAL', `system group ${name} has gid 0`);
  return gid;
}

/**
 * Makes sure the system group and user `name` exist (no home, no login
 * shell, no password) and returns their ids. Safe to call at every start.
 * A pre-existing user with uid 0 is refused (ERR_INTERNAL).
 */
export async function ensureSystemUser(runner: CommandRunner, name = TORVM_SYSTEM_USER): Promise<SystemUser> {
  if (!NAME.test(name)) throw new TorvmError('ERR_UNSAFE_VALUE', `bad system user name ${JSON.stringify(name)}`);
  if ((await lookup(runner, 'group', name)) === null) {
    // Exit 9: the group appeared meanwhile (another start raced us).
    await runner.run('groupadd', ['--system', name], { timeoutMs: 15_000, okExitCodes: [9] });
  }
  if ((await lookup(runner, 'passwd', name)) === null) {
    await runner.run('useradd', ['--system', '--gid', name, '--no-create-home', '--home-dir', '/nonexistent',
      '--shell', '/usr/sbin/nologin', '--comment', 'TorVM QEMU', name], { timeoutMs: 15_000, okExitCodes: [9] });
  }
  const line = await lookup(runner, 'passwd', name);
  const user = line === null ? null : parsePasswdLine(line);
  if (!user) throw new TorvmError('ERR_COMMAND_FAILED', `system user ${name} is missing after useradd`);
  if (user.uid === 0) throw new TorvmError('ERR_INTERNAL', `system user ${name} has uid 0; refusing to run QEMU as root under another name`);
  return user;
}
