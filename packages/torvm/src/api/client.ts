/** The CLI's client of the daemon's Unix-socket API: one typed call, checked against the response schema. */
import { request } from 'node:http';
import type { z } from 'zod';
import { TorvmError, type TorvmErrorCode } from '../core/errors.ts';
import { errorBodySchema, statusSchema, type DaemonStatus, type StopRequest } from './schema.ts';

function send(socketPath: string, method: string, path: string, body: unknown, timeoutMs: number): Promise<{ code: number; json: unknown }> {
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
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Maps an API error reply to the error the CLI reports (and its exit code). */
function apiError(code: number, json: unknown): TorvmError {
  const parsed = errorBodySchema.safeParse(json);
  const message = parsed.success ? parsed.data.error.message : `the daemon answered ${code}`;
  const errCode: TorvmErrorCode = parsed.success && parsed.data.error.code === 'ERR_CONFIG_INVALID' ? 'ERR_CONFIG_INVALID'
    : code === 400 ? 'ERR_USAGE' : code === 501 ? 'ERR_NOT_AVAILABLE' : 'ERR_INTERNAL';
  return new TorvmError(errCode, message);
}

/** Calls one API route and checks the reply against `schema`. */
export async function callApi<S extends z.ZodType>(socketPath: string, method: 'GET' | 'POST' | 'PUT', path: string, schema: S, body?: unknown, timeoutMs = 30_000): Promise<z.output<S>> {
  const { code, json } = await send(socketPath, method, path, body, timeoutMs);
  if (code < 200 || code > 299) throw apiError(code, json);
  return schema.parse(json);
}

export function getStatus(socketPath: string): Promise<DaemonStatus> {
  return callApi(socketPath, 'GET', '/v1/status', statusSchema, undefined, 10_000);
}

export async function requestStop(socketPath: string, stop: StopRequest): Promise<void> {
  const { code, json } = await send(socketPath, 'POST', '/v1/stop', stop, 10_000);
  if (code !== 202) throw apiError(code, json);
}
