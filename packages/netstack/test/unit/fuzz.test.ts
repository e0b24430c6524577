// Fuzzing the parsers and the whole stack with random and mutated packets:
// nothing may throw or hang. Mutated packets get their checksums repaired half
// of the time, so that they reach the TCP/UDP/DNS logic instead of stopping at
// the checksum checks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { finishChecksum, internetChecksum, pseudoHeaderSumV4, sumWords } from '../../src/checksum.ts';
import { questionSectionEnd } from '../../src/dns-relay.ts';
import { FakeDnsPool, answerFromFakeDns } from '../../src/fake-dns.ts';
import { IPPROTO_TCP, IPPROTO_UDP, parseIpv4, readU32 } from '../../src/ipv4.ts';
import { answerIpv6 } from '../../src/ipv6-blackhole.ts';
import { ACK, FIN, PSH, RST, SYN, buildTcpPacket, parseTcp } from '../../src/tcp-segment.ts';
import { buildUdpPacket, parseUdp } from '../../src/udp.ts';
import { CLIENT, FakeUpstream, SERVER, makeStack, tick } from './harness.ts';

const RUNS = 3000;

/** Recomputes the IPv4 header checksum and, when the lengths allow, the TCP/UDP checksum. */
function repairChecksums(packet: Uint8Array): void {
  if (packet.length < 20 || packet[0]! >> 4 !== 4) return;
  const headerLength = (packet[0]! & 0xf) * 4;
  const total = (packet[2]! << 8) | packet[3]!;
  if (headerLength < 20 || headerLength > packet.length) return;
  packet[10] = packet[11] = 0;
  const sum = internetChecksum(packet, 0, headerLength);
  packet[10] = sum >> 8;
  packet[11] = sum & 0xff;
  if (total > packet.length || total < headerLength) return;
  const l4 = packet.subarray(headerLength, total);
  const src = readU32(packet, 12);
  const dst = readU32(packet, 16);
  const offset = packet[9] === IPPROTO_TCP ? 16 : packet[9] === IPPROTO_UDP ? 6 : -1;
  if (offset < 0 || l4.length < offset + 2) return;
  const length = packet[9] === IPPROTO_UDP && l4.length >= 8 ? Math.min(l4.length, (l4[4]! << 8) | l4[5]!) : l4.length;
  l4[offset] = l4[offset + 1] = 0;
  const l4sum = finishChecksum(sumWords(l4, 0, length, pseudoHeaderSumV4(src, dst, packet[9]!, length)));
  l4[offset] = l4sum >> 8;
  l4[offset + 1] = l4sum & 0xff;
}

const seeds: Uint8Array[] = [
  buildTcpPacket({ src: CLIENT, dst: SERVER, srcPort: 40000, dstPort: 80, seq: 1000, ack: 0, flags: SYN, window: 65535, mss: 1460 }),
  buildTcpPacket({ src: CLIENT, dst: SERVER, srcPort: 40000, dstPort: 80, seq: 1001, ack: 1, flags: ACK | PSH, window: 65535, payload: new Uint8Array(100).fill(0x41) }),
  buildTcpPacket({ src: CLIENT, dst: SERVER, srcPort: 40000, dstPort: 80, seq: 1001, ack: 1, flags: FIN | ACK, window: 0 }),
  buildTcpPacket({ src: CLIENT, dst: SERVER, srcPort: 40000, dstPort: 80, seq: 1001, ack: 0, flags: RST, window: 0 }),
  buildUdpPacket(CLIENT, SERVER, 5000, 53, dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'a.example', class: 'IN' }] })),
  buildUdpPacket(CLIENT, SERVER, 5000, 53, dnsPacket.encode({ type: 'query', id: 2, questions: [{ type: 'AAAA', name: 'b.example', class: 'IN' }] })),
  Uint8Array.from(Buffer.from('6000000000140640' + '20010db8'.padEnd(32, '0') + '20010db8'.padEnd(31, '0') + '2' + '9c40005000000064000000005002ffff00000000', 'hex')),
];

const mutation = fc.record({
  seed: fc.integer({ min: 0, max: seeds.length - 1 }),
  edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
  truncateTo: fc.option(fc.nat()),
  repair: fc.boolean(),
});

function mutate(m: { seed: number; edits: [number, number][]; truncateTo: number | null; repair: boolean }): Uint8Array {
  let packet = Uint8Array.from(seeds[m.seed]!);
  for (const [position, value] of m.edits) packet[position % packet.length] = value;
  if (m.truncateTo !== null) packet = packet.subarray(0, m.truncateTo % (packet.length + 1));
  if (m.repair) repairChecksums(packet);
  return packet;
}

