/**
 * `torvm newnym`, and the small API caller the Tor feature commands share
 * (`torvm bridges`, `torvm proxy`). Everything goes through the daemon's API,
 * which validates, saves and applies; the CLI only formats.
 */
import type { Command } from 'commander';
import type { z } from 'zod';
import { callApi } from '../../api/client.ts';
import { newnymResultSchema } from '../../api/routes-tor.ts';
import { effectiveConfig, type CliIo, type GlobalOptions } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';
import { registerBridgesCommands } from './bridges.ts';
import { registerProxyCommands } from './proxy.ts';

/**
 * One request to the daemon's API with this invocation's config; the answer is
 * checked against `schema`, and an error body becomes a TorvmError with the
 * daemon's message (400 -> ERR_USAGE, so the CLI exits 2 on bad input).
 */
export async function callDaemon<S extends z.ZodType>(opts: GlobalOptions, method: 'GET' | 'POST' | 'PUT', path: string, schema: S, body?: unknown, timeoutMs = 30_000): Promise<z.output<S>> {
  const { config } = await effectiveConfig(opts);
  return callApi(config.api.socketPath, method, path, schema, body, timeoutMs);
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
