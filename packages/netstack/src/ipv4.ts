/**
 * IPv4 header parsing and building (RFC 791). Addresses are uint32 numbers in
 * host order (10.0.0.1 = 0x0a000001) on the hot path; strings only at edges.
 */
import { internetChecksum } from './checksum.ts';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

/** A parsed IPv4 packet. `payload` is a view into the input, cut at `totalLength`. */
export interface Ipv4Packet {
  readonly headerLength: number;
  readonly totalLength: number;
  readonly id: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly src: number;
  readonly dst: number;
  /** True for any fragment (MF set or a non-zero offset): the stack drops these. */
  readonly isFragment: boolean;
  readonly payload: Uint8Array;
}

/** A parse result: the value, or why the input was dropped. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Parses and validates an IPv4 packet: version, lengths, header checksum. Never throws. */
export function parseIpv4(buf: Uint8Array): Parsed<Ipv4Packet> {
  if (buf.length < 20) return { ok: false, reason: 'ipv4: shorter than a header' };
  const b0 = buf[0]!;
  if (b0 >> 4 !== 4) return { ok: false, reason: 'ipv4: version is not 4' };
  const headerLength = (b0 & 0x0f) * 4;
  if (headerLength < 20) return { ok: false, reason: 'ipv4: IHL below 5' };
  const totalLength = (buf[2]! << 8) | buf[3]!;
  if (totalLength < headerLength || totalLength > buf.length) return { ok: false, reason: 'ipv4: bad total length' };
  if (internetChecksum(buf, 0, headerLength) !== 0) return { ok: false, reason: 'ipv4: bad header checksum' };
  const flagsAndOffset = (buf[6]! << 8) | buf[7]!;
  return {
    ok: true,
    value: {
      headerLength,
      totalLength,
      id: (buf[4]! << 8) | buf[5]!,
      ttl: buf[8]!,
      protocol: buf[9]!,
      src: readU32(buf, 12),
      dst: readU32(buf, 16),
      isFragment: (flagsAndOffset & 0x3fff) !== 0,
      payload: buf.subarray(headerLength, totalLength),
    },
  };
}

/**
 * Writes a 20-byte IPv4 header (DF set, no options) at out[0..20) for a packet
 * of `totalLength` bytes, with its checksum.
 */
export function writeIpv4Header(out: Uint8Array, protocol: number, src: number, dst: number, totalLength: number, ttl = 64, id = 0): void {
  out[0] = 0x45;
  out[1] = 0;
  out[2] = totalLength >>> 8;
  out[3] = totalLength & 0xff;
  out[4] = (id >>> 8) & 0xff;
  out[5] = id & 0xff;
  out[6] = 0x40; // DF: the stack never fragments and never reassembles
  out[7] = 0;
  out[8] = ttl;
  out[9] = protocol;
  out[10] = 0;
  out[11] = 0;
  writeU32(out, 12, src);
  writeU32(out, 16, dst);
  const sum = internetChecksum(out, 0, 20);
  out[10] = sum >>> 8;
  out[11] = sum & 0xff;
}

/** Builds a complete IPv4 packet around an already-final payload (e.g. ICMP). */
export function buildIpv4(protocol: number, src: number, dst: number, payload: Uint8Array, ttl = 64): Uint8Array {
  const out = new Uint8Array(20 + payload.length);
  writeIpv4Header(out, protocol, src, dst, out.length, ttl);
  out.set(payload, 20);
  return out;
}

export function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

export function writeU32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 24;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
}

/** "10.0.0.1" -> 0x0a000001. Throws on anything that is not a dotted quad. */
export function ipv4FromString(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) throw new RangeError(`not an IPv4 address: ${text}`);
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) throw new RangeError(`not an IPv4 address: ${text}`);
    value = value * 256 + Number(part);
  }
  return value >>> 0;
}

/** 0x0a000001 -> "10.0.0.1". */
export function ipv4ToString(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}
