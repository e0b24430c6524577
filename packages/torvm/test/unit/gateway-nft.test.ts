/** The kill switch opens exactly the LAN gateway's two ports, on its address, for its subnets, and only in `connected`. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { POLICY_STATES, coalesceSubnets, describePolicy, makePolicy, makePolicyOptions } from '../../src/core/policy.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import { buildRuleset, renderRuleset } from '../../src/platform/linux/nft-render.ts';
import { assertGolden } from '../helpers/golden.ts';

const base = { tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', allowLan: false, lanSubnets: [] as string[], lockdown: false };
const gateway = { enabled: true, listenAddress: '192.168.77.1', socksPort: 9050, dnsPort: 53, allowedSubnets: ['192.168.77.0/24', '10.8.0.0/16'] };
const withGateway = { ...base, lanGateway: gateway };
const golden = (name: string) => fileURLToPath(new URL(`./golden/nft/${name}.nft`, import.meta.url));

for (const state of POLICY_STATES) {
  test(`golden: ${state} / lan-gateway`, () => {
    assertGolden(golden(`${state}-lan-gateway`), renderRuleset(makePolicy(state, makePolicyOptions(withGateway, 997))));
  });
}

test('golden: connected / lan-gateway with allowLan', () => {
  assertGolden(golden('connected-lan-gateway-allow-lan'), renderRuleset(makePolicy('connected', makePolicyOptions({ ...withGateway, allowLan: true }, 997))));
});

const bodies = (state: 'blocked' | 'booting' | 'connected', network: Parameters<typeof makePolicyOptions>[0]) => {
  const rs = buildRuleset(makePolicy(state, makePolicyOptions(network, 997)));
  return { rs, chain: (name: string) => rs.chains.find((c) => c.name === name)?.rules.map((r) => r.body) ?? [] };
};

test('connected opens exactly: TCP socksPort and UDP dnsPort to listenAddress from @gateway_clients, and their replies', () => {
  const { rs, chain } = bodies('connected', withGateway);
  const gatewayRules = [...chain('input'), ...chain('output')].filter((b) => b.includes('gateway_clients'));
  assert.deepEqual(gatewayRules, [
    'iifname != "torvm0" ip saddr @gateway_clients ip daddr 192.168.77.1 tcp dport 9050 ct state new accept',
    'iifname != "torvm0" ip saddr @gateway_clients ip daddr 192.168.77.1 udp dport 53 ct state new accept',
    'oifname != "torvm0" ip saddr 192.168.77.1 ip daddr @gateway_clients tcp sport 9050 ct state established accept',
    'oifname != "torvm0" ip saddr 192.168.77.1 ip daddr @gateway_clients udp sport 53 ct state established accept',
  ]);
  assert.deepEqual(rs.sets.find((s) => s.name === 'gateway_clients')?.elements, ['192.168.77.0/24', '10.8.0.0/16']);
  assert.equal(chain('forward').some((b) => b.includes('accept')), false, 'nothing is forwarded: the gateway proxies, it does not route');
});

test('booting and blocked open nothing for the gateway, and a disabled gateway changes nothing at all', () => {
  for (const state of ['blocked', 'booting'] as const) {
    const { rs } = bodies(state, withGateway);
    assert.equal(JSON.stringify(rs).includes('gateway'), false, state);
    assert.equal(rs.fingerprint, bodies(state, base).rs.fingerprint, `${state}: same ruleset as without a gateway`);
  }
  const disabled = bodies('connected', { ...base, lanGateway: { ...gateway, enabled: false } }).rs;
  assert.equal(disabled.fingerprint, bodies('connected', base).rs.fingerprint);
});

test('describePolicy names the gateway opening in connected only', () => {
  assert.match(describePolicy(makePolicy('connected', makePolicyOptions(withGateway, 997))), /192\.168\.77\.0\/24, 10\.8\.0\.0\/16 may reach the LAN gateway on 192\.168\.77\.1 \(SOCKS5 TCP 9050, DNS UDP 53\)/);
  assert.doesNotMatch(describePolicy(makePolicy('booting', makePolicyOptions(withGateway, 997))), /gateway/);
});

test('unsafe gateway values are refused before they reach nft', () => {
  const bad = [
    { ...gateway, listenAddress: '192.168.77.1; flush ruleset' },
    { ...gateway, listenAddress: undefined },
    { ...gateway, allowedSubnets: [] },
    { ...gateway, allowedSubnets: ['192.168.77.0/24 }'] },
    { ...gateway, socksPort: 0 },
    { ...gateway, dnsPort: 70000 },
  ];
  for (const lanGateway of bad) {
    assert.throws(() => makePolicyOptions({ ...base, lanGateway }, 997), (e: unknown) => isTorvmError(e, 'ERR_UNSAFE_VALUE'), JSON.stringify(lanGateway));
  }
});

test('coalesceSubnets drops duplicates and subnets inside others (nft interval sets refuse overlaps)', () => {
  assert.deepEqual(coalesceSubnets(['192.168.77.0/24', '192.168.0.0/16', '10.0.0.1/32', '192.168.0.0/16', '10.0.0.0/31']), ['192.168.0.0/16', '10.0.0.0/31']);
  assert.deepEqual(coalesceSubnets(['192.168.77.0/24', '192.168.78.0/24']), ['192.168.77.0/24', '192.168.78.0/24']);
});
