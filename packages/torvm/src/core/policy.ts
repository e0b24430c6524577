/**
 * The kill-switch policy as a value. Every OS renders the same value into its
 * own firewall language (nftables on Linux), so "what is allowed" is decided
 * here once, in pure code, and read as a sentence by `describePolicy()`.
 */
import { TorvmError } from './errors.ts';
import { checkIPv4, checkIPv4Cidr, checkInterfaceName } from './validators.ts';

/**
 * The MAC address the controller gives the VM's LAN NIC (`-device ...,mac=`).
 * The host pins it with a permanent neighbour entry (static ARP), so nothing
 * on the TAP can impersonate the VM.
 */
export const VM_LAN_MAC = '52:54:00:10:10:01';

/** The MAC of the host's end of the link (the TAP); the guest pins it the same way. */
export const HOST_TAP_MAC = '52:54:00:10:10:02';

/** The MAC of the VM's upstream (wan) NIC; the guest tells its two NICs apart by MAC. */
export const VM_WAN_MAC = '52:54:00:10:10:03';

/** The port the VM answers DNS on; every captured port-53 packet goes there. */
export const VM_DNS_PORT = 53;

/** The subnets `allowLan` opens when `lanSubnets` is empty: RFC 1918 and link-local. */
export const DEFAULT_LAN_SUBNETS: readonly string[] = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16'];

/** Knobs that hold in every state. */
export interface PolicyOptions {
  /** The host end of the VM link (a TAP on Linux). */
  readonly tapName: string;
  /** The host's address on the link, e.g. 10.10.10.2. */
  readonly hostAddress: string;
  /** The VM's address on the link, e.g. 10.10.10.1. */
  readonly vmAddress: string;
  /** The uid QEMU runs as; only its sockets may use the uplinks. */
  readonly torvmUid: number;
  /** Let the host reach `lanSubnets` directly (never port 53). */
  readonly allowLan: boolean;
  /** Subnets opened by `allowLan`. Already defaulted: never empty when allowLan is on. */
  readonly lanSubnets: readonly string[];
  /** Keep blocking after an explicit stop (the daemon then applies `blocked` instead of removing the table). */
  readonly lockdown: boolean;
  /** The LAN gateway's inbound ports, opened only in `connected`; absent when the gateway is off. */
  readonly lanGateway?: GatewayOpening;
}

/** What the kill switch opens for the LAN gateway: two ports on one address, for the listed subnets only. */
export interface GatewayOpening {
  readonly listenAddress: string;
  readonly socksPort: number;
  readonly dnsPort: number;
  /** Non-empty, with no subnet inside another (nft interval sets refuse overlaps). */
  readonly allowedSubnets: readonly string[];
}

/** The config's `lanGateway` section, as far as the kill switch cares. */
export interface LanGatewaySettings {
  enabled: boolean;
  listenAddress?: string | undefined;
  socksPort: number;
  dnsPort: number;
  allowedSubnets: readonly string[];
}

/**
 * What the kill switch lets through.
 * - `blocked`: loopback only (and allowLan, DHCP). Used at boot, in lockdown after stop, and when the VM is gone.
 * - `booting`: as blocked, plus the host may talk to the VM address over the TAP, and QEMU (the torvm uid) may use the uplinks.
 * - `connected`: as booting, plus any host TCP into the TAP (the VM proxies it through Tor).
 */
export type FirewallPolicy =
  | { readonly state: 'blocked'; readonly options: PolicyOptions }
  | { readonly state: 'booting'; readonly options: PolicyOptions }
  | { readonly state: 'connected'; readonly options: PolicyOptions };

export type PolicyState = FirewallPolicy['state'];
export const POLICY_STATES: readonly PolicyState[] = ['blocked', 'booting', 'connected'];

/** The subset of the config's `network` section this module needs. */
export interface NetworkSettings {
  tapName: string;
  hostAddress: string;
  vmAddress: string;
  allowLan: boolean;
  lanSubnets: readonly string[];
  lockdown: boolean;
  /** The LAN gateway; when enabled, `connected` opens its ports (see GatewayOpening). */
  lanGateway?: LanGatewaySettings;
}

const ipv4ToNumber = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);

/** Drops duplicate subnets and subnets inside another listed one; keeps the first-listed order. */
export function coalesceSubnets(cidrs: readonly string[]): string[] {
  const parsed = cidrs.map((c) => {
    const [addr = '', bits = '32'] = c.split('/');
    const prefix = Number(bits);
    const size = 2 ** (32 - prefix);
    const start = Math.floor(ipv4ToNumber(addr) / size) * size;
    return { cidr: c, start, end: start + size - 1 };
  });
  return parsed
    .filter((p, i) => !parsed.some((q, j) => j !== i && q.start <= p.start && p.end <= q.end && (q.start !== p.start || q.end !== p.end || j < i)))
    .map((p) => p.cidr);
}

