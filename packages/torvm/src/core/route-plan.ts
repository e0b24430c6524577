/**
 * The routing TorVM wants, as data: policy rules, its routes, the TAP link and
 * the resolver. Platform code turns it into commands; tests read it.
 *
 * Design (the wg-quick model, fail-closed): TorVM never deletes or edits the
 * host's own routes. It adds policy rules in front of the main table, and the
 * routing layer blocks on its own, so a flushed firewall (nftables.service
 * reloading) leaks nothing while the watcher puts the kill switch back:
 *
 *   pref 7900  uidrange TORVM-TORVM lookup main            QEMU keeps the real uplinks (all of them, as DHCP changes them)
 *   pref 7901  ipproto udp dport 67 lookup main            DHCPv4 renewals stay on the real uplink (allowLan off)
 *   pref 7901  lookup main suppress_prefixlength 0         allowLan on: the on-link/LAN routes stay, the default route does not
 *   pref 7901  from GATEWAY/32 to SUBNET lookup main         the LAN gateway's replies reach its allowed subnets (allowLan off;
 *              suppress_prefixlength 0                     one rule per subnet, on-link routes only)
 *   pref 7902  lookup BYPASS_TABLE                         the TAP's /30, and default via VM dev TAP onlink: the LAN goes to the VM too
 *   pref 7903  lookup main suppress_prefixlength 0         (allowLan off, TAP up) reached only by lookups bound to another
 *                                                          device, since 7902 answers every other one: the kernel checking
 *                                                          a DHCP client's `default via GW dev eth0`, SO_BINDTODEVICE sockets
 *   pref 7904  prohibit                                    nothing else, even with the TAP gone
 *   pref 7904  (IPv6) prohibit                             no IPv6 beyond the local table (loopback, own addresses)
 *
 * A DHCP client re-adding a default route (any metric) or an RA adding an IPv6
 * default changes nothing: default lookups never reach the main table. With the
 * TAP gone (a host left blocked after a failed or lockdown stop) only the
 * rules without `needsTap` stay (`blockingRules`): the bypass table is empty
 * and 7904 refuses everything. Restore is "delete these rules and that
 * table", which leaves `ip -json` output byte-equal to the snapshot.
 */
import { HOST_TAP_MAC, VM_LAN_MAC } from './policy.ts';
import type { PolicyOptions } from './policy.ts';

/** First rule preference TorVM uses; the rules take RULE_PREF_BASE..RULE_PREF_BASE+4. */
export const RULE_PREF_BASE = 7900;

export type IpFamily = 4 | 6;

/** One `ip rule`, in the shape `ip -json rule` prints it. */
export interface RuleSpec {
  readonly family: IpFamily;
  readonly priority: number;
  /** Only this uid's sockets match. */
  readonly uidRange?: { readonly start: number; readonly end: number };
  /** Only packets from / to these prefixes (CIDR, e.g. 192.168.1.5/32). */
  readonly from?: string;
  readonly to?: string;
  /** Only this protocol and destination port (kernel >= 4.17 selectors). */
  readonly ipProto?: 'udp' | 'tcp';
  readonly dport?: number;
  /** `lookup TABLE`, or the `prohibit` action. */
  readonly action: { readonly kind: 'lookup'; readonly table: 'main' | number; readonly suppressPrefixLength?: number } | { readonly kind: 'prohibit' };
  /** Why the rule exists (for logs and `status`). */
  readonly why: string;
  /** Safe only while the TAP answers every unbound lookup: dropped from the routing block a stopped run leaves. */
  readonly needsTap?: boolean;
}

/** One route TorVM adds. */
export interface RouteSpec {
  readonly family: IpFamily;
  readonly table: number;
  /** `default` or a prefix such as 10.10.10.0/30. */
  readonly dst: string;
  /** Absent for an on-link route. */
  readonly gateway?: string;
  readonly dev: string;
  readonly onlink: boolean;
}

