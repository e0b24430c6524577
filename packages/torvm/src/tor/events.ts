/**
 * Typed asynchronous events (control-spec §4.1). Only the events TorVM uses
 * get their own shape; anything else arrives as `UNKNOWN` with its raw text.
 */
import { decodeConfigValue, parseKeywordLine } from './quoting.ts';
import type { ControlMessage } from './reply-parser.ts';

/** Event names the client accepts in SETEVENTS. */
export const TOR_EVENT_NAMES = [
  'STATUS_CLIENT', 'STATUS_GENERAL', 'CIRC', 'STREAM', 'BW', 'NOTICE', 'WARN', 'ERR', 'CONF_CHANGED', 'SIGNAL',
] as const;
export type TorEventName = (typeof TOR_EVENT_NAMES)[number];

/** One relay of a circuit path, from `$FINGERPRINT~nickname` (or the older `$FP=nick`, or a bare nickname). */
export interface CircuitHop {
  fingerprint: string | undefined;
  nickname: string | undefined;
}

/** What `BOOTSTRAP` status lines say, from a STATUS_CLIENT event or `GETINFO status/bootstrap-phase`. */
export interface BootstrapStatus {
  /** NOTICE for progress; WARN (or ERR) for problems. */
  severity: string;
  /** 'progress' for `BOOTSTRAP PROGRESS=..`, 'problem' when WARNING/REASON are present. */
  kind: 'progress' | 'problem';
  progress: number;
  tag: string;
  summary: string;
  /** Problem fields (Tor's own words), present on problems only. */
  warning?: string | undefined;
  reason?: string | undefined;
  recommendation?: string | undefined;
  count?: number | undefined;
  host?: string | undefined;
}

export type TorEvent =
  | { type: 'STATUS_CLIENT' | 'STATUS_GENERAL' | 'STATUS_SERVER'; severity: string; action: string; args: Map<string, string>; bootstrap: BootstrapStatus | undefined; raw: string }
  | { type: 'CIRC'; circuitId: string; status: string; path: CircuitHop[]; purpose: string | undefined; reason: string | undefined; buildFlags: string[]; raw: string }
  | { type: 'STREAM'; streamId: string; status: string; circuitId: string; target: string; reason: string | undefined; raw: string }
  | { type: 'BW'; bytesRead: number; bytesWritten: number; raw: string }
  | { type: 'LOG'; severity: LogSeverity; message: string; raw: string }
  | { type: 'CONF_CHANGED'; changes: Array<{ key: string; value: string | undefined }>; raw: string }
  | { type: 'SIGNAL'; signal: string; raw: string }
  | { type: 'UNKNOWN'; name: string; raw: string };

export type LogSeverity = 'DEBUG' | 'INFO' | 'NOTICE' | 'WARN' | 'ERR';
const LOG_SEVERITIES: ReadonlySet<string> = new Set<LogSeverity>(['DEBUG', 'INFO', 'NOTICE', 'WARN', 'ERR']);

