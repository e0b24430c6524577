import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LAN_SUBNETS, VM_LAN_MAC, describePolicy, makePolicy, makePolicyOptions } from '../../src/core/policy.ts';
import { isTorvmError } from '../../src/core/errors.ts';

const network = { tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', allowLan: false, lanSubnets: [], lockdown: false };

test('allowLan with no subnets opens the RFC 1918 and link-local ranges', () => {
  const o = makePolicyOptions({ ...network, allowLan: true }, 997);
  assert.deepEqual(o.lanSubnets, DEFAULT_LAN_SUBNETS);
});

test('allowLan off keeps the subnet list as given (it is not used)', () => {
  assert.deepEqual(makePolicyOptions(network, 997).lanSubnets, []);
});

test('values that would escape an nft script are refused', () => {
  for (const bad of [
    { ...network, tapName: 'tor"vm' },
    { ...network, vmAddress: '10.10.10.1; flush ruleset' },
    { ...network, allowLan: true, lanSubnets: ['10.0.0.0/8 }'] },
  ]) {
    assert.throws(() => makePolicyOptions(bad, 997), (e: unknown) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
  }
});

test('root or a missing uid cannot be the torvm uid', () => {
  for (const uid of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => makePolicyOptions(network, uid), (e: unknown) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
  }
});

test('describePolicy says what each state allows', () => {
  const o = makePolicyOptions({ ...network, allowLan: true, lockdown: true }, 997);
  const blocked = describePolicy(makePolicy('blocked', o));
  assert.match(blocked, /^Blocking all traffic except loopback;/);
  assert.doesNotMatch(blocked, /DNS query/);
  assert.match(blocked, /lockdown: after stop everything stays blocked/);
  assert.match(describePolicy(makePolicy('booting', o)), /QEMU \(uid 997\)/);
  const connected = describePolicy(makePolicy('connected', o));
  assert.match(connected, /^Sending all TCP through the VM at 10\.10\.10\.1 over torvm0/);
  assert.match(connected, /IPv6 is blocked/);
  assert.match(connected, /192\.168\.0\.0\/16.*\(not port 53\)/);
});

test('the VM MAC is a locally administered QEMU address', () => {
  assert.match(VM_LAN_MAC, /^52:54:00(:[0-9a-f]{2}){3}$/);
});
