/** The Linux ProcessInspector: reads /proc. */
import { readFileSync } from 'node:fs';
import type { ProcessInspector } from '../../vm/process-inspector.ts';

export const linuxProcessInspector: ProcessInspector = {
  isAlive(pid) {
    try {
      // "PID (comm) S ..." — comm may contain spaces and parentheses, so take the state after the last ")".
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X' && state !== '';
    } catch {
      return false;
    }
  },
  commandLine(pid) {
    try {
      const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!raw) return null;
      return raw.replace(/\0$/, '').split('\0');
    } catch {
      return null;
    }
  },
};

/**
 * Who a pid is, beyond the number: this boot's id and the process's start
 * time (clock ticks since boot). Pids are reused, above all across reboots,
 * where a persisted journal's pid can name any early-boot process.
 */
export interface ProcessIdentity {
  bootId: string;
  startTime: string;
}

export function linuxProcessIdentity(pid: number): ProcessIdentity | null {
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, starttime field 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const startTime = fields[19];
    return startTime ? { bootId, startTime } : null;
  } catch {
    return null;
  }
}
