/**
 * Renders a FirewallPolicy into one nftables script (PURE: no I/O).
 *
 * The script replaces the `inet torvm` table in a single transaction:
 *   table inet torvm        (make sure it exists, so the delete cannot fail)
 *   delete table inet torvm (drop the old rules ...)
 *   table inet torvm { ... } (... and add the new ones, in the same commit)
 * `nft -f` commits all of it or none of it, so there is never a moment without
 * a drop policy once the table exists.
 *
 * Read the chains top to bottom: each rule is a line with its reason.
 */
import { createHash } from 'node:crypto';
import { VM_DNS_PORT, describePolicy } from '../../core/policy.ts';
import type { FirewallPolicy } from '../../core/policy.ts';

export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'torvm';
/** DNS over TLS: a LAN resolver must not get it either. */
export const DNS_OVER_TLS_PORT = 853;

export interface NftRule {
  /** The rule body, e.g. `oifname "lo" accept`. */
  readonly body: string;
  /** Shown as the rule's nft comment, so `nft list ruleset` explains itself. */
  readonly why: string;
}

export interface NftChain {
  readonly name: string;
  readonly type: 'filter' | 'nat';
  readonly hook: 'input' | 'forward' | 'output' | 'postrouting';
  /** `filter` (0); nat hooks use -100 (dnat) and 100 (snat): nft 1.0.6 rejects the names on the output hook. */
  readonly priority: 'filter' | '-100' | '100';
  readonly policy: 'drop' | 'accept';
  readonly rules: readonly NftRule[];
}

export interface NftSet {
  readonly name: string;
  readonly type: 'ipv4_addr';
  readonly elements: readonly string[];
}

/** The table as data; `renderRuleset` prints it, `verify` compares the kernel's copy with it. */
export interface NftRuleset {
  /** Carries the state and a fingerprint of the whole ruleset, so `status` can read back what is live. */
  readonly comment: string;
  readonly state: FirewallPolicy['state'];
  readonly fingerprint: string;
  readonly sets: readonly NftSet[];
  readonly chains: readonly NftChain[];
}

const rule = (body: string, why: string): NftRule => ({ body, why });
const q = (s: string) => `"${s}"`;

/** The final rules of a filter chain: fail fast instead of hanging. */
function rejectRest(): NftRule[] {
  return [
    rule('meta l4proto tcp reject with tcp reset', 'anything else: TCP gets a reset, so apps fail at once'),
    rule('reject with icmpx admin-prohibited', 'anything else: refused'),
  ];
}

