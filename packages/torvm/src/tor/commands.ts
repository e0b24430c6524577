/**
 * Pure rendering of control commands and interpretation of their replies.
 * Every renderer validates its inputs first (see quoting.ts), so a command
 * line that leaves here is exactly one line.
 */
import { TorvmError } from '../core/errors.ts';
import { TOR_EVENT_NAMES, type TorEventName } from './events.ts';
import { assertConfigKey, assertInfoKey, decodeConfigValue, parseKeywordLine, quoteString } from './quoting.ts';
import { describeReply, type ControlMessage } from './reply-parser.ts';

/** Signals the client may send (control-spec §3.7). */
export const TOR_SIGNALS = ['RELOAD', 'SHUTDOWN', 'HALT', 'NEWNYM', 'CLEARDNSCACHE', 'HEARTBEAT', 'ACTIVE', 'DORMANT', 'DUMP', 'DEBUG'] as const;
export type TorSignal = (typeof TOR_SIGNALS)[number];

/**
 * Options to set: a value, several values (repeated options such as `Bridge`),
 * or `null` / `[]` for "back to Tor's default".
 */
export type ConfEntries = Readonly<Record<string, string | readonly string[] | null>>;

/** What PROTOCOLINFO told us. */
export interface ProtocolInfo {
  authMethods: string[];
  torVersion: string | undefined;
}

function nonEmpty<T>(items: readonly T[], what: string): void {
  if (items.length === 0) throw new TorvmError('ERR_INTERNAL', `${what} needs at least one item`);
}

function renderConfAssignments(entries: ConfEntries): string {
  const words: string[] = [];
  for (const [key, value] of Object.entries(entries)) {
    assertConfigKey(key);
    const values = value === null ? [] : typeof value === 'string' ? [value] : value;
    if (values.length === 0) words.push(key);
    for (const v of values) words.push(`${key}=${quoteString(v, `value of ${key}`)}`);
  }
  nonEmpty(words, 'a configuration change');
  return words.join(' ');
}

/** `AUTHENTICATE "password"` (the password is always quoted). */
export function renderAuthenticate(password: string): string {
  return `AUTHENTICATE ${quoteString(password, 'the control password')}`;
}

/** `GETINFO k1 k2 ...` */
export function renderGetInfo(keys: readonly string[]): string {
  nonEmpty(keys, 'GETINFO');
  keys.forEach(assertInfoKey);
  return `GETINFO ${keys.join(' ')}`;
}

/** `GETCONF K1 K2 ...` */
export function renderGetConf(keys: readonly string[]): string {
  nonEmpty(keys, 'GETCONF');
  keys.forEach(assertConfigKey);
  return `GETCONF ${keys.join(' ')}`;
}

/** `SETCONF K="v" K2="a" K2="b" K3` (values always quoted; null or [] resets K3). */
export function renderSetConf(entries: ConfEntries): string {
  return `SETCONF ${renderConfAssignments(entries)}`;
}

/** `RESETCONF K K2="v"`: like SETCONF, but a key without a value goes back to its default. */
export function renderResetConf(entries: ConfEntries | readonly string[]): string {
  const asEntries: ConfEntries = Array.isArray(entries)
    ? Object.fromEntries((entries as readonly string[]).map((key) => [key, null]))
    : (entries as ConfEntries);
  return `RESETCONF ${renderConfAssignments(asEntries)}`;
}

/** `SETEVENTS E1 E2` (an empty list turns every event off). */
export function renderSetEvents(events: readonly TorEventName[]): string {
  for (const event of events) {
    if (!(TOR_EVENT_NAMES as readonly string[]).includes(event)) {
      throw new TorvmError('ERR_UNSAFE_VALUE', `unknown Tor event: ${JSON.stringify(String(event).slice(0, 32))}`);
    }
  }
  return ['SETEVENTS', ...new Set(events)].join(' ');
}

/** `SIGNAL NAME` */
export function renderSignal(signal: TorSignal): string {
  if (!(TOR_SIGNALS as readonly string[]).includes(signal)) {
    throw new TorvmError('ERR_UNSAFE_VALUE', `unknown Tor signal: ${JSON.stringify(String(signal).slice(0, 32))}`);
  }
  return `SIGNAL ${signal}`;
}

/** True for a 2xx reply. */
export function isSuccess(message: ControlMessage): boolean {
  return message.status >= 200 && message.status < 300;
}

/** The key=value pairs of a GETINFO reply; data-block values keep their line breaks (`\n`). */
export function parseGetInfoReply(message: ControlMessage): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of message.lines) {
    if (line.kind === 'end') continue;
    const eq = line.text.indexOf('=');
    if (eq === -1) continue;
    values.set(line.text.slice(0, eq), line.kind === 'data' ? (line.data ?? '') : line.text.slice(eq + 1));
  }
  return values;
}

/**
 * The values of a GETCONF reply, per key, in Tor's order. A key Tor lists
 * without a value (unset / default) maps to `[]`. Tor quotes a value only when
 * it must (it starts with `"` or holds unprintable bytes); those are unquoted.
 */
export function parseGetConfReply(message: ControlMessage): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const line of message.lines) {
    const eq = line.text.indexOf('=');
    const key = eq === -1 ? line.text : line.text.slice(0, eq);
    if (!key) continue;
    const list = values.get(key) ?? [];
    values.set(key, list);
    if (eq === -1) continue;
    const rawValue = line.kind === 'data' ? (line.data ?? '') : line.text.slice(eq + 1);
    list.push(decodeConfigValue(rawValue));
  }
  return values;
}

/** Reads `PROTOCOLINFO 1` replies: `AUTH METHODS=...` and `VERSION Tor="..."`. */
export function parseProtocolInfo(message: ControlMessage): ProtocolInfo {
  let authMethods: string[] = [];
  let torVersion: string | undefined;
  for (const line of message.lines) {
    if (line.text.startsWith('AUTH ')) {
      authMethods = parseKeywordLine(line.text.slice(5)).keywords.get('METHODS')?.split(',').filter(Boolean) ?? [];
    } else if (line.text.startsWith('VERSION ')) {
      torVersion = parseKeywordLine(line.text.slice(8)).keywords.get('Tor');
    }
  }
  return { authMethods, torVersion };
}

/** Builds the error for a failed reply; `keyword` is the command name only (arguments may be secret). */
export function replyError(keyword: string, message: ControlMessage): TorvmError {
  return new TorvmError('ERR_TOR_CONTROL', `Tor refused ${keyword}: ${describeReply(message)}`, {
    details: { command: keyword, status: message.status, reply: describeReply(message) },
  });
}
