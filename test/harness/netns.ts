/**
 * Network namespaces for tests. Everything here acts on namespaces the harness
 * created (names carry a prefix and the creating process's pid); the root
 * namespace is never touched: every `ip` call names a namespace with `-n`.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './run.ts';
import { waitFor } from './wait.ts';

/** `ip -n NS ...`: an ip(8) command that can only affect namespace `ns`. */
export async function ipIn(ns: string, args: readonly string[]): Promise<string> {
  return (await run('ip', ['-n', ns, ...args], { timeoutMs: 10_000 })).stdout;
}

/** Names of all network namespaces (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list'], { timeoutMs: 10_000 });
  return stdout.split('\n').map((line) => line.split(' ')[0] ?? '').filter((name) => name !== '');
}

/**
 * Creates namespace `name` with loopback up and its own resolv.conf (so the
 * real /etc/resolv.conf is never used or written by anything run inside).
 */
export async function createNamespace(name: string, resolvConf: string): Promise<void> {
  const etcDir = join('/etc/netns', name);
  mkdirSync(etcDir, { recursive: true });
  writeFileSync(join(etcDir, 'resolv.conf'), resolvConf);
  // An empty hosts file keeps the machine's /etc/hosts out of the test world.
  writeFileSync(join(etcDir, 'hosts'), '127.0.0.1 localhost\n');
  await run('ip', ['netns', 'add', name], { timeoutMs: 10_000 });
  await ipIn(name, ['link', 'set', 'lo', 'up']);
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (an orphan whose new parent has not reaped it yet) is dead for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the pid is gone (bounded). */
export async function killPid(pid: number, graceMs = 5_000): Promise<void> {
  if (!isProcessAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const gone = await waitFor(() => !isProcessAlive(pid), { timeoutMs: graceMs, what: `pid ${pid} to exit`, intervalMs: 50 }).then(
    () => true,
    () => false,
  );
  if (gone) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitFor(() => !isProcessAlive(pid), { timeoutMs: 5_000, what: `pid ${pid} to die after SIGKILL`, intervalMs: 50 });
}

/** Pids of processes whose network namespace is `name`. */
export async function namespacePids(name: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', name], { timeoutMs: 10_000, okExitCodes: [1] });
  return stdout.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
}

/**
 * Removes namespace `name`: ends the processes still inside it (all started
 * by the harness into this namespace), deletes it and its /etc/netns dir.
 * Safe to call on a namespace that does not exist.
 */
export async function deleteNamespace(name: string): Promise<void> {
  if ((await listNamespaces()).includes(name)) {
    for (const pid of await namespacePids(name)) await killPid(pid);
    await run('ip', ['netns', 'delete', name], { timeoutMs: 10_000 });
  }
  rmSync(join('/etc/netns', name), { recursive: true, force: true });
}

/** The pid embedded in a harness name `${prefix}${pid}-...`, if it has one. */
export function ownerPid(name: string, prefix: string): number | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const match = /^(\d+)-/.exec(name.slice(prefix.length));
  return match ? Number(match[1]) : undefined;
}

/**
 * Removes leftovers of crashed earlier runs: namespaces, /etc/netns dirs and
 * temp dirs named `${prefix}<pid>-...` whose pid is no longer running. Runs of
 * other live processes (parallel developers) are left alone.
 * @returns the names removed.
 */
export async function cleanupStale(prefix: string): Promise<string[]> {
  if (!/^[a-z][a-z0-9]{1,8}$/.test(prefix)) throw new Error(`cleanupStale: refusing unsafe prefix "${prefix}"`);
  const isStale = (name: string): boolean => {
    const pid = ownerPid(name, prefix);
    return pid !== undefined && pid !== process.pid && !isProcessAlive(pid);
  };
  const removed: string[] = [];
  for (const ns of (await listNamespaces()).filter(isStale)) {
    await deleteNamespace(ns);
    removed.push(ns);
  }
  const dirs: [string, string[]][] = [['/etc/netns', safeList('/etc/netns')], [tmpdir(), safeList(tmpdir())]];
  for (const [base, entries] of dirs) {
    for (const entry of entries.filter(isStale)) {
      rmSync(join(base, entry), { recursive: true, force: true });
      removed.push(join(base, entry));
    }
  }
  return removed;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
