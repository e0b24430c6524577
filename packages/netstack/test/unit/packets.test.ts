// Checksums against known vectors, and parser/builder round trips.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { internetChecksum, pseudoHeaderSumV4, sumWords, finishChecksum } from '../../src/checksum.ts';
import { IPPROTO_TCP, buildIpv4, ipv4FromString, ipv4ToString, parseIpv4 } from '../../src/ipv4.ts';
import { answerIpv6 } from '../../src/ipv6-blackhole.ts';
import { ACK, PSH, RST, SYN, buildTcpPacket, parseTcp, seq } from '../../src/tcp-segment.ts';
import { buildUdpPacket, parseUdp } from '../../src/udp.ts';
import { ByteQueue } from '../../src/byte-queue.ts';

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));

/** The checksum by the book: 16-bit words, end-around carry, complement. Independent of src/. */
function referenceChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

/** Recomputes the TCP checksum (addresses 1 -> 2, as these tests use) after a test edited the segment by hand. */
function refreshChecksum(tcp: Uint8Array): void {
  tcp[16] = 0;
  tcp[17] = 0;
  const sum = finishChecksum(sumWords(tcp, 0, tcp.length, pseudoHeaderSumV4(1, 2, 6, tcp.length)));
  tcp[16] = sum >> 8;
  tcp[17] = sum & 0xff;
}

describe('Internet checksum', () => {
  it('matches the RFC 1071 §3 example', () => {
    // 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (one's complement); the checksum is its complement.
    assert.equal(internetChecksum(hex('0001f203f4f5f6f7')), ~0xddf2 & 0xffff);
  });

  it('matches a known IPv4 header (checksum b861)', () => {
    const header = hex('45000073 00004000 40110000 c0a80001 c0a800c7');
    assert.equal(internetChecksum(header), 0xb861);
    header[10] = 0xb8;
    header[11] = 0x61;
    assert.equal(internetChecksum(header), 0, 'a header with its checksum sums to zero');
  });

  it('pads an odd length with a zero byte', () => {
    assert.equal(internetChecksum(hex('0102 03')), referenceChecksum(hex('0102 0300')));
  });

  it('agrees with the reference for random data of every length up to 2000', () => {
    for (let length = 0; length <= 2000; length += 7) {
      const data = Uint8Array.from({ length }, (_, i) => (i * 131 + length) & 0xff);
      assert.equal(internetChecksum(data), referenceChecksum(data), `length ${length}`);
    }
  });

  it('computes the TCP checksum over the IPv4 pseudo-header', () => {
    const packet = buildTcpPacket({
      src: ipv4FromString('10.0.0.2'), dst: ipv4FromString('10.0.0.1'), srcPort: 1234, dstPort: 80,
      seq: 1, ack: 2, flags: ACK | PSH, window: 1000, payload: hex('48656c6c6f'),
    });
    const tcp = packet.subarray(20);
    const pseudo = hex('0a000002 0a000001 0006') ;
    const withPseudo = new Uint8Array(pseudo.length + 2 + tcp.length);
    withPseudo.set(pseudo);
    withPseudo.set([tcp.length >> 8, tcp.length & 0xff], pseudo.length);
    withPseudo.set(tcp, pseudo.length + 2);
    assert.equal(referenceChecksum(withPseudo), 0, 'the reference sum over pseudo-header + segment is zero');
    assert.equal(finishChecksum(sumWords(tcp, 0, tcp.length, pseudoHeaderSumV4(0x0a000002, 0x0a000001, 6, tcp.length))), 0);
  });
});

