/**
 * The pinned package set of one architecture (image/packages.<arch>.json).
 * The build uses only these pins; image/src/pin.ts regenerates them.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { GuestArch } from '../../packages/torvm/src/core/guest.ts';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const debName = z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/);
const debVersion = z.string().regex(/^[A-Za-z0-9.+~:-]+$/);

export const pinnedPackageSchema = z.strictObject({
  name: debName,
  version: debVersion,
  architecture: z.enum(['amd64', 'arm64', 'all']),
  sha256,
  size: z.int().positive(),
  /** Path in the Debian archive, for the SBOM. */
  filename: z.string().min(1),
});

export const pinFileSchema = z.strictObject({
  arch: z.enum(['x86_64', 'aarch64']),
  debianArch: z.enum(['amd64', 'arm64']),
  /** The kernel release (`uname -r`) of the pinned linux-image package. */
  kernelRelease: z.string().regex(/^[0-9][A-Za-z0-9.+-]+$/),
  kernelPackage: debName,
  packages: z.array(pinnedPackageSchema).min(1),
});

export type PinnedPackage = z.output<typeof pinnedPackageSchema>;
export type PinFile = z.output<typeof pinFileSchema>;

export const DEBIAN_ARCH: Record<GuestArch, 'amd64' | 'arm64'> = { x86_64: 'amd64', aarch64: 'arm64' };

/** Path of the pin file of `arch` in the source tree. */
export function pinFilePath(arch: GuestArch): string {
  return fileURLToPath(new URL(`../packages.${arch}.json`, import.meta.url));
}

export function loadPins(arch: GuestArch, path = pinFilePath(arch)): PinFile {
  const pins = pinFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  if (pins.arch !== arch || pins.debianArch !== DEBIAN_ARCH[arch]) throw new Error(`${path}: pins are for ${pins.arch}, not ${arch}`);
  return pins;
}
