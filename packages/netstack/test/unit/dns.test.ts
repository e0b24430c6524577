// DNS relay (txid remapping, no crossed replies, expiry) and fake-IP DNS.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { ManualClock } from '../../src/clock.ts';
import { DnsRelay, questionSectionEnd, type DnsEndpoint, type DnsTransport } from '../../src/dns-relay.ts';
import { FakeDnsPool, answerFromFakeDns } from '../../src/fake-dns.ts';
import { ipv4FromString, ipv4ToString, parseIpv4, IPPROTO_UDP } from '../../src/ipv4.ts';
import { SYN, ACK } from '../../src/tcp-segment.ts';
import { buildUdpPacket, parseUdp } from '../../src/udp.ts';
import { CLIENT, Client, FakeUpstream, makeStack, tick } from './harness.ts';

class FakeTransport implements DnsTransport {
  sent: Uint8Array[] = [];
  #cb: ((m: Uint8Array) => void) | undefined;
  closed = false;
  send(message: Uint8Array): void {
    this.sent.push(message);
  }
  onMessage(cb: (m: Uint8Array) => void): void {
    this.#cb = cb;
  }
  deliver(message: Uint8Array): void {
    this.#cb?.(message);
  }
  close(): void {
    this.closed = true;
  }
}

const query = (name: string, id: number, type: 'A' | 'AAAA' | 'MX' = 'A'): Uint8Array =>
  dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });

const answerFor = (relayed: Uint8Array, address: string): Uint8Array => {
  const q = dnsPacket.decode(Buffer.from(relayed));
  return dnsPacket.encode({
    type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions,
    answers: [{ type: 'A', class: 'IN', name: q.questions![0]!.name, ttl: 60, data: address }],
  });
};