describe('IPv4', () => {
  it('round-trips addresses', () => {
    assert.equal(ipv4FromString('198.18.0.1'), 0xc6120001);
    assert.equal(ipv4ToString(0xc6120001), '198.18.0.1');
    assert.throws(() => ipv4FromString('1.2.3.256'));
    assert.throws(() => ipv4FromString('1.2.3'));
  });

  it('builds and parses a packet', () => {
    const packet = buildIpv4(99, 0x01020304, 0x05060708, hex('aabbcc'));
    const parsed = parseIpv4(packet);
    assert.ok(parsed.ok);
    assert.equal(parsed.value.protocol, 99);
    assert.equal(parsed.value.src, 0x01020304);
    assert.equal(parsed.value.dst, 0x05060708);
    assert.deepEqual([...parsed.value.payload], [0xaa, 0xbb, 0xcc]);
    assert.equal(parsed.value.isFragment, false);
  });

  it('ignores trailing padding beyond the total length', () => {
    const packet = buildIpv4(99, 1, 2, hex('aa'));
    const padded = new Uint8Array(packet.length + 10);
    padded.set(packet);
    const parsed = parseIpv4(padded);
    assert.ok(parsed.ok && parsed.value.payload.length === 1);
  });

  it('rejects bad checksums, bad lengths and wrong versions', () => {
    const packet = buildIpv4(99, 1, 2, hex('aa'));
    const corrupt = Uint8Array.from(packet);
    corrupt[8] = corrupt[8]! ^ 1;
    assert.deepEqual(parseIpv4(corrupt), { ok: false, reason: 'ipv4: bad header checksum' });
    assert.equal(parseIpv4(packet.subarray(0, 19)).ok, false);
    assert.equal(parseIpv4(packet.subarray(0, 20)).ok, false, 'total length beyond the buffer');
    const v6 = Uint8Array.from(packet);
    v6[0] = 0x65;
    assert.equal(parseIpv4(v6).ok, false);
  });

  it('flags fragments (MF or offset)', () => {
    for (const [b6, b7] of [[0x20, 0], [0, 1], [0x20, 0x10]] as const) {
      const packet = buildIpv4(99, 1, 2, hex('aa'));
      packet[6] = b6;
      packet[7] = b7;
      packet[10] = 0;
      packet[11] = 0;
      const sum = internetChecksum(packet, 0, 20);
      packet[10] = sum >> 8;
      packet[11] = sum & 0xff;
      const parsed = parseIpv4(packet);
      assert.ok(parsed.ok && parsed.value.isFragment);
    }
  });
});