export interface TapSpec {
  readonly name: string;
  /** The host's address with prefix, e.g. 10.10.10.2/30. */
  readonly hostCidr: string;
  readonly vmAddress: string;
  /** Pinned as a permanent neighbour entry. */
  readonly vmMac: string;
  /** The TAP's own MAC, which the guest pins in turn. */
  readonly hostMac: string;
  readonly ownerUid: number;
  readonly ownerGid: number;
}

export interface RoutePlan {
  readonly tap: TapSpec;
  readonly rules: readonly RuleSpec[];
  readonly routes: readonly RouteSpec[];
  /** The only nameserver the host resolver should name. */
  readonly nameserver: string;
}

export interface RoutePlanInput {
  readonly options: PolicyOptions;
  readonly torvmGid: number;
  readonly bypassTable: number;
}

/** The /30 network of an IPv4 address, e.g. 10.10.10.2 -> 10.10.10.0/30. */
export function slash30(address: string): string {
  const parts = address.split('.').map(Number);
  const last = parts[3] ?? 0;
  return `${parts.slice(0, 3).join('.')}.${last - (last % 4)}/30`;
}

/** The whole plan, from the policy options. Pure. */
export function planRouting(input: RoutePlanInput): RoutePlan {
  const { options: o, bypassTable } = input;
  const uid = o.torvmUid;
  const onLink = { kind: 'lookup', table: 'main', suppressPrefixLength: 0 } as const;
  const lan: RuleSpec[] = o.allowLan
    ? [{ family: 4, priority: RULE_PREF_BASE + 1, action: onLink, why: 'allowLan: local routes stay, the default route is ignored' }]
    : [{ family: 4, priority: RULE_PREF_BASE + 1, ipProto: 'udp', dport: 67, action: { kind: 'lookup', table: 'main' }, why: 'DHCPv4 renewals use the real uplink' }];
  // The LAN gateway answers its clients on the LAN: only from its address, only to its subnets, only on-link.
  const gatewayReplies: RuleSpec[] = o.allowLan || !o.lanGateway
    ? []
    : o.lanGateway.allowedSubnets.map((subnet) => ({ family: 4, priority: RULE_PREF_BASE + 1, from: `${o.lanGateway?.listenAddress ?? ''}/32`, to: subnet, action: onLink, why: `the LAN gateway's replies to ${subnet}` }));
  const deviceBound: RuleSpec[] = o.allowLan
    ? []
    : [{ family: 4, priority: RULE_PREF_BASE + 3, action: onLink, needsTap: true, why: 'lookups bound to another device (gateway checks of DHCP clients) see the on-link routes' }];
  return {
    tap: { name: o.tapName, hostCidr: `${o.hostAddress}/30`, vmAddress: o.vmAddress, vmMac: VM_LAN_MAC, hostMac: HOST_TAP_MAC, ownerUid: uid, ownerGid: input.torvmGid },
    rules: [
      { family: 4, priority: RULE_PREF_BASE, uidRange: { start: uid, end: uid }, action: { kind: 'lookup', table: 'main' }, why: "QEMU's own sockets use the real uplinks" },
      ...lan,
      ...gatewayReplies,
      { family: 4, priority: RULE_PREF_BASE + 2, action: { kind: 'lookup', table: bypassTable }, why: o.allowLan ? 'the default route goes to the VM' : 'the LAN and the default route go to the VM' },
      ...deviceBound,
      { family: 4, priority: RULE_PREF_BASE + 4, action: { kind: 'prohibit' }, why: 'nothing else, even with the TAP gone' },
      { family: 6, priority: RULE_PREF_BASE + 4, action: { kind: 'prohibit' }, why: 'no IPv6 beyond the local table' },
    ],
    routes: [
      { family: 4, table: bypassTable, dst: 'default', gateway: o.vmAddress, dev: o.tapName, onlink: true },
      { family: 4, table: bypassTable, dst: slash30(o.hostAddress), dev: o.tapName, onlink: false },
    ],
    nameserver: o.vmAddress,
  };
}

/** The routing block a stopped run leaves (the TAP gone): the plan's rules that do not need the TAP, and no routes. */
export function blockingRules(plan: RoutePlan): RoutePlan {
  return { ...plan, rules: plan.rules.filter((r) => !r.needsTap), routes: [] };
}

