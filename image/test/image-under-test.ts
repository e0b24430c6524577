/**
 * The image the integration tests boot: the one CI built once (env
 * TORVM_IMAGE_DIR for x86_64, TORVM_IMAGE_DIR_AARCH64 for aarch64), or one
 * built here from a clean temporary cache.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GuestArch } from '../../packages/torvm/src/core/guest.ts';
import { buildImage, type ImageManifest } from '../src/build.ts';

export interface ImageUnderTest {
  dir: string;
  manifest: ImageManifest;
  /** Set when this process built the image from a clean cache (for the reproducibility check). */
  builtHere?: { cacheDir: string; seconds: number };
}

/** Prerequisite check: in CI a missing prerequisite fails; elsewhere the caller may skip. */
export function missingPrerequisite(arch: GuestArch): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, TAP)';
  const qemu = arch === 'x86_64' ? '/usr/bin/qemu-system-x86_64' : '/usr/bin/qemu-system-aarch64';
  for (const bin of [qemu, '/usr/bin/apt-get', '/usr/bin/dpkg-deb', '/usr/sbin/depmod', '/usr/bin/xz', '/usr/sbin/debugfs']) {
    if (!existsSync(bin)) return `needs ${bin}`;
  }
  return undefined;
}

export async function imageUnderTest(arch: GuestArch, prefix: string, log: (l: string) => void): Promise<ImageUnderTest> {
  const given = arch === 'x86_64' ? process.env.TORVM_IMAGE_DIR : process.env.TORVM_IMAGE_DIR_AARCH64;
  if (given) {
    const dir = given;
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ImageManifest;
    if (manifest.arch !== arch) throw new Error(`TORVM_IMAGE_DIR holds a ${manifest.arch} image, not ${arch}`);
    return { dir, manifest };
  }
  const base = mkdtempSync(join(tmpdir(), prefix));
  const cacheDir = join(base, 'cache');
  const dir = join(base, 'image');
  const started = Date.now();
  const manifest = await buildImage({ arch, outDir: dir, cacheDir, log });
  return { dir, manifest, builtHere: { cacheDir, seconds: (Date.now() - started) / 1000 } };
}
