/**
 * Quoting and tokenizing for Tor's control protocol (control-spec §2.1).
 *
 * Everything the client writes goes through these guards: a value holding CR,
 * LF or NUL (or any other control character but TAB) is refused before a byte
 * is written, so a hostile bridge line or password can never end the current
 * command and start another one.
 */
import { TorvmError } from '../core/errors.ts';

// C0 controls except TAB, and DEL. CR, LF and NUL are the injection risk;
// the rest have no business in a config value either.
const FORBIDDEN_CONTROL_CHARS = /[\x00-\x08\x0a-\x1f\x7f]/;
const CONFIG_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
// GETINFO keys look like `status/bootstrap-phase` or `ns/id/$FP`: printable, no space, no quote.
const INFO_KEY = /^[!#-~]+$/;

function describeForbidden(value: string): string {
  const found = FORBIDDEN_CONTROL_CHARS.exec(value)?.[0] ?? '';
  return `U+${found.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`;
}

/**
 * Throws ERR_UNSAFE_VALUE when `value` holds CR, LF, NUL or another control
 * character other than TAB. `what` names the field in the message (never the value).
 */
export function assertSafeValue(value: string, what: string): void {
  if (FORBIDDEN_CONTROL_CHARS.test(value)) {
    throw new TorvmError('ERR_UNSAFE_VALUE', `${what} contains a control character (${describeForbidden(value)}) and cannot be sent to Tor`, {
      hint: 'Remove line breaks and control characters from the value.',
    });
  }
}

/** Throws ERR_UNSAFE_VALUE unless `key` is a plain Tor option name such as `Bridge` or `__OwningControllerProcess`. */
export function assertConfigKey(key: string): void {
  if (!CONFIG_KEY.test(key)) {
    throw new TorvmError('ERR_UNSAFE_VALUE', `not a Tor option name: ${JSON.stringify(key.slice(0, 64))}`);
  }
}

/** Throws ERR_UNSAFE_VALUE unless `key` is a GETINFO key (printable ASCII, no space or quote). */
export function assertInfoKey(key: string): void {
  if (!INFO_KEY.test(key)) {
    throw new TorvmError('ERR_UNSAFE_VALUE', `not a GETINFO key: ${JSON.stringify(key.slice(0, 64))}`);
  }
}

/**
 * Renders `value` as a control-protocol QuotedString: `"` + value with `\` and
 * `"` backslash-escaped and TAB written as `\t` + `"`. Refuses unsafe values.
 */
export function quoteString(value: string, what = 'value'): string {
  assertSafeValue(value, what);
  return `"${value.replace(/[\\"\t]/g, (c) => (c === '\t' ? '\\t' : `\\${c}`))}"`;
}

const SIMPLE_ESCAPES: Readonly<Partial<Record<string, number>>> = { n: 0x0a, r: 0x0d, t: 0x09, '\\': 0x5c, '"': 0x22, "'": 0x27 };

/**
 * Parses the QuotedString that starts at `text[start]` (which must be `"`).
 * Understands the C escapes Tor writes (`\n \r \t \\ \" \'`, octal `\NNN`,
 * hex `\xHH`); escaped bytes are reassembled and decoded as UTF-8, so
 * `"h\303\251"` becomes `hé`. Returns the value and the index after the
 * closing quote. Throws ERR_TOR_CONTROL when the quote is never closed.
 */
export function unquoteString(text: string, start = 0): { value: string; end: number } {
  if (text[start] !== '"') throw protocolError('expected a quoted string');
  // Escapes may spell out the bytes of one UTF-8 character, so collect bytes and decode once.
  const parts: Buffer[] = [];
  let literal = '';
  const flushLiteral = (): void => {
    if (literal) parts.push(Buffer.from(literal, 'utf8'));
    literal = '';
  };
  let i = start + 1;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') {
      flushLiteral();
      return { value: Buffer.concat(parts).toString('utf8'), end: i + 1 };
    }
    if (c !== '\\') {
      literal += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === undefined) break;
    flushLiteral();
    const octal = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4))?.[0];
    const hex = next === 'x' ? /^[0-9A-Fa-f]{2}/.exec(text.slice(i + 2, i + 4))?.[0] : undefined;
    if (octal) {
      parts.push(Buffer.of(parseInt(octal, 8) & 0xff));
      i += 1 + octal.length;
    } else if (hex) {
      parts.push(Buffer.of(parseInt(hex, 16)));
      i += 4;
    } else {
      // Unknown escapes keep the escaped character, as most C unescapers do.
      const simple = SIMPLE_ESCAPES[next];
      parts.push(simple === undefined ? Buffer.from(next, 'utf8') : Buffer.of(simple));
      i += 2;
    }
  }
  throw protocolError('unterminated quoted string');
}

/**
 * Decodes an option value as GETCONF and CONF_CHANGED print it: Tor quotes a
 * value only when it must (it starts with `"` or holds unprintable bytes),
 * otherwise it is sent raw.
 */
export function decodeConfigValue(rawValue: string): string {
  if (!rawValue.startsWith('"')) return rawValue;
  try {
    const { value, end } = unquoteString(rawValue);
    return end === rawValue.length ? value : rawValue;
  } catch {
    return rawValue;
  }
}

/** The positional arguments and `KEY=VALUE` pairs of one reply or event line. */
export interface KeywordLine {
  positional: string[];
  keywords: Map<string, string>;
}

const KEYWORD_START = /^[A-Za-z0-9_]+=/;

/**
 * Splits `a b KEY=value KEY2="quoted value"` into positional words and keyword
 * values (QuotedStrings unescaped). Positional words may also be quoted.
 * Words such as `$FP=nick` (not starting with a keyword character) stay positional.
 */
export function parseKeywordLine(text: string): KeywordLine {
  const positional: string[] = [];
  const keywords = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    if (text[i] === ' ') {
      i++;
      continue;
    }
    const rest = text.slice(i);
    const keyMatch = KEYWORD_START.exec(rest);
    if (keyMatch) {
      const key = keyMatch[0].slice(0, -1);
      const valueStart = i + keyMatch[0].length;
      const { value, end } = readWord(text, valueStart);
      keywords.set(key, value);
      i = end;
    } else {
      const { value, end } = readWord(text, i);
      positional.push(value);
      i = end;
    }
  }
  return { positional, keywords };
}

function readWord(text: string, start: number): { value: string; end: number } {
  if (text[start] === '"') {
    try {
      return unquoteString(text, start);
    } catch {
      // A stray quote in a free-form word: take the word as it is.
    }
  }
  const space = text.indexOf(' ', start);
  const end = space === -1 ? text.length : space;
  return { value: text.slice(start, end), end };
}

function protocolError(message: string): TorvmError {
  return new TorvmError('ERR_TOR_CONTROL', `Tor control protocol: ${message}`);
}
