/**
 * Upstream proxies for the end-to-end tests, run inside the harness's
 * "internet" namespace: an HTTP CONNECT proxy and a SOCKS5 proxy, both with
 * required user name and password, and a SOCKS4 proxy (SOCKS4 has no
 * password). They relay only to the test network's addresses (10.99.0.0/24)
 * and log every attempt as one JSON line.
 *
 *   const proxies = await startProxies(network, { username, password });
 *   proxies.http   // { address, port }  (Tor's HTTPSProxy)
 *   proxies.socks  // { address, port }  (Tor's Socks5Proxy)
 *   proxies.socks4 // { address, port }  (Tor's Socks4Proxy)
 *   proxies.attempts()  // [{ kind: 'http'|'socks5'|'socks4', ok, target, reason }]
 *   await proxies.dropConnections();  // closes every relayed connection (Tor must reconnect)
 *   await proxies.stop();
 *
 * Run as a script (`node --import tsx proxies.ts CONFIG_JSON`), this file is
 * the server process itself; it prints READY once both listen.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Socket, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startInInternet } from './internet-process.ts';
import { ipIn } from './netns.ts';
import type { TorNetwork } from './tor-network.ts';
import { waitFor } from './wait.ts';

export const PROXY_ADDRESSES = { http: '10.99.0.60', socks: '10.99.0.61', socks4: '10.99.0.62' } as const;
export const PROXY_PORTS = { http: 3128, socks: 1080, socks4: 1080 } as const;

interface ProxyConfig {
  username: string;
  password: string;
  logFile: string;
}

export interface ProxyAttempt {
  kind: 'http' | 'socks5' | 'socks4';
  ok: boolean;
  target: string;
  reason: string;
}

export interface Proxies {
  http: { address: string; port: number };
  socks: { address: string; port: number };
  socks4: { address: string; port: number };
  attempts(): ProxyAttempt[];
  /** Closes every connection the proxies relay now (SIGUSR1 to the server); resolves when it confirmed. */
  dropConnections(): Promise<void>;
  stop(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/** Starts both proxies in the network's internet namespace (bounded wait for READY). */
export async function startProxies(network: TorNetwork, creds: { username: string; password: string }): Promise<Proxies> {
  for (const address of Object.values(PROXY_ADDRESSES)) {
    await ipIn(network.namespaces.internet, ['addr', 'replace', `${address}/32`, 'dev', 'lo']);
  }
  const logFile = join(network.workDir, 'proxies.log');
  writeFileSync(logFile, '');
  const config: ProxyConfig = { ...creds, logFile };
  const server = await startInInternet(network, SELF, config, 'the test proxies');
  const { child, stop } = server;
  return {
    http: { address: PROXY_ADDRESSES.http, port: PROXY_PORTS.http },
    socks: { address: PROXY_ADDRESSES.socks, port: PROXY_PORTS.socks },
    socks4: { address: PROXY_ADDRESSES.socks4, port: PROXY_PORTS.socks4 },
    async dropConnections() {
      const before = (server.output().match(/DROPPED/g) ?? []).length;
      if (child.pid === undefined || child.exitCode !== null) throw new Error(`proxies are not running: ${server.output()}`);
      process.kill(child.pid, 'SIGUSR1');
      await waitFor(() => (server.output().match(/DROPPED/g) ?? []).length > before, { timeoutMs: 10_000, what: 'the proxies to drop their connections', diagnose: () => server.output() });
    },
    attempts: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProxyAttempt) : []),
    stop,
  };
}

// ---------------------------------------------------------------------------
// The server process.

const TEST_NETWORK = /^10\.99\.0\.\d{1,3}$/;
/** Relayed connections, closed together on SIGUSR1. */
const relayed = new Set<Socket>();

