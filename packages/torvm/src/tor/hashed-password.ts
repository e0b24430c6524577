/**
 * Tor's `HashedControlPassword` format, computed in JS so the controller can
 * hand the hash to the guest Tor (which then never sees the password itself).
 *
 * Format: `16:` + HEX(salt[8] | indicator[1] | SHA1-S2K digest[20]), where the
 * digest is OpenPGP's iterated+salted S2K (RFC 4880 §3.7.1.3) exactly as Tor's
 * `secret_to_key_rfc2440()` computes it, including Tor's quirk of truncating
 * the input when the byte count is smaller than salt+secret.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TorvmError } from '../core/errors.ts';

/** Tor always writes this indicator: count = (16 + (0x60 & 15)) << ((0x60 >> 4) + 6) = 65536 bytes. */
const TOR_S2K_INDICATOR = 0x60;
const SALT_LENGTH = 8;
const DIGEST_LENGTH = 20;
const HASHED_PASSWORD_PATTERN = /^16:([0-9A-Fa-f]{58})$/;

function s2kByteCount(indicator: number): number {
  return (16 + (indicator & 15)) << ((indicator >> 4) + 6);
}

function s2kDigest(salt: Buffer, secret: Buffer, indicator: number): Buffer {
  const block = Buffer.concat([salt, secret]);
  const sha1 = createHash('sha1');
  let remaining = s2kByteCount(indicator);
  while (remaining > 0) {
    const take = Math.min(remaining, block.length);
    sha1.update(take === block.length ? block : block.subarray(0, take));
    remaining -= take;
  }
  return sha1.digest();
}

/**
 * Hashes `password` (UTF-8) the way `tor --hash-password` does.
 * `salt` (8 bytes) is random unless given; tests pass a fixed salt.
 * Returns e.g. `16:6BA4214008AD6F336019475B...` (upper-case hex, like Tor).
 */
export function hashControlPassword(password: string, salt: Buffer = randomBytes(SALT_LENGTH)): string {
  if (salt.length !== SALT_LENGTH) {
    throw new TorvmError('ERR_INTERNAL', `hashControlPassword: salt must be ${SALT_LENGTH} bytes, got ${salt.length}`);
  }
  const digest = s2kDigest(salt, Buffer.from(password, 'utf8'), TOR_S2K_INDICATOR);
  return `16:${Buffer.concat([salt, Buffer.of(TOR_S2K_INDICATOR), digest]).toString('hex').toUpperCase()}`;
}

/** The parts of a `16:` hash. Throws ERR_UNSAFE_VALUE if `hashed` is not in Tor's format. */
export function parseHashedControlPassword(hashed: string): { salt: Buffer; indicator: number; digest: Buffer } {
  const match = HASHED_PASSWORD_PATTERN.exec(hashed.trim());
  if (!match?.[1]) {
    throw new TorvmError('ERR_UNSAFE_VALUE', 'not a Tor hashed control password (expected "16:" and 58 hex digits)');
  }
  const raw = Buffer.from(match[1], 'hex');
  return {
    salt: raw.subarray(0, SALT_LENGTH),
    indicator: raw[SALT_LENGTH] ?? 0,
    digest: raw.subarray(SALT_LENGTH + 1, SALT_LENGTH + 1 + DIGEST_LENGTH),
  };
}

/** True when `password` matches `hashed` (any S2K indicator, compared in constant time). */
export function verifyControlPassword(password: string, hashed: string): boolean {
  const { salt, indicator, digest } = parseHashedControlPassword(hashed);
  return timingSafeEqual(s2kDigest(salt, Buffer.from(password, 'utf8'), indicator), digest);
}

/** A fresh control password: 32 random bytes as 64 lower-case hex digits (safe to quote anywhere). */
export function generateControlPassword(): string {
  return randomBytes(32).toString('hex');
}
