/**
 * `torvm companion`: sends every TCP connection and DNS query of this device
 * (or network namespace) to a TorVM host's LAN gateway, and nothing else
 * anywhere. Linux, root.
 *
 *   1. read the password file
 *   2. hold: block everything but the gateways (route-plan.ts, planCompanionHold)
 *   3. remove what a crashed run left (our rule preference and table only)
 *   4. learn how the gateway is reached today (`ip route get`, through main)
 *   5. open the TUN and start the engine (netstack: TCP -> SOCKS5 CONNECT, UDP/53 -> gateway DNS)
 *   6. install the routing plan, then release the hold
 *   ... run until SIGINT/SIGTERM ...
 *   7. remove the rules and the table, close the TUN
 *
 * Fails closed: if the engine dies (even SIGKILL), the routes still point at
 * its TUN (or, once the TUN is gone, at an unreachable default), so traffic
 * goes nowhere; and a restart holds everything blocked until the new engine
 * and routes are in place. Only a clean stop (SIGINT/SIGTERM) or
 * `torvm companion --restore` gives a blocked device its own routes back.
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
import { parseRouteGet, planCompanionHold, planCompanionRouting, type CompanionRoutingPlan, type UplinkRoute } from './route-plan.ts';

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

/** Runs removal steps, ignoring "not there". Loops on rule deletions: crashes may have left more than one. */
async function removeSteps(runner: CommandRunner, steps: readonly (readonly string[])[]): Promise<void> {
  for (const step of steps) {
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

/** Removes our rules (including a hold) and our table. */
export async function removeCompanionRouting(runner: CommandRunner, plan: CompanionRoutingPlan): Promise<void> {
  await removeSteps(runner, plan.down);
}

/**
 * Blocks everything but the gateways. A hold left by a crash may already be
 * there ("File exists"): the add may fail, but the blocking rule must exist after.
 */
async function engageHold(runner: CommandRunner, rulePref: number, gatewayHosts: readonly string[]): Promise<void> {
  const { hold, release } = planCompanionHold({ rulePref, gatewayHosts });
  // Stale gateway exceptions first (removing them only blocks more), then the hold itself.
  await removeSteps(runner, release.filter((step) => step.includes(String(rulePref - 2))));
  for (const step of hold) await ip(runner, step).catch(() => undefined);
  for (const family of ['-4', '-6']) {
    const rules = await ip(runner, [family, 'rule', 'show', 'pref', String(rulePref - 1)]);
    if (!/unreachable|prohibit/.test(rules)) throw new TorvmError('ERR_NETWORK', `could not block this device while the companion starts (ip ${family} rule pref ${rulePref - 1})`);
  }
}

const isHoldStep = (step: readonly string[], rulePref: number) =>
  step.includes('rule') && (step.includes(String(rulePref - 1)) || step.includes(String(rulePref - 2)));

/** Whether a companion (running, crashed, or mid-start) blocks this device now: our rule or our hold is present. */
export async function companionBlocks(runner: CommandRunner, rulePref: number): Promise<boolean> {
  for (const pref of [rulePref, rulePref - 1]) {
    if ((await ip(runner, ['-4', 'rule', 'show', 'pref', String(pref)])).trim() !== '') return true;
  }
  return false;
}

/**
 * Starts the companion. The caller stops it (on a signal) with `stop()`.
 *
 * A start that fails leaves the device as it found it: open if it was open,
 * still blocked (by the hold) if a crashed run had left it blocked. Only a
 * clean stop or `torvm companion --restore` opens a blocked device.
 */
export async function startCompanion(options: CompanionOptions, runner: CommandRunner, log: CompanionLog): Promise<RunningCompanion> {
  const password = await readPasswordFile(options.passwordFile);
  const userProblem = checkCredential(options.username, 'username');
  if (userProblem) throw new TorvmError('ERR_USAGE', `--username ${userProblem}`);

  const gatewayHosts = [...new Set([options.socks.host, options.dns.host])];
  const stalePlan = planCompanionRouting({ tunName: options.tunName, tunAddress: options.tunAddress, table: options.table, rulePref: options.rulePref, uplinks: [] });
  const wasBlocked = await companionBlocks(runner, options.rulePref);
  const abandon = async (err: unknown, plan: CompanionRoutingPlan): Promise<never> => {
    if (!wasBlocked) {
      await removeCompanionRouting(runner, plan);
      throw err;
    }
    await removeSteps(runner, plan.down.filter((step) => !isHoldStep(step, options.rulePref)));
    throw new TorvmError('ERR_NETWORK', 'the companion did not start; this device stays blocked, as a crashed run left it', {
      cause: err, hint: 'fix the cause and run `torvm companion` again, or open this device with `torvm companion --restore`',
    });
  };

  // 2-3. Hold everything blocked, then clear a previous run, so `route get` sees the device's own routing.
  try {
    await engageHold(runner, options.rulePref, gatewayHosts);
  } catch (err) {
    // Without a working hold, a crashed run's rule and table are the only block left: keep them.
    if (wasBlocked) throw new TorvmError('ERR_NETWORK', 'the companion did not start; this device stays blocked', { cause: err });
    return abandon(err, stalePlan);
  }
  await removeSteps(runner, stalePlan.down.filter((step) => !isHoldStep(step, options.rulePref)));
  // 4.
  const uplinks: UplinkRoute[] = [];
  for (const host of gatewayHosts) {
    const route = parseRouteGet(host, await ip(runner, ['-4', '-json', 'route', 'get', host]).catch(() => ''));
    if (!route) return abandon(new TorvmError('ERR_NETWORK', `no route to the gateway ${host}`, { hint: 'is this device on the TorVM host\'s LAN?' }), stalePlan);
    uplinks.push(route);
  }
  const plan = planCompanionRouting({ tunName: options.tunName, tunAddress: options.tunAddress, table: options.table, rulePref: options.rulePref, uplinks });

  // 5. The engine, before any route points at it.
  let tun: ReturnType<typeof openTun>;
  try {
    tun = openTun({ name: options.tunName, mtu: 1500 });
  } catch (err) {
    return abandon(new TorvmError('ERR_NETWORK', `cannot open the TUN ${options.tunName}`, { cause: err }), plan);
  }
  let dnsTransport: Awaited<ReturnType<typeof createUdpDnsTransport>>;
  try {
    dnsTransport = await createUdpDnsTransport(options.dns.host, options.dns.port);
  } catch (err) {
    tun.close();
    return abandon(new TorvmError('ERR_NETWORK', `cannot open the DNS channel to ${options.dns.host}:${options.dns.port}`, { cause: err }), plan);
  }
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

  // 6. Routing, in plan order, then the hold goes; on any failure undo what was done.
  try {
    for (const step of plan.up) await ip(runner, step);
    await removeSteps(runner, planCompanionHold({ rulePref: options.rulePref, gatewayHosts }).release);
  } catch (err) {
    stopped = true;
    engine.close();
    return abandon(new TorvmError('ERR_NETWORK', 'could not route this device through the gateway', { cause: err }), plan);
  }
  log.info(`companion: all TCP and DNS go through ${options.tunName} to ${options.socks.host}:${options.socks.port} (DNS ${options.dns.host}:${options.dns.port}); IPv6 is blocked`);
  return { tunName: tun.name, plan, engine, stop };
}

/**
 * `torvm companion --restore`: opens a device a crashed companion left
 * blocked, by removing our rules (and a hold) and our table. Refused while a
 * companion still runs (its TUN exists): that one restores on SIGTERM.
 * Returns whether anything was blocking.
 */
export async function restoreCompanionRouting(options: Pick<CompanionOptions, 'tunName' | 'tunAddress' | 'table' | 'rulePref'>, runner: CommandRunner): Promise<boolean> {
  const tunExists = await runner.run('ip', ['link', 'show', 'dev', options.tunName], { timeoutMs: IP_TIMEOUT_MS, okExitCodes: [1] }).then((r) => r.exitCode === 0);
  if (tunExists) {
    throw new TorvmError('ERR_USAGE', `a companion is still running on ${options.tunName}`, { hint: 'stop it with Ctrl-C or SIGTERM: it restores routing itself' });
  }
  const blocked = await companionBlocks(runner, options.rulePref);
  await removeCompanionRouting(runner, planCompanionRouting({ ...options, uplinks: [] }));
  return blocked;
}
