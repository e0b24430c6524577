/**
 * IPv6 is black-holed, with fast failure so applications fall back to IPv4 at
 * once instead of waiting for a timeout:
 *   - a TCP SYN gets a TCP RST (connect() fails with ECONNREFUSED);
 *   - a UDP datagram gets ICMPv6 "administratively prohibited" (RFC 4443 §3.1, code 1);
 *   - everything else is dropped silently.
 * Nothing is answered for multicast or unspecified sources/destinations, nor for
 * ICMPv6 itself (no error storms). Extension headers are not walked: a packet
 * whose first next-header is not TCP/UDP is dropped.
 */
import { finishChecksum, pseudoHeaderSumV6, sumWords } from './checksum.ts';
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, readU32, writeU32 } from './ipv4.ts';
import { ACK, RST, SYN } from './tcp-segment.ts';

const HEADER = 40;

/** Returns the packet to send back for an IPv6 packet from the TUN, or undefined to drop it. Never throws. */
export function answerIpv6(packet: Uint8Array): Uint8Array | undefined {
  if (packet.length < HEADER || packet[0]! >> 4 !== 6) return undefined;
  const payloadLength = (packet[4]! << 8) | packet[5]!;
  if (HEADER + payloadLength > packet.length) return undefined;
  const nextHeader = packet[6]!;
  const src = packet.subarray(8, 24);
  const dst = packet.subarray(24, 40);
  if (src[0] === 0xff || dst[0] === 0xff || src.every((b) => b === 0)) return undefined;
  const payload = packet.subarray(HEADER, HEADER + payloadLength);
  if (nextHeader === IPPROTO_TCP) {
    if (payload.length < 20) return undefined;
    const flags = payload[13]!;
    if ((flags & (SYN | ACK | RST)) !== SYN) return undefined;
    const dataOffset = (payload[12]! >> 4) * 4;
    const segmentLength = Math.max(0, payload.length - dataOffset) + 1;
    const rst = new Uint8Array(20);
    rst.set(payload.subarray(2, 4), 0); // swap the ports
    rst.set(payload.subarray(0, 2), 2);
    writeU32(rst, 8, (readU32(payload, 4) + segmentLength) >>> 0);
    rst[12] = 5 << 4;
    rst[13] = RST | ACK;
    return buildIpv6(dst, src, IPPROTO_TCP, rst, 16);
  }
  if (nextHeader === IPPROTO_UDP) {
    // Destination unreachable, code 1, quoting as much of the packet as fits in 1280 bytes.
    const quoted = packet.subarray(0, Math.min(packet.length, 1280 - HEADER - 8));
    const icmp = new Uint8Array(8 + quoted.length);
    icmp[0] = 1;
    icmp[1] = 1;
    icmp.set(quoted, 8);
    return buildIpv6(dst, src, IPPROTO_ICMPV6, icmp, 2);
  }
  return undefined;
}

function buildIpv6(src: Uint8Array, dst: Uint8Array, nextHeader: number, payload: Uint8Array, checksumOffset: number): Uint8Array {
  const out = new Uint8Array(HEADER + payload.length);
  out[0] = 0x60;
  out[4] = payload.length >>> 8;
  out[5] = payload.length & 0xff;
  out[6] = nextHeader;
  out[7] = 64;
  out.set(src, 8);
  out.set(dst, 24);
  out.set(payload, HEADER);
  const sum = finishChecksum(sumWords(out, HEADER, out.length, pseudoHeaderSumV6(src, dst, nextHeader, payload.length)));
  out[HEADER + checksumOffset] = sum >>> 8;
  out[HEADER + checksumOffset + 1] = sum & 0xff;
  return out;
}
