/** The companion's routing plan: the order that keeps it fail-closed, and a down that undoes exactly the up. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isTorvmError } from '../../src/core/errors.ts';
import { parseIPv4HostPort, parseRouteGet, planCompanionHold, planCompanionRouting } from '../../src/companion/route-plan.ts';

const plan = planCompanionRouting({
  tunName: 'tvc0', tunAddress: '198.18.255.1', table: 7912, rulePref: 7910,
  uplinks: [{ host: '192.168.77.1', dev: 'lan0' }, { host: '10.0.0.53', dev: 'eth0', via: '192.168.77.254' }],
});
const text = (argv: readonly string[]) => argv.join(' ');

test('up, read top to bottom', () => {
  assert.deepEqual(plan.up.map(text), [
    'link set dev tvc0 up',
    '-4 addr replace 198.18.255.1/32 dev tvc0',
    '-4 route replace unreachable default metric 4294967295 table 7912',
    '-4 route replace 192.168.77.1/32 dev lan0 table 7912',
    '-4 route replace 10.0.0.53/32 via 192.168.77.254 dev eth0 table 7912',
    '-4 route replace default dev tvc0 src 198.18.255.1 table 7912',
    '-4 rule add pref 7910 lookup 7912',
    '-6 rule add pref 7910 prohibit',
  ]);
});

test('fail closed: the unreachable default exists before any rule sends traffic to the table', () => {
  const firstRule = plan.up.findIndex((s) => s.includes('rule'));
  const unreachable = plan.up.findIndex((s) => s.includes('unreachable'));
  assert.ok(unreachable >= 0 && unreachable < firstRule);
  assert.ok(plan.up.filter((s) => s.includes('rule')).every((s) => s.includes('7910')));
});

test('down removes exactly the rules (and a hold) and the table the plan added, and never touches main', () => {
  assert.deepEqual(plan.down.map(text), [
    '-4 rule del pref 7910', '-6 rule del pref 7910',
    '-4 rule del pref 7909', '-6 rule del pref 7909', '-4 rule del pref 7908',
    '-4 route flush table 7912',
  ]);
  assert.ok([...plan.up, ...plan.down].every((s) => !s.includes('main')));
});

test('the hold blocks everything but the gateways, in front of the companion rule, and its release undoes it', () => {
  const { hold, release } = planCompanionHold({ rulePref: 7910, gatewayHosts: ['192.168.77.1', '10.0.0.53'] });
  assert.deepEqual(hold.map(text), [
    '-4 rule add pref 7908 to 192.168.77.1/32 lookup main',
    '-4 rule add pref 7908 to 10.0.0.53/32 lookup main',
    '-4 rule add pref 7909 unreachable',
    '-6 rule add pref 7909 prohibit',
  ]);
  assert.deepEqual(release.map(text), ['-4 rule del pref 7909', '-6 rule del pref 7909', '-4 rule del pref 7908']);
  // Every hold rule is removed by the plan's down too (a crash during the hold is undone by a clean stop).
  for (const step of release) assert.ok(plan.down.some((d) => text(d) === text(step)), text(step));
});

test('a rule preference that leaves no room for the hold is refused', () => {
  for (const rulePref of [0, 1, 2, 2.5]) {
    assert.throws(() => planCompanionRouting({ tunName: 'tvc0', tunAddress: '198.18.255.1', table: 7912, rulePref, uplinks: [] }), (e) => isTorvmError(e, 'ERR_INTERNAL'), String(rulePref));
  }
});

test('parseRouteGet reads on-link and via routes', () => {
  assert.deepEqual(parseRouteGet('192.168.77.1', '[{"dst":"192.168.77.1","dev":"lan0","prefsrc":"192.168.77.2","flags":[],"uid":0,"cache":[]}]'), { host: '192.168.77.1', dev: 'lan0' });
  assert.deepEqual(parseRouteGet('8.8.8.8', '[{"dst":"8.8.8.8","gateway":"10.0.0.1","dev":"eth0"}]'), { host: '8.8.8.8', dev: 'eth0', via: '10.0.0.1' });
  assert.equal(parseRouteGet('1.2.3.4', 'not json'), null);
  assert.equal(parseRouteGet('1.2.3.4', '[]'), null);
});

test('parseIPv4HostPort takes IPv4:port only', () => {
  assert.deepEqual(parseIPv4HostPort('192.168.77.1:9050'), { host: '192.168.77.1', port: 9050 });
  for (const bad of ['gateway.lan:9050', '192.168.77.1', '192.168.77.1:0', '192.168.77.1:65536', '256.1.1.1:53', '[::1]:53', '192.168.077.1:53']) {
    assert.equal(parseIPv4HostPort(bad), null, bad);
  }
});
