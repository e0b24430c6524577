import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePolicyOptions } from '../../src/core/policy.ts';
import { missingRules, planRouting, renderResolvConf, routeArgv, ruleArgv, ruleMatches } from '../../src/core/route-plan.ts';

const options = makePolicyOptions({ tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', allowLan: false, lanSubnets: [], lockdown: false }, 997);
const plan = planRouting({ options, torvmGid: 996, bypassTable: 7911 });

test('the plan as argv, top to bottom', () => {
  assert.deepEqual(plan.rules.map((r) => ruleArgv(r, 'add').join(' ')), [
    '-4 rule add pref 7900 uidrange 997-997 lookup main',
    '-4 rule add pref 7901 lookup main suppress_prefixlength 0',
    '-4 rule add pref 7902 lookup 7911',
    '-6 rule add pref 7901 lookup main suppress_prefixlength 0',
    '-6 rule add pref 7902 prohibit',
  ]);
  assert.deepEqual(plan.routes.map((r) => routeArgv(r, 'replace').join(' ')), ['-4 route replace default via 10.10.10.1 dev torvm0 table 7911 onlink']);
  assert.deepEqual(plan.tap, { name: 'torvm0', hostCidr: '10.10.10.2/30', vmAddress: '10.10.10.1', vmMac: '52:54:00:10:10:01', hostMac: '52:54:00:10:10:02', ownerUid: 997, ownerGid: 996 });
  assert.equal(plan.nameserver, '10.10.10.1');
});

// Shapes copied from `ip -json rule` (iproute2 6.1) on this machine.
const observed4 = [
  { priority: 0, src: 'all', table: 'local' },
  { priority: 7900, src: 'all', uid_start: 997, uid_end: 997, table: 'main' },
  { priority: 7901, src: 'all', table: 'main', suppress_prefixlen: 0 },
  { priority: 7902, src: 'all', table: '7911' },
  { priority: 32766, src: 'all', table: 'main' },
];
const observed6 = [{ priority: 0, src: 'all', table: 'local' }, { priority: 7902, src: 'all', action: 'prohibit' }, { priority: 32766, src: 'all', table: 'main' }];

test('ruleMatches recognises each planned rule in ip -json output', () => {
  assert.deepEqual(missingRules(plan, 4, observed4), []);
  assert.deepEqual(missingRules(plan, 6, observed6).map((r) => r.priority), [7901]);
});

test('a look-alike rule is not ours', () => {
  const [uidRule, suppress] = plan.rules;
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
  assert.equal(host.rules.length, 5, 'a failed remove changes nothing');
});
