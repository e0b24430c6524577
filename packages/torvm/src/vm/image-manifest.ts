/**
 * The VM image's manifest.json: what the image builder produced (kernel,
 * initramfs, with SHA-256 and size) and from what (every Debian package with
 * its version and hash, an SBOM). The controller reads it and verifies the
 * artifacts before it boots anything.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { TorvmError } from '../core/errors.ts';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const fileName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a plain file name');

export const artifactSchema = z.strictObject({ file: fileName, sha256, size: z.int().nonnegative() });

export const imageManifestSchema = z.strictObject({
  schemaVersion: z.literal(1),
  arch: z.enum(['x86_64', 'aarch64']),
  /** `uname -r` of the guest kernel. */
  kernelRelease: z.string().min(1),
  artifacts: z.strictObject({
    kernel: artifactSchema,
    /** Self-contained initramfs: boot with just `-kernel` and `-initrd`. */
    initramfs: artifactSchema,
    /** The same without the system image, which then comes as a disk (below): needs about 25 MB less RAM. */
    initramfsSmall: artifactSchema,
    /**
     * The system image (squashfs) for `initramfsSmall`: attach read-only as
     * `-drive if=none,id=system,format=raw,readonly=on,file=…`
     * `-device virtio-blk-pci,drive=system,serial=<systemDiskSerial>`.
     */
    systemDisk: artifactSchema,
  }),
  /** The virtio-blk serial the guest recognises the system disk by. */
  systemDiskSerial: z.string().regex(/^[a-z0-9-]{1,20}$/),
  packages: z.array(z.strictObject({
    name: z.string().min(1),
    version: z.string().min(1),
    architecture: z.string().min(1),
    sha256,
    size: z.int().positive(),
    filename: z.string().min(1),
  })),
  /** Kernel modules in the initramfs, in load order. */
  modules: z.array(z.string()),
});

export type ImageManifest = z.output<typeof imageManifestSchema>;
export type ImageArtifact = z.output<typeof artifactSchema>;

export const MANIFEST_FILE = 'manifest.json';

/** Parses manifest text. Throws ERR_IMAGE_MISSING on anything malformed. */
export function parseImageManifest(text: string, source = MANIFEST_FILE): ImageManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TorvmError('ERR_IMAGE_MISSING', `${source} is not valid JSON`, { cause: err, hint: 'rebuild the image with `torvm image build`' });
  }
  const parsed = imageManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new TorvmError('ERR_IMAGE_MISSING', `${source} is not a TorVM image manifest: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { hint: 'rebuild the image with `torvm image build`' });
  }
  return parsed.data;
}

async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

export interface VerifiedImage {
  manifest: ImageManifest;
  kernelPath: string;
  /** Self-contained initramfs. */
  initramfsPath: string;
  /** Small initramfs, to be used together with `systemDiskPath`. */
  initramfsSmallPath: string;
  systemDiskPath: string;
}

/**
 * Reads `<dir>/manifest.json` and checks each artifact's size and SHA-256.
 * Throws ERR_IMAGE_MISSING if anything is absent or differs.
 */
export async function readVerifiedImage(dir: string, expectedArch?: ImageManifest['arch']): Promise<VerifiedImage> {
  const manifestPath = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    throw new TorvmError('ERR_IMAGE_MISSING', `no VM image in ${dir}`, { cause: err, hint: 'build it with `torvm image build`' });
  }
  const manifest = parseImageManifest(text, manifestPath);
  if (expectedArch && manifest.arch !== expectedArch) {
    throw new TorvmError('ERR_IMAGE_MISSING', `the VM image in ${dir} is for ${manifest.arch}, not ${expectedArch}`, { hint: `build it with \`torvm image build --arch ${expectedArch}\`` });
  }
  for (const artifact of Object.values(manifest.artifacts)) {
    const path = join(dir, artifact.file);
    let actual: { sha256: string; size: number };
    try {
      actual = await hashFile(path);
    } catch (err) {
      throw new TorvmError('ERR_IMAGE_MISSING', `the VM image file ${artifact.file} is missing`, { cause: err, hint: 'rebuild the image with `torvm image build`' });
    }
    if (actual.size !== artifact.size || actual.sha256 !== artifact.sha256) {
      throw new TorvmError('ERR_IMAGE_MISSING', `the VM image file ${artifact.file} does not match its manifest`, {
        hint: 'rebuild the image with `torvm image build`',
        details: { file: artifact.file, expected: artifact.sha256, actual: actual.sha256 },
      });
    }
  }
  const path = (a: ImageArtifact) => join(dir, a.file);
  const { kernel, initramfs, initramfsSmall, systemDisk } = manifest.artifacts;
  return { manifest, kernelPath: path(kernel), initramfsPath: path(initramfs), initramfsSmallPath: path(initramfsSmall), systemDiskPath: path(systemDisk) };
}
