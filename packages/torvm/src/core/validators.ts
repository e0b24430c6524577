/**
 * Strict whitelists for every value that ends up in torrc, on the kernel
 * command line, in a QEMU argument or in a command argv. Each validator
 * returns an error message (string) or null; zod schemas in config.ts wrap
 * them, and renderers call them again before writing (defence in depth).
 */

/** Characters that must never appear in any rendered field. */
const CONTROL = /[\u0000-\u001f\u007f]/;

export function checkNoControl(value: string): string | null {
  return CONTROL.test(value) ? 'must not contain control characters (newline, NUL, tab, …)' : null;
}

/** Linux interface names: IFNAMSIZ-1 characters, a safe alphabet. */
export function checkInterfaceName(value: string): string | null {
  return /^[a-z][a-z0-9_-]{0,14}$/.test(value)
    ? null
    : 'must be 1–15 characters of a–z, 0–9, "_" or "-", starting with a letter';
}

/** Absolute paths without anything QEMU or a config parser could split on. */
export function checkAbsolutePath(value: string): string | null {
  if (checkNoControl(value)) return 'must not contain newlines, NUL or other control characters';
  if (value.includes(',')) return 'must not contain a comma (QEMU splits options on commas)';
  if (!value.startsWith('/')) return 'must be an absolute path';
  if (value.length > 1024) return 'must be at most 1024 characters';
  if (/[\s"'#\\]/.test(value)) return 'must not contain whitespace, quotes, "#" or backslashes';
  if (value.split('/').includes('..')) return 'must not contain ".." components';
  return null;
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function isIPv6(value: string): boolean {
  if (!/^[0-9A-Fa-f:.]{2,45}$/.test(value) || !value.includes(':')) return false;
  try {
    // The WHATWG URL parser implements the full IPv6 grammar.
    return new URL(`http://[${value}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

export function checkIPv4(value: string): string | null {
  // Dotted quads only; leading zeros are refused (octal ambiguity).
  if (!IPV4.test(value)) {
    return 'must be an IPv4 address like 192.0.2.1';
  }
  return null;
}

export function checkIPv4Cidr(value: string): string | null {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(value);
  if (!m || checkIPv4(m[1] ?? '') || Number(m[2]) > 32) return 'must be an IPv4 CIDR like 192.168.1.0/24';
  return null;
}

export function checkPort(value: number): string | null {
  return Number.isInteger(value) && value >= 1 && value <= 65535 ? null : 'must be a port number 1–65535';
}

/** A relay fingerprint: 40 hex digits, optionally with a leading "$". */
export function checkFingerprint(value: string): string | null {
  return /^\$?[0-9A-Fa-f]{40}$/.test(value) ? null : 'must be a relay fingerprint of 40 hex digits (optionally prefixed with "$")';
}

/** ISO 3166-1 alpha-2 country code, as Tor writes it in node lists: {de}. */
export function checkCountryCode(value: string): string | null {
  return /^\{[a-z]{2}\}$/.test(value) ? null : 'must be a two-letter country code in braces, like {de}';
}

/** A node in ExitNodes/EntryNodes/ExcludeNodes: a fingerprint or a country. */
export function checkNodeSpec(value: string): string | null {
  return checkFingerprint(value) === null || checkCountryCode(value) === null
    ? null
    : 'must be a relay fingerprint ($ + 40 hex digits) or a country code like {de}';
}

/** A DNS hostname (for proxies): LDH labels, at most 253 characters. */
export function checkHostname(value: string): string | null {
  if (checkIPv4(value) === null) return null;
  if (value.length > 253) return 'must be at most 253 characters';
  const label = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
  return value.split('.').every((l) => label.test(l)) ? null : 'must be an IPv4 address or a hostname of letters, digits, "-" and "."';
}

/**
 * Proxy user names and passwords. Tor takes them raw into torrc lines
 * (Socks5ProxyUsername, HTTPSProxyAuthenticator user:pass), 1–255 bytes.
 * We allow printable ASCII except space, quotes, backslash and "#", so the
 * value can never end a directive or start a comment.
 */
export function checkCredential(value: string, field: 'username' | 'password'): string | null {
  if (value.length < 1 || value.length > 255) return 'must be 1–255 characters';
  if (!/^[\x21-\x7e]+$/.test(value)) return 'must be printable ASCII without spaces';
  if (/["'\\#]/.test(value)) return 'must not contain quotes, backslashes or "#"';
  // HTTPSProxyAuthenticator is "user:pass": a ":" in the user name would shift the split.
  if (field === 'username' && value.includes(':')) return 'must not contain ":"';
  return null;
}

/** Parses "IPv4:port" or "[IPv6]:port". */
export function parseHostPort(value: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(value);
  if (!m) return null;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (m[1] !== undefined ? !isIPv6(host) : checkIPv4(host) !== null) return null;
  if (checkPort(port) !== null) return null;
  return { host, port };
}
