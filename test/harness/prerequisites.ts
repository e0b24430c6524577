/**
 * What the namespace-based harness needs. In CI a missing prerequisite is a
 * failure (tests must never silently skip there); locally it is a skip reason.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const COMMANDS = ['ip', 'tor', 'tor-gencert', 'tor-resolve', 'setpriv', 'tcpdump', 'curl', 'sysctl'];

function onPath(command: string): boolean {
  const path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
  return [...path.split(delimiter), '/usr/sbin', '/sbin'].some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Human-readable list of what is missing (empty when all is there). */
export function missingPrerequisites(extraCommands: readonly string[] = []): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (network namespaces)');
  for (const command of [...COMMANDS, ...extraCommands]) if (!onPath(command)) missing.push(`command ${command}`);
  return missing;
}

/**
 * Returns a skip reason (string) or false. Throws under CI, where a missing
 * prerequisite must fail the run instead of skipping.
 */
export function skipUnlessPrerequisites(extraCommands: readonly string[] = []): string | false {
  const missing = missingPrerequisites(extraCommands);
  if (missing.length === 0) return false;
  const reason = `missing: ${missing.join(', ')}`;
  if (process.env.CI) throw new Error(`CI must run this test, but prerequisites are ${reason}`);
  return reason;
}
