/**
 * `torvm restore` after a crash: a QEMU whose controller died keeps running
 * (by design, so the host stays protected). Restore ends it before opening
 * the network, but only after checking that the pid really is our QEMU.
 */
import { readFileSync } from 'node:fs';
import { TorvmError } from '../core/errors.ts';
import { setTimeout as delay } from 'node:timers/promises';
import { isQemuWithPaths, type ProcessInspector } from './process-inspector.ts';
import type { VmPaths } from './vm-paths.ts';

/** The pid of a live QEMU started with these paths, or null. */
export function findOrphanQemu(paths: Pick<VmPaths, 'pidFilePath' | 'qmpSocketPath'>, inspector: ProcessInspector): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(paths.pidFilePath, 'utf8').trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !inspector.isAlive(pid)) return null;
  return isQemuWithPaths(inspector.commandLine(pid), paths.pidFilePath, paths.qmpSocketPath) ? pid : null;
}

/**
 * Ends an orphaned QEMU (SIGTERM, then SIGKILL), bounded. Returns its pid, or
 * null if there was none. Throws if it outlives SIGKILL: the caller must then
 * keep the network blocked.
 */
export async function stopOrphanQemu(paths: Pick<VmPaths, 'pidFilePath' | 'qmpSocketPath'>, inspector: ProcessInspector, waits = { termMs: 10_000, killMs: 5_000 }): Promise<number | null> {
  const pid = findOrphanQemu(paths, inspector);
  if (pid === null) return null;
  for (const [signal, waitMs] of [['SIGTERM', waits.termMs], ['SIGKILL', waits.killMs]] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return pid;
    }
    for (const deadline = Date.now() + waitMs; Date.now() < deadline; await delay(50)) {
      if (!inspector.isAlive(pid)) return pid;
    }
  }
  throw new TorvmError('ERR_VM', `the VM left by a crashed controller (QEMU pid ${pid}) did not exit after SIGKILL; the network stays blocked`, { hint: 'find out why the process cannot end (ps -o stat,wchan -p PID), then run `torvm restore` again' });
}
