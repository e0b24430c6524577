/**
 * `torvm companion`: route this device's TCP and DNS through a TorVM host's
 * LAN gateway (Linux, root). The password comes from a file: a password on
 * the command line would be visible to every user in `ps`.
 */
import type { Command } from 'commander';
import { TorvmError } from '../../core/errors.ts';
import { restoreCompanionRouting, startCompanion } from '../../companion/companion.ts';
import { MIN_COMPANION_RULE_PREF, parseIPv4HostPort } from '../../companion/route-plan.ts';
import { checkIPv4, checkInterfaceName } from '../../core/validators.ts';
import { createCommandRunner } from '../../platform/exec.ts';
import type { CliIo, GlobalOptions } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';

interface CompanionFlags {
  gatewaySocks?: string;
  gatewayDns?: string;
  username?: string;
  passwordFile?: string;
  restore?: boolean;
  tun: string;
  tunAddress: string;
  table: string;
  rulePref: string;
}

const usage = (message: string) => new TorvmError('ERR_USAGE', message);

function intFlag(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw usage(`${name} must be an integer from ${min} to ${max}`);
  return n;
}

function routingFlags(flags: CompanionFlags): { tunName: string; tunAddress: string; table: number; rulePref: number } {
  const tunProblem = checkInterfaceName(flags.tun);
  if (tunProblem) throw usage(`--tun ${tunProblem}`);
  if (checkIPv4(flags.tunAddress)) throw usage('--tun-address must be an IPv4 address');
  return {
    tunName: flags.tun, tunAddress: flags.tunAddress,
    table: intFlag('--table', flags.table, 1, 2_147_483_647),
    rulePref: intFlag('--rule-pref', flags.rulePref, MIN_COMPANION_RULE_PREF, 32_765),
  };
}

async function restore(flags: GlobalOptions & CompanionFlags, io: CliIo): Promise<number> {
  const routing = routingFlags(flags);
  if (process.getuid?.() !== 0) throw new TorvmError('ERR_NOT_ROOT', 'restoring routing needs root', { hint: 'run it with sudo' });
  const wasBlocked = await restoreCompanionRouting(routing, createCommandRunner(flags.verbose ? (line) => io.err(line) : undefined));
  io.out(flags.json ? JSON.stringify({ ok: true, restored: wasBlocked }) : wasBlocked ? 'companion routing removed; this device uses its own routes again' : 'nothing to restore');
  return 0;
}

export function registerCompanionCommand(program: Command, io: CliIo, run: CommandRunnerFn): void {
  program.command('companion')
    .description("send this device's TCP and DNS through a TorVM host's LAN gateway, and nothing else (Linux, root)")
    .option('--gateway-socks <host:port>', "(required) the TorVM host's LAN gateway SOCKS5 address, e.g. 192.168.1.10:9050")
    .option('--gateway-dns <host:port>', 'its DNS address (default: the SOCKS host, port 53)')
    .option('--username <name>', '(required) a user configured on the gateway')
    .option('--password-file <file>', "(required) a file holding that user's password (never give it on the command line)")
    .option('--tun <name>', 'the TUN interface to create', 'torvmc0')
    .option('--tun-address <ipv4>', "the TUN's own address", '198.18.255.1')
    .option('--table <n>', 'the routing table the companion owns', '7912')
    .option('--rule-pref <n>', 'the ip rule preference the companion owns (it also uses the two below it while starting)', '7910')
    .option('--restore', 'open this device again after a crashed companion left it blocked (removes only the companion\'s rules and table)')
    .action(run(async (opts) => {
      const flags = opts as GlobalOptions & CompanionFlags;
      if (flags.restore) return restore(flags, io);
      if (flags.gatewaySocks === undefined) throw usage("required option '--gateway-socks <host:port>' not specified");
      if (flags.username === undefined) throw usage("required option '--username <name>' not specified");
      if (flags.passwordFile === undefined) throw usage("required option '--password-file <file>' not specified");
      const socks = parseIPv4HostPort(flags.gatewaySocks);
      if (!socks) throw usage('--gateway-socks must be IPV4:PORT');
      const dns = flags.gatewayDns === undefined ? { host: socks.host, port: 53 } : parseIPv4HostPort(flags.gatewayDns);
      if (!dns) throw usage('--gateway-dns must be IPV4:PORT');
      const { table, rulePref } = routingFlags(flags);
      if (process.getuid?.() !== 0) throw new TorvmError('ERR_NOT_ROOT', 'the companion creates a TUN and changes routing: it needs root', { hint: 'run it with sudo' });

      const runner = createCommandRunner(flags.verbose ? (line) => io.err(line) : undefined);
      const log = { info: (m: string) => io.err(m), warn: (m: string) => io.err(`warning: ${m}`) };
      const companion = await startCompanion({
        socks, dns, username: flags.username, passwordFile: flags.passwordFile,
        tunName: flags.tun, tunAddress: flags.tunAddress, table, rulePref,
      }, runner, log);
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        io.out(flags.json ? JSON.stringify({ ok: true, state: 'running', tun: companion.tunName }) : `companion running on ${companion.tunName} (Ctrl-C to stop)`);
      });
      io.err(`${signal}: restoring routing`);
      await companion.stop();
      io.out(flags.json ? JSON.stringify({ ok: true, state: 'stopped' }) : 'companion stopped; routing restored');
      return 0;
    }));
}
