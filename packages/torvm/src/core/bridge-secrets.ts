/**
 * What of a bridge line must never reach a log. Bridges are secret because
 * a censor who learns one blocks it: the whole line, and each part Tor
 * prints on its own (Tor's SafeLogging does not scrub "new bridge descriptor
 * … at ADDRESS" or fingerprints), and the PT arguments (cert, url, front).
 */
import { parseBridgeLine } from './bridge-line.ts';

export function bridgeLogSecrets(line: string): string[] {
  const parsed = parseBridgeLine(line);
  if (!parsed.ok) return [line];
  const { host, port, fingerprint, args } = parsed.bridge;
  const hostForms = host.startsWith('[') ? [host, host.slice(1, -1)] : [host];
  return [line, `${host}:${port}`, ...hostForms, ...(fingerprint ? [fingerprint, fingerprint.toLowerCase()] : []), ...args.map(([, value]) => value)];
}
