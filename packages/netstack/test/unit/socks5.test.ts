// SOCKS5 client: message encoding, reply decoding (Tor's extended codes), and
// the dialer against a local test server on loopback.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SocksError, createSocks5Dialer } from '../../src/socks5-dialer.ts';
import { decodeConnectReply, decodeMethod, encodeAuth, encodeConnect, encodeGreeting, socksReplyMessage } from '../../src/socks5-protocol.ts';
import type { DialRequest, Upstream } from '../../src/upstream.ts';
import { startTestSocksServer, type TestSocksServer } from '../support/socks5-test-server.ts';

const request = (host: string, port: number, hostname?: string): DialRequest => ({ host, port, dstIp: '198.18.0.1', hostname, srcIp: '10.0.0.2', srcPort: 40000 });

describe('SOCKS5 messages', () => {
  it('sends IPv4 literals as ATYP 1 and names as ATYP 3', () => {
    assert.deepEqual([...encodeConnect({ host: '10.1.2.3', port: 443 })], [5, 1, 0, 1, 10, 1, 2, 3, 1, 187]);
    assert.deepEqual([...encodeConnect({ host: 'ab.onion', port: 80 })], [5, 1, 0, 3, 8, ...Buffer.from('ab.onion'), 0, 80]);
    assert.deepEqual([...encodeConnect({ host: '1.2.3.999', port: 1 })].slice(0, 5), [5, 1, 0, 3, 9], '"1.2.3.999" is a name');
    assert.throws(() => encodeConnect({ host: 'x'.repeat(256), port: 1 }));
  });

  it('offers username/password only when isolating, and encodes RFC 1929', () => {
    assert.deepEqual([...encodeGreeting(undefined)], [5, 1, 0]);
    assert.deepEqual([...encodeGreeting({ username: 'u', password: 'p' })], [5, 1, 2]);
    assert.deepEqual([...encodeAuth({ username: 'app1', password: 'x' })], [1, 4, ...Buffer.from('app1'), 1, 120]);
    assert.throws(() => encodeAuth({ username: '', password: 'x' }));
  });

  it('decodes replies, including partial input and Tor extended errors', () => {
    assert.deepEqual(decodeMethod(Uint8Array.of(5), undefined), { need: 2 });
    assert.ok('error' in decodeMethod(Uint8Array.of(5, 0xff), undefined));
    assert.ok('error' in decodeMethod(Uint8Array.of(5, 2), undefined), 'a method that was not offered is an error');
    assert.deepEqual(decodeConnectReply(Uint8Array.of(5, 0, 0, 1, 0, 0)), { need: 10 });
    assert.deepEqual(decodeConnectReply(Uint8Array.of(5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 99)), { value: { boundAddressLength: 4 }, used: 10 });
    assert.deepEqual(decodeConnectReply(Uint8Array.of(5, 0xf0, 0, 1, 0)), { error: 'onion service descriptor can not be found', code: 0xf0 });
    for (let code = 0xf0; code <= 0xf7; code++) assert.match(socksReplyMessage(code), /^onion service/);
    assert.equal(socksReplyMessage(0x05), 'connection refused');
  });
});

describe('SOCKS5 dialer', () => {
  let echo: ReturnType<typeof createServer>;
  let echoPort = 0;
  let socks: TestSocksServer;

  before(async () => {
    echo = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    echoPort = (echo.address() as AddressInfo).port;
    socks = await startTestSocksServer((r) => (r.host.startsWith('refuse') ? 0x05 : r.host.endsWith('.onion') ? 0xf2 : { host: '127.0.0.1', port: echoPort }));
  });
  after(async () => {
    await socks.close();
    echo.close();
  });

  const roundTrip = async (upstream: Upstream, text: string): Promise<string> => {
    const chunks: Uint8Array[] = [];
    const closed = new Promise<void>((resolve) =>
      upstream.attach({ data: (c) => chunks.push(c), end: () => {}, close: () => resolve(), drain: () => {} }),
    );
    upstream.write(Buffer.from(text));
    upstream.end();
    await closed;
    return Buffer.concat(chunks).toString();
  };

  it('connects by hostname with isolation credentials and relays bytes', async () => {
    const dialer = createSocks5Dialer({
      proxyHost: '127.0.0.1', proxyPort: socks.port, timeoutMs: 5000,
      authFor: (r) => ({ username: `dst:${r.host}`, password: 'x' }),
    });
    const upstream = await dialer.dial(request('example.org', 80, 'example.org'), new AbortController().signal);
    assert.equal(await roundTrip(upstream, 'ping'), 'ping');
    const last = socks.requests.at(-1)!;
    assert.deepEqual(last, { host: 'example.org', port: 80, atyp: 3, username: 'dst:example.org' });
  });

  it('reports refusals and Tor onion-service errors with their codes', async () => {
    const dialer = createSocks5Dialer({ proxyHost: '127.0.0.1', proxyPort: socks.port, timeoutMs: 5000 });
    await assert.rejects(dialer.dial(request('refuse.example', 80), new AbortController().signal), (e: unknown) => e instanceof SocksError && e.replyCode === 5);
    await assert.rejects(dialer.dial(request('abc.onion', 80), new AbortController().signal), (e: unknown) => e instanceof SocksError && e.isOnionServiceError && /introduction failed/.test(e.message));
  });

  it('fails fast when the proxy is down, and honours abort', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const down = createSocks5Dialer({ proxyHost: '127.0.0.1', proxyPort: closedPort, timeoutMs: 5000 });
    await assert.rejects(down.dial(request('1.2.3.4', 80), new AbortController().signal), SocksError);
    const silent = createServer(() => {}).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const hang = createSocks5Dialer({ proxyHost: '127.0.0.1', proxyPort: (silent.address() as AddressInfo).port, timeoutMs: 5000 });
    const controller = new AbortController();
    const pending = hang.dial(request('1.2.3.4', 80), controller.signal);
    controller.abort();
    await assert.rejects(pending, /aborted/);
    const timed = createSocks5Dialer({ proxyHost: '127.0.0.1', proxyPort: (silent.address() as AddressInfo).port, timeoutMs: 50 });
    await assert.rejects(timed.dial(request('1.2.3.4', 80), new AbortController().signal), /timed out/);
    silent.close();
  });
});
