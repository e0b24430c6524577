import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePolicyOptions } from '../../src/core/policy.ts';
import { blockingRules, missingRules, planRouting, tapOnlyRouting, renderResolvConf, routeArgv, ruleArgv, ruleMatches } from '../../src/core/route-plan.ts';

const options = makePolicyOptions({ tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', allowLan: false, lanSubnets: [], lockdown: false }, 997);
const plan = planRouting({ options, torvmGid: 996, bypassTable: 7911 });

test('the plan as argv, top to bottom', () => {
  assert.deepEqual(plan.rules.map((r) => ruleArgv(r, 'add').join(' ')), [
    '-4 rule add pref 7900 uidrange 997-997 lookup main',
    '-4 rule add pref 7901 ipproto udp dport 67 lookup main',
    '-4 rule add pref 7902 lookup 7911',
    '-4 rule add pref 7903 lookup main suppress_prefixlength 0',
    '-4 rule add pref 7904 prohibit',
    '-6 rule add pref 7904 prohibit',
  ]);
  assert.deepEqual(plan.routes.map((r) => routeArgv(r, 'replace').join(' ')), [
    '-4 route replace default via 10.10.10.1 dev torvm0 table 7911 onlink',
    '-4 route replace 10.10.10.0/30 dev torvm0 table 7911',
  ]);
  assert.deepEqual(plan.tap, { name: 'torvm0', hostCidr: '10.10.10.2/30', vmAddress: '10.10.10.1', vmMac: '52:54:00:10:10:01', hostMac: '52:54:00:10:10:02', ownerUid: 997, ownerGid: 996 });
  assert.equal(plan.nameserver, '10.10.10.1');
});

// Shapes copied from `ip -json rule` (iproute2 6.1) on this machine.
const observed4 = [
  { priority: 0, src: 'all', table: 'local' },
  { priority: 7900, src: 'all', uid_start: 997, uid_end: 997, table: 'main' },
  { priority: 7901, src: 'all', ipproto: 'udp', dport: 67, table: 'main' },
  { priority: 7902, src: 'all', table: '7911' },
  { priority: 7903, src: 'all', table: 'main', suppress_prefixlen: 0 },
  { priority: 7904, src: 'all', action: 'prohibit' },
  { priority: 32766, src: 'all', table: 'main' },
];
const observed6 = [{ priority: 0, src: 'all', table: 'local' }, { priority: 32766, src: 'all', table: 'main' }];

test('ruleMatches recognises each planned rule in ip -json output', () => {
  assert.deepEqual(missingRules(plan, 4, observed4), []);
  assert.deepEqual(missingRules(plan, 6, observed6).map((r) => r.priority), [7904]);
});

test('allowLan off routes the LAN into the VM; allowLan on keeps the on-link routes (IPv6 never)', () => {
  const lanPlan = planRouting({ options: makePolicyOptions({ tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', allowLan: true, lanSubnets: ['192.168.0.0/16'], lockdown: false }, 997), torvmGid: 996, bypassTable: 7911 });
  const text = (p: typeof plan) => p.rules.map((r) => ruleArgv(r, 'add').join(' '));
  // allowLan off: on-link routes only after the bypass table, which answers every lookup not bound to a device.
  assert.deepEqual(text(plan).filter((r) => r.includes('suppress_prefixlength')), ['-4 rule add pref 7903 lookup main suppress_prefixlength 0']);
  assert.deepEqual(text(lanPlan).filter((r) => r.includes('suppress_prefixlength')), ['-4 rule add pref 7901 lookup main suppress_prefixlength 0']);
  for (const p of [plan, lanPlan]) {
    assert.deepEqual(p.rules.filter((r) => r.family === 6).map((r) => r.action.kind), ['prohibit'], 'IPv6: only the local table');
    assert.equal(p.rules.at(-2)?.action.kind, 'prohibit', 'IPv4 ends in prohibit');
  }
});

test('the routing block a stopped run leaves has no on-link escape and no routes', () => {
  const block = blockingRules(plan);
  assert.deepEqual(block.rules.map((r) => ruleArgv(r, 'add').join(' ')), [
    '-4 rule add pref 7900 uidrange 997-997 lookup main',
    '-4 rule add pref 7901 ipproto udp dport 67 lookup main',
    '-4 rule add pref 7902 lookup 7911',
    '-4 rule add pref 7904 prohibit',
    '-6 rule add pref 7904 prohibit',
  ]);
  assert.deepEqual(block.routes, []);
  assert.deepEqual(tapOnlyRouting(plan).rules.map((r) => r.priority), [7903]);
});

test('the DHCP rule matches only its own selectors', () => {
  const dhcp = plan.rules[1];
  assert.ok(dhcp);
  assert.equal(ruleMatches(dhcp, { priority: 7901, table: 'main' }), false, 'without selectors it would route everything to main');
  assert.equal(ruleMatches(dhcp, { priority: 7901, ipproto: 'tcp', dport: 67, table: 'main' }), false);
  assert.equal(ruleMatches(dhcp, { priority: 7901, ipproto: 'udp', dport: 67, table: 'main' }), true);
});

test("the LAN gateway's replies reach only its allowed subnets, from its own address, on-link (allowLan off)", () => {
  const lanGateway = { listenAddress: '192.168.77.2', socksPort: 9050, dnsPort: 53, allowedSubnets: ['192.168.77.0/24', '10.20.0.0/16'] };
  const gwPlan = planRouting({ options: { ...options, lanGateway }, torvmGid: 996, bypassTable: 7911 });
  const replies = gwPlan.rules.filter((r) => r.from !== undefined);
  assert.deepEqual(replies.map((r) => ruleArgv(r, 'add').join(' ')), [
    '-4 rule add pref 7901 from 192.168.77.2/32 to 192.168.77.0/24 lookup main suppress_prefixlength 0',
    '-4 rule add pref 7901 from 192.168.77.2/32 to 10.20.0.0/16 lookup main suppress_prefixlength 0',
  ]);
  const [first] = replies;
  assert.ok(first);
  // As `ip -json rule` prints it: /32 sources have no srclen.
  assert.equal(ruleMatches(first, { priority: 7901, src: '192.168.77.2', dst: '192.168.77.0', dstlen: 24, table: 'main', suppress_prefixlen: 0 }), true);
  assert.equal(ruleMatches(first, { priority: 7901, src: 'all', dst: '192.168.77.0', dstlen: 24, table: 'main', suppress_prefixlen: 0 }), false, 'from anyone would open the LAN to every socket');
  assert.equal(ruleMatches(first, { priority: 7901, src: '192.168.77.2', table: 'main', suppress_prefixlen: 0 }), false, 'to anywhere would be more than the subnet');
  assert.deepEqual(planRouting({ options: { ...options, allowLan: true, lanSubnets: ['192.168.0.0/16'], lanGateway }, torvmGid: 996, bypassTable: 7911 }).rules.filter((r) => r.from !== undefined), [], 'allowLan already keeps the on-link routes');
  assert.deepEqual(plan.rules.filter((r) => r.from !== undefined), [], 'no gateway, no rule');
});

test('a look-alike rule is not ours', () => {
  const uidRule = plan.rules[0];
  const suppress = planRouting({ options: { ...options, allowLan: true }, torvmGid: 996, bypassTable: 7911 }).rules[1];
  assert.ok(uidRule && suppress);
  assert.equal(ruleMatches(uidRule, { priority: 7900, uid_start: 998, uid_end: 998, table: 'main' }), false);
  assert.equal(ruleMatches(uidRule, { priority: 7900, table: 'main' }), false);
  assert.equal(ruleMatches(suppress, { priority: 7901, table: 'main' }), false);
  assert.equal(ruleMatches(suppress, { priority: 7901, table: 'main', suppress_prefixlen: 0, uid_start: 1, uid_end: 1 }), false);
});

test('resolv.conf names only the VM', () => {
  const lines = renderResolvConf('10.10.10.1').split('\n').filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(lines, ['nameserver 10.10.10.1']);
});

test('the plan applied to the fake host reads as an operator would see it', async () => {
  const { FakeHostNetwork } = await import('../../src/platform/fake/fake-host-network.ts');
  const host = new FakeHostNetwork();
  await host.tap.create(plan);
  await host.router.apply(plan);
  await host.dns.apply(plan.nameserver);
  assert.deepEqual(await host.router.drift(plan), []);
  const text = host.render();
  assert.match(text, /^links: torvm0 \(10\.10\.10\.2\/30, 10\.10\.10\.1 is 52:54:00:10:10:01\)$/m);
  assert.match(text, /^rule: -4 pref 7900 uidrange 997-997 lookup main$/m);
  assert.match(text, /^route: -4 default via 10\.10\.10\.1 dev torvm0 table 7911 onlink$/m);
  assert.match(text, /^resolv\.conf: nameserver 10\.10\.10\.1$/m);
  host.failNext('router.remove');
  await assert.rejects(host.router.remove(plan), /injected/);
  assert.equal(host.rules.length, plan.rules.length, 'a failed remove changes nothing');
});