/**
 * Builds validated options. Everything here ends up inside an nft script, so
 * each string is checked against a whitelist again (defence in depth: the
 * config was validated too). Throws ERR_UNSAFE_VALUE.
 */
export function makePolicyOptions(network: NetworkSettings, torvmUid: number): PolicyOptions {
  const problems: string[] = [];
  const iface = checkInterfaceName(network.tapName);
  if (iface) problems.push(`tapName ${iface}`);
  for (const [name, value] of [['hostAddress', network.hostAddress], ['vmAddress', network.vmAddress]] as const) {
    const p = checkIPv4(value);
    if (p) problems.push(`${name} ${p}`);
  }
  for (const subnet of network.lanSubnets) {
    const p = checkIPv4Cidr(subnet);
    if (p) problems.push(`lanSubnets entry ${JSON.stringify(subnet)} ${p}`);
  }
  const gateway = network.lanGateway;
  if (gateway?.enabled) {
    if (gateway.listenAddress === undefined || checkIPv4(gateway.listenAddress)) problems.push('lanGateway.listenAddress is not an IPv4 address');
    if (gateway.allowedSubnets.length === 0) problems.push('lanGateway.allowedSubnets is empty');
    for (const subnet of gateway.allowedSubnets) {
      const p = checkIPv4Cidr(subnet);
      if (p) problems.push(`lanGateway.allowedSubnets entry ${JSON.stringify(subnet)} ${p}`);
    }
    for (const port of [gateway.socksPort, gateway.dnsPort]) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`lanGateway port ${port} is not a port`);
    }
  }
  if (!Number.isInteger(torvmUid) || torvmUid <= 0 || torvmUid >= 4_294_967_295) problems.push(`torvm uid ${torvmUid} is not a non-root uid`);
  if (problems.length > 0) throw new TorvmError('ERR_UNSAFE_VALUE', `unsafe network settings: ${problems.join('; ')}`);
  return {
    tapName: network.tapName,
    hostAddress: network.hostAddress,
    vmAddress: network.vmAddress,
    torvmUid,
    allowLan: network.allowLan,
    lanSubnets: network.allowLan && network.lanSubnets.length === 0 ? DEFAULT_LAN_SUBNETS : [...network.lanSubnets],
    lockdown: network.lockdown,
    ...(gateway?.enabled && gateway.listenAddress !== undefined
      ? { lanGateway: { listenAddress: gateway.listenAddress, socksPort: gateway.socksPort, dnsPort: gateway.dnsPort, allowedSubnets: coalesceSubnets(gateway.allowedSubnets) } }
      : {}),
  };
}

export function makePolicy(state: PolicyState, options: PolicyOptions): FirewallPolicy {
  return { state, options };
}

/** One readable sentence per policy, for `torvm killswitch status` and the logs. */
export function describePolicy(policy: FirewallPolicy): string {
  const o = policy.options;
  const parts: string[] = [];
  switch (policy.state) {
    case 'blocked':
      parts.push('Blocking all traffic except loopback');
      break;
    case 'booting':
      parts.push(`Blocking all traffic except loopback, the host talking to the VM at ${o.vmAddress} over ${o.tapName}, and QEMU (uid ${o.torvmUid}) using the uplinks`);
      break;
    case 'connected':
      parts.push(`Sending all TCP through the VM at ${o.vmAddress} over ${o.tapName}; blocking everything else except loopback and QEMU (uid ${o.torvmUid}) using the uplinks`);
      break;
  }
  if (policy.state !== 'blocked') parts.push(`every DNS query (port 53) is answered by the VM`);
  parts.push('IPv6 is blocked');
  parts.push('DHCPv4 may renew leases');
  if (o.allowLan) parts.push(`the local networks ${o.lanSubnets.join(', ')} are reachable directly (not port 53)`);
  if (o.lanGateway && policy.state === 'connected') {
    const g = o.lanGateway;
    parts.push(`devices in ${g.allowedSubnets.join(', ')} may reach the LAN gateway on ${g.listenAddress} (SOCKS5 TCP ${g.socksPort}, DNS UDP ${g.dnsPort})`);
  }
  if (o.lockdown) parts.push('lockdown: after stop everything stays blocked');
  return `${parts.join('; ')}.`;
}
