/** End-to-end tests need root, QEMU and a built image. In CI a missing piece is a failure, never a skip. */
import { existsSync } from 'node:fs';

export function e2eImageDir(): string {
  return process.env.TORVM_IMAGE_DIR ?? '/var/cache/torvm/image';
}

/** Returns a skip reason locally, or false; throws in CI when something is missing. */
export function requireE2e(): string | false {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync(`${e2eImageDir()}/manifest.json`)) missing.push(`a VM image in ${e2eImageDir()} (set TORVM_IMAGE_DIR, or run scripts/setup.sh)`);
  if (missing.length === 0) return false;
  if (process.env.CI) throw new Error(`end-to-end tests need: ${missing.join(', ')}`);
  return `needs ${missing.join(', ')}`;
}
