/**
 * The server side of SOCKS5 (RFC 1928) with username/password auth
 * (RFC 1929). PURE: decoders read a growing buffer and say how many bytes
 * they need, the same shape as @torvm/netstack's client-side protocol.
 */
import type { Step } from '@torvm/netstack/socks5-protocol.ts';

export type { Step };

export const SOCKS_VERSION = 5;
export const METHOD_USERNAME_PASSWORD = 2;
export const METHOD_NONE_ACCEPTABLE = 0xff;
export const CMD_CONNECT = 1;

/** Reply codes the gateway itself sends (Tor's own replies are passed through unchanged). */
export const REPLY = {
  generalFailure: 0x01,
  notAllowed: 0x02,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** Client greeting: [5, NMETHODS, METHODS...]. */
export function decodeGreeting(buf: Uint8Array): Step<{ methods: number[] }> {
  if (buf.length < 2) return { need: 2 };
  if (buf[0] !== SOCKS_VERSION) return { error: 'not SOCKS5' };
  const count = buf[1]!;
  if (count === 0) return { error: 'no auth methods offered' };
  if (buf.length < 2 + count) return { need: 2 + count };
  return { value: { methods: [...buf.subarray(2, 2 + count)] }, used: 2 + count };
}

/** RFC 1929 request: [1, ULEN, UNAME, PLEN, PASSWD]. Names are UTF-8; invalid UTF-8 is refused. */
export function decodeAuthRequest(buf: Uint8Array): Step<{ username: string; password: string }> {
  if (buf.length < 2) return { need: 2 };
  if (buf[0] !== 1) return { error: 'bad username/password version' };
  const ulen = buf[1]!;
  if (buf.length < 2 + ulen + 1) return { need: 2 + ulen + 1 };
  const plen = buf[2 + ulen]!;
  const total = 3 + ulen + plen;
  if (buf.length < total) return { need: total };
  if (ulen === 0 || plen === 0) return { error: 'empty username or password' };
  try {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    return {
      value: { username: decoder.decode(buf.subarray(2, 2 + ulen)), password: decoder.decode(buf.subarray(3 + ulen, total)) },
      used: total,
    };
  } catch {
    return { error: 'username or password is not UTF-8' };
  }
}

/** A request: [5, CMD, 0, ATYP, ADDR, PORT]. `raw` is the exact bytes, to be forwarded as they are. */
export interface SocksRequest {
  readonly command: number;
  readonly addressType: 1 | 3 | 4;
  readonly host: string;
  readonly port: number;
  readonly raw: Uint8Array;
}

export function decodeRequest(buf: Uint8Array): Step<SocksRequest> {
  if (buf.length < 5) return { need: 5 };
  if (buf[0] !== SOCKS_VERSION) return { error: 'not SOCKS5' };
  if (buf[2] !== 0) return { error: 'reserved byte is not zero' };
  const atyp = buf[3]!;
  let addressLength: number;
  let addressStart = 4;
  if (atyp === 1) addressLength = 4;
  else if (atyp === 4) addressLength = 16;
  else if (atyp === 3) {
    addressLength = buf[4]!;
    addressStart = 5;
    if (addressLength === 0) return { error: 'empty domain name', code: REPLY.generalFailure };
  } else return { error: `address type ${atyp} not supported`, code: REPLY.addressTypeNotSupported };
  const total = addressStart + addressLength + 2;
  if (buf.length < total) return { need: total };
  const address = buf.subarray(addressStart, addressStart + addressLength);
  let host: string;
  if (atyp === 1) host = [...address].join('.');
  else if (atyp === 4) host = Array.from({ length: 8 }, (_, i) => ((address[2 * i]! << 8) | address[2 * i + 1]!).toString(16)).join(':');
  else host = new TextDecoder().decode(address);
  const port = (buf[total - 2]! << 8) | buf[total - 1]!;
  return { value: { command: buf[1]!, addressType: atyp, host, port, raw: buf.slice(0, total) }, used: total };
}

export const encodeMethodChoice = (method: number): Uint8Array => Uint8Array.of(SOCKS_VERSION, method);
export const encodeAuthStatus = (ok: boolean): Uint8Array => Uint8Array.of(1, ok ? 0 : 1);
/** A failure reply with an all-zero IPv4 bound address. */
export const encodeFailureReply = (code: number): Uint8Array => Uint8Array.of(SOCKS_VERSION, code, 0, 1, 0, 0, 0, 0, 0, 0);
