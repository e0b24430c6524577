/**
 * The GUI server as an attack surface: every check of api/gui-server.ts is
 * tried from the outside, against a fake daemon whose state we can read.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { startGuiServer, TOKEN_HEADER, type GuiServer } from '../../src/api/gui-server.ts';
import { CORE_ROUTES, type DaemonControl } from '../../src/api/routes.ts';
import { createGuiRoutes, readLiveBridges, type TorConfSource } from '../../src/api/routes-gui.ts';
import { defaultConfig, type TorvmConfig } from '../../src/core/config.ts';
import { linuxDefaults } from '../../src/platform/linux/defaults.ts';
import type { DaemonStatus } from '../../src/api/schema.ts';
import type { LogLine } from '../../src/log/ring-buffer.ts';

const TOKEN = 'test-token-0123456789abcdef0123456789abcdef';

function fakeDaemon() {
  const statusListeners = new Set<(s: DaemonStatus) => void>();
  const logListeners = new Set<(l: LogLine) => void>();
  const calls = { start: 0, stop: [] as string[], saves: 0 };
  let config: TorvmConfig = defaultConfig(linuxDefaults);
  const status: DaemonStatus = {
    apiVersion: 1, state: 'Stopped', since: new Date(0).toISOString(), killSwitch: 'off',
    bootstrap: { progress: 0, tag: '', summary: '', problem: null },
    vm: { pid: null, accel: null, restarts: 0 },
    tor: { version: null, warnings: [], circuits: [], bandwidth: { readBps: 0, writtenBps: 0, history: [] } },
    testingNetwork: true, ended: null, lastError: null,
  };
  const logs: LogLine[] = [{ time: 1, level: 'info', component: 'daemon', msg: 'hello', raw: '{"secret":"raw"}' }];
  const control: DaemonControl = {
    status: () => status,
    subscribe: (l) => { statusListeners.add(l); return () => statusListeners.delete(l); },
    start: () => { calls.start += 1; },
    stop: (r) => { calls.stop.push(r.kind); },
    addSecret: () => {},
    config: () => config,
    updateConfig: async (next) => { calls.saves += 1; config = next; },
    tor: () => null,
    logs: () => logs,
    subscribeLogs: (l) => { logListeners.add(l); return () => logListeners.delete(l); },
  };
  const pushLog = (msg: string) => { const line = { time: Date.now(), level: 'info', component: 'serial', msg, raw: '' }; logs.push(line); for (const l of logListeners) l(line); };
  return { control, calls, getConfig: () => config, pushLog, logListenerCount: () => logListeners.size };
}

interface Reply { code: number; headers: Record<string, string | string[] | undefined>; body: string }

function call(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('GUI server security', () => {
  let server: GuiServer;
  let daemon: ReturnType<typeof fakeDaemon>;
  let good: Record<string, string>;
  const assets = new Map([
    ['/index.html', { type: 'text/html; charset=utf-8', body: Buffer.from('<!doctype html><title>TorVM</title>') }],
    ['/assets/app.js', { type: 'text/javascript; charset=utf-8', body: Buffer.from('console.log(1)') }],
  ]);

  before(async () => {
    daemon = fakeDaemon();
    server = await startGuiServer({ port: 0, routes: [...CORE_ROUTES, ...createGuiRoutes(linuxDefaults)], control: daemon.control, assets, token: TOKEN });
    good = { host: `127.0.0.1:${server.port}`, [TOKEN_HEADER]: TOKEN };
  });
  after(async () => { await server.close(); });

  it('listens on 127.0.0.1 only and puts the token in the URL fragment', () => {
    assert.equal(server.origin, `http://127.0.0.1:${server.port}`);
    assert.equal(server.url, `${server.origin}/#token=${TOKEN}`);
  });

  it('generates a long random token per run when none is given', async () => {
    const a = await startGuiServer({ port: 0, routes: CORE_ROUTES, control: daemon.control, assets });
    const b = await startGuiServer({ port: 0, routes: CORE_ROUTES, control: daemon.control, assets });
    try {
      assert.match(a.token, /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(a.token, b.token);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('answers a good request, with a strict CSP and no CORS headers', async () => {
    const r = await call(server.port, 'GET', '/v1/status', good);
    assert.equal(r.code, 200);
    assert.equal(JSON.parse(r.body).state, 'Stopped');
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['set-cookie'], undefined);
    for (const h of Object.keys(r.headers)) assert.doesNotMatch(h, /^access-control-/);
  });

  it('also accepts localhost:PORT as Host and the exact GUI origin', async () => {
    assert.equal((await call(server.port, 'GET', '/v1/status', { ...good, host: `localhost:${server.port}`, origin: `http://localhost:${server.port}` })).code, 200);
    assert.equal((await call(server.port, 'GET', '/v1/status', { ...good, origin: server.origin, 'sec-fetch-site': 'same-origin' })).code, 200);
  });

  it('refuses a request without a token (401), and with a wrong one', async () => {
    assert.equal((await call(server.port, 'GET', '/v1/status', { host: good.host! })).code, 401);
    assert.equal((await call(server.port, 'GET', '/v1/status', { ...good, [TOKEN_HEADER]: 'wrong' })).code, 401);
    assert.equal((await call(server.port, 'GET', '/v1/status', { ...good, [TOKEN_HEADER]: `${TOKEN}x` })).code, 401);
    assert.equal((await call(server.port, 'GET', '/v1/events', { host: good.host! })).code, 401);
    assert.equal((await call(server.port, 'POST', '/v1/start', { host: good.host! })).code, 401);
    assert.equal(daemon.calls.start, 0);
  });

  it('refuses a token in the query string or a cookie', async () => {
    assert.equal((await call(server.port, 'GET', `/v1/status?token=${TOKEN}`, { host: good.host! })).code, 401);
    assert.equal((await call(server.port, 'GET', '/v1/status', { host: good.host!, cookie: `${TOKEN_HEADER}=${TOKEN}; token=${TOKEN}` })).code, 401);
  });

  it('refuses foreign and DNS-rebinding Host headers with 421, even with the token', async () => {
    for (const host of ['evil.example', `evil.example:${server.port}`, '127.0.0.1', `127.0.0.1:${server.port + 1}`, `[::1]:${server.port}`, `127.0.0.1.nip.io:${server.port}`, `localhost.:${server.port}`, `LOCALHOST:${server.port}`]) {
      const r = await call(server.port, 'GET', '/v1/status', { ...good, host });
      assert.equal(r.code, 421, `Host ${host}`);
    }
    // Static files too: a rebinding page must not even read the GUI.
    assert.equal((await call(server.port, 'GET', '/', { host: 'evil.example' })).code, 421);
  });

  it('refuses foreign Origins with 403, on reads, writes and the event stream', async () => {
    for (const origin of ['http://evil.example', 'null', `https://127.0.0.1:${server.port}`, `http://127.0.0.1:${server.port + 1}`, `http://localhost:${server.port}`]) {
      assert.equal((await call(server.port, 'GET', '/v1/status', { ...good, origin })).code, 403, `Origin ${origin}`);
    }
    assert.equal((await call(server.port, 'POST', '/v1/start', { ...good, origin: 'http://evil.example' })).code, 403);
    assert.equal((await call(server.port, 'GET', '/v1/events', { ...good, origin: 'http://evil.example' })).code, 403);
    assert.equal((await call(server.port, 'GET', '/', { host: good.host!, origin: 'http://evil.example' })).code, 403);
    assert.equal((await call(server.port, 'GET', '/v1/status', { ...good, 'sec-fetch-site': 'cross-site' })).code, 403);
    assert.equal(daemon.calls.start, 0);
  });

  it('refuses WebSocket upgrades', async () => {
    const closed = await new Promise<string>((resolve, reject) => {
      const s = connect(server.port, '127.0.0.1');
      let data = '';
      s.setTimeout(5000, () => { s.destroy(); reject(new Error('timeout')); });
      s.on('data', (d) => { data += d.toString(); });
      s.on('close', () => resolve(data));
      s.on('error', () => resolve(data));
      s.end(`GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n${TOKEN_HEADER}: ${TOKEN}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    });
    assert.doesNotMatch(closed, /101 Switching Protocols/);
  });

  it('serves the GUI files without the token, and nothing else', async () => {
    const index = await call(server.port, 'GET', '/', { host: good.host! });
    assert.equal(index.code, 200);
    assert.match(index.body, /<title>TorVM/);
    assert.match(String(index.headers['content-type']), /^text\/html/);
    assert.equal((await call(server.port, 'GET', '/assets/app.js', { host: good.host! })).code, 200);
    for (const path of ['/../../etc/passwd', '/assets/../../../etc/passwd', '/%2e%2e/etc/passwd', '/nope.js']) {
      assert.equal((await call(server.port, 'GET', path, { host: good.host! })).code, 404, path);
    }
    assert.equal((await call(server.port, 'POST', '/', { host: good.host! })).code, 405);
  });

  it('demands application/json for request bodies (no form posts)', async () => {
    const r = await call(server.port, 'POST', '/v1/stop', { ...good, 'content-type': 'text/plain' }, '{"kind":"user-stop"}');
    assert.equal(r.code, 415);
    assert.deepEqual(daemon.calls.stop, []);
  });

  it('refuses bad bodies on every route with 400, changing nothing', async () => {
    const json = { ...good, 'content-type': 'application/json' };
    const before = JSON.stringify(daemon.getConfig());
    const bad: Array<[string, string, string]> = [
      ['POST', '/v1/stop', '{"kind":"reboot"}'],
      ['POST', '/v1/stop', '{"kind":"user-stop","extra":1}'],
      ['POST', '/v1/stop', 'not json'],
      ['PUT', '/v1/settings', '{"memoryMiB":1}'],
      ['PUT', '/v1/settings', '{"memoryMiB":100000}'],
      ['PUT', '/v1/settings', '{"memoryMiB":"128"}'],
      ['PUT', '/v1/settings', '{"accel":"turbo"}'],
      ['PUT', '/v1/settings', '{"lockdown":"yes"}'],
      ['PUT', '/v1/settings', '{"logLevel":"loud"}'],
      ['PUT', '/v1/settings', '{"qemuBinary":"/tmp/evil"}'],
      ['PUT', '/v1/settings', '{"allowLan":true,"memoryMiB":12}'],
      ['PUT', '/v1/settings', '[]'],
      ['PUT', '/v1/settings', 'null'],
    ];
    for (const [method, path, body] of bad) {
      const r = await call(server.port, method, path, json, body);
      assert.equal(r.code, 400, `${method} ${path} ${body}: ${r.body}`);
      assert.equal(typeof JSON.parse(r.body).error.message, 'string');
    }
    assert.equal(JSON.stringify(daemon.getConfig()), before);
    assert.equal(daemon.calls.saves, 0);
    assert.deepEqual(daemon.calls.stop, []);
  });

  it('refuses an oversized body', async () => {
    const r = await call(server.port, 'PUT', '/v1/settings', { ...good, 'content-type': 'application/json' }, JSON.stringify({ logLevel: 'info', pad: 'x'.repeat(100_000) })).catch(() => ({ code: 400 }));
    assert.equal(r.code, 400);
    assert.equal(daemon.calls.saves, 0);
  });

  it('saves good settings through updateConfig and says they apply at the next start', async () => {
    const r = await call(server.port, 'PUT', '/v1/settings', { ...good, 'content-type': 'application/json' }, JSON.stringify({ memoryMiB: 256, allowLan: true, logLevel: 'debug' }));
    assert.equal(r.code, 200, r.body);
    const reply = JSON.parse(r.body);
    assert.equal(reply.appliesAt, 'next-start');
    assert.equal(reply.settings.memoryMiB, 256);
    assert.equal(daemon.getConfig().vm.memoryMiB, 256);
    assert.equal(daemon.getConfig().network.allowLan, true);
    assert.equal(daemon.getConfig().log.level, 'debug');
    assert.equal(daemon.getConfig().network.lockdown, false, 'untouched fields stay');
    const read = JSON.parse((await call(server.port, 'GET', '/v1/settings', good)).body);
    assert.equal(read.settings.memoryMiB, 256);
  });

  it('serves logs without the raw JSON', async () => {
    const r = JSON.parse((await call(server.port, 'GET', '/v1/logs', good)).body);
    assert.equal(r.lines[0].msg, 'hello');
    assert.equal(r.lines[0].raw, undefined);
  });

  it('streams status and log lines as server-sent events, and unsubscribes on close', async () => {
    const received = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: '/v1/events', headers: good, timeout: 5000 }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.match(String(res.headers['content-type']), /^text\/event-stream/);
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
          if (text.includes('event: status') && !text.includes('event: log')) daemon.pushLog('serial line 1');
          if (text.includes('serial line 1')) { req.destroy(); resolve(text); }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => { if (!(e as NodeJS.ErrnoException).code?.includes('ECONNRESET')) reject(e); });
      req.end();
    });
    assert.match(received, /event: status\ndata: \{"apiVersion":1/);
    assert.match(received, /event: log\ndata: \{[^\n]*"component":"serial"[^\n]*"msg":"serial line 1"/);
    // The server sees the close a moment later; wait on it, bounded.
    for (let i = 0; i < 100 && daemon.logListenerCount() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(daemon.logListenerCount(), 0);
  });

  it('starts and stops through the table the socket serves', async () => {
    assert.equal((await call(server.port, 'POST', '/v1/start', good)).code, 202);
    assert.equal(daemon.calls.start, 1);
    assert.equal((await call(server.port, 'POST', '/v1/stop', { ...good, 'content-type': 'application/json' }, '{"kind":"user-stop"}')).code, 202);
    assert.deepEqual(daemon.calls.stop, ['user-stop']);
  });
});

describe('GET /v1/bridges/live (what the running Tor really uses)', () => {
  const fakeTor = (conf: Array<[string, string[]]>): TorConfSource & { asked: string[][] } => {
    const asked: string[][] = [];
    return { asked, getConf: async (keys) => { asked.push([...keys]); return new Map(conf); } };
  };
  const FP = '0123456789ABCDEF0123456789ABCDEF01234567';

  it('says so when no Tor runs', async () => {
    assert.deepEqual(await readLiveBridges(null), { running: false, useBridges: false, bridges: [] });
  });

  it("reports Tor's UseBridges and each bridge's transport, address and fingerprint, never the cert", async () => {
    const tor = fakeTor([['UseBridges', ['1']], ['Bridge', [`10.99.0.22:5000 ${FP}`, `obfs4 192.0.2.7:443 ${FP} cert=SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSE iat-mode=0`]]]);
    const live = await readLiveBridges(tor);
    assert.deepEqual(tor.asked, [['UseBridges', 'Bridge']]);
    assert.deepEqual(live, {
      running: true, useBridges: true,
      bridges: [{ transport: 'vanilla', address: '10.99.0.22:5000', fingerprint: FP }, { transport: 'obfs4', address: '192.0.2.7:443', fingerprint: FP }],
    });
    assert.doesNotMatch(JSON.stringify(live), /SECRET/);
  });

  it('reads an unset UseBridges as off and an unparsable line as unknown', async () => {
    assert.deepEqual(await readLiveBridges(fakeTor([['UseBridges', []], ['Bridge', []]])), { running: true, useBridges: false, bridges: [] });
    const odd = await readLiveBridges(fakeTor([['usebridges', ['1']], ['Bridge', ['carrier-pigeon 1.2.3.4:1']]]));
    assert.deepEqual(odd, { running: true, useBridges: true, bridges: [{ transport: 'unknown', address: 'unknown', fingerprint: null }] });
  });

  it('is served by the GUI route table with the token', async () => {
    const daemon = fakeDaemon();
    const server = await startGuiServer({ port: 0, routes: [...CORE_ROUTES, ...createGuiRoutes(linuxDefaults)], control: daemon.control, assets: new Map(), token: TOKEN });
    try {
      const r = await call(server.port, 'GET', '/v1/bridges/live', { host: `127.0.0.1:${server.port}`, [TOKEN_HEADER]: TOKEN });
      assert.equal(r.code, 200, r.body);
      assert.deepEqual(JSON.parse(r.body), { running: false, useBridges: false, bridges: [] });
      assert.equal((await call(server.port, 'GET', '/v1/bridges/live', { host: `127.0.0.1:${server.port}` })).code, 401);
    } finally {
      await server.close();
    }
  });
});
