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

interface NftJsonChain { name: string; hook?: string; policy?: string; type?: string }
interface NftJsonRule { chain: string; comment?: string }

/** nftables, driven through the `nft` binary. */
export function createNftFirewall(runner: CommandRunner, options: NftFirewallOptions = {}): Firewall & { listTable(): Promise<string | null> } {
  const run = (args: string[], input?: string) =>
    runner.run('nft', args, { timeoutMs: options.timeoutMs ?? 10_000, ...(input !== undefined ? { input } : {}), ...(options.netns ? { netns: options.netns } : {}) });

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

  async function verify(policy: FirewallPolicy): Promise<void> {
    const expected = buildRuleset(policy);
    const fail = (why: string): never => {
      throw new TorvmError('ERR_FIREWALL', `the kill switch is not what TorVM applied: ${why}`, { details: { state: policy.state } });
    };
    const live = await status();
    if (!live.present) fail(`table ${NFT_FAMILY} ${NFT_TABLE} is missing`);
    if (live.fingerprint !== expected.fingerprint) fail(`fingerprint ${String(live.fingerprint)} != ${expected.fingerprint}`);
    // The comment could be forged or stale: compare the structure too.
    const r = await run(['-j', 'list', 'table', NFT_FAMILY, NFT_TABLE]);
    const items = (JSON.parse(r.stdout) as { nftables: Array<Record<string, unknown>> }).nftables;
    const chains = items.flatMap((i) => (i.chain ? [i.chain as NftJsonChain] : []));
    const rules = items.flatMap((i) => (i.rule ? [i.rule as NftJsonRule] : []));
    if (chains.length !== expected.chains.length) fail(`${chains.length} chains, expected ${expected.chains.length}`);
    for (const want of expected.chains) {
      const got = chains.find((c) => c.name === want.name);
      if (!got) fail(`chain ${want.name} is missing`);
      else if (got.hook !== want.hook || got.policy !== want.policy || got.type !== want.type) fail(`chain ${want.name} is ${got.type}/${got.hook}/${got.policy}`);
      const gotRules = rules.filter((x) => x.chain === want.name).map((x) => x.comment ?? '');
      const wantRules = want.rules.map((x) => x.why);
      if (JSON.stringify(gotRules) !== JSON.stringify(wantRules)) fail(`chain ${want.name} has rules [${gotRules.join(' | ')}]`);
    }
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
      await verify(policy);
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
