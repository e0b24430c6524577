import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  generateControlPassword, hashControlPassword, parseHashedControlPassword, verifyControlPassword,
} from '../../src/tor/hashed-password.ts';
import { isTorvmError } from '../../src/core/errors.ts';

// Computed once by `tor --hash-password <password> --quiet` (Tor 0.4.9.11, Debian bookworm).
const TOR_VECTORS: ReadonlyArray<readonly [string, string]> = [
  ['pw', '16:6BA4214008AD6F336019475B545655D3AAE7CC7F2886ADE71B74F81C4D'],
  ['x', '16:ABE7183B9C6DFF696042AC8F2B163BDBD9B8E4166D90F9EEDFE5E954D3'],
  ['correct horse "battery" \\staple', '16:E55F4F49B052DB0260D3CAB93F850C5535542B5E7E396697B29FC67A69'],
  ['pässwörd ✓', '16:BB3AA95F1DEEC5356042317C2BCFC70A6B2C6F60D54A2DFDC37D5E9584'],
];

describe('hashControlPassword', () => {
  for (const [password, expected] of TOR_VECTORS) {
    it(`matches tor --hash-password for ${JSON.stringify(password)}`, () => {
      const { salt } = parseHashedControlPassword(expected);
      assert.equal(hashControlPassword(password, salt), expected);
      assert.equal(verifyControlPassword(password, expected), true);
      assert.equal(verifyControlPassword(`${password}!`, expected), false);
    });
  }

  it('writes 16: + 8-byte salt + indicator 0x60 + 20-byte digest in upper-case hex', () => {
    const hashed = hashControlPassword('secret');
    assert.match(hashed, /^16:[0-9A-F]{16}60[0-9A-F]{40}$/);
    const parts = parseHashedControlPassword(hashed);
    assert.equal(parts.salt.length, 8);
    assert.equal(parts.indicator, 0x60);
    assert.equal(parts.digest.length, 20);
  });

  it('uses a fresh random salt each time', () => {
    assert.notEqual(hashControlPassword('same'), hashControlPassword('same'));
  });

  it('follows Tor when salt+secret is longer than the 65536-byte count (the input is truncated)', () => {
    const salt = Buffer.alloc(8, 7);
    const long = 'a'.repeat(70_000);
    // Only the first 65536 bytes of salt|secret are hashed, so a different tail hashes the same.
    assert.equal(hashControlPassword(long, salt), hashControlPassword(`${long}b`, salt));
    assert.notEqual(hashControlPassword('a'.repeat(100), salt), hashControlPassword('a'.repeat(101), salt));
  });

  it('refuses a salt that is not 8 bytes', () => {
    assert.throws(() => hashControlPassword('pw', Buffer.alloc(4)), (err: unknown) => isTorvmError(err, 'ERR_INTERNAL'));
  });

  it('refuses malformed hashes', () => {
    for (const bad of ['', '16:', '16:ZZ', 'pw', `17:${'0'.repeat(58)}`, `16:${'0'.repeat(57)}`]) {
      assert.throws(() => parseHashedControlPassword(bad), (err: unknown) => isTorvmError(err, 'ERR_UNSAFE_VALUE'), bad);
    }
  });

  it('verifies every password it hashes (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 64 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), (password, salt) => {
      const hashed = hashControlPassword(password, Buffer.from(salt));
      return verifyControlPassword(password, hashed);
    }), { numRuns: 50 });
  });
});

describe('generateControlPassword', () => {
  it('returns 64 hex digits (32 random bytes), different each time', () => {
    const a = generateControlPassword();
    const b = generateControlPassword();
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.notEqual(a, b);
  });
});