function shuffle<T>(items: T[], seed: number): T[] {
  let s = seed;
  for (let i = items.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

describe('DNS relay', () => {
  it('keeps 500 queries in flight with the same client id and never crosses replies', async () => {
    const transport = new FakeTransport();
    const { io, stack } = makeStack({ dns: { transport } });
    const resolver = ipv4FromString('10.0.0.53');
    for (let i = 0; i < 500; i++) {
      // Every client uses id 42: only the relay's remapping keeps them apart.
      stack.input([buildUdpPacket(CLIENT + (i % 5), resolver, 20000 + i, 53, query(`host${i}.example`, 42))]);
    }
    assert.equal(transport.sent.length, 500);
    assert.equal(stack.dnsPending, 500);
    const ids = new Set(transport.sent.map((m) => (m[0]! << 8) | m[1]!));
    assert.equal(ids.size, 500, 'every relayed query has its own id');

    // A spoofed reply (right id, other question) and an unknown id are dropped.
    const first = transport.sent[0]!;
    const spoof = Uint8Array.from(answerFor(query('evil.example', 0), '6.6.6.6'));
    spoof[0] = first[0]!;
    spoof[1] = first[1]!;
    transport.deliver(spoof);
    assert.equal(io.sent.length, 0);

    for (const relayed of shuffle([...transport.sent], 7)) {
      const name = dnsPacket.decode(Buffer.from(relayed)).questions![0]!.name;
      const i = Number(/host(\d+)/.exec(name)![1]);
      transport.deliver(answerFor(relayed, `10.1.${i >> 8}.${i & 0xff}`));
    }
    transport.deliver(answerFor(first, '6.6.6.6')); // a late duplicate: no longer pending
    await tick();
    assert.equal(io.sent.length, 500);
    assert.equal(stack.dnsPending, 0);
    for (const packet of io.sent) {
      const ip = parseIpv4(packet);
      assert.ok(ip.ok && ip.value.protocol === IPPROTO_UDP);
      assert.equal(ip.value.src, resolver, 'the reply comes from the address the client asked');
      const udp = parseUdp(ip.value.payload, ip.value.src, ip.value.dst);
      assert.ok(udp.ok && udp.value.srcPort === 53);
      const i = udp.value.dstPort - 20000;
      assert.equal(ip.value.dst, CLIENT + (i % 5));
      const reply = dnsPacket.decode(Buffer.from(udp.value.payload));
      assert.equal(reply.id, 42, 'the original id is restored');
      assert.equal(reply.questions![0]!.name, `host${i}.example`);
      assert.equal((reply.answers![0] as { data: string }).data, `10.1.${i >> 8}.${i & 0xff}`);
    }
  });

  it('expires queries that get no reply', () => {
    const transport = new FakeTransport();
    const clock = new ManualClock();
    const replies: DnsEndpoint[] = [];
    const relay = new DnsRelay({ transport, clock, timeoutMs: 5000, reply: (_m, to) => replies.push(to) });
    const from = { clientIp: 1, clientPort: 2, serverIp: 3, serverPort: 53 };
    relay.query(query('slow.example', 1), from);
    clock.advance(5000);
    assert.equal(relay.pending, 0);
    assert.equal(relay.stats.expired, 1);
    transport.deliver(answerFor(transport.sent[0]!, '1.1.1.1'));
    assert.equal(replies.length, 0, 'a reply after expiry is dropped');
  });

  it('drops malformed queries and responses posing as queries', () => {
    const transport = new FakeTransport();
    const relay = new DnsRelay({ transport, clock: new ManualClock(), reply: () => {} });
    const from = { clientIp: 1, clientPort: 2, serverIp: 3, serverPort: 53 };
    assert.equal(relay.query(Uint8Array.of(1, 2, 3), from), false);
    assert.equal(relay.query(answerFor(query('x.example', 1), '1.1.1.1'), from), false);
    const truncated = query('x.example', 1).subarray(0, 16);
    assert.equal(relay.query(truncated, from), false);
    assert.equal(transport.sent.length, 0);
  });

  it('bounds the table', () => {
    const transport = new FakeTransport();
    const relay = new DnsRelay({ transport, clock: new ManualClock(), maxPending: 3, reply: () => {} });
    const from = { clientIp: 1, clientPort: 2, serverIp: 3, serverPort: 53 };
    const results = [0, 1, 2, 3].map((i) => relay.query(query(`h${i}.example`, i), from));
    assert.deepEqual(results, [true, true, true, false]);
  });

  it('finds the end of the question section and rejects bad labels', () => {
    const q = query('a.example', 1);
    assert.equal(questionSectionEnd(q), q.length);
    const bad = Uint8Array.from(q);
    bad[12] = 0x80;
    assert.equal(questionSectionEnd(bad), -1);
  });

  it('answers NOTIMP when there is neither a relay nor a fake answer', () => {
    const { io, stack } = makeStack();
    stack.input([buildUdpPacket(CLIENT, ipv4FromString('10.0.0.53'), 3333, 53, query('x.example', 9))]);
    const ip = parseIpv4(io.sent[0]!);
    assert.ok(ip.ok);
    const udp = parseUdp(ip.value.payload, ip.value.src, ip.value.dst);
    assert.ok(udp.ok);
    const reply = dnsPacket.decode(Buffer.from(udp.value.payload));
    assert.equal(reply.id, 9);
    assert.equal((reply as unknown as { rcode: string }).rcode, 'NOTIMP');
  });
});

describe('fake-IP DNS', () => {
  it('maps names to pool addresses, stably, and back', () => {
    const pool = new FakeDnsPool();
    const a = pool.addressFor('Example.COM.');
    assert.equal(ipv4ToString(a), '198.18.0.1');
    assert.equal(pool.addressFor('example.com'), a);
    assert.equal(pool.hostnameFor(a), 'example.com');
    assert.ok(pool.contains(ipv4FromString('198.19.255.255')));
    assert.ok(!pool.contains(ipv4FromString('198.20.0.0')));
  });

  it('reuses the least recently used address when the pool is full', () => {
    const pool = new FakeDnsPool({ network: '10.0.0.0', prefixLength: 30 }); // 2 usable addresses
    const a = pool.addressFor('a');
    const b = pool.addressFor('b');
    pool.addressFor('a'); // a is now the most recent
    const c = pool.addressFor('c');
    assert.equal(c, b);
    assert.equal(pool.hostnameFor(b), 'c');
    assert.equal(pool.hostnameFor(a), 'a');
  });

  it('answers A from the pool and AAAA with NOERROR and no answers; leaves other types alone', () => {
    const pool = new FakeDnsPool();
    const a = dnsPacket.decode(Buffer.from(answerFromFakeDns(query('onion.example', 5), pool)!));
    assert.equal(a.id, 5);
    assert.equal(a.type, 'response');
    assert.equal((a.answers![0] as { data: string }).data, '198.18.0.1');
    const aaaa = dnsPacket.decode(Buffer.from(answerFromFakeDns(query('onion.example', 6, 'AAAA'), pool)!));
    assert.equal((aaaa as unknown as { rcode: string }).rcode, 'NOERROR');
    assert.equal(aaaa.answers!.length, 0);
    assert.equal(answerFromFakeDns(query('onion.example', 7, 'MX'), pool), undefined);
    assert.equal(answerFromFakeDns(Uint8Array.of(1, 2, 3), pool), undefined);
  });

  it('dials a fake address by hostname, and refuses an unmapped one', async () => {
    const pool = new FakeDnsPool();
    const { io, stack, dialer } = makeStack({ dns: { fakePool: pool } });
    stack.input([buildUdpPacket(CLIENT, ipv4FromString('10.0.0.53'), 3333, 53, query('duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion', 1))]);
    const ip = parseIpv4(io.sent.pop()!);
    assert.ok(ip.ok);
    const udp = parseUdp(ip.value.payload, ip.value.src, ip.value.dst);
    assert.ok(udp.ok);
    const address = (dnsPacket.decode(Buffer.from(udp.value.payload)).answers![0] as { data: string }).data;

    new Client(stack, 41000, 443, 1000, ipv4FromString(address)).send(SYN);
    assert.equal(dialer.dials[0]!.request.host, 'duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion');
    assert.equal(dialer.dials[0]!.request.hostname, dialer.dials[0]!.request.host);
    assert.equal(dialer.dials[0]!.request.dstIp, address);
    dialer.dials[0]!.resolve(new FakeUpstream());
    await tick();
    assert.equal(io.takeTcp()[0]!.flags, SYN | ACK);

    new Client(stack, 41001, 443, 1000, ipv4FromString('198.18.200.1')).send(SYN);
    assert.equal(dialer.dials.length, 1, 'no dial for an address that was never handed out');
    const [rst] = io.takeTcp();
    assert.equal(rst!.flags & ACK, ACK);
    assert.equal(stack.stats.flowsRefused, 1);
  });
});
