/** UDP datagram parsing and building over IPv4 (RFC 768). */
import { finishChecksum, pseudoHeaderSumV4, sumWords } from './checksum.ts';
import { IPPROTO_UDP, writeIpv4Header, type Parsed } from './ipv4.ts';

export interface UdpDatagram {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Uint8Array;
}

/** Parses a UDP datagram from an IPv4 packet; a zero checksum means "none" (IPv4 only). Never throws. */
export function parseUdp(buf: Uint8Array, src: number, dst: number): Parsed<UdpDatagram> {
  if (buf.length < 8) return { ok: false, reason: 'udp: shorter than a header' };
  const length = (buf[4]! << 8) | buf[5]!;
  if (length < 8 || length > buf.length) return { ok: false, reason: 'udp: bad length' };
  const checksum = (buf[6]! << 8) | buf[7]!;
  if (checksum !== 0 && finishChecksum(sumWords(buf, 0, length, pseudoHeaderSumV4(src, dst, IPPROTO_UDP, length))) !== 0) {
    return { ok: false, reason: 'udp: bad checksum' };
  }
  return {
    ok: true,
    value: { srcPort: (buf[0]! << 8) | buf[1]!, dstPort: (buf[2]! << 8) | buf[3]!, payload: buf.subarray(8, length) },
  };
}

/** Builds a complete IPv4+UDP packet with both checksums. */
export function buildUdpPacket(src: number, dst: number, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  const udpLength = 8 + payload.length;
  const out = new Uint8Array(20 + udpLength);
  writeIpv4Header(out, IPPROTO_UDP, src, dst, out.length);
  const u = 20;
  out[u] = srcPort >>> 8;
  out[u + 1] = srcPort & 0xff;
  out[u + 2] = dstPort >>> 8;
  out[u + 3] = dstPort & 0xff;
  out[u + 4] = udpLength >>> 8;
  out[u + 5] = udpLength & 0xff;
  out.set(payload, u + 8);
  let sum = finishChecksum(sumWords(out, u, out.length, pseudoHeaderSumV4(src, dst, IPPROTO_UDP, udpLength)));
  if (sum === 0) sum = 0xffff; // 0 would mean "no checksum"
  out[u + 6] = sum >>> 8;
  out[u + 7] = sum & 0xff;
  return out;
}
