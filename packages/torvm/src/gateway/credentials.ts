/**
 * Checks a SOCKS username/password against the configured users. Every user
 * is compared, with fixed-length digests and timingSafeEqual, so the time
 * taken says nothing about which user or how much of a password matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface GatewayUser {
  readonly username: string;
  readonly password: string;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export interface CredentialChecker {
  /** The matching user name, or null. Never throws; never logs. */
  verify(username: string, password: string): string | null;
}

export function createCredentialChecker(users: readonly GatewayUser[]): CredentialChecker {
  const table = users.map((u) => ({ username: u.username, user: digest(u.username), pass: digest(u.password) }));
  return {
    verify(username, password) {
      const user = digest(username);
      const pass = digest(password);
      let found: string | null = null;
      for (const entry of table) {
        // Both comparisons always run: no short-circuit on the user name.
        const userOk = timingSafeEqual(user, entry.user);
        const passOk = timingSafeEqual(pass, entry.pass);
        if (userOk && passOk && found === null) found = entry.username;
      }
      return found;
    },
  };
}
