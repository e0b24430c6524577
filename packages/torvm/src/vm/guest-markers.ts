/**
 * Typed lifecycle events from the guest's serial console. PURE.
 *
 * The guest init prints `torvm-guest: <event>` lines (a stable interface,
 * image/guest/README.md); the kernel prints its own panic line. Unknown
 * markers are kept as `marker` events rather than dropped.
 */
export type GuestEvent =
  | { kind: 'init-started' }
  | { kind: 'modules-loaded' }
  | { kind: 'firewall-loaded' }
  | { kind: 'lan-up' }
  | { kind: 'wan-up'; address: string }
  | { kind: 'entropy-seeded' }
  | { kind: 'state-disk'; status: 'created' | 'repaired' | 'recreated' | 'ready' | 'in-memory'; detail?: string }
  | { kind: 'tor-started'; pid: number }
  | { kind: 'tor-exited'; code: number }
  | { kind: 'tor-stopped' }
  | { kind: 'shutdown-requested' }
  | { kind: 'shutdown-complete' }
  | { kind: 'fatal'; message: string }
  | { kind: 'warning'; message: string }
  | { kind: 'kernel-panic'; message: string }
  | { kind: 'marker'; text: string };

const PREFIX = 'torvm-guest: ';
const SIMPLE: Record<string, GuestEvent> = {
  'init started': { kind: 'init-started' },
  'modules loaded': { kind: 'modules-loaded' },
  'firewall loaded': { kind: 'firewall-loaded' },
  'lan up': { kind: 'lan-up' },
  'entropy seeded': { kind: 'entropy-seeded' },
  'state disk created': { kind: 'state-disk', status: 'created' },
  'state disk repaired': { kind: 'state-disk', status: 'repaired' },
  'state disk ready': { kind: 'state-disk', status: 'ready' },
  'tor stopped': { kind: 'tor-stopped' },
  'shutdown requested': { kind: 'shutdown-requested' },
  'shutdown complete': { kind: 'shutdown-complete' },
};

/** Returns the event a console line carries, or null for ordinary output. */
export function parseGuestLine(rawLine: string): GuestEvent | null {
  // Kernel lines may carry a "[    1.234] " timestamp; markers may follow other output on the same line.
  const line = rawLine.replace(/\r/g, '');
  const panic = /Kernel panic - not syncing: ?(.*)$/.exec(line);
  if (panic) return { kind: 'kernel-panic', message: (panic[1] ?? '').trim() };
  const at = line.indexOf(PREFIX);
  if (at < 0) return null;
  const text = line.slice(at + PREFIX.length).trim();
  const simple = SIMPLE[text];
  if (simple) return { ...simple };
  let m: RegExpExecArray | null;
  if ((m = /^tor started pid=(\d+)$/.exec(text))) return { kind: 'tor-started', pid: Number(m[1]) };
  if ((m = /^wan up (\d{1,3}(?:\.\d{1,3}){3})$/.exec(text))) return { kind: 'wan-up', address: m[1] ?? '' };
  if ((m = /^tor exited code=(-?\d+)$/.exec(text))) return { kind: 'tor-exited', code: Number(m[1]) };
  if ((m = /^warning: state disk recreated(?: \((.*)\))?$/.exec(text))) return { kind: 'state-disk', status: 'recreated', ...(m[1] ? { detail: m[1] } : {}) };
  if (text === 'warning: no state disk, tor data lives in memory') return { kind: 'state-disk', status: 'in-memory' };
  if ((m = /^fatal: (.*)$/.exec(text))) return { kind: 'fatal', message: m[1] ?? '' };
  if ((m = /^warning: (.*)$/.exec(text))) return { kind: 'warning', message: m[1] ?? '' };
  return { kind: 'marker', text };
}

/**
 * The log level of one serial line: Tor's own `[warn]`/`[err]` (it logs to
 * the serial console), and the kernel's panic; everything else is info.
 */
export function serialLineLevel(line: string): 'info' | 'warn' | 'error' {
  if (/\[err\]|Kernel panic/.test(line)) return 'error';
  if (/\[warn\]/.test(line)) return 'warn';
  return 'info';
}
