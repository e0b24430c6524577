/** The LAN gateway's SOCKS5 server against a fake Tor SocksPort, all on loopback. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { RateLimiter, SubnetAllowlist } from '../../src/gateway/client-admission.ts';
import { createCredentialChecker } from '../../src/gateway/credentials.ts';
import { UPSTREAM_PASSWORD, startSocksGateway, type SocksGateway } from '../../src/gateway/socks-gateway.ts';

const USERS = [{ username: 'alice', password: 's3cret-pass' }, { username: 'bob', password: 'other-pass' }];

/** What the fake Tor saw on one connection. */
interface UpstreamSession { username: string; password: string; request: number[] }

/** A minimal SOCKS5 server standing in for Tor: username/password, CONNECT, then echo. */
async function startFakeTor(): Promise<{ server: Server; port: number; sessions: UpstreamSession[] }> {
  const sessions: UpstreamSession[] = [];
  const server = createServer((socket) => {
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let stage = 0;
    const session: UpstreamSession = { username: '', password: '', request: [] };
    socket.on('data', function onData(chunk: Buffer) {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 0 && buf.length >= 2 && buf.length >= 2 + buf[1]!) {
        assert.ok([...buf.subarray(2, 2 + buf[1]!)].includes(2));
        buf = buf.subarray(2 + buf[1]!);
        socket.write(Buffer.of(5, 2));
        stage = 1;
      }
      if (stage === 1 && buf.length >= 2) {
        const ulen = buf[1]!;
        if (buf.length < 3 + ulen || buf.length < 3 + ulen + buf[2 + ulen]!) return;
        const plen = buf[2 + ulen]!;
        session.username = buf.subarray(2, 2 + ulen).toString();
        session.password = buf.subarray(3 + ulen, 3 + ulen + plen).toString();
        buf = buf.subarray(3 + ulen + plen);
        socket.write(Buffer.of(1, 0));
        stage = 2;
      }
      if (stage === 2 && buf.length >= 10) {
        session.request = [...buf.subarray(0, 10)];
        sessions.push(session);
        buf = buf.subarray(10);
        socket.write(Buffer.of(5, 0, 0, 1, 10, 9, 8, 7, 0x1f, 0x90));
        stage = 3;
        socket.off('data', onData);
        if (buf.length > 0) socket.write(buf);
        socket.pipe(socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0, sessions };
}

/** A client socket with a "read exactly n bytes (or what arrives before close)" helper. */
async function dial(port: number): Promise<{ socket: Socket; read(n: number): Promise<Buffer>; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let buf = Buffer.alloc(0);
  let waiter: (() => void) | null = null;
  let ended = false;
  socket.on('data', (c: Buffer) => { buf = Buffer.concat([buf, c]); waiter?.(); });
  const closed = new Promise<void>((r) => socket.once('close', () => { ended = true; waiter?.(); r(); }));
  // A refused client may be reset before 'connect' is even reported: then it is just closed.
  await Promise.race([new Promise<void>((resolve) => socket.once('connect', resolve)), closed]);
  return {
    socket, closed,
    async read(n) {
      const deadline = setTimeout(() => waiter?.(), 5_000);
      try {
        while (buf.length < n && !ended) await new Promise<void>((r) => { waiter = r; setTimeout(r, 5_000).unref(); });
      } finally { clearTimeout(deadline); }
      const out = buf.subarray(0, n);
      buf = buf.subarray(out.length);
      return out;
    },
  };
}

const authMessage = (u: string, p: string) => Buffer.concat([Buffer.of(1, u.length), Buffer.from(u), Buffer.of(p.length), Buffer.from(p)]);
const CONNECT_10_99_0_80_80 = Buffer.of(5, 1, 0, 1, 10, 99, 0, 80, 0, 80);
const silentLog = { info: () => {}, warn: () => {} };

describe('LAN gateway SOCKS5 server', () => {
  let tor: Awaited<ReturnType<typeof startFakeTor>>;
  let gateway: SocksGateway;
  const warnings: string[] = [];

  before(async () => {
    tor = await startFakeTor();
    gateway = await startSocksGateway({
      listenAddress: '127.0.0.1', port: 0, upstream: { host: '127.0.0.1', port: tor.port },
      allowlist: new SubnetAllowlist(['127.0.0.0/8']), limiter: new RateLimiter({ perMinute: 1000, now: () => performance.now() }),
      credentials: createCredentialChecker(USERS), log: { info: () => {}, warn: (m) => warnings.push(m) },
    });
  });
  after(async () => {
    await gateway.stop();
    await new Promise<void>((r) => tor.server.close(() => r()));
  });

  test('a client that offers only "no authentication" is refused and nothing reaches Tor', async () => {
    const before = tor.sessions.length;
    const c = await dial(gateway.port);
    c.socket.write(Buffer.of(5, 1, 0));
    assert.deepEqual([...(await c.read(2))], [5, 0xff]);
    await c.closed;
    assert.equal(tor.sessions.length, before);
    assert.ok(gateway.stats.refusedNoAuth >= 1);
  });

  test('a wrong password is refused, nothing reaches Tor, and the password is not logged', async () => {
    const before = tor.sessions.length;
    const c = await dial(gateway.port);
    c.socket.write(Buffer.of(5, 2, 0, 2));
    assert.deepEqual([...(await c.read(2))], [5, 2]);
    c.socket.write(authMessage('alice', 'other-pass'));
    assert.deepEqual([...(await c.read(2))], [1, 1]);
    c.socket.write(CONNECT_10_99_0_80_80);
    await c.closed;
    assert.equal(tor.sessions.length, before);
    assert.ok(gateway.stats.refusedCredentials >= 1);
    assert.ok(warnings.length > 0 && warnings.every((w) => !w.includes('other-pass') && !w.includes('s3cret-pass')));
  });

  test('the right password: CONNECT reaches Tor as that user (not their password), and data flows both ways', async () => {
    const c = await dial(gateway.port);
    // Greeting, auth, request and early data in one write: a pipelining client must work too.
    c.socket.write(Buffer.concat([Buffer.of(5, 1, 2), authMessage('bob', 'other-pass'), CONNECT_10_99_0_80_80, Buffer.from('hello')]));
    assert.deepEqual([...(await c.read(2))], [5, 2]);
    assert.deepEqual([...(await c.read(2))], [1, 0]);
    assert.deepEqual([...(await c.read(10))], [5, 0, 0, 1, 10, 9, 8, 7, 0x1f, 0x90], "Tor's reply is passed through unchanged");
    assert.equal((await c.read(5)).toString(), 'hello');
    c.socket.write('world');
    assert.equal((await c.read(5)).toString(), 'world');
    const session = tor.sessions.at(-1);
    assert.equal(session?.username, 'bob');
    assert.equal(session?.password, UPSTREAM_PASSWORD);
    assert.deepEqual(session?.request, [...CONNECT_10_99_0_80_80], 'the request is forwarded byte for byte');
    c.socket.destroy();
  });

  test('commands other than CONNECT are refused with "command not supported"', async () => {
    const c = await dial(gateway.port);
    c.socket.write(Buffer.concat([Buffer.of(5, 1, 2), authMessage('alice', 's3cret-pass'), Buffer.of(5, 3, 0, 1, 10, 99, 0, 80, 0, 80)]));
    assert.deepEqual([...(await c.read(4))], [5, 2, 1, 0]);
    assert.deepEqual([...(await c.read(2))], [5, 7]);
    await c.closed;
  });
});

describe('LAN gateway admission', () => {
  test('a client outside allowedSubnets is reset before any byte is exchanged', async () => {
    const tor = await startFakeTor();
    const gateway = await startSocksGateway({
      listenAddress: '127.0.0.1', port: 0, upstream: { host: '127.0.0.1', port: tor.port },
      allowlist: new SubnetAllowlist(['192.168.77.0/24']), limiter: new RateLimiter({ perMinute: 100, now: () => 0 }),
      credentials: createCredentialChecker(USERS), log: silentLog,
    });
    try {
      const c = await dial(gateway.port);
      if (!c.socket.destroyed) c.socket.write(Buffer.of(5, 1, 2));
      await c.closed;
      assert.equal((await c.read(1)).length, 0, 'no reply at all');
      assert.equal(gateway.stats.refusedSubnet, 1);
      assert.equal(tor.sessions.length, 0);
    } finally {
      await gateway.stop();
      tor.server.close();
    }
  });

  test('connections beyond the per-address rate limit are reset', async () => {
    const tor = await startFakeTor();
    const gateway = await startSocksGateway({
      listenAddress: '127.0.0.1', port: 0, upstream: { host: '127.0.0.1', port: tor.port },
      allowlist: new SubnetAllowlist(['127.0.0.0/8']), limiter: new RateLimiter({ perMinute: 2, now: () => 0 }),
      credentials: createCredentialChecker(USERS), log: silentLog,
    });
    try {
      const replies: number[][] = [];
      for (let i = 0; i < 3; i++) {
        const c = await dial(gateway.port);
        if (!c.socket.destroyed) c.socket.write(Buffer.of(5, 1, 2));
        replies.push([...(await c.read(2))]);
        c.socket.destroy();
      }
      assert.deepEqual(replies, [[5, 2], [5, 2], []]);
      assert.equal(gateway.stats.refusedRate, 1);
    } finally {
      await gateway.stop();
      tor.server.close();
    }
  });
});