describe('TCP and UDP', () => {
  it('round-trips a TCP segment with the MSS option', () => {
    const packet = buildTcpPacket({ src: 1, dst: 2, srcPort: 80, dstPort: 40000, seq: 0xfffffff0, ack: 5, flags: SYN | ACK, window: 29200, mss: 1400, payload: hex('0102') });
    const ip = parseIpv4(packet);
    assert.ok(ip.ok && ip.value.protocol === IPPROTO_TCP);
    const tcp = parseTcp(ip.value.payload, 1, 2);
    assert.ok(tcp.ok);
    assert.deepEqual(
      { ...tcp.value, payload: [...tcp.value.payload] },
      { srcPort: 80, dstPort: 40000, seq: 0xfffffff0, ack: 5, flags: SYN | ACK, window: 29200, mss: 1400, wscale: undefined, sackPermitted: false, sack: undefined, payload: [1, 2] },
    );
  });

  it('round-trips the window-scale option next to MSS, on a 32-bit boundary', () => {
    const packet = buildTcpPacket({ src: 1, dst: 2, srcPort: 80, dstPort: 40000, seq: 1, ack: 2, flags: SYN | ACK, window: 65535, mss: 65495, wscale: 7 });
    const tcp = packet.subarray(20);
    assert.equal(tcp[12]! >> 4, 7, 'data offset: 20 + MSS(4) + NOP,WS(4) = 28 bytes');
    assert.deepEqual([...tcp.subarray(20, 28)], [2, 4, 0xff, 0xd7, 1, 3, 3, 7]);
    const parsed = parseTcp(tcp, 1, 2);
    assert.ok(parsed.ok);
    assert.equal(parsed.value.mss, 65495);
    assert.equal(parsed.value.wscale, 7);
  });

  it('clamps a window-scale shift above 14 to 14 (RFC 7323 §2.3)', () => {
    const packet = buildTcpPacket({ src: 1, dst: 2, srcPort: 1, dstPort: 2, seq: 1, ack: 0, flags: SYN, window: 100, wscale: 15 });
    const parsed = parseTcp(packet.subarray(20), 1, 2);
    assert.ok(parsed.ok);
    assert.equal(parsed.value.wscale, 14);
  });

  it('reads the window-scale option from a Linux-style SYN (MSS, SACK-permitted, timestamps, NOP, WS)', () => {
    const packet = buildTcpPacket({ src: 1, dst: 2, srcPort: 1, dstPort: 2, seq: 1, ack: 0, flags: SYN, window: 64240 });
    const options = hex('020405b4 0402 080a00000001 00000000 01 030307');
    const tcp = new Uint8Array(20 + options.length);
    tcp.set(packet.subarray(20, 40));
    tcp.set(options, 20);
    tcp[12] = ((20 + options.length) / 4) << 4;
    refreshChecksum(tcp);
    const parsed = parseTcp(tcp, 1, 2);
    assert.ok(parsed.ok);
    assert.equal(parsed.value.mss, 1460);
    assert.equal(parsed.value.wscale, 7);
    assert.equal(parsed.value.sackPermitted, true);
  });

  it('writes SACK-permitted and SACK blocks as 32-bit aligned options', () => {
    const synAck = buildTcpPacket({ src: 1, dst: 2, srcPort: 1, dstPort: 2, seq: 1, ack: 2, flags: SYN | ACK, window: 100, mss: 1460, wscale: 4, sackPermitted: true });
    const parsed = parseTcp(synAck.subarray(20), 1, 2);
    assert.ok(parsed.ok && parsed.value.sackPermitted && parsed.value.wscale === 4 && parsed.value.mss === 1460);
    const sack: [number, number][] = [[0xfffffff0, 0x10], [100, 200], [300, 400], [500, 600], [700, 800]];
    const ack = buildTcpPacket({ src: 1, dst: 2, srcPort: 1, dstPort: 2, seq: 1, ack: 2, flags: ACK, window: 100, sack });
    const tcp = ack.subarray(20);
    assert.equal(tcp[12]! >> 4, (20 + 36) / 4, 'at most four blocks');
    assert.deepEqual([...tcp.subarray(20, 24)], [1, 1, 5, 34]);
    assert.deepEqual([...tcp.subarray(24, 32)], [0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0x10]);
    assert.ok(parseTcp(tcp, 1, 2).ok, 'checksum and option lengths are valid');
  });

  it('rejects a TCP segment with a bad checksum or the wrong pseudo-header', () => {
    const packet = buildTcpPacket({ src: 1, dst: 2, srcPort: 80, dstPort: 81, seq: 1, ack: 0, flags: RST, window: 0 });
    assert.equal(parseTcp(packet.subarray(20), 1, 3).ok, false);
    const corrupt = Uint8Array.from(packet.subarray(20));
    corrupt[4] = corrupt[4]! ^ 0x80;
    assert.equal(parseTcp(corrupt, 1, 2).ok, false);
  });

  it('stops at malformed options without reading past the header', () => {
    const packet = buildTcpPacket({ src: 1, dst: 2, srcPort: 1, dstPort: 2, seq: 1, ack: 0, flags: SYN, window: 0, mss: 1000 });
    const tcp = Uint8Array.from(packet.subarray(20));
    tcp[21] = 40; // option length beyond the header
    refreshChecksum(tcp);
    const parsed = parseTcp(tcp, 1, 2);
    assert.ok(parsed.ok);
    assert.equal(parsed.value.mss, undefined);
  });

  it('sums words like the reference on random data, offsets, lengths and initial sums', () => {
    // The fast path reads aligned 32-bit words; every alignment and parity of start/end must agree.
    const backing = new Uint8Array(70_000);
    crypto.getRandomValues(backing.subarray(0, 65_536));
    crypto.getRandomValues(backing.subarray(65_536));
    let state = 12345;
    const random = (n: number): number => ((state = (state * 1103515245 + 12345) >>> 0) % n);
    for (let k = 0; k < 3000; k++) {
      const view = backing.subarray(random(8));
      const start = random(40);
      const length = k % 25 === 0 ? random(66_000) : random(2000);
      const end = Math.min(view.length, start + length);
      const initial = random(1 << 20);
      const region = view.slice(start, end);
      // The reference needs the initial sum as a checksum-neutral 16-bit word appended in front.
      const folded = (initial % 0xffff) || (initial === 0 ? 0 : 0xffff);
      const withInitial = new Uint8Array(region.length + 2);
      withInitial[0] = folded >> 8;
      withInitial[1] = folded & 0xff;
      withInitial.set(region, 2);
      assert.equal(finishChecksum(sumWords(view, start, end, initial)), referenceChecksum(withInitial), `k=${k} start=${start} end=${end}`);
    }
  });

  it('round-trips a UDP datagram and accepts a zero checksum', () => {
    const packet = buildUdpPacket(1, 2, 5353, 53, hex('abcdef'));
    const ip = parseIpv4(packet);
    assert.ok(ip.ok);
    const udp = parseUdp(ip.value.payload, 1, 2);
    assert.ok(udp.ok && udp.value.srcPort === 5353 && udp.value.dstPort === 53 && udp.value.payload.length === 3);
    const noChecksum = Uint8Array.from(ip.value.payload);
    noChecksum[6] = 0;
    noChecksum[7] = 0;
    assert.ok(parseUdp(noChecksum, 9, 9).ok);
    noChecksum[6] = 1;
    assert.equal(parseUdp(noChecksum, 1, 2).ok, false);
  });

  it('compares sequence numbers modulo 2^32', () => {
    assert.ok(seq.lt(0xfffffff0, 5));
    assert.ok(seq.gt(5, 0xfffffff0));
    assert.equal(seq.add(0xffffffff, 2), 1);
    assert.equal(seq.diff(0xfffffffe, 3), 5);
  });
});

