/**
 * The routing `torvm companion` installs on a device, as data (PURE). Every
 * step is an `ip` argv, read top to bottom like wg-quick:
 *
 *   ip link set dev TUN up
 *   ip addr replace TUN_ADDR/32 dev TUN
 *   ip route add unreachable default metric 4294967295 table T    fail closed: if the TUN vanishes, nothing falls through
 *   ip route replace GATEWAY/32 [via ORIGINAL] dev UPLINK table T  the one path that stays: to the TorVM gateway itself
 *   ip route replace default dev TUN src TUN_ADDR table T          everything else: into the engine
 *   ip -4 rule add pref P lookup T                                 in front of main: no DHCP route can win
 *   ip -6 rule add pref P prohibit                                 IPv6 fails at once (local addresses still work)
 *
 * Down is the reverse: the rules, then the table. Only the rules and the
 * table are TorVM's; the device's own routes are never touched, so "down"
 * leaves them exactly as they were.
 *
 * The hold brackets every start, so a restart after a crash (SIGKILL) never
 * falls back to the device's own routes while the old rule and table are
 * replaced:
 *
 *   ip -4 rule add pref P-2 to GATEWAY/32 lookup main   the gateway stays reachable (and `route get` sees main)
 *   ip -4 rule add pref P-1 unreachable                 everything else fails at once
 *   ip -6 rule add pref P-1 prohibit
 *   ... remove the stale rule and table, learn the uplink, open the TUN, run `up` ...
 *   ip -4 rule del pref P-1 / ip -6 rule del pref P-1 / ip -4 rule del pref P-2   (release)
 *
 * A crash during the hold leaves it in place: the device stays blocked.
 */

import { TorvmError } from '../core/errors.ts';

/** How the device reaches one gateway address before the companion starts (from `ip route get`). */
export interface UplinkRoute {
  readonly host: string;
  readonly dev: string;
  /** The next hop, when the gateway is not on-link. */
  readonly via?: string;
}

export interface CompanionRoutingInput {
  readonly tunName: string;
  /** The TUN's own address (a /32), used as the source of routed traffic. */
  readonly tunAddress: string;
  readonly table: number;
  readonly rulePref: number;
  /** One per distinct gateway address (SOCKS and DNS may differ). */
  readonly uplinks: readonly UplinkRoute[];
}

export interface CompanionRoutingPlan {
  readonly up: readonly (readonly string[])[];
  /** Idempotent; each step may fail when there is nothing to remove. Also removes a hold. */
  readonly down: readonly (readonly string[])[];
}

export interface CompanionHoldPlan {
  /** Blocks everything but the gateways, in front of the companion's own rule. */
  readonly hold: readonly (readonly string[])[];
  /** Removes the hold (each rule may exist more than once after crashes: repeat until "not found"). */
  readonly release: readonly (readonly string[])[];
}

/** The smallest rule preference the companion may own: the hold uses P-1 and P-2. */
export const MIN_COMPANION_RULE_PREF = 3;

export function planCompanionHold(input: { rulePref: number; gatewayHosts: readonly string[] }): CompanionHoldPlan {
  const allow = String(input.rulePref - 2);
  const block = String(input.rulePref - 1);
  return {
    hold: [
      ...input.gatewayHosts.map((host) => ['-4', 'rule', 'add', 'pref', allow, 'to', `${host}/32`, 'lookup', 'main']),
      ['-4', 'rule', 'add', 'pref', block, 'unreachable'],
      ['-6', 'rule', 'add', 'pref', block, 'prohibit'],
    ],
    release: [
      ['-4', 'rule', 'del', 'pref', block],
      ['-6', 'rule', 'del', 'pref', block],
      ['-4', 'rule', 'del', 'pref', allow],
    ],
  };
}

const UNREACHABLE_METRIC = '4294967295';

export function planCompanionRouting(input: CompanionRoutingInput): CompanionRoutingPlan {
  if (!Number.isInteger(input.rulePref) || input.rulePref < MIN_COMPANION_RULE_PREF) throw new TorvmError('ERR_INTERNAL', `rulePref must be an integer >= ${MIN_COMPANION_RULE_PREF}`);
  const table = String(input.table);
  const pref = String(input.rulePref);
  const up: string[][] = [
    ['link', 'set', 'dev', input.tunName, 'up'],
    ['-4', 'addr', 'replace', `${input.tunAddress}/32`, 'dev', input.tunName],
    ['-4', 'route', 'replace', 'unreachable', 'default', 'metric', UNREACHABLE_METRIC, 'table', table],
  ];
  for (const uplink of input.uplinks) {
    up.push(['-4', 'route', 'replace', `${uplink.host}/32`, ...(uplink.via ? ['via', uplink.via] : []), 'dev', uplink.dev, 'table', table]);
  }
  up.push(
    ['-4', 'route', 'replace', 'default', 'dev', input.tunName, 'src', input.tunAddress, 'table', table],
    ['-4', 'rule', 'add', 'pref', pref, 'lookup', table],
    ['-6', 'rule', 'add', 'pref', pref, 'prohibit'],
  );
  const down: (readonly string[])[] = [
    ['-4', 'rule', 'del', 'pref', pref],
    ['-6', 'rule', 'del', 'pref', pref],
    ...planCompanionHold({ rulePref: input.rulePref, gatewayHosts: [] }).release,
    ['-4', 'route', 'flush', 'table', table],
  ];
  return { up, down };
}

/** Reads `ip -4 -json route get ADDR` output into an UplinkRoute; null when it has no device. */
export function parseRouteGet(host: string, json: string): UplinkRoute | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return null;
  }
  const first = Array.isArray(parsed) ? (parsed[0] as { dev?: unknown; gateway?: unknown } | undefined) : undefined;
  if (!first || typeof first.dev !== 'string' || first.dev === '') return null;
  return { host, dev: first.dev, ...(typeof first.gateway === 'string' ? { via: first.gateway } : {}) };
}

/** Parses HOST:PORT where HOST is an IPv4 address (the companion routes by address, so no names). */
export function parseIPv4HostPort(value: string): { host: string; port: number } | null {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(value);
  if (!m) return null;
  const host = m[1] ?? '';
  const port = Number(m[2]);
  if (host.split('.').some((o) => Number(o) > 255 || (o.length > 1 && o.startsWith('0')))) return null;
  if (port < 1 || port > 65535) return null;
  return { host, port };
}
