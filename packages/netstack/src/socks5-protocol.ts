/**
 * SOCKS5 client messages (RFC 1928, RFC 1929 username/password) for CONNECT,
 * with Tor's extended reply codes (tor/doc/socks-extensions.txt). Pure:
 * encoders return bytes, decoders read a growing input buffer and say how many
 * bytes they need.
 */

/** What the client asks the proxy to connect to. A hostname is sent as a domain name (ATYP 3). */
export interface SocksTarget {
  host: string;
  port: number;
}

/** Username/password for RFC 1929; Tor's IsolateSOCKSAuth keys stream isolation on it. */
export interface SocksAuth {
  username: string;
  password: string;
}

const REPLY_MESSAGES: Record<number, string> = {
  0x01: 'general SOCKS server failure',
  0x02: 'connection not allowed by ruleset',
  0x03: 'network unreachable',
  0x04: 'host unreachable',
  0x05: 'connection refused',
  0x06: 'TTL expired',
  0x07: 'command not supported',
  0x08: 'address type not supported',
  // Tor's extended errors (SocksPort ExtendedErrors), for onion services.
  0xf0: 'onion service descriptor can not be found',
  0xf1: 'onion service descriptor is invalid',
  0xf2: 'onion service introduction failed',
  0xf3: 'onion service rendezvous failed',
  0xf4: 'onion service missing client authorization',
  0xf5: 'onion service wrong client authorization',
  0xf6: 'onion service invalid address',
  0xf7: 'onion service introduction timed out',
};

/** The text for a SOCKS5 reply code, including Tor's 0xF0-0xF7. */
export function socksReplyMessage(code: number): string {
  return REPLY_MESSAGES[code] ?? `unknown SOCKS reply 0x${code.toString(16).padStart(2, '0')}`;
}

/** True for Tor's extended (onion service) reply codes. */
export function isTorExtendedReply(code: number): boolean {
  return code >= 0xf0 && code <= 0xf7;
}

/** The greeting: offers "no auth", or only username/password when auth is given (so the proxy must use it). */
export function encodeGreeting(auth: SocksAuth | undefined): Uint8Array {
  return auth ? Uint8Array.of(5, 1, 2) : Uint8Array.of(5, 1, 0);
}

/** RFC 1929 sub-negotiation. Fields are 1-255 bytes of UTF-8. */
export function encodeAuth(auth: SocksAuth): Uint8Array {
  const user = new TextEncoder().encode(auth.username);
  const pass = new TextEncoder().encode(auth.password);
  if (user.length < 1 || user.length > 255 || pass.length < 1 || pass.length > 255) {
    throw new RangeError('SOCKS username and password must each be 1-255 bytes');
  }
  return Uint8Array.of(1, user.length, ...user, pass.length, ...pass);
}

/** The CONNECT request. IPv4 literals go as ATYP 1, everything else as a domain name. */
export function encodeConnect(target: SocksTarget): Uint8Array {
  const port = [target.port >>> 8, target.port & 0xff];
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(target.host);
  if (v4 && v4.slice(1).every((p) => Number(p) <= 255)) {
    return Uint8Array.of(5, 1, 0, 1, ...v4.slice(1).map(Number), ...port);
  }
  const name = new TextEncoder().encode(target.host);
  if (name.length < 1 || name.length > 255) throw new RangeError('SOCKS domain name must be 1-255 bytes');
  return Uint8Array.of(5, 1, 0, 3, name.length, ...name, ...port);
}

/** A decoder step: more bytes needed, a protocol error, or a value and how many bytes it used. */
export type Step<T> = { need: number } | { error: string; code?: number } | { value: T; used: number };

/** Method selection reply: [5, method]. */
export function decodeMethod(buf: Uint8Array, auth: SocksAuth | undefined): Step<number> {
  if (buf.length < 2) return { need: 2 };
  if (buf[0] !== 5) return { error: 'proxy is not SOCKS5' };
  const method = buf[1]!;
  if (method === 0xff) return { error: 'proxy accepted none of the offered auth methods' };
  if (method !== (auth ? 2 : 0)) return { error: `proxy chose auth method ${method}, which was not offered` };
  return { value: method, used: 2 };
}

/** RFC 1929 reply: [1, status]; status 0 = success. */
export function decodeAuthReply(buf: Uint8Array): Step<true> {
  if (buf.length < 2) return { need: 2 };
  if (buf[0] !== 1) return { error: 'bad username/password reply version' };
  if (buf[1] !== 0) return { error: 'proxy rejected the username/password' };
  return { value: true, used: 2 };
}

/** CONNECT reply: [5, rep, 0, atyp, addr..., port]. A non-zero rep is an error carrying the code. */
export function decodeConnectReply(buf: Uint8Array): Step<{ boundAddressLength: number }> {
  if (buf.length < 5) return { need: 5 };
  if (buf[0] !== 5) return { error: 'bad CONNECT reply version' };
  const rep = buf[1]!;
  if (rep !== 0) return { error: socksReplyMessage(rep), code: rep };
  const atyp = buf[3]!;
  let addressLength: number;
  if (atyp === 1) addressLength = 4;
  else if (atyp === 4) addressLength = 16;
  else if (atyp === 3) addressLength = 1 + buf[4]!;
  else return { error: `bad CONNECT reply address type ${atyp}` };
  const total = 4 + addressLength + 2;
  if (buf.length < total) return { need: total };
  return { value: { boundAddressLength: addressLength }, used: total };
}