describe('IPv6 black hole', () => {
  const v6 = (nextHeader: number, payload: Uint8Array, src = '20010db8000000000000000000000001'): Uint8Array => {
    const header = hex(`60000000 ${payload.length.toString(16).padStart(4, '0')} ${nextHeader.toString(16).padStart(2, '0')}40 ${src} 20010db8000000000000000000000002`);
    const out = new Uint8Array(40 + payload.length);
    out.set(header);
    out.set(payload, 40);
    return out;
  };

  it('answers a TCP SYN with RST|ACK with a valid checksum', () => {
    const syn = hex('9c40 0050 00000064 00000000 5002 ffff 0000 0000');
    const reply = answerIpv6(v6(6, syn));
    assert.ok(reply);
    assert.equal(reply[6], 6);
    const tcp = reply.subarray(40);
    assert.equal(tcp[13], RST | ACK);
    assert.equal(Buffer.from(tcp).readUInt32BE(8), 101, 'acknowledges the SYN');
    assert.equal((tcp[0]! << 8) | tcp[1]!, 80);
    assert.deepEqual([...reply.subarray(8, 24)], [...v6(6, syn).subarray(24, 40)], 'from the address that was dialed');
    const sum = finishChecksum(sumWords(tcp, 0, tcp.length, (() => {
      let s = sumWords(reply, 8, 40);
      s += tcp.length + 6;
      return s;
    })()));
    assert.equal(sum, 0);
  });

  it('answers UDP with ICMPv6 administratively prohibited', () => {
    const reply = answerIpv6(v6(17, hex('1234 0035 000c 0000 aabbccdd')));
    assert.ok(reply);
    assert.equal(reply[6], 58);
    assert.equal(reply[40], 1);
    assert.equal(reply[41], 1);
  });

  it('stays silent for non-SYN TCP, ICMPv6, multicast and unspecified sources', () => {
    assert.equal(answerIpv6(v6(6, hex('9c40 0050 00000064 00000000 5010 ffff 0000 0000'))), undefined);
    assert.equal(answerIpv6(v6(58, hex('80000000 00000000'))), undefined);
    assert.equal(answerIpv6(v6(17, hex('1234 0035 0008 0000'), 'ff020000000000000000000000000001')), undefined);
    assert.equal(answerIpv6(v6(17, hex('1234 0035 0008 0000'), '00000000000000000000000000000000')), undefined);
  });
});

describe('ByteQueue', () => {
  it('copies ranges across chunks and consumes from the front', () => {
    const q = new ByteQueue();
    q.push(hex('0102'));
    q.push(hex('030405'));
    q.push(hex('06'));
    assert.deepEqual([...q.copy(1, 4)], [2, 3, 4, 5]);
    q.consume(3);
    assert.equal(q.length, 3);
    assert.deepEqual([...q.copy(0, 3)], [4, 5, 6]);
    assert.throws(() => q.copy(1, 3));
  });

  it('copies a range straight into a target at an offset', () => {
    const q = new ByteQueue();
    q.push(hex('0102'));
    q.push(hex('030405'));
    q.consume(1);
    const target = new Uint8Array(6);
    q.copyInto(target, 2, 1, 3);
    assert.deepEqual([...target], [0, 0, 3, 4, 5, 0]);
    assert.throws(() => q.copyInto(target, 0, 2, 3));
  });
});
