/**
 * The daemon's local API over a Unix socket (mode 0660, group torvm): the CLI's
 * way in. Every request body is checked against api/schema.ts before anything
 * changes; a bad request changes nothing.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, chownSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { TorvmError } from '../core/errors.ts';
import type { DaemonStatus } from './schema.ts';
import { dispatch, type DaemonControl, type Route } from './routes.ts';

const MAX_BODY = 64 * 1024;

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new TorvmError('ERR_USAGE', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new TorvmError('ERR_USAGE', 'request body is not JSON');
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** Whether a daemon already answers on `path`. */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/**
 * Serves `routes` on a Unix socket that only root and the torvm group may
 * open (mode 0660): the file permissions are the authentication.
 */
export async function startApiServer(socketPath: string, routes: readonly Route[], control: DaemonControl, group: { gid: number } | null): Promise<Server> {
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  if (existsSync(socketPath)) {
    if (await socketAlive(socketPath)) throw new TorvmError('ERR_USAGE', `a TorVM daemon is already running (${socketPath})`, { hint: 'use `torvm status` or `torvm down`' });
    unlinkSync(socketPath); // left by a crashed daemon
  }
  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (req.method === 'GET' && path === '/v1/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
        const write = (s: DaemonStatus) => res.write(`event: status\ndata: ${JSON.stringify(s)}\n\n`);
        write(control.status());
        const off = control.subscribe(write);
        req.on('close', off);
        return;
      }
      const result = await dispatch(routes, control, req.method ?? 'GET', path, () => readJson(req));
      send(res, result.code, result.json);
    })().catch((err: unknown) => send(res, 500, { error: { code: 'ERR_INTERNAL', message: String(err) } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  // Root and the torvm group only.
  chmodSync(socketPath, 0o660);
  if (group) chownSync(socketPath, 0, group.gid);
  return server;
}
