/**
 * `torvm companion`: sends every TCP connection and DNS query of this device
 * (or network namespace) to a TorVM host's LAN gateway, and nothing else
 * anywhere. Linux, root.
 *
 *   1. read the password file; learn how the gateway is reached today (`ip route get`)
 *   2. remove what a crashed run left (our rule preference and table only)
 *   3. open the TUN and start the engine (netstack: TCP -> SOCKS5 CONNECT, UDP/53 -> gateway DNS)
 *   4. install the routing plan (route-plan.ts)
 *   ... run until SIGINT/SIGTERM ...
 *   5. remove the rules and the table, close the TUN
 *
 * Fails closed: if the engine dies, the routes still point at its TUN (or, once
 * the TUN is gone, at an unreachable default), so traffic goes nowhere.
 */
import { readFile } from 'node:fs/promises';
import { openTun } from '@torvm/tun-native';
import { Netstack } from '@torvm/netstack/netstack.ts';
import { tunPacketIO } from '@torvm/netstack/packet-io.ts';
import { createSocks5Dialer } from '@torvm/netstack/socks5-dialer.ts';
import { createUdpDnsTransport } from '@torvm/netstack/dns-udp-transport.ts';
import { TorvmError } from '../core/errors.ts';
import { checkCredential } from '../core/validators.ts';
import type { CommandRunner } from '../platform/exec.ts';
import { parseRouteGet, planCompanionRouting, type CompanionRoutingPlan, type UplinkRoute } from './route-plan.ts';

export interface CompanionOptions {
  socks: { host: string; port: number };
  dns: { host: string; port: number };
  username: string;
  passwordFile: string;
  tunName: string;
  tunAddress: string;
  table: number;
  rulePref: number;
}

export interface CompanionLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface RunningCompanion {
  readonly tunName: string;
  readonly plan: CompanionRoutingPlan;
  readonly engine: Netstack;
  /** Restores routing and closes the TUN. Idempotent. */
  stop(): Promise<void>;
}

const IP_TIMEOUT_MS = 10_000;

/** Reads the password: the whole file minus one trailing newline. Never logged. */
export async function readPasswordFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TorvmError('ERR_USAGE', `cannot read the password file ${path}`, { cause: err });
  }
  const password = text.replace(/\r?\n$/, '');
  const problem = checkCredential(password, 'password');
  if (problem) throw new TorvmError('ERR_USAGE', `the password file ${path}: the password ${problem}`);
  return password;
}

async function ip(runner: CommandRunner, argv: readonly string[]): Promise<string> {
  return (await runner.run('ip', [...argv], { timeoutMs: IP_TIMEOUT_MS })).stdout;
}

/** Removes our rules and table, ignoring "not there". Loops on the rules: a crash may have left more than one. */
export async function removeCompanionRouting(runner: CommandRunner, plan: CompanionRoutingPlan): Promise<void> {
  for (const step of plan.down) {
    const isRuleDel = step.includes('rule');
    for (let i = 0; i < (isRuleDel ? 16 : 1); i++) {
      try {
        await ip(runner, step);
      } catch {
        break;
      }
    }
  }
}

/** Starts the companion. The caller stops it (on a signal) with `stop()`. */
export async function startCompanion(options: CompanionOptions, runner: CommandRunner, log: CompanionLog): Promise<RunningCompanion> {
  const password = await readPasswordFile(options.passwordFile);
  const userProblem = checkCredential(options.username, 'username');
  if (userProblem) throw new TorvmError('ERR_USAGE', `--username ${userProblem}`);

  // 1-2. Clear a previous run first, so `route get` sees the device's own routing.
  const stalePlan = planCompanionRouting({ tunName: options.tunName, tunAddress: options.tunAddress, table: options.table, rulePref: options.rulePref, uplinks: [] });
  await removeCompanionRouting(runner, stalePlan);
  const uplinks: UplinkRoute[] = [];
  for (const host of [...new Set([options.socks.host, options.dns.host])]) {
    const route = parseRouteGet(host, await ip(runner, ['-4', '-json', 'route', 'get', host]));
    if (!route) throw new TorvmError('ERR_NETWORK', `no route to the gateway ${host}`, { hint: 'is this device on the TorVM host\'s LAN?' });
    uplinks.push(route);
  }
  const plan = planCompanionRouting({ tunName: options.tunName, tunAddress: options.tunAddress, table: options.table, rulePref: options.rulePref, uplinks });

  // 3. The engine, before any route points at it.
  const tun = openTun({ name: options.tunName, mtu: 1500 });
  const dnsTransport = await createUdpDnsTransport(options.dns.host, options.dns.port).catch((err: unknown) => {
    tun.close();
    throw new TorvmError('ERR_NETWORK', `cannot open the DNS channel to ${options.dns.host}:${options.dns.port}`, { cause: err });
  });
  const engine = new Netstack({
    io: tunPacketIO(tun),
    dialer: createSocks5Dialer({
      proxyHost: options.socks.host, proxyPort: options.socks.port,
      authFor: () => ({ username: options.username, password }),
    }),
    dns: { transport: dnsTransport },
    onEvent: (e) => { if (e.type === 'flow-refused') log.warn(`companion: a connection could not be opened through the gateway (${e.reason})`); },
  });
  engine.start();

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await removeCompanionRouting(runner, plan);
    engine.close();
    log.info(`companion: routing restored, ${options.tunName} closed`);
  };

  // 4. Routing, in plan order; on any failure undo what was done.
  try {
    for (const step of plan.up) await ip(runner, step);
  } catch (err) {
    await stop();
    throw new TorvmError('ERR_NETWORK', 'could not route this device through the gateway', { cause: err });
  }
  log.info(`companion: all TCP and DNS go through ${options.tunName} to ${options.socks.host}:${options.socks.port} (DNS ${options.dns.host}:${options.dns.port}); IPv6 is blocked`);
  return { tunName: tun.name, plan, engine, stop };
}