function toInt(text: string | undefined): number {
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/**
 * Parses `SEVERITY BOOTSTRAP PROGRESS=.. TAG=.. SUMMARY=".." [WARNING=".." REASON=.. ...]`,
 * the tail of a STATUS_CLIENT event and the value of `GETINFO status/bootstrap-phase`.
 * Returns undefined for any other status line.
 */
export function parseBootstrapStatus(text: string): BootstrapStatus | undefined {
  const { positional, keywords } = parseKeywordLine(text);
  const [severity, action] = positional;
  if (action !== 'BOOTSTRAP' || severity === undefined) return undefined;
  const isProblem = keywords.has('WARNING') || keywords.has('REASON');
  const status: BootstrapStatus = {
    severity,
    kind: isProblem ? 'problem' : 'progress',
    progress: Math.min(100, toInt(keywords.get('PROGRESS'))),
    tag: keywords.get('TAG') ?? '',
    summary: keywords.get('SUMMARY') ?? '',
  };
  if (isProblem) {
    status.warning = keywords.get('WARNING');
    status.reason = keywords.get('REASON');
    status.recommendation = keywords.get('RECOMMENDATION');
    status.host = keywords.get('HOSTADDR') ?? keywords.get('HOSTID');
    status.count = keywords.has('COUNT') ? toInt(keywords.get('COUNT')) : undefined;
  }
  return status;
}

/** Parses a circuit path such as `$AAAA~alice,$BBBB=bob,carol`. */
export function parseCircuitPath(path: string): CircuitHop[] {
  return path.split(',').filter(Boolean).map((hop) => {
    if (!hop.startsWith('$')) return { fingerprint: undefined, nickname: hop };
    const separator = hop.search(/[~=]/);
    return separator === -1
      ? { fingerprint: hop.slice(1), nickname: undefined }
      : { fingerprint: hop.slice(1, separator), nickname: hop.slice(separator + 1) || undefined };
  });
}

/** Turns an event message (status 650) into a typed event. Never throws. */
export function parseEvent(message: ControlMessage): TorEvent {
  const first = message.lines[0];
  const raw = first?.text ?? '';
  const space = raw.indexOf(' ');
  const name = space === -1 ? raw : raw.slice(0, space);
  const rest = space === -1 ? '' : raw.slice(space + 1);

  if (LOG_SEVERITIES.has(name)) {
    // Single line: "650 NOTICE text". Multi-line: "650+NOTICE" + data block + "650 OK".
    const text = first?.kind === 'data' ? (first.data ?? '') : rest;
    return { type: 'LOG', severity: name as LogSeverity, message: text, raw };
  }

  switch (name) {
    case 'STATUS_CLIENT':
    case 'STATUS_GENERAL':
    case 'STATUS_SERVER': {
      const { positional, keywords } = parseKeywordLine(rest);
      return {
        type: name,
        severity: positional[0] ?? '',
        action: positional[1] ?? '',
        args: keywords,
        bootstrap: parseBootstrapStatus(rest),
        raw,
      };
    }
    case 'CIRC': {
      const { positional, keywords } = parseKeywordLine(rest);
      const pathWord = positional[2];
      return {
        type: 'CIRC',
        circuitId: positional[0] ?? '',
        status: positional[1] ?? '',
        path: pathWord === undefined ? [] : parseCircuitPath(pathWord),
        purpose: keywords.get('PURPOSE'),
        reason: keywords.get('REASON'),
        buildFlags: keywords.get('BUILD_FLAGS')?.split(',').filter(Boolean) ?? [],
        raw,
      };
    }
    case 'STREAM': {
      const { positional, keywords } = parseKeywordLine(rest);
      return {
        type: 'STREAM',
        streamId: positional[0] ?? '',
        status: positional[1] ?? '',
        circuitId: positional[2] ?? '',
        target: positional[3] ?? '',
        reason: keywords.get('REASON'),
        raw,
      };
    }
    case 'BW': {
      const [read, written] = rest.split(' ');
      return { type: 'BW', bytesRead: toInt(read), bytesWritten: toInt(written), raw };
    }
    case 'CONF_CHANGED': {
      // "650-CONF_CHANGED" then one "650-Key=Value" (or "650-Key" when reset) per option, then "650 OK".
      const changes = message.lines.slice(1, -1).map((line) => {
        const eq = line.text.indexOf('=');
        return eq === -1 ? { key: line.text, value: undefined } : { key: line.text.slice(0, eq), value: decodeConfigValue(line.text.slice(eq + 1)) };
      });
      return { type: 'CONF_CHANGED', changes, raw };
    }
    case 'SIGNAL':
      return { type: 'SIGNAL', signal: rest.trim(), raw };
    default:
      return { type: 'UNKNOWN', name, raw };
  }
}
