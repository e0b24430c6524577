/**
 * `torvm bridges list|add|remove|use`. Bridge lines are secrets: `list`
 * masks them unless --reveal is given, and nothing here logs them.
 */
import type { Command } from 'commander';
import { parseBridgeLine } from '../../core/bridge-line.ts';
import { TorvmError } from '../../core/errors.ts';
import { bridgesStatusSchema, changeResultSchema, type BridgesRequest, type ChangeResult } from '../../api/routes-tor.ts';
import type { CliIo, GlobalOptions } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';
import { callDaemon } from './newnym.ts';

/** `obfs4 10.0.0.1:443 ABCD…` with the secret parts hidden. */
export function maskBridgeLine(line: string): string {
  const parsed = parseBridgeLine(line);
  if (!parsed.ok) return '********';
  const fp = parsed.bridge.fingerprint === undefined ? '' : ` ${parsed.bridge.fingerprint.slice(0, 4)}…`;
  return `${parsed.bridge.transport} ********${fp}`;
}

export function describeChange(r: ChangeResult, what: string): string {
  if (r.applied) return `${what}; applied to the running Tor`;
  return `${what}; ${r.note ?? 'applies at the next start'}`;
}

async function current(opts: GlobalOptions) {
  return callDaemon(opts, 'GET', '/v1/bridges', bridgesStatusSchema);
}

async function put(opts: GlobalOptions, body: BridgesRequest) {
  return callDaemon(opts, 'PUT', '/v1/bridges', changeResultSchema, body);
}

export function registerBridgesCommands(program: Command, io: CliIo, run: CommandRunnerFn): void {
  const bridges = program.command('bridges').description('Tor bridges: your own lines, or the built-in public ones (obfs4)');

  bridges.command('list')
    .description('show whether bridges are used, and the configured lines (masked unless --reveal)')
    .option('--reveal', 'print the full bridge lines (they are secrets)')
    .action(run(async (opts) => {
      const b = await current(opts);
      const reveal = (opts as GlobalOptions & { reveal?: boolean }).reveal === true;
      const lines = reveal ? b.lines : b.lines.map(maskBridgeLine);
      if (opts.json) {
        io.out(JSON.stringify({ ...b, lines }, null, 2));
      } else {
        io.out([
          `bridges:  ${b.enabled ? 'on' : 'off'}${b.enabled && b.useBuiltin ? ` (with the ${b.builtinCount} built-in obfs4 bridges)` : ''}`,
          ...lines.map((l, i) => `  ${i + 1}. ${l}`),
          ...(lines.length === 0 ? ['  (no bridge lines of your own)'] : []),
        ].join('\n'));
      }
      return 0;
    }));

  bridges.command('add')
    .description('add a bridge line (as from bridges.torproject.org) and turn bridges on; quote it or give its words')
    .argument('<line...>', 'the bridge line, e.g. "obfs4 192.0.2.1:443 FINGERPRINT cert=… iat-mode=0"')
    .action(run(async (opts, positionals) => {
      const line = positionals.join(' ').trim();
      const parsed = parseBridgeLine(line);
      if (!parsed.ok) throw new TorvmError('ERR_USAGE', `that bridge line ${parsed.error}`);
      const b = await current(opts);
      if (b.lines.includes(line)) throw new TorvmError('ERR_USAGE', 'that bridge line is already configured');
      const r = await put(opts, { enabled: true, useBuiltin: b.useBuiltin, lines: [...b.lines, line] });
      io.out(opts.json ? JSON.stringify(r) : describeChange(r, `added a ${parsed.bridge.transport} bridge`));
      return 0;
    }));

  bridges.command('remove')
    .description('remove a bridge line by its number in `torvm bridges list`; bridges turn off when none is left')
    .argument('<number>', 'its number in the list')
    .action(run(async (opts, positionals) => {
      const n = Number(positionals[0]);
      const b = await current(opts);
      if (!Number.isInteger(n) || n < 1 || n > b.lines.length) throw new TorvmError('ERR_USAGE', `no bridge number ${positionals[0] ?? ''} (there are ${b.lines.length})`);
      const lines = b.lines.filter((_, i) => i !== n - 1);
      const enabled = b.enabled && (lines.length > 0 || b.useBuiltin);
      const r = await put(opts, { enabled, useBuiltin: b.useBuiltin, lines });
      io.out(opts.json ? JSON.stringify(r) : describeChange(r, `removed bridge ${n}${b.enabled && !enabled ? ' and turned bridges off' : ''}`));
      return 0;
    }));

  bridges.command('use')
    .description('builtin: the public built-in obfs4 bridges; custom: only your lines; off: connect to Tor directly')
    .argument('<mode>', 'builtin | custom | off')
    .action(run(async (opts, positionals) => {
      const mode = positionals[0];
      const b = await current(opts);
      let body: BridgesRequest;
      if (mode === 'builtin') body = { enabled: true, useBuiltin: true, lines: b.lines };
      else if (mode === 'custom') body = { enabled: true, useBuiltin: false, lines: b.lines };
      else if (mode === 'off') body = { enabled: false, useBuiltin: b.useBuiltin, lines: b.lines };
      else throw new TorvmError('ERR_USAGE', `unknown mode "${String(mode).slice(0, 20)}" (use builtin, custom or off)`);
      const r = await put(opts, body);
      io.out(opts.json ? JSON.stringify(r) : describeChange(r, mode === 'off' ? 'bridges off' : `bridges on (${mode})`));
      return 0;
    }));
}
