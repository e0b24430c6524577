/**
 * The test "internet"'s web server. It logs the peer address of every request
 * (to prove a request arrived from the exit) and serves:
 *   GET /            a known page containing KNOWN_PAGE_MARKER
 *   GET /bytes/N     N bytes of a deterministic pattern (large downloads)
 *   GET /ip          the peer address as plain text
 */
import { createServer, type Server } from 'node:http';
import { appendFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

/** Text the known page contains. */
export const KNOWN_PAGE_MARKER = 'torvm-test-network-known-page-7d1f3a';

/** Largest /bytes/N served (1 GiB). */
const MAX_BYTES = 1 << 30;

/** One logged request. */
export interface HttpRequestLog {
  time: string;
  peer: string;
  peerPort: number;
  local: string;
  method: string;
  path: string;
  host: string;
}

export interface HttpServerOptions {
  addresses: readonly string[];
  port: number;
  /** One JSON line (HttpRequestLog) per request is appended here. */
  logFile: string;
}

/** The byte at offset i of /bytes/N: a cheap pattern a test can verify. */
export function patternByte(i: number): number {
  return (i * 31 + 7) & 0xff;
}

function patternChunk(start: number, length: number): Buffer {
  const chunk = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) chunk[i] = patternByte(start + i);
  return chunk;
}

function knownPage(): string {
  return `<!doctype html><title>TorVM test network</title><p>${KNOWN_PAGE_MARKER}</p>\n`;
}

/** Starts one listener per address; resolves once all are listening. */
export async function startHttpServer(opts: HttpServerOptions): Promise<{ close: () => Promise<void> }> {
  const servers: Server[] = [];
  for (const address of opts.addresses) {
    const server = createServer((req, res) => {
      const peer = req.socket.remoteAddress ?? '?';
      const local = (req.socket.address() as AddressInfo).address;
      const entry: HttpRequestLog = {
        time: new Date().toISOString(),
        peer: peer.replace(/^::ffff:/, ''),
        peerPort: req.socket.remotePort ?? 0,
        local,
        method: req.method ?? '?',
        path: req.url ?? '',
        host: req.headers.host ?? '',
      };
      appendFileSync(opts.logFile, `${JSON.stringify(entry)}\n`);
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const bytes = /^\/bytes\/(\d+)$/.exec(path);
      if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(knownPage());
      } else if (path === '/ip') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`${entry.peer}\n`);
      } else if (bytes?.[1] && Number(bytes[1]) <= MAX_BYTES) {
        const total = Number(bytes[1]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
        let sent = 0;
        const pump = (): void => {
          while (sent < total) {
            const n = Math.min(65536, total - sent);
            const ok = res.write(patternChunk(sent, n));
            sent += n;
            if (!ok) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, address, () => resolve());
    });
    servers.push(server);
  }
  return {
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
