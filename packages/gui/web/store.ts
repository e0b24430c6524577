/** The GUI's shared state as signals: the live status, the log tail, the connection. */
import { signal } from '@preact/signals';
import type { DaemonStatus, LogLine } from './api.ts';

export const status = signal<DaemonStatus | null>(null);
export const logs = signal<LogLine[]>([]);
/** 'connecting' until the first event, 'down' when the stream broke, 'unauthorized' without a good token. */
export const connection = signal<'connecting' | 'up' | 'down' | 'unauthorized'>('connecting');
/** Every bootstrap percentage seen, in order (the progress bar's history; tests read it too). */
export const bootstrapSeen = signal<number[]>([]);

const MAX_LOG_LINES = 2000;

export function pushStatus(s: DaemonStatus): void {
  status.value = s;
  const seen = bootstrapSeen.value;
  if (seen[seen.length - 1] !== s.bootstrap.progress) bootstrapSeen.value = [...seen, s.bootstrap.progress].slice(-200);
}

export function pushLogs(lines: LogLine[]): void {
  const next = [...logs.value, ...lines];
  logs.value = next.length > MAX_LOG_LINES ? next.slice(next.length - MAX_LOG_LINES) : next;
}
