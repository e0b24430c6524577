/**
 * `torvm proxy show|set|clear`: the upstream proxy Tor uses to reach its
 * first hop. The password never goes on the command line (other users can
 * read argv): it comes from --password-file or standard input.
 */
import type { Command } from 'commander';
import { Argument, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { TorvmError } from '../../core/errors.ts';
import { changeResultSchema, proxyStatusSchema, type ProxyRequest } from '../../api/routes-tor.ts';
import type { CliIo, GlobalOptions } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';
import { describeChange } from './bridges.ts';
import { callDaemon } from './newnym.ts';

interface SetOptions extends GlobalOptions {
  username?: string;
  passwordFile?: string;
  passwordStdin?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `host:port` (the daemon checks the host's grammar); null when there is no numeric port. */
export function splitHostPort(value: string): { host: string; port: number } | null {
  const m = /^([^:\s]+):(\d{1,5})$/.exec(value);
  return m ? { host: m[1] ?? '', port: Number(m[2]) } : null;
}

/** The first line of a password source, without its line break. */
function firstLine(text: string): string {
  return text.split(/\r?\n/)[0] ?? '';
}

export function registerProxyCommands(program: Command, io: CliIo, run: CommandRunnerFn): void {
  const proxy = program.command('proxy').description("the upstream proxy Tor connects through (when the network allows no direct connections)");

  proxy.command('show')
    .description('show the upstream proxy (never its password)')
    .action(run(async (opts) => {
      const p = await callDaemon(opts, 'GET', '/v1/proxy', proxyStatusSchema);
      io.out(opts.json ? JSON.stringify(p) : p.type === 'none' ? 'proxy: none (Tor connects directly)'
        : `proxy: ${p.type} ${p.host ?? ''}:${p.port ?? ''}${p.username !== undefined ? ` as ${p.username}${p.hasPassword ? ' (password set)' : ''}` : ''}`);
      return 0;
    }));

  proxy.command('set')
    .description('use a proxy: https (an HTTP proxy that supports CONNECT), socks5 or socks4')
    .addArgument(new Argument('<type>', 'proxy type').choices(['https', 'socks5', 'socks4']))
    .argument('<host:port>', 'the proxy address, e.g. 192.0.2.1:3128')
    .option('--username <name>', 'user name (https, socks5)')
    .addOption(new Option('--password-file <file>', 'read the password from the first line of this file'))
    .option('--password-stdin', 'read the password from standard input')
    .action(run(async (o, positionals) => {
      const opts = o as SetOptions;
      const [type, address] = positionals as [ProxyRequest['type'], string | undefined];
      const hostPort = splitHostPort(address ?? '');
      if (!hostPort) throw new TorvmError('ERR_USAGE', 'the proxy address must be HOST:PORT');
      let password: string | undefined;
      if (opts.passwordFile !== undefined) password = firstLine(readFileSync(opts.passwordFile, 'utf8'));
      else if (opts.passwordStdin) password = firstLine(await readStdin());
      if ((opts.username === undefined) !== (password === undefined)) throw new TorvmError('ERR_USAGE', 'give --username together with --password-file or --password-stdin');
      if (type === 'socks4' && opts.username !== undefined) throw new TorvmError('ERR_USAGE', 'socks4 proxies take no user name or password');
      const body: ProxyRequest = { type, host: hostPort.host, port: hostPort.port };
      if (opts.username !== undefined) body.username = opts.username;
      if (password !== undefined) body.password = password;
      const r = await callDaemon(opts, 'PUT', '/v1/proxy', changeResultSchema, body);
      io.out(opts.json ? JSON.stringify(r) : describeChange(r, `proxy set to ${type} ${address ?? ''}`));
      return 0;
    }));

  proxy.command('clear')
    .description('stop using a proxy: Tor connects directly again')
    .action(run(async (opts) => {
      const r = await callDaemon(opts, 'PUT', '/v1/proxy', changeResultSchema, { type: 'none' });
      io.out(opts.json ? JSON.stringify(r) : describeChange(r, 'proxy cleared'));
      return 0;
    }));
}
