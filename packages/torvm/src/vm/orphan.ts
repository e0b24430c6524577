/**
 * `torvm restore` after a crash: a QEMU whose controller died keeps running
 * (by design, so the host stays protected). Restore ends it before opening
 * the network, but only after checking that the pid really is our QEMU.
 */
import { readFileSync } from 'node:fs';
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

/** Ends an orphaned QEMU (SIGTERM, then SIGKILL), bounded. Returns its pid, or null if there was none. */
export async function stopOrphanQemu(paths: Pick<VmPaths, 'pidFilePath' | 'qmpSocketPath'>, inspector: ProcessInspector): Promise<number | null> {
  const pid = findOrphanQemu(paths, inspector);
  if (pid === null) return null;
  for (const [signal, waitMs] of [['SIGTERM', 10_000], ['SIGKILL', 5_000]] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return pid;
    }
    for (const deadline = Date.now() + waitMs; Date.now() < deadline; await delay(50)) {
      if (!inspector.isAlive(pid)) return pid;
    }
  }
  return pid;
}