/** What `blockingRules` leaves out: the TAP-only rules and the routes. */
export function tapOnlyRouting(plan: RoutePlan): RoutePlan {
  return { ...plan, rules: plan.rules.filter((r) => r.needsTap) };
}

/** `ip [-6] rule VERB ...` argv (without the leading `ip`). */
export function ruleArgv(rule: RuleSpec, verb: 'add' | 'del'): string[] {
  const argv = [rule.family === 6 ? '-6' : '-4', 'rule', verb, 'pref', String(rule.priority)];
  if (rule.from !== undefined) argv.push('from', rule.from);
  if (rule.to !== undefined) argv.push('to', rule.to);
  if (rule.uidRange) argv.push('uidrange', `${rule.uidRange.start}-${rule.uidRange.end}`);
  if (rule.ipProto !== undefined) argv.push('ipproto', rule.ipProto);
  if (rule.dport !== undefined) argv.push('dport', String(rule.dport));
  if (rule.action.kind === 'prohibit') argv.push('prohibit');
  else {
    argv.push('lookup', String(rule.action.table));
    if (rule.action.suppressPrefixLength !== undefined) argv.push('suppress_prefixlength', String(rule.action.suppressPrefixLength));
  }
  return argv;
}

/** `ip route VERB ...` argv (without the leading `ip`). */
export function routeArgv(route: RouteSpec, verb: 'replace' | 'del'): string[] {
  const argv = [route.family === 6 ? '-6' : '-4', 'route', verb, route.dst, ...(route.gateway !== undefined ? ['via', route.gateway] : []), 'dev', route.dev, 'table', String(route.table)];
  if (route.onlink) argv.push('onlink');
  return argv;
}

/** A rule as `ip -json rule` prints it (only the fields TorVM compares). */
export interface ObservedRule {
  priority?: number;
  table?: string;
  action?: string;
  uid_start?: number;
  uid_end?: number;
  suppress_prefixlen?: number;
  ipproto?: string;
  dport?: number;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  [key: string]: unknown;
}

/** A selector as `ip -json rule` prints it (`all`, or an address with a length that /32 leaves out), as CIDR; undefined for `all`. */
function observedPrefix(address: string | undefined, length: number | undefined): string | undefined {
  if (address === undefined || address === 'all') return undefined;
  return `${address}/${length ?? 32}`;
}

/** Whether an observed rule is exactly this spec (same priority, selector and action). */
export function ruleMatches(spec: RuleSpec, observed: ObservedRule): boolean {
  if (observed.priority !== spec.priority) return false;
  if (spec.uidRange) {
    if (observed.uid_start !== spec.uidRange.start || observed.uid_end !== spec.uidRange.end) return false;
  } else if (observed.uid_start !== undefined) return false;
  if (observed.ipproto !== spec.ipProto || observed.dport !== spec.dport) return false;
  if (observedPrefix(observed.src, observed.srclen) !== spec.from || observedPrefix(observed.dst, observed.dstlen) !== spec.to) return false;
  if (spec.action.kind === 'prohibit') return observed.action === 'prohibit';
  if (observed.action !== undefined && observed.action !== 'lookup' && observed.action !== 'to_tbl') return false;
  if (observed.table !== String(spec.action.table)) return false;
  return observed.suppress_prefixlen === spec.action.suppressPrefixLength;
}

/** The planned rules of `family` that `observed` (an `ip -json rule` list) lacks. */
export function missingRules(plan: RoutePlan, family: IpFamily, observed: readonly ObservedRule[]): RuleSpec[] {
  return plan.rules.filter((r) => r.family === family && !observed.some((o) => ruleMatches(r, o)));
}

/** The resolv.conf TorVM writes: the VM is the only resolver. */
export function renderResolvConf(nameserver: string): string {
  return [
    '# Written by TorVM: every DNS query goes through Tor in the VM.',
    '# `torvm down` or `torvm restore` puts the previous file back.',
    `nameserver ${nameserver}`,
    '',
  ].join('\n');
}
