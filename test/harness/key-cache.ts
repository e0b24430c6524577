/**
 * Reuses relay and authority keys between runs: generating them (RSA-3072
 * authority identities, relay identities) costs seconds of CPU per bring-up.
 * The network's addresses are fixed and it lives only in private namespaces,
 * so identical keys across runs are harmless. Entries are written to a temp
 * dir and renamed into place, so parallel runs never see half an entry.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, chownSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Default location (outside the repo, per project convention). */
export const DEFAULT_KEY_CACHE = '/var/cache/torvm/test-network-keys';

/** An authority certificate that expires within this many ms is regenerated. */
const MIN_CERT_LIFETIME_MS = 30 * 24 * 3600 * 1000;

function entryDir(cacheDir: string, key: string): string {
  return join(cacheDir, key.replace(/[^A-Za-z0-9_.-]/g, '_'));
}

function certStillValid(keysDir: string): boolean {
  const cert = join(keysDir, 'authority_certificate');
  if (!existsSync(cert)) return true; // not an authority
  const expires = /^dir-key-expires (.+)$/m.exec(readFileSync(cert, 'utf8'))?.[1];
  return expires !== undefined && Date.parse(`${expires.replace(' ', 'T')}Z`) - Date.now() > MIN_CERT_LIFETIME_MS;
}

/**
 * Copies a cached entry's `keys/` and `fingerprint` into `dataDir` (owned by
 * uid/gid). Returns false on a miss.
 */
export function restoreKeys(cacheDir: string, key: string, dataDir: string, uid: number, gid: number): boolean {
  const entry = entryDir(cacheDir, key);
  if (!existsSync(join(entry, 'fingerprint')) || !certStillValid(join(entry, 'keys'))) return false;
  cpSync(join(entry, 'keys'), join(dataDir, 'keys'), { recursive: true });
  cpSync(join(entry, 'fingerprint'), join(dataDir, 'fingerprint'));
  chownTree(dataDir, uid, gid);
  return true;
}

/** Stores `dataDir`'s keys under `key` (best effort; a lost race is fine). */
export function storeKeys(cacheDir: string, key: string, dataDir: string): void {
  const entry = entryDir(cacheDir, key);
  const staging = `${entry}.tmp-${process.pid}`;
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { mode: 0o700 });
    cpSync(join(dataDir, 'keys'), join(staging, 'keys'), { recursive: true });
    cpSync(join(dataDir, 'fingerprint'), join(staging, 'fingerprint'));
    rmSync(entry, { recursive: true, force: true });
    renameSync(staging, entry);
  } catch {
    rmSync(staging, { recursive: true, force: true });
  }
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) for (const child of readdirSync(path)) chownTree(join(path, child), uid, gid);
}
