/**
 * The routing TorVM wants, as data: policy rules, one route, the TAP link and
 * the resolver. Platform code turns it into commands; tests read it.
 *
 * Design (the wg-quick model, fail-closed): TorVM never deletes or edits the
 * host's own routes. It adds policy rules in front of the main table:
 *
 *   pref 7900  uidrange TORVM-TORVM lookup main            QEMU keeps the real uplinks (all of them, as DHCP changes them)
 *   pref 7901  lookup main suppress_prefixlength 0         everyone keeps on-link/LAN routes, but no default route
 *   pref 7902  lookup BYPASS_TABLE                         whose only route is: default via VM dev TAP onlink
 *   pref 7901  (IPv6) lookup main suppress_prefixlength 0
 *   pref 7902  (IPv6) prohibit                             no IPv6 default route, even one a router advertisement adds
 *
 * A DHCP client re-adding a default route (any metric) or an RA adding an IPv6
 * default changes nothing: default lookups never reach the main table. Restore
 * is "delete these rules and that table", which leaves `ip -json` output
 * byte-equal to the snapshot.
 */
import { HOST_TAP_MAC, VM_LAN_MAC } from './policy.ts';
import type { PolicyOptions } from './policy.ts';

/** First rule preference TorVM uses; the rules take RULE_PREF_BASE..RULE_PREF_BASE+2. */
export const RULE_PREF_BASE = 7900;

export type IpFamily = 4 | 6;

/** One `ip rule`, in the shape `ip -json rule` prints it. */
export interface RuleSpec {
  readonly family: IpFamily;
  readonly priority: number;
  /** Only this uid's sockets match. */
  readonly uidRange?: { readonly start: number; readonly end: number };
  /** `lookup TABLE`, or the `prohibit` action. */
  readonly action: { readonly kind: 'lookup'; readonly table: 'main' | number; readonly suppressPrefixLength?: number } | { readonly kind: 'prohibit' };
  /** Why the rule exists (for logs and `status`). */
  readonly why: string;
}

/** One route TorVM adds. */
export interface RouteSpec {
  readonly family: IpFamily;
  readonly table: number;
  readonly dst: 'default';
  readonly gateway: string;
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

/** The whole plan, from the policy options. Pure. */
export function planRouting(input: RoutePlanInput): RoutePlan {
  const { options: o, bypassTable } = input;
  const uid = o.torvmUid;
  return {
    tap: { name: o.tapName, hostCidr: `${o.hostAddress}/30`, vmAddress: o.vmAddress, vmMac: VM_LAN_MAC, hostMac: HOST_TAP_MAC, ownerUid: uid, ownerGid: input.torvmGid },
    rules: [
      { family: 4, priority: RULE_PREF_BASE, uidRange: { start: uid, end: uid }, action: { kind: 'lookup', table: 'main' }, why: "QEMU's own sockets use the real uplinks" },
      { family: 4, priority: RULE_PREF_BASE + 1, action: { kind: 'lookup', table: 'main', suppressPrefixLength: 0 }, why: 'local routes stay, the default route is ignored' },
      { family: 4, priority: RULE_PREF_BASE + 2, action: { kind: 'lookup', table: bypassTable }, why: 'the default route goes to the VM' },
      { family: 6, priority: RULE_PREF_BASE + 1, action: { kind: 'lookup', table: 'main', suppressPrefixLength: 0 }, why: 'local IPv6 routes stay, no IPv6 default route' },
      { family: 6, priority: RULE_PREF_BASE + 2, action: { kind: 'prohibit' }, why: 'no IPv6 beyond the local links' },
    ],
    routes: [{ family: 4, table: bypassTable, dst: 'default', gateway: o.vmAddress, dev: o.tapName, onlink: true }],
    nameserver: o.vmAddress,
  };
}

/** `ip [-6] rule VERB ...` argv (without the leading `ip`). */
export function ruleArgv(rule: RuleSpec, verb: 'add' | 'del'): string[] {
  const argv = [rule.family === 6 ? '-6' : '-4', 'rule', verb, 'pref', String(rule.priority)];
  if (rule.uidRange) argv.push('uidrange', `${rule.uidRange.start}-${rule.uidRange.end}`);
  if (rule.action.kind === 'prohibit') argv.push('prohibit');
  else {
    argv.push('lookup', String(rule.action.table));
    if (rule.action.suppressPrefixLength !== undefined) argv.push('suppress_prefixlength', String(rule.action.suppressPrefixLength));
  }
  return argv;
}

/** `ip route VERB ...` argv (without the leading `ip`). */
export function routeArgv(route: RouteSpec, verb: 'replace' | 'del'): string[] {
  const argv = [route.family === 6 ? '-6' : '-4', 'route', verb, route.dst, 'via', route.gateway, 'dev', route.dev, 'table', String(route.table)];
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
  [key: string]: unknown;
}

/** Whether an observed rule is exactly this spec (same priority, selector and action). */
export function ruleMatches(spec: RuleSpec, observed: ObservedRule): boolean {
  if (observed.priority !== spec.priority) return false;
  if (spec.uidRange) {
    if (observed.uid_start !== spec.uidRange.start || observed.uid_end !== spec.uidRange.end) return false;
  } else if (observed.uid_start !== undefined) return false;
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