describe('fuzz', { timeout: 60_000 }, () => {
  it('parsers never throw on random bytes', () => {
    const pool = new FakeDnsPool();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1600 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const ip = parseIpv4(bytes);
        if (ip.ok) assert.ok(ip.value.payload.length <= bytes.length);
        parseTcp(bytes, a >>> 0, b >>> 0);
        parseUdp(bytes, a >>> 0, b >>> 0);
        answerIpv6(bytes);
        assert.ok(questionSectionEnd(bytes) <= bytes.length);
        answerFromFakeDns(bytes, pool);
      }),
      { numRuns: RUNS },
    );
  });

  it('parsers never throw on mutated valid packets, and what parses is within bounds', () => {
    fc.assert(
      fc.property(mutation, (m) => {
        const packet = mutate(m);
        const ip = parseIpv4(packet);
        if (!ip.ok) return;
        const { payload, src, dst } = ip.value;
        const tcp = parseTcp(payload, src, dst);
        if (tcp.ok) assert.ok(tcp.value.payload.length <= payload.length);
        const udp = parseUdp(payload, src, dst);
        if (udp.ok) {
          assert.ok(udp.value.payload.length <= payload.length);
          questionSectionEnd(udp.value.payload);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('the whole stack survives streams of mutated packets, with flows open and closing', async () => {
    const reached = { flows: 0, bytesUpstream: 0, dnsAnswers: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 40 }), fc.boolean(), async (mutations, fake) => {
        const pool = new FakeDnsPool();
        const { stack, dialer, clock } = makeStack(fake ? { dns: { fakePool: pool } } : {});
        const upstreams: FakeUpstream[] = [];
        for (const m of mutations) {
          stack.input([mutate(m)]);
          for (const dial of dialer.dials.splice(0)) {
            const upstream = new FakeUpstream();
            upstreams.push(upstream);
            dial.resolve(upstream);
          }
          await tick();
          for (const u of upstreams) if (u.handlers && !u.destroyed) u.handlers.data(new Uint8Array(10));
          clock.advance(300);
        }
        assert.ok(stack.flowCount <= mutations.length);
        reached.flows += stack.stats.flowsOpened;
        reached.bytesUpstream += upstreams.reduce((n, u) => n + u.written.reduce((m, w) => m + w.length, 0), 0);
        clock.advance(10 * 60_000); // every timer fires: flows time out or finish
        await tick();
        stack.close();
        assert.equal(stack.flowCount, 0);
      }),
      { numRuns: 300 },
    );
    // The fuzzer must get past the checksums and into the state machine, or it proves nothing.
    assert.ok(reached.flows >= 5, `flows opened: ${reached.flows}`);
  });

  it('an established flow delivers exactly the client byte stream under random segments', async () => {
    // Byte k of the client's stream is pattern(k), so any reordering, duplication
    // or corruption on the way upstream shows as a mismatch.
    const pattern = (k: number): number => (k * 7 + (k >> 8)) & 0xff;
    const segment = fc.record({
      flags: fc.constantFrom(ACK, ACK, ACK | PSH, ACK | FIN, RST, SYN, ACK | SYN, 0, RST | ACK),
      // Up to 600,000: beyond 64 KiB only a scaled window takes it (256 KiB by default).
      offset: fc.oneof(fc.integer({ min: -3000, max: 70_000 }), fc.constant(0), fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.integer({ min: 0, max: 600_000 })),
      length: fc.integer({ min: 0, max: 3000 }),
      ackOffset: fc.oneof(fc.constant(0), fc.integer({ min: -70_000, max: 70_000 })),
      window: fc.oneof(fc.constant(65535), fc.integer({ min: 0, max: 65535 })),
    });
    let delivered = 0;
    await fc.assert(
      // The SYN's options decide window scaling (either side's shift) and SACK blocks.
      fc.asyncProperty(fc.array(segment, { maxLength: 60 }), fc.option(fc.integer({ min: 0, max: 15 })), fc.boolean(), async (segments, wscale, sackPermitted) => {
        const { stack, dialer, io, clock } = makeStack();
        const isn = 5000;
        stack.input([buildTcpPacket({ src: CLIENT, dst: SERVER, srcPort: 40000, dstPort: 80, seq: isn, ack: 0, flags: SYN, window: 65535, mss: 1460, wscale: wscale ?? undefined, sackPermitted })]);
        const upstream = new FakeUpstream();
        dialer.dials[0]!.resolve(upstream);
        await tick();
        const serverIsn = io.takeTcp()[0]!.seq;
        const send = (flags: number, offset: number, length: number, ackOffset: number, window: number): void => {
          const start = isn + 1 + offset;
          const payload = Uint8Array.from({ length }, (_, i) => pattern(offset + i));
          stack.input([buildTcpPacket({ src: CLIENT, dst: SERVER, srcPort: 40000, dstPort: 80, seq: start >>> 0, ack: (serverIsn + 1 + ackOffset) >>> 0, flags, window, payload })]);
        };
        send(ACK, 0, 0, 0, 65535);
        for (const s of segments) {
          send(s.flags, s.offset, s.offset >= 0 ? s.length : Math.min(s.length, 3000), s.ackOffset, s.window);
          if (s.flags === ACK && s.offset % 5 === 0) upstream.handlers?.data(new Uint8Array(700));
          await tick();
          clock.advance(50);
        }
        const stream = Buffer.concat(upstream.written);
        for (let k = 0; k < stream.length; k++) assert.equal(stream[k], pattern(k), `upstream byte ${k}`);
        delivered += stream.length;
        clock.advance(10 * 60_000);
        stack.close();
        assert.equal(stack.flowCount, 0);
      }),
      { numRuns: 300 },
    );
    assert.ok(delivered > 10_000, `bytes delivered upstream: ${delivered}`);
  });
});
