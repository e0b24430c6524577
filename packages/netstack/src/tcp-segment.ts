/**
 * TCP segment parsing and building (RFC 9293) over IPv4, with the
 * pseudo-header checksum. Only the MSS option is read or written: a local TUN
 * link needs neither window scaling nor SACK (see README.md).
 */
import { finishChecksum, pseudoHeaderSumV4, sumWords } from './checksum.ts';
import { IPPROTO_TCP, readU32, writeIpv4Header, writeU32, type Parsed } from './ipv4.ts';

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;

/** A parsed TCP segment. `payload` is a view into the input. */
export interface TcpSegment {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly window: number;
  /** The peer's MSS option, when present (SYN segments). */
  readonly mss: number | undefined;
  readonly payload: Uint8Array;
}

/**
 * Parses a TCP segment carried in an IPv4 packet from src to dst and checks
 * its checksum. Never throws; option parsing is bounded by the header length.
 */
export function parseTcp(buf: Uint8Array, src: number, dst: number): Parsed<TcpSegment> {
  if (buf.length < 20) return { ok: false, reason: 'tcp: shorter than a header' };
  const headerLength = (buf[12]! >> 4) * 4;
  if (headerLength < 20 || headerLength > buf.length) return { ok: false, reason: 'tcp: bad data offset' };
  const sum = sumWords(buf, 0, buf.length, pseudoHeaderSumV4(src, dst, IPPROTO_TCP, buf.length));
  if (finishChecksum(sum) !== 0) return { ok: false, reason: 'tcp: bad checksum' };
  let mss: number | undefined;
  for (let i = 20; i < headerLength; ) {
    const kind = buf[i]!;
    if (kind === 0) break; // end of options
    if (kind === 1) {
      i += 1; // no-op
      continue;
    }
    if (i + 1 >= headerLength) break;
    const length = buf[i + 1]!;
    if (length < 2 || i + length > headerLength) break; // malformed: stop reading options
    if (kind === 2 && length === 4) mss = (buf[i + 2]! << 8) | buf[i + 3]!;
    i += length;
  }
  return {
    ok: true,
    value: {
      srcPort: (buf[0]! << 8) | buf[1]!,
      dstPort: (buf[2]! << 8) | buf[3]!,
      seq: readU32(buf, 4),
      ack: readU32(buf, 8),
      flags: buf[13]! & 0x3f,
      window: (buf[14]! << 8) | buf[15]!,
      mss,
      payload: buf.subarray(headerLength),
    },
  };
}

/** What {@link buildTcpPacket} puts on the wire. */
export interface TcpSegmentSpec {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** Adds an MSS option (SYN-ACK only). */
  mss?: number | undefined;
  payload?: Uint8Array | undefined;
}

/** Builds a complete IPv4+TCP packet with both checksums, in one allocation. */
export function buildTcpPacket(spec: TcpSegmentSpec): Uint8Array {
  const optionsLength = spec.mss === undefined ? 0 : 4;
  const tcpHeaderLength = 20 + optionsLength;
  const payloadLength = spec.payload?.length ?? 0;
  const tcpLength = tcpHeaderLength + payloadLength;
  const out = new Uint8Array(20 + tcpLength);
  writeIpv4Header(out, IPPROTO_TCP, spec.src, spec.dst, out.length);
  const t = 20;
  out[t] = spec.srcPort >>> 8;
  out[t + 1] = spec.srcPort & 0xff;
  out[t + 2] = spec.dstPort >>> 8;
  out[t + 3] = spec.dstPort & 0xff;
  writeU32(out, t + 4, spec.seq >>> 0);
  writeU32(out, t + 8, spec.ack >>> 0);
  out[t + 12] = (tcpHeaderLength / 4) << 4;
  out[t + 13] = spec.flags;
  out[t + 14] = spec.window >>> 8;
  out[t + 15] = spec.window & 0xff;
  if (spec.mss !== undefined) {
    out[t + 20] = 2;
    out[t + 21] = 4;
    out[t + 22] = spec.mss >>> 8;
    out[t + 23] = spec.mss & 0xff;
  }
  if (spec.payload) out.set(spec.payload, t + tcpHeaderLength);
  const sum = finishChecksum(sumWords(out, t, out.length, pseudoHeaderSumV4(spec.src, spec.dst, IPPROTO_TCP, tcpLength)));
  out[t + 16] = sum >>> 8;
  out[t + 17] = sum & 0xff;
  return out;
}

/** Sequence-number comparisons modulo 2^32 (RFC 9293 §3.4). */
export const seq = {
  lt: (a: number, b: number): boolean => ((a - b) | 0) < 0,
  le: (a: number, b: number): boolean => ((a - b) | 0) <= 0,
  gt: (a: number, b: number): boolean => ((a - b) | 0) > 0,
  ge: (a: number, b: number): boolean => ((a - b) | 0) >= 0,
  add: (a: number, n: number): number => (a + n) >>> 0,
  /** b - a as a signed distance. */
  diff: (a: number, b: number): number => (b - a) | 0,
};
