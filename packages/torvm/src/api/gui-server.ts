/**
 * The GUI's way in: an HTTP server on 127.0.0.1 that serves the same route
 * table as the Unix socket, the GUI's static files and an event stream.
 *
 * Any web page the user visits can send requests to 127.0.0.1, so every
 * request passes, in this order (Tailscale's LocalAPI is the model):
 *   1. Host must be exactly 127.0.0.1:PORT or localhost:PORT      else 421 (DNS rebinding)
 *   2. Origin, if sent, must be exactly the GUI's own origin      else 403 (CSRF, cross-site reads)
 *      Sec-Fetch-Site, if sent, must be same-origin or none       else 403
 *   3. /v1/* must carry the per-run token in X-Torvm-Token         else 401
 *   4. a request with a body must say Content-Type application/json else 415
 *   5. the route's schema checks the body                         else 400, nothing changes
 * Responses never carry CORS headers; every response carries a strict CSP,
 * X-Frame-Options DENY and no-store. WebSocket upgrades are refused.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { Socket } from 'node:net';
import { TorvmError } from '../core/errors.ts';
import type { DaemonStatus } from './schema.ts';
import type { LogLine } from '../log/ring-buffer.ts';
import { dispatch, type DaemonControl, type Route } from './routes.ts';

/** The header the GUI sends the token in (never a cookie, never the URL query). */
export const TOKEN_HEADER = 'x-torvm-token';

const MAX_BODY = 64 * 1024;
const MAX_EVENT_STREAMS = 16;
const HEARTBEAT_MS = 15_000;

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': [
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
    "font-src 'self'", "manifest-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), usb=(), serial=(), bluetooth=()',
  'cache-control': 'no-store',
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

/** The GUI's built files, held in memory: a path like `/assets/index-ab12.js` → its bytes. */
export type GuiAssets = ReadonlyMap<string, { type: string; body: Buffer }>;

/** Reads a Vite build (`index.html` and `assets/`) into memory. Missing dir → empty map (the API still works). */
export function loadGuiAssets(dir: string): GuiAssets {
  const assets = new Map<string, { type: string; body: Buffer }>();
  if (!existsSync(dir)) return assets;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const type = CONTENT_TYPES[extname(name)];
        if (type) assets.set(`/${relative(dir, full).split(sep).join('/')}`, { type, body: readFileSync(full) });
      }
    }
  };
  walk(dir);
  return assets;
}

export interface GuiServerOptions {
  /** 0 picks a free port. */
  port: number;
  routes: readonly Route[];
  control: DaemonControl;
  assets: GuiAssets;
  /** Tests pass a fixed token; otherwise 32 random bytes per run. */
  token?: string;
}

export interface GuiServer {
  port: number;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  token: string;
  /** The URL to open: the token rides in the fragment, which browsers never send to a server. */
  url: string;
  close(): Promise<void>;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new TorvmError('ERR_USAGE', 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new TorvmError('ERR_USAGE', 'request body is not JSON'));
      }
    });
  });
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { ...SECURITY_HEADERS, 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const refuse = (res: ServerResponse, code: number, message: string): void => sendJson(res, code, { error: { code: 'ERR_USAGE', message } });

/** A log line as the GUI sees it (the raw JSON stays in the daemon). */
function publicLogLine(l: LogLine): { time: number; level: string; component: string; msg: string } {
  return { time: l.time, level: l.level, component: l.component, msg: l.msg };
}

/** Starts the GUI server on 127.0.0.1 only. */
export async function startGuiServer(o: GuiServerOptions): Promise<GuiServer> {
  const { control, routes, assets } = o;
  const token = o.token ?? randomBytes(32).toString('base64url');
  const tokenDigest = digest(token);
  let port = 0;
  let openStreams = 0;

  const tokenOk = (req: IncomingMessage): boolean => {
    const given = req.headers[TOKEN_HEADER];
    return typeof given === 'string' && timingSafeEqual(digest(given), tokenDigest);
  };

  /** Steps 1 and 2 of the header comment; returns false after refusing. */
  function checkOrigin(req: IncomingMessage, res: ServerResponse): boolean {
    const host = req.headers.host;
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) {
      refuse(res, 421, 'wrong Host header: TorVM answers only to 127.0.0.1 and localhost');
      return false;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${host}`) {
      refuse(res, 403, 'cross-origin requests are refused');
      return false;
    }
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      refuse(res, 403, 'cross-site requests are refused');
      return false;
    }
    return true;
  }

  function serveEvents(req: IncomingMessage, res: ServerResponse): void {
    if (openStreams >= MAX_EVENT_STREAMS) return refuse(res, 429, 'too many event streams');
    openStreams += 1;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('status', control.status());
    const offStatus = control.subscribe((s: DaemonStatus) => send('status', s));
    const offLogs = control.subscribeLogs((l) => send('log', publicLogLine(l)));
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    res.on('close', () => {
      openStreams -= 1;
      clearInterval(heartbeat);
      offStatus();
      offLogs();
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!checkOrigin(req, res)) return;
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';

    if (!path.startsWith('/v1/')) {
      // Static files: public code, so no token (the page reads its token from the URL fragment).
      if (method !== 'GET' && method !== 'HEAD') return refuse(res, 405, 'method not allowed');
      const asset = assets.get(path === '/' ? '/index.html' : path);
      if (!asset) {
        if (path === '/') return refuse(res, 503, 'the GUI is not built: run `npm run build -w @torvm/gui` (or set TORVM_GUI_DIR)');
        return refuse(res, 404, 'not found');
      }
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'content-length': asset.body.length });
      res.end(method === 'HEAD' ? undefined : asset.body);
      return;
    }

    if (!tokenOk(req)) return refuse(res, 401, 'missing or wrong token: open the GUI with `torvm gui`');
    if (method === 'GET' && path === '/v1/events') return serveEvents(req, res);
    const hasBody = method !== 'GET' && method !== 'HEAD' && (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0' || req.headers['transfer-encoding'] !== undefined);
    if (hasBody && !/^application\/json(;|$)/.test(req.headers['content-type'] ?? '')) return refuse(res, 415, 'request bodies must be application/json');
    const result = await dispatch(routes, control, method, path, () => readJson(req));
    sendJson(res, result.code, result.json);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) } });
      else res.destroy();
    });
  });
  // No WebSockets here: the event stream is SSE over a checked request.
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => socket.destroy());
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new TorvmError('ERR_USAGE', `cannot listen on 127.0.0.1:${o.port} for the GUI: ${err.message}`, { cause: err, hint: 'set api.guiPort to 0 to pick a free port' })));
    server.listen({ host: '127.0.0.1', port: o.port }, () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new TorvmError('ERR_INTERNAL', 'the GUI server has no TCP address');
  port = address.port;
  const origin = `http://127.0.0.1:${port}`;
  return {
    port, origin, token,
    url: `${origin}/#token=${token}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
