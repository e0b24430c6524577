/**
 * A minimal meek server for the end-to-end tests, in the harness's "internet"
 * namespace: plain HTTP (no CDN, no TLS), each meek session relayed to one
 * relay's ORPort, so that relay serves as the client's meek bridge.
 *
 * The meek protocol (what obfs4proxy's meek_lite client speaks): every
 * request is a POST carrying `X-Session-Id`; its body is the next bytes from
 * the client to the bridge, and the response body is whatever the bridge sent
 * back since (possibly nothing; the client keeps polling).
 *
 *   const meek = await startMeekServer(network, { address: relay.address, port: relay.orPort });
 *   meek.url        // "http://10.99.0.66/"
 *   meek.sessions() // [{ id, upBytes, downBytes, requests }]
 *   await meek.stop();
 *
 * Run as a script (`node --import tsx meek-server.ts CONFIG_JSON`), this file
 * is the server process itself; it prints READY once it listens.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startInInternet } from './internet-process.ts';
import { ipIn } from './netns.ts';
import type { TorNetwork } from './tor-network.ts';

export const MEEK_ADDRESS = '10.99.0.66';
export const MEEK_PORT = 80;

interface MeekConfig {
  target: { address: string; port: number };
  statsFile: string;
}

export interface MeekSessionStats {
  id: string;
  upBytes: number;
  downBytes: number;
  requests: number;
}

export interface MeekServer {
  url: string;
  sessions(): MeekSessionStats[];
  stop(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);

/** Starts the server in the network's internet namespace (bounded wait for READY). */
export async function startMeekServer(network: TorNetwork, target: { address: string; port: number }): Promise<MeekServer> {
  await ipIn(network.namespaces.internet, ['addr', 'replace', `${MEEK_ADDRESS}/32`, 'dev', 'lo']);
  const statsFile = join(network.workDir, 'meek-sessions.json');
  writeFileSync(statsFile, '[]');
  const config: MeekConfig = { target, statsFile };
  const { stop } = await startInInternet(network, SELF, config, 'the meek server');
  return {
    url: `http://${MEEK_ADDRESS}/`,
    sessions: () => (existsSync(statsFile) ? JSON.parse(readFileSync(statsFile, 'utf8')) as MeekSessionStats[] : []),
    stop,
  };
}

// ---------------------------------------------------------------------------
// The server process.

/** Largest body either way, as meek-server's maxPayloadLength. */
const MAX_PAYLOAD = 0x10000;
/** How long a request waits for the bridge's first byte, then for more to coalesce. */
const FIRST_BYTE_WAIT_MS = 100;
const COALESCE_MS = 10;
/** A session nobody polled for this long is closed (meek-server uses 120 s). */
const IDLE_MS = 120_000;

interface Session {
  stats: MeekSessionStats;
  upstream: Socket;
  pending: Buffer[];
  closed: boolean;
  lastSeen: number;
  wake: (() => void) | undefined;
}

function runServer(cfg: MeekConfig): void {
  const sessions = new Map<string, Session>();
  let statsDirty = false;
  setInterval(() => {
    if (statsDirty) writeFileSync(cfg.statsFile, JSON.stringify([...sessions.values()].map((s) => s.stats)));
    statsDirty = false;
    for (const [id, s] of sessions) {
      if (Date.now() - s.lastSeen > IDLE_MS) { s.upstream.destroy(); sessions.delete(id); }
    }
  }, 500).unref();

  const open = (id: string): Session => {
    const upstream = new Socket();
    const session: Session = { stats: { id, upBytes: 0, downBytes: 0, requests: 0 }, upstream, pending: [], closed: false, lastSeen: Date.now(), wake: undefined };
    upstream.on('data', (chunk: Buffer) => { session.pending.push(chunk); session.wake?.(); });
    const onEnd = () => { session.closed = true; session.wake?.(); };
    upstream.on('close', onEnd);
    upstream.on('error', onEnd);
    upstream.connect(cfg.target.port, cfg.target.address);
    sessions.set(id, session);
    return session;
  };

  const takePending = (s: Session): Buffer => {
    const all = Buffer.concat(s.pending);
    const out = all.subarray(0, MAX_PAYLOAD);
    s.pending = all.length > MAX_PAYLOAD ? [all.subarray(MAX_PAYLOAD)] : [];
    return out;
  };

  const waitForData = (s: Session, ms: number) => new Promise<void>((resolve) => {
    if (s.pending.length > 0 || s.closed) return resolve();
    const timer = setTimeout(() => { s.wake = undefined; resolve(); }, ms);
    s.wake = () => { clearTimeout(timer); s.wake = undefined; resolve(); };
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const id = req.headers['x-session-id'];
    if (req.method !== 'POST' || typeof id !== 'string' || id.length === 0 || id.length > 200) {
      res.writeHead(400).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_PAYLOAD) { res.writeHead(413).end(); return; }
      chunks.push(chunk);
    }
    const session = sessions.get(id) ?? open(id);
    session.lastSeen = Date.now();
    session.stats.requests += 1;
    const body = Buffer.concat(chunks);
    if (body.length > 0) {
      session.stats.upBytes += body.length;
      session.upstream.write(body);
    }
    await waitForData(session, FIRST_BYTE_WAIT_MS);
    if (session.pending.length > 0) await new Promise((r) => setTimeout(r, COALESCE_MS));
    const out = takePending(session);
    if (out.length === 0 && session.closed) {
      sessions.delete(id);
      res.writeHead(404).end();
      return;
    }
    session.stats.downBytes += out.length;
    statsDirty = true;
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': out.length });
    res.end(out);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => { if (!res.headersSent) res.writeHead(500); res.end(); });
  });
  server.listen(MEEK_PORT, MEEK_ADDRESS, () => process.stdout.write('READY\n'));
  process.on('SIGTERM', () => process.exit(0));
}

if (process.argv[1] !== undefined && fileURLToPath(new URL(`file://${process.argv[1]}`)) === SELF) {
  runServer(JSON.parse(process.argv[2] ?? '{}') as MeekConfig);
}