/** Builds the ruleset for a policy. Pure and deterministic. */
export function buildRuleset(policy: FirewallPolicy): NftRuleset {
  const o = policy.options;
  const tap = q(o.tapName);
  const vmReachable = policy.state !== 'blocked';
  const lan = o.allowLan && o.lanSubnets.length > 0;

  const output: NftRule[] = [
    rule('oifname "lo" accept', 'loopback'),
    rule('ct state invalid drop', 'stray FIN/RST of dead flows (the transparent-proxy leak)'),
    rule('meta nfproto ipv4 udp sport 68 udp dport 67 accept', 'DHCPv4 lease renewal'),
  ];
  if (vmReachable) {
    output.push(
      rule(`meta skuid ${o.torvmUid} meta nfproto ipv4 oifname != ${tap} accept`, "QEMU's own traffic (Tor's connections) on the uplinks"),
      rule(`oifname ${tap} ip daddr ${o.vmAddress} accept`, 'the host talks to the VM (DNS, control) over the TAP'),
    );
  }
  if (policy.state === 'connected') {
    output.push(rule(`oifname ${tap} meta l4proto tcp accept`, 'TCP into the VM, which sends it through Tor'));
  }
  if (lan) {
    output.push(
      rule(`oifname != ${tap} ip daddr @lan meta l4proto { tcp, udp } th dport { ${VM_DNS_PORT}, ${DNS_OVER_TLS_PORT} } reject`, 'allowLan never opens DNS (plain or over TLS)'),
      rule(`oifname != ${tap} ip daddr @lan accept`, 'allowLan: the local networks'),
    );
  }
  const gateway = policy.state === 'connected' ? o.lanGateway : undefined;
  if (gateway) {
    const from = `ip saddr ${gateway.listenAddress} ip daddr @gateway_clients`;
    output.push(
      rule(`oifname != ${tap} ${from} tcp sport ${gateway.socksPort} ct state established accept`, 'LAN gateway: SOCKS replies to allowed devices'),
      rule(`oifname != ${tap} ${from} udp sport ${gateway.dnsPort} ct state established accept`, 'LAN gateway: DNS replies to allowed devices'),
    );
  }
  output.push(...rejectRest());

  const input: NftRule[] = [
    rule('iifname "lo" accept', 'loopback'),
    rule('ct state invalid drop', 'packets of no known flow'),
    rule('ct state established,related accept', 'replies to allowed traffic'),
    rule('meta nfproto ipv4 udp sport 67 udp dport 68 accept', 'DHCPv4 lease replies'),
  ];
  if (vmReachable) input.push(rule(`iifname ${tap} ip saddr ${o.vmAddress} accept`, 'the VM talks to the host over the TAP'));
  if (gateway) {
    const to = `iifname != ${tap} ip saddr @gateway_clients ip daddr ${gateway.listenAddress}`;
    input.push(
      rule(`${to} tcp dport ${gateway.socksPort} ct state new accept`, 'LAN gateway: SOCKS5 (password required) from allowed devices'),
      rule(`${to} udp dport ${gateway.dnsPort} ct state new accept`, 'LAN gateway: DNS from allowed devices'),
    );
  }

  const chains: NftChain[] = [
    { name: 'input', type: 'filter', hook: 'input', priority: 'filter', policy: 'drop', rules: input },
    { name: 'forward', type: 'filter', hook: 'forward', priority: 'filter', policy: 'drop', rules: rejectRest() },
    { name: 'output', type: 'filter', hook: 'output', priority: 'filter', policy: 'drop', rules: output },
  ];
  if (vmReachable) {
    const toVm = `dnat ip to ${o.vmAddress}`;
    chains.push(
      {
        name: 'dns_capture', type: 'nat', hook: 'output', priority: '-100', policy: 'accept', rules: [
          rule('oifname "lo" return', 'a local resolver on loopback stays local'),
          rule(`meta skuid ${o.torvmUid} return`, "QEMU's own lookups are not captured"),
          rule(`meta nfproto ipv4 udp dport ${VM_DNS_PORT} ${toVm}`, 'every UDP DNS query, whatever resolver it names, goes to the VM'),
          rule(`meta nfproto ipv4 tcp dport ${VM_DNS_PORT} ${toVm}`, 'every TCP DNS query goes to the VM'),
        ],
      },
      {
        name: 'tap_source', type: 'nat', hook: 'postrouting', priority: '100', policy: 'accept', rules: [
          rule(`oifname ${tap} ip saddr != ${o.hostAddress} snat ip to ${o.hostAddress}`, 'captured packets leave with the TAP address, so the VM can answer'),
        ],
      },
    );
  }
  const sets: NftSet[] = lan ? [{ name: 'lan', type: 'ipv4_addr', elements: [...o.lanSubnets] }] : [];
  if (gateway) sets.push({ name: 'gateway_clients', type: 'ipv4_addr', elements: [...gateway.allowedSubnets] });
  const body = JSON.stringify({ sets, chains });
  const fingerprint = createHash('sha256').update(`${policy.state}\n${body}`).digest('hex').slice(0, 16);
  return { comment: `torvm state=${policy.state} fp=${fingerprint}`, state: policy.state, fingerprint, sets, chains };
}

/** The nft script that atomically replaces the table with `policy`. */
export function renderRuleset(policy: FirewallPolicy): string {
  const rs = buildRuleset(policy);
  const lines: string[] = [
    `# TorVM kill switch (${rs.state}). ${describePolicy(policy)}`,
    `table ${NFT_FAMILY} ${NFT_TABLE}`,
    `delete table ${NFT_FAMILY} ${NFT_TABLE}`,
    `table ${NFT_FAMILY} ${NFT_TABLE} {`,
    `\tcomment ${q(rs.comment)}`,
  ];
  for (const set of rs.sets) {
    lines.push(`\tset ${set.name} {`, `\t\ttype ${set.type}`, '\t\tflags interval', `\t\telements = { ${set.elements.join(', ')} }`, '\t}');
  }
  for (const chain of rs.chains) {
    lines.push(`\tchain ${chain.name} {`, `\t\ttype ${chain.type} hook ${chain.hook} priority ${chain.priority}; policy ${chain.policy};`);
    for (const r of chain.rules) lines.push(`\t\t${r.body} comment ${q(r.why)}`);
    lines.push('\t}');
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** Removes the table if present (idempotent, one transaction). */
export function renderDeleteTable(): string {
  return `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n`;
}

/** Parses the table comment back into state and fingerprint; null if it is not ours. */
export function parseTableComment(comment: string | undefined): { state: FirewallPolicy['state']; fingerprint: string } | null {
  const m = /^torvm state=(blocked|booting|connected) fp=([0-9a-f]{16})$/.exec(comment ?? '');
  if (!m) return null;
  return { state: m[1] as FirewallPolicy['state'], fingerprint: m[2] as string };
}
