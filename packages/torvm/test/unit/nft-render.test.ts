import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { POLICY_STATES, makePolicy, makePolicyOptions } from '../../src/core/policy.ts';
import { buildRuleset, parseTableComment, renderDeleteTable, renderRuleset } from '../../src/platform/linux/nft-render.ts';
import { assertGolden } from '../helpers/golden.ts';

const base = { tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', allowLan: false, lanSubnets: [] as string[], lockdown: false };
const VARIANTS = {
  default: base,
  'allow-lan': { ...base, allowLan: true },
  'allow-lan-custom': { ...base, allowLan: true, lanSubnets: ['192.168.1.0/24', '10.20.0.0/16'] },
  lockdown: { ...base, lockdown: true },
  'custom-link': { ...base, tapName: 'tvm-test1', hostAddress: '10.77.0.6', vmAddress: '10.77.0.5' },
};
const golden = (name: string) => fileURLToPath(new URL(`./golden/nft/${name}.nft`, import.meta.url));

for (const state of POLICY_STATES) {
  for (const [variant, network] of Object.entries(VARIANTS)) {
    test(`golden: ${state} / ${variant}`, () => {
      assertGolden(golden(`${state}-${variant}`), renderRuleset(makePolicy(state, makePolicyOptions(network, 997))));
    });
  }
}

const rules = (state: 'blocked' | 'booting' | 'connected', network = base) => {
  const rs = buildRuleset(makePolicy(state, makePolicyOptions(network, 997)));
  return (chain: string) => rs.chains.find((c) => c.name === chain)?.rules.map((r) => r.body) ?? null;
};

test('every filter chain drops by default and ends in a reject', () => {
  for (const state of POLICY_STATES) {
    const rs = buildRuleset(makePolicy(state, makePolicyOptions(base, 997)));
    for (const chain of rs.chains.filter((c) => c.type === 'filter')) {
      assert.equal(chain.policy, 'drop', `${state}/${chain.name}`);
      if (chain.hook !== 'input') assert.equal(chain.rules.at(-1)?.body, 'reject with icmpx admin-prohibited');
    }
  }
});

test('blocked lets out loopback and DHCP only: no TAP, no torvm uid, no DNS capture', () => {
  const out = rules('blocked')('output') ?? [];
  assert.deepEqual(out.filter((r) => r.includes('accept')), ['oifname "lo" accept', 'meta nfproto ipv4 udp sport 68 udp dport 67 accept']);
  assert.equal(rules('blocked')('dns_capture'), null);
});

test('booting reaches only the VM address on the TAP; connected adds TCP into the TAP', () => {
  assert.ok(!(rules('booting')('output') ?? []).some((r) => r.includes('meta l4proto tcp accept')));
  assert.ok((rules('connected')('output') ?? []).includes('oifname "torvm0" meta l4proto tcp accept'));
});

test('the torvm uid bypasses only on the uplinks, IPv4 only, and is never DNS-captured', () => {
  assert.ok((rules('connected')('output') ?? []).includes('meta skuid 997 meta nfproto ipv4 oifname != "torvm0" accept'));
  assert.equal((rules('connected')('dns_capture') ?? [])[1], 'meta skuid 997 return');
});

test('no output rule accepts established traffic (pre-existing connections must not survive)', () => {
  for (const state of POLICY_STATES) assert.ok(!(rules(state)('output') ?? []).some((r) => r.includes('established')));
});

test('allowLan rejects DNS (53) and DNS over TLS (853) before it accepts the LAN', () => {
  const out = rules('connected', { ...base, allowLan: true })('output') ?? [];
  const dns = out.findIndex((r) => r.includes('th dport { 53, 853 } reject'));
  const lan = out.findIndex((r) => r.endsWith('ip daddr @lan accept'));
  assert.ok(dns >= 0 && lan > dns);
});

test('the table comment round-trips and differs per state', () => {
  const fps = POLICY_STATES.map((s) => buildRuleset(makePolicy(s, makePolicyOptions(base, 997))));
  for (const rs of fps) assert.deepEqual(parseTableComment(rs.comment), { state: rs.state, fingerprint: rs.fingerprint });
  assert.equal(new Set(fps.map((r) => r.fingerprint)).size, 3);
  assert.equal(parseTableComment('torvm state=open fp=0000000000000000'), null);
});

test('the replace script creates, deletes and re-adds in one file', () => {
  const text = renderRuleset(makePolicy('blocked', makePolicyOptions(base, 997)));
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));
  assert.deepEqual(lines.slice(0, 3), ['table inet torvm', 'delete table inet torvm', 'table inet torvm {']);
  assert.equal(renderDeleteTable(), 'table inet torvm\ndelete table inet torvm\n');
});
