/**
 * The Linux kill switch: the `inet torvm` nftables table, replaced in one
 * `nft -f` transaction and read back after every change.
 */
import { TorvmError } from '../../core/errors.ts';
import type { FirewallPolicy } from '../../core/policy.ts';
import type { CommandRunner } from '../exec.ts';
import type { Firewall, FirewallStatus } from '../host-network.ts';
import { NFT_FAMILY, NFT_TABLE, buildRuleset, parseTableComment, renderDeleteTable, renderRuleset } from './nft-render.ts';

export interface NftFirewallOptions {
  /** Run nft inside this network namespace (tests). */
  netns?: string;
  timeoutMs?: number;
}

interface NftJsonChain { name: string; hook?: string; policy?: string; type?: string; prio?: number }
interface NftJsonRule { chain: string; comment?: string; expr?: Array<Record<string, unknown>> }
type NftJsonItem = Record<string, unknown>;

const VERDICTS = ['accept', 'drop', 'reject', 'return', 'dnat', 'snat'] as const;

/** The verdict a rendered rule body ends in (its last verdict keyword). */
export function ruleVerdict(body: string): string | null {
  let found: string | null = null;
  for (const word of body.split(/\s+/)) if ((VERDICTS as readonly string[]).includes(word)) found = word;
  return found;
}

/** The verdict of a rule as `nft -j` prints it: the key of its last statement. */
function jsonVerdict(rule: NftJsonRule): string | null {
  const last = rule.expr?.[rule.expr.length - 1];
  const key = last ? Object.keys(last)[0] : undefined;
  return key !== undefined && (VERDICTS as readonly string[]).includes(key) ? key : null;
}

const chainPriority = (p: string): number => (p === 'filter' ? 0 : Number(p));

/** `nft -j list table` without handles and metainfo: what must stay byte-equal while the table is ours. */
export function normaliseNftJson(items: readonly NftJsonItem[]): string {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([k]) => k !== 'handle').map(([k, x]) => [k, strip(x)]));
    }
    return v;
  };
  return JSON.stringify(items.filter((i) => !('metainfo' in i)).map(strip));
}