function pipeTo(client: Socket, host: string, port: number, onOpen: (upstream: Socket) => void, onFail: () => void): void {
  const upstream = new Socket();
  upstream.once('error', () => { onFail(); client.destroy(); });
  upstream.connect(port, host, () => {
    relayed.add(client);
    client.once('close', () => relayed.delete(client));
    onOpen(upstream);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
}

function httpConnectProxy(cfg: ProxyConfig): Server {
  const expected = `Basic ${Buffer.from(`${cfg.username}:${cfg.password}`).toString('base64')}`;
  const log = (a: ProxyAttempt) => appendFileSync(cfg.logFile, `${JSON.stringify(a)}\n`);
  return createServer((client) => {
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) { if (head.length > 8192) client.destroy(); return; }
      client.off('data', onData);
      client.pause();
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      const lines = head.slice(0, end).split('\r\n');
      const m = /^CONNECT ([0-9.]+):(\d+) HTTP\/1\.[01]$/.exec(lines[0] ?? '');
      const auth = lines.find((l) => /^proxy-authorization:/i.test(l))?.replace(/^proxy-authorization:\s*/i, '');
      const target = m ? `${m[1]}:${m[2]}` : (lines[0] ?? '').slice(0, 60);
      if (!m) { log({ kind: 'http', ok: false, target, reason: 'not CONNECT' }); client.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n'); return; }
      if (auth !== expected) { log({ kind: 'http', ok: false, target, reason: auth === undefined ? 'no credentials' : 'wrong credentials' }); client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="torvm-test"\r\n\r\n'); return; }
      if (!TEST_NETWORK.test(m[1] ?? '')) { log({ kind: 'http', ok: false, target, reason: 'outside the test network' }); client.end('HTTP/1.1 403 Forbidden\r\n\r\n'); return; }
      pipeTo(client, m[1] ?? '', Number(m[2]), (upstream) => {
        log({ kind: 'http', ok: true, target, reason: 'connected' });
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        if (rest.length > 0) upstream.write(rest);
        client.resume();
      }, () => { log({ kind: 'http', ok: false, target, reason: 'upstream refused' }); client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'); });
    };
    client.on('data', onData);
    client.on('error', () => client.destroy());
  });
}

/** SOCKS5 (RFC 1928) with username/password auth (RFC 1929) only; CONNECT to IPv4 only. */
function socks5Proxy(cfg: ProxyConfig): Server {
  const log = (a: ProxyAttempt) => appendFileSync(cfg.logFile, `${JSON.stringify(a)}\n`);
  return createServer((client) => {
    let buf = Buffer.alloc(0);
    let stage: 'greeting' | 'auth' | 'request' = 'greeting';
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (stage === 'greeting') {
        if (buf.length < 2 || buf.length < 2 + (buf[1] ?? 0)) return;
        const methods = [...buf.subarray(2, 2 + (buf[1] ?? 0))];
        buf = buf.subarray(2 + (buf[1] ?? 0));
        if (!methods.includes(0x02)) { log({ kind: 'socks5', ok: false, target: '', reason: 'no credentials' }); client.end(Buffer.from([5, 0xff])); return; }
        client.write(Buffer.from([5, 0x02]));
        stage = 'auth';
      }
      if (stage === 'auth') {
        if (buf.length < 2) return;
        const ulen = buf[1] ?? 0;
        if (buf.length < 3 + ulen) return;
        const plen = buf[2 + ulen] ?? 0;
        if (buf.length < 3 + ulen + plen) return;
        const user = buf.subarray(2, 2 + ulen).toString();
        const pass = buf.subarray(3 + ulen, 3 + ulen + plen).toString();
        buf = buf.subarray(3 + ulen + plen);
        if (user !== cfg.username || pass !== cfg.password) { log({ kind: 'socks5', ok: false, target: '', reason: 'wrong credentials' }); client.end(Buffer.from([1, 1])); return; }
        client.write(Buffer.from([1, 0]));
        stage = 'request';
      }
      if (stage === 'request') {
        if (buf.length < 10) return;
        if (buf[1] !== 1 || buf[3] !== 1) { log({ kind: 'socks5', ok: false, target: '', reason: 'unsupported request' }); client.end(Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0])); return; }
        const host = [...buf.subarray(4, 8)].join('.');
        const port = buf.readUInt16BE(8);
        const rest = buf.subarray(10);
        const target = `${host}:${port}`;
        client.off('data', onData);
        client.pause();
        if (!TEST_NETWORK.test(host)) { log({ kind: 'socks5', ok: false, target, reason: 'outside the test network' }); client.end(Buffer.from([5, 2, 0, 1, 0, 0, 0, 0, 0, 0])); return; }
        pipeTo(client, host, port, (upstream) => {
          log({ kind: 'socks5', ok: true, target, reason: 'connected' });
          client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
          if (rest.length > 0) upstream.write(rest);
          client.resume();
        }, () => { log({ kind: 'socks5', ok: false, target, reason: 'upstream refused' }); client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])); });
      }
    };
    client.on('data', onData);
    client.on('error', () => client.destroy());
  });
}

/** SOCKS4 (no SOCKS4a, no auth: the user id is ignored); CONNECT only. */
function socks4Proxy(cfg: ProxyConfig): Server {
  const log = (a: ProxyAttempt) => appendFileSync(cfg.logFile, `${JSON.stringify(a)}\n`);
  const reply = (code: number) => Buffer.from([0, code, 0, 0, 0, 0, 0, 0]);
  return createServer((client) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf(0, 8); // VN CD PORT(2) IP(4) USERID NUL
      if (buf.length < 9 || end === -1) { if (buf.length > 512) client.destroy(); return; }
      client.off('data', onData);
      client.pause();
      const host = [...buf.subarray(4, 8)].join('.');
      const port = buf.readUInt16BE(2);
      const rest = buf.subarray(end + 1);
      const target = `${host}:${port}`;
      if (buf[0] !== 4 || buf[1] !== 1) { log({ kind: 'socks4', ok: false, target, reason: 'unsupported request' }); client.end(reply(0x5b)); return; }
      if (!TEST_NETWORK.test(host)) { log({ kind: 'socks4', ok: false, target, reason: 'outside the test network' }); client.end(reply(0x5b)); return; }
      pipeTo(client, host, port, (upstream) => {
        log({ kind: 'socks4', ok: true, target, reason: 'connected' });
        client.write(reply(0x5a));
        if (rest.length > 0) upstream.write(rest);
        client.resume();
      }, () => { log({ kind: 'socks4', ok: false, target, reason: 'upstream refused' }); client.end(reply(0x5b)); });
    };
    client.on('data', onData);
    client.on('error', () => client.destroy());
  });
}

if (process.argv[1] !== undefined && fileURLToPath(new URL(`file://${process.argv[1]}`)) === SELF) {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as ProxyConfig;
  const servers: Array<[Server, number, string]> = [
    [httpConnectProxy(cfg), PROXY_PORTS.http, PROXY_ADDRESSES.http],
    [socks5Proxy(cfg), PROXY_PORTS.socks, PROXY_ADDRESSES.socks],
    [socks4Proxy(cfg), PROXY_PORTS.socks4, PROXY_ADDRESSES.socks4],
  ];
  await Promise.all(servers.map(([server, port, address]) => new Promise<void>((r) => server.listen(port, address, r))));
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGUSR1', () => {
    for (const socket of relayed) socket.destroy();
    process.stdout.write(`DROPPED ${relayed.size}\n`);
  });
  process.stdout.write('READY\n');
}
