/**
 * The pure parts of the kill switch's read-back (platform/linux/nft-firewall.ts):
 * every rule TorVM renders has a verdict verify can compare (a null on both
 * sides would make the check vacuous), and the full-table comparison ignores
 * only handles and metainfo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POLICY_STATES, makePolicy, makePolicyOptions } from '../../src/core/policy.ts';
import { normaliseNftJson, ruleVerdict } from '../../src/platform/linux/nft-firewall.ts';
import { buildRuleset } from '../../src/platform/linux/nft-render.ts';

const base = { tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', allowLan: false, lanSubnets: [] as string[], lockdown: false };

test('every rendered rule ends in a verdict verify can compare', () => {
  for (const state of POLICY_STATES) {
    for (const network of [base, { ...base, allowLan: true }]) {
      for (const chain of buildRuleset(makePolicy(state, makePolicyOptions(network, 997))).chains) {
        for (const r of chain.rules) assert.notEqual(ruleVerdict(r.body), null, `${chain.name}: ${r.body}`);
      }
    }
  }
  assert.equal(ruleVerdict('oifname != "torvm0" ip daddr @lan meta l4proto { tcp, udp } th dport { 53, 853 } reject'), 'reject');
  assert.equal(ruleVerdict('meta nfproto ipv4 udp dport 53 dnat ip to 10.10.10.1'), 'dnat');
  assert.equal(ruleVerdict('oifname "lo" accept'), 'accept');
});

test('the full-table comparison ignores handles and metainfo, and nothing else', () => {
  const listing = (verdict: string, handle: number, flags?: string) => [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    { table: { family: 'inet', name: 'torvm', handle, ...(flags ? { flags } : {}) } },
    { chain: { family: 'inet', table: 'torvm', name: 'output', handle: handle + 1, type: 'filter', hook: 'output', prio: 0, policy: 'drop' } },
    { rule: { family: 'inet', table: 'torvm', chain: 'output', handle: handle + 2, comment: 'anything else: refused', expr: [{ [verdict]: null }] } },
  ];
  assert.equal(normaliseNftJson(listing('reject', 2)), normaliseNftJson(listing('reject', 40)));
  assert.notEqual(normaliseNftJson(listing('reject', 2)), normaliseNftJson(listing('accept', 2)));
  assert.notEqual(normaliseNftJson(listing('reject', 2)), normaliseNftJson(listing('reject', 2, 'dormant')));
  assert.doesNotMatch(normaliseNftJson(listing('reject', 2)), /handle|metainfo/);
});