/** nftables, driven through the `nft` binary. */
export function createNftFirewall(runner: CommandRunner, options: NftFirewallOptions = {}): Firewall & { listTable(): Promise<string | null> } {
  const run = (args: string[], input?: string) =>
    runner.run('nft', args, { timeoutMs: options.timeoutMs ?? 10_000, ...(input !== undefined ? { input } : {}), ...(options.netns ? { netns: options.netns } : {}) });
  /** The kernel's own copy of each ruleset this object applied, by fingerprint: verify compares all of it. */
  const appliedCopies = new Map<string, string>();

  async function listTable(): Promise<string | null> {
    const r = await runner.run('nft', ['list', 'table', NFT_FAMILY, NFT_TABLE], { timeoutMs: options.timeoutMs ?? 10_000, okExitCodes: [1], ...(options.netns ? { netns: options.netns } : {}) });
    return r.exitCode === 0 ? r.stdout : null;
  }

  async function status(): Promise<FirewallStatus> {
    const text = await listTable();
    if (text === null) return { present: false, state: null, fingerprint: null };
    const comment = /^\s*comment "([^"]*)"\s*$/m.exec(text)?.[1];
    const parsed = parseTableComment(comment);
    return { present: true, state: parsed?.state ?? null, fingerprint: parsed?.fingerprint ?? null };
  }

  /** Checks the live table against the policy; returns its normalised JSON. */
  async function check(policy: FirewallPolicy): Promise<string> {
    const expected = buildRuleset(policy);
    const fail = (why: string): never => {
      throw new TorvmError('ERR_FIREWALL', `the kill switch is not what TorVM applied: ${why}`, { details: { state: policy.state } });
    };
    const text = await listTable();
    if (text === null) return fail(`table ${NFT_FAMILY} ${NFT_TABLE} is missing`);
    // A dormant table enforces nothing, whatever its rules say; TorVM sets no table flags at all.
    const flags = /^\t?flags (.*)$/m.exec(text);
    if (flags) fail(`the table has flags (${flags[1] ?? ''})`);
    const live = parseTableComment(/^\s*comment "([^"]*)"\s*$/m.exec(text)?.[1]);
    if (live?.fingerprint !== expected.fingerprint) fail(`fingerprint ${String(live?.fingerprint ?? null)} != ${expected.fingerprint}`);
    // The comment could be forged or stale: compare the structure too.
    const r = await run(['-j', 'list', 'table', NFT_FAMILY, NFT_TABLE]);
    const items = (JSON.parse(r.stdout) as { nftables: NftJsonItem[] }).nftables;
    const table = items.find((i) => i.table)?.table as Record<string, unknown> | undefined;
    if (table?.flags !== undefined) fail('the table has flags');
    const chains = items.flatMap((i) => (i.chain ? [i.chain as NftJsonChain] : []));
    const rules = items.flatMap((i) => (i.rule ? [i.rule as NftJsonRule] : []));
    const sets = items.flatMap((i) => (i.set ? [i.set as { name: string }] : []));
    if (chains.length !== expected.chains.length) fail(`${chains.length} chains, expected ${expected.chains.length}`);
    if (JSON.stringify(sets.map((x) => x.name).sort()) !== JSON.stringify(expected.sets.map((x) => x.name).sort())) fail(`sets [${sets.map((x) => x.name).join(', ')}]`);
    for (const want of expected.chains) {
      const got = chains.find((c) => c.name === want.name);
      if (!got) return fail(`chain ${want.name} is missing`);
      if (got.hook !== want.hook || got.policy !== want.policy || got.type !== want.type) fail(`chain ${want.name} is ${String(got.type)}/${String(got.hook)}/${String(got.policy)}`);
      if (got.prio !== chainPriority(want.priority)) fail(`chain ${want.name} has priority ${String(got.prio)}`);
      const gotRules = rules.filter((x) => x.chain === want.name);
      const gotComments = gotRules.map((x) => x.comment ?? '');
      if (JSON.stringify(gotComments) !== JSON.stringify(want.rules.map((x) => x.why))) fail(`chain ${want.name} has rules [${gotComments.join(' | ')}]`);
      want.rules.forEach((w, i) => {
        const verdict = jsonVerdict(gotRules[i] as NftJsonRule);
        if (verdict !== ruleVerdict(w.body)) fail(`chain ${want.name} rule "${w.why}" ends in ${String(verdict)}`);
      });
    }
    const normalised = normaliseNftJson(items);
    const applied = appliedCopies.get(expected.fingerprint);
    if (applied !== undefined && applied !== normalised) fail('a rule, set or chain differs from what was applied');
    return normalised;
  }

  async function verify(policy: FirewallPolicy): Promise<void> {
    await check(policy);
  }

  return {
    listTable,
    status,
    verify,
    async apply(policy) {
      try {
        await run(['-f', '-'], renderRuleset(policy));
      } catch (err) {
        throw new TorvmError('ERR_FIREWALL', `could not apply the kill switch (${policy.state})`, { cause: err, hint: 'is the nf_tables kernel module available, and are you root?' });
      }
      // What the kernel made of it is the reference every later verify compares in full.
      const fingerprint = buildRuleset(policy).fingerprint;
      appliedCopies.delete(fingerprint);
      appliedCopies.set(fingerprint, await check(policy));
    },
    async reset() {
      try {
        await run(['-f', '-'], renderDeleteTable());
      } catch (err) {
        throw new TorvmError('ERR_FIREWALL', 'could not remove the kill switch', { cause: err });
      }
      if ((await status()).present) throw new TorvmError('ERR_FIREWALL', 'the kill switch table is still present after removal');
    },
  };
}
