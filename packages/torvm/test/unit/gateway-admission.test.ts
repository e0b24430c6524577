import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter, SubnetAllowlist, parseIPv4 } from '../../src/gateway/client-admission.ts';
import { createCredentialChecker } from '../../src/gateway/credentials.ts';

test('parseIPv4 reads dotted quads and IPv4-mapped IPv6, and nothing else', () => {
  assert.equal(parseIPv4('192.168.77.10'), 0xc0a84d0a);
  assert.equal(parseIPv4('::ffff:10.0.0.1'), 0x0a000001);
  for (const bad of ['256.0.0.1', '1.2.3', '01.2.3.4', '::1', 'fe80::1', '', '1.2.3.4 ']) assert.equal(parseIPv4(bad), null, bad);
});

test('the subnet allowlist admits exactly the listed subnets', () => {
  const allow = new SubnetAllowlist(['192.168.77.0/24', '10.1.2.3/32']);
  assert.ok(allow.allows('192.168.77.1'));
  assert.ok(allow.allows('192.168.77.255'));
  assert.ok(allow.allows('::ffff:192.168.77.9'));
  assert.ok(allow.allows('10.1.2.3'));
  for (const outside of ['192.168.78.1', '192.168.76.255', '10.1.2.4', '127.0.0.1', '::1', 'fe80::1', undefined]) {
    assert.equal(allow.allows(outside), false, String(outside));
  }
  assert.equal(new SubnetAllowlist([]).allows('192.168.77.1'), false, 'an empty list admits no one');
  assert.ok(new SubnetAllowlist(['0.0.0.0/0']).allows('8.8.8.8'));
  assert.throws(() => new SubnetAllowlist(['192.168.77.0/33']), RangeError);
  assert.throws(() => new SubnetAllowlist(['192.168.77.0']), RangeError);
});

test('the rate limiter allows a burst of perMinute, then refills at perMinute per minute, per address', () => {
  let now = 0;
  const limiter = new RateLimiter({ perMinute: 3, now: () => now });
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.tryTake('a')), [true, true, true, false]);
  assert.equal(limiter.tryTake('b'), true, 'another address has its own bucket');
  now += 19_999;
  assert.equal(limiter.tryTake('a'), false, 'less than one token refilled');
  now += 1;
  assert.equal(limiter.tryTake('a'), true, 'one token after 20 s at 3/min');
  assert.equal(limiter.tryTake('a'), false);
  now += 10 * 60_000;
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.tryTake('a')), [true, true, true, false], 'the bucket never holds more than perMinute');
});

test('the rate limiter forgets the least recently seen addresses beyond maxKeys', () => {
  const limiter = new RateLimiter({ perMinute: 1, now: () => 0, maxKeys: 2 });
  assert.equal(limiter.tryTake('a'), true);
  assert.equal(limiter.tryTake('b'), true);
  assert.equal(limiter.tryTake('c'), true); // evicts a
  assert.equal(limiter.tryTake('b'), false);
  assert.equal(limiter.tryTake('a'), true, 'a was forgotten and starts full');
});

test('credentials: only an exact user and password pair matches', () => {
  const check = createCredentialChecker([{ username: 'alice', password: 'correct horse' }, { username: 'bob', password: 'battery' }]);
  assert.equal(check.verify('alice', 'correct horse'), 'alice');
  assert.equal(check.verify('bob', 'battery'), 'bob');
  assert.equal(check.verify('alice', 'battery'), null, "another user's password");
  assert.equal(check.verify('alice', 'correct hors'), null, 'a prefix');
  assert.equal(check.verify('alice', 'correct horse '), null, 'a longer password');
  assert.equal(check.verify('carol', 'battery'), null);
  assert.equal(createCredentialChecker([]).verify('alice', 'correct horse'), null);
});
