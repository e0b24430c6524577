/**
 * `torvm newnym`, and the small API caller the Tor feature commands share
 * (`torvm bridges`, `torvm proxy`). Everything goes through the daemon's API,
 * which validates, saves and applies; the CLI only formats.
 */
import type { Command } from 'commander';
import { request } from 'node:http';
import type { z } from 'zod';
import { TorvmError } from '../../core/errors.ts';
import { errorBodySchema } from '../../api/schema.ts';
import { newnymResultSchema } from '../../api/routes-tor.ts';
import { effectiveConfig, type CliIo, type GlobalOptions } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';
import { registerBridgesCommands } from './bridges.ts';
import { registerProxyCommands } from './proxy.ts';

/**
 * One request to the daemon's Unix-socket API; the answer is checked against
 * `schema`. An error body becomes a TorvmError with the daemon's message
 * (400 -> ERR_USAGE, so the CLI exits 2 on bad input).
 */
export async function callDaemon<S extends z.ZodType>(opts: GlobalOptions, method: 'GET' | 'POST' | 'PUT', path: string, schema: S, body?: unknown, timeoutMs = 30_000): Promise<z.output<S>> {
  const { config } = await effectiveConfig(opts);
  const socketPath = config.api.socketPath;
  const { code, json } = await new Promise<{ code: number; json: unknown }>((resolve, reject) => {
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
  if (code < 200 || code > 299) {
    const parsed = errorBodySchema.safeParse(json);
    const message = parsed.success ? parsed.data.error.message : `the daemon answered ${code}`;
    const errCode = parsed.success && parsed.data.error.code === 'ERR_CONFIG_INVALID' ? 'ERR_CONFIG_INVALID' : code === 400 ? 'ERR_USAGE' : code === 501 ? 'ERR_NOT_AVAILABLE' : 'ERR_INTERNAL';
    throw new TorvmError(errCode, message);
  }
  return schema.parse(json);
}

/** Registers `newnym`, `bridges` and `proxy`. */
export function registerTorFeatureCommands(program: Command, io: CliIo, run: CommandRunnerFn): void {
  program.command('newnym')
    .description('use new Tor circuits for new connections ("new identity"); Tor rate-limits this to about once every 10 s')
    .action(run(async (opts) => {
      const r = await callDaemon(opts, 'POST', '/v1/newnym', newnymResultSchema);
      io.out(opts.json ? JSON.stringify(r) : r.message);
      return 0;
    }));
  registerBridgesCommands(program, io, run);
  registerProxyCommands(program, io, run);
}
