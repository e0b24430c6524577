/** The CLI's client of the daemon's Unix-socket API. */
import { request } from 'node:http';
import { TorvmError } from '../core/errors.ts';
import { errorBodySchema, statusSchema, type DaemonStatus, type StopRequest } from './schema.ts';

function call(socketPath: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000): Promise<{ code: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, timeout: timeoutMs, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ code: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (err) {
          reject(new TorvmError('ERR_INTERNAL', 'the daemon sent a reply that is not JSON', { cause: err }));
        }
      });
    });
    req.on('timeout', () => req.destroy(new TorvmError('ERR_COMMAND_TIMEOUT', `the daemon did not answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof TorvmError) return reject(err);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') return reject(new TorvmError('ERR_NOT_AVAILABLE', `no TorVM daemon is running (${socketPath})`, { hint: 'start it with `sudo torvm up`' }));
      if (err.code === 'EACCES') return reject(new TorvmError('ERR_NOT_ROOT', `not allowed to talk to the TorVM daemon (${socketPath})`, { hint: 'use sudo, or join the torvm group' }));
      reject(new TorvmError('ERR_INTERNAL', `cannot reach the daemon: ${err.message}`, { cause: err }));
    });
    if (body !== undefined) req.end(JSON.stringify(body));
    else req.end();
  });
}

function apiError(code: number, json: unknown): TorvmError {
  const parsed = errorBodySchema.safeParse(json);
  return new TorvmError(code === 400 ? 'ERR_USAGE' : 'ERR_INTERNAL', parsed.success ? parsed.data.error.message : `the daemon answered ${code}`);
}

export async function getStatus(socketPath: string): Promise<DaemonStatus> {
  const { code, json } = await call(socketPath, 'GET', '/v1/status');
  if (code !== 200) throw apiError(code, json);
  return statusSchema.parse(json);
}

export async function requestStop(socketPath: string, stop: StopRequest): Promise<void> {
  const { code, json } = await call(socketPath, 'POST', '/v1/stop', stop);
  if (code !== 202) throw apiError(code, json);
}
