/** The LAN gateway's DNS forwarder: ids remapped, replies never crossed, allowlist and rate limit. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import type { DnsTransport } from '@torvm/netstack/dns-relay.ts';
import { RateLimiter, SubnetAllowlist } from '../../src/gateway/client-admission.ts';
import { startDnsGateway } from '../../src/gateway/dns-gateway.ts';

/** An upstream that holds every query until told to answer, then answers in reverse order. */
function heldTransport() {
  const held: Uint8Array[] = [];
  let deliver: ((m: Uint8Array) => void) | null = null;
  const transport: DnsTransport = {
    send: (m) => void held.push(Uint8Array.from(m)),
    onMessage: (cb) => { deliver = cb; },
    close: () => {},
  };
  return {
    transport, held,
    answerAll() {
      for (const q of held.splice(0).reverse()) {
        const query = dnsPacket.decode(Buffer.from(q));
        const name = query.questions?.[0]?.name ?? '';
        const index = Number(/^host(\d+)\./.exec(name)?.[1] ?? 0);
        const reply = dnsPacket.encode({
          id: query.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED, questions: query.questions,
          answers: [{ type: 'A', name, ttl: 60, data: `10.0.${index >> 8}.${index & 255}` }],
        });
        deliver?.(reply);
      }
    },
  };
}

const query = (id: number, name: string) => dnsPacket.encode({ id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
const log = { info: () => {}, warn: () => {} };

async function udpClient(): Promise<{ socket: Socket; replies: Buffer[] }> {
  const socket = createSocket('udp4');
  const replies: Buffer[] = [];
  socket.on('message', (m) => replies.push(m));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { socket, replies };
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('200 queries in flight from 20 clients, all with the same id, each get their own answer', async () => {
  const upstream = heldTransport();
  const gateway = await startDnsGateway({
    listenAddress: '127.0.0.1', port: 0, transport: upstream.transport, log,
    allowlist: new SubnetAllowlist(['127.0.0.0/8']), limiter: new RateLimiter({ perMinute: 10_000, now: () => 0 }),
  });
  const clients = await Promise.all(Array.from({ length: 20 }, () => udpClient()));
  try {
    for (let i = 0; i < 200; i++) clients[i % 20]!.socket.send(query(0x1234, `host${i}.torvm.test`), gateway.port, '127.0.0.1');
    await until(() => upstream.held.length === 200, 'all queries relayed');
    const upstreamIds = new Set(upstream.held.map((m) => (m[0]! << 8) | m[1]!));
    assert.equal(upstreamIds.size, 200, 'every query in flight has its own upstream id');
    upstream.answerAll();
    await until(() => clients.every((c) => c.replies.length === 10), 'all replies');
    clients.forEach((client, c) => {
      const names = client.replies.map((r) => {
        const reply = dnsPacket.decode(r);
        assert.equal(reply.id, 0x1234, 'the client gets its own id back');
        const answer = reply.answers?.[0];
        const name = reply.questions?.[0]?.name ?? '';
        const index = Number(/^host(\d+)\./.exec(name)?.[1]);
        assert.equal(answer && 'data' in answer ? answer.data : null, `10.0.${index >> 8}.${index & 255}`);
        return index;
      });
      assert.deepEqual(names.sort((a, b) => a - b), Array.from({ length: 10 }, (_, k) => c + 20 * k), `client ${c} got exactly its own answers`);
    });
  } finally {
    for (const c of clients) c.socket.close();
    await gateway.stop();
  }
});

test('a reply whose question does not match is dropped', async () => {
  const upstream = heldTransport();
  let deliver: ((m: Uint8Array) => void) | null = null;
  const transport: DnsTransport = { ...upstream.transport, onMessage: (cb) => { deliver = cb; } };
  const gateway = await startDnsGateway({
    listenAddress: '127.0.0.1', port: 0, transport, log,
    allowlist: new SubnetAllowlist(['127.0.0.0/8']), limiter: new RateLimiter({ perMinute: 100, now: () => 0 }),
  });
  const client = await udpClient();
  try {
    client.socket.send(query(7, 'a.torvm.test'), gateway.port, '127.0.0.1');
    await until(() => upstream.held.length === 1, 'relayed');
    const sent = dnsPacket.decode(Buffer.from(upstream.held[0]!));
    deliver!(dnsPacket.encode({ id: sent.id, type: 'response', questions: [{ type: 'A', name: 'b.torvm.test' }], answers: [] }));
    await until(() => gateway.relay.stats.mismatched === 1, 'the mismatch counted');
    assert.equal(client.replies.length, 0);
  } finally {
    client.socket.close();
    await gateway.stop();
  }
});

test('queries from outside allowedSubnets or over the rate limit are dropped, not relayed', async () => {
  const upstream = heldTransport();
  const outside = await startDnsGateway({
    listenAddress: '127.0.0.1', port: 0, transport: upstream.transport, log,
    allowlist: new SubnetAllowlist(['192.168.77.0/24']), limiter: new RateLimiter({ perMinute: 100, now: () => 0 }),
  });
  const limited = await startDnsGateway({
    listenAddress: '127.0.0.1', port: 0, transport: upstream.transport, log,
    allowlist: new SubnetAllowlist(['127.0.0.0/8']), limiter: new RateLimiter({ perMinute: 3, now: () => 0 }),
  });
  const client = await udpClient();
  try {
    client.socket.send(query(1, 'x.torvm.test'), outside.port, '127.0.0.1');
    for (let i = 0; i < 5; i++) client.socket.send(query(i, `y${i}.torvm.test`), limited.port, '127.0.0.1');
    await until(() => outside.stats.refusedSubnet === 1 && limited.stats.refusedRate === 2, 'the drops counted');
    assert.equal(upstream.held.length, 3, 'only the three admitted queries were relayed');
  } finally {
    client.socket.close();
    await outside.stop();
    await limited.stop();
  }
});
