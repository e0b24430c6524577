/**
 * TCP segment parsing and building (RFC 9293) over IPv4, with the
 * pseudo-header checksum. The options read or written are MSS, window scale
 * (RFC 7323 §2), SACK-permitted and SACK blocks (RFC 2018).
 */
import { finishChecksum, pseudoHeaderSumV4, sumWords } from './checksum.ts';
import { IPPROTO_TCP, readU32, writeIpv4Header, writeU32, type Parsed } from './ipv4.ts';

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;

/** The largest window-scale shift (RFC 7323 §2.3): 2^14 * 65535 < 2^30 keeps sequence space unambiguous. */
export const MAX_WSCALE = 14;

/** SACK blocks that fit in the 40 option bytes next to nothing else: 2 NOPs + 2 + 4 * 8 = 36. */
export const MAX_SACK_BLOCKS = 4;

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
  /** The peer's window-scale shift, when the option is present (SYN segments), clamped to 14 (RFC 7323 §2.3). */
  readonly wscale: number | undefined;
  /** The SACK-permitted option is present (SYN segments). */
  readonly sackPermitted: boolean;
  /** The peer's SACK blocks, [left, right), when the option is present (at most {@link MAX_SACK_BLOCKS}). */
  readonly sack: readonly (readonly [number, number])[] | undefined;
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
  let wscale: number | undefined;
  let sackPermitted = false;
  let sack: [number, number][] | undefined;
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
    else if (kind === 3 && length === 3) wscale = Math.min(buf[i + 2]!, MAX_WSCALE);
    else if (kind === 4 && length === 2) sackPermitted = true;
    else if (kind === 5 && length >= 10 && (length - 2) % 8 === 0) {
      sack = [];
      for (let b = i + 2; b < i + length; b += 8) sack.push([readU32(buf, b), readU32(buf, b + 4)]);
    }
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
      wscale,
      sackPermitted,
      sack,
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
  /** Adds a window-scale option with this shift (SYN-ACK only, and only when the SYN offered one). */
  wscale?: number | undefined;
  /** Adds the SACK-permitted option (SYN-ACK only, and only when the SYN offered it). */
  sackPermitted?: boolean | undefined;
  /** Adds SACK blocks, [left edge, right edge) pairs (RFC 2018 §3); at most {@link MAX_SACK_BLOCKS}. */
  sack?: readonly (readonly [number, number])[] | undefined;
  payload?: Uint8Array | undefined;
  /**
   * Instead of `payload`: `payloadLength` bytes copied from `payloadSource` (starting
   * `payloadOffset` bytes in) straight into the packet, so queued data is copied once.
   */
  payloadSource?: PayloadSource | undefined;
  payloadOffset?: number | undefined;
  payloadLength?: number | undefined;
}

/** Where {@link buildTcpPacket} can copy a payload from (a {@link ByteQueue}, say). */
export interface PayloadSource {
  copyInto(target: Uint8Array, targetOffset: number, offset: number, n: number): void;
}

/** Builds a complete IPv4+TCP packet with both checksums, in one allocation. */
export function buildTcpPacket(spec: TcpSegmentSpec): Uint8Array {
  const sackBlocks = spec.sack?.slice(0, MAX_SACK_BLOCKS) ?? [];
  const optionsLength =
    (spec.mss === undefined ? 0 : 4) +
    (spec.wscale === undefined ? 0 : 4) +
    (spec.sackPermitted ? 4 : 0) +
    (sackBlocks.length > 0 ? 4 + 8 * sackBlocks.length : 0);
  const tcpHeaderLength = 20 + optionsLength;
  const payloadLength = spec.payloadSource ? (spec.payloadLength ?? 0) : (spec.payload?.length ?? 0);
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
  let o = t + 20;
  if (spec.mss !== undefined) {
    out[o] = 2;
    out[o + 1] = 4;
    out[o + 2] = spec.mss >>> 8;
    out[o + 3] = spec.mss & 0xff;
    o += 4;
  }
  if (spec.wscale !== undefined) {
    out[o] = 1; // NOP, so that the option ends on a 32-bit boundary
    out[o + 1] = 3;
    out[o + 2] = 3;
    out[o + 3] = spec.wscale;
    o += 4;
  }
  if (spec.sackPermitted) {
    out[o] = 1;
    out[o + 1] = 1;
    out[o + 2] = 4;
    out[o + 3] = 2;
    o += 4;
  }
  if (sackBlocks.length > 0) {
    out[o] = 1;
    out[o + 1] = 1;
    out[o + 2] = 5;
    out[o + 3] = 2 + 8 * sackBlocks.length;
    o += 4;
    for (const [left, right] of sackBlocks) {
      writeU32(out, o, left >>> 0);
      writeU32(out, o + 4, right >>> 0);
      o += 8;
    }
  }
  if (spec.payloadSource) spec.payloadSource.copyInto(out, t + tcpHeaderLength, spec.payloadOffset ?? 0, payloadLength);
  else if (spec.payload) out.set(spec.payload, t + tcpHeaderLength);
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
