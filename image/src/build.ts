/**
 * Builds the guest image from the pinned Debian packages of one architecture.
 * Two ways to boot the same bits, both in manifest.json:
 *   - kernel + initramfs.img: self-contained (the system image is inside);
 *   - kernel + initramfs-small.img + system.img as a read-only virtio disk
 *     with serial "torvm-system": about 25 MB less RAM at boot.
 *
 *   1. fetch each pinned .deb with apt-get into the cache, check its SHA-256
 *   2. extract it once (dpkg-deb -x), keyed by that hash
 *   3. compute the module load order with depmod
 *   4. assemble the tree: programs and libraries into a squashfs system
 *      image, the rest plus that image into a deterministic cpio (xz)
 *   5. write the artifacts and manifest.json atomically
 *
 * Same pins + same guest files => byte-identical artifacts.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createCommandRunner, type CommandRunner } from '../../packages/torvm/src/platform/exec.ts';
import { TorvmError } from '../../packages/torvm/src/core/errors.ts';
import type { GuestArch } from '../../packages/torvm/src/core/guest.ts';
import { imageManifestSchema, MANIFEST_FILE, type ImageManifest } from '../../packages/torvm/src/vm/image-manifest.ts';
import { privateApt, ensureAptLists, type PrivateApt } from './apt.ts';
import { gzipDeterministic, writeCpio, type CpioEntry } from './cpio.ts';
import { moduleLoadOrder, parseModulesBuiltin, parseModulesDep, WANTED_MODULES } from './kernel-modules.ts';
import { loadPins, type PinFile, type PinnedPackage } from './pins.ts';
import { assembleRootfs, SYSTEM_IMAGE, type SystemFile } from './rootfs.ts';

export type { ImageManifest } from '../../packages/torvm/src/vm/image-manifest.ts';

export interface BuildOptions {
  arch: GuestArch;
  outDir: string;
  /** Downloads and extractions; outside the repository. */
  cacheDir: string;
  log?: (line: string) => void;
  /** Overrides the pin file (tests). */
  pins?: PinFile;
  runner?: CommandRunner;
}

export const KERNEL_FILE = 'vmlinuz';
export const INITRAMFS_FILE = 'initramfs.img';
export const INITRAMFS_SMALL_FILE = 'initramfs-small.img';
export const SYSTEM_DISK_FILE = 'system.img';
/** virtio-blk serial by which /init recognises the system disk. */
export const SYSTEM_DISK_SERIAL = 'torvm-system';
/** The archive's final entry; /init refuses to run without it (see writeCpio). */
export const INITRAMFS_COMPLETE_MARKER = '/etc/torvm/initramfs-complete';

const sha256Of = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function fail(message: string, cause?: unknown): never {
  throw new TorvmError('ERR_IMAGE_BUILD', message, cause === undefined ? {} : { cause });
}

/** Returns the path of the verified .deb in the cache, downloading it if needed. */
async function fetchDeb(pkg: PinnedPackage, debianArch: string, cacheDir: string, apt: PrivateApt, run: CommandRunner, log: (l: string) => void): Promise<string> {
  const debDir = join(cacheDir, 'debs');
  mkdirSync(debDir, { recursive: true });
  const target = join(debDir, `${pkg.sha256}.deb`);
  if (existsSync(target) && sha256Of(readFileSync(target)) === pkg.sha256) return target;
  await ensureAptLists(run, apt);
  const tmp = mkdtempSync(join(debDir, '.fetch-'));
  try {
    const arch = pkg.architecture === 'all' ? 'all' : debianArch;
    log(`fetch ${pkg.name}=${pkg.version} (${arch})`);
    try {
      // apt-get download writes into its working directory; `env -C` sets it without a shell.
      await run.run('env', ['-C', tmp, 'apt-get', ...apt.options, '-q', 'download', `${pkg.name}:${arch}=${pkg.version}`], { timeoutMs: 600_000 });
    } catch (err) {
      fail(`cannot download ${pkg.name}=${pkg.version}; the mirror may have dropped this version (run image/src/pin.ts to update the pins)`, err);
    }
    const files = readdirSync(tmp).filter((f) => f.endsWith('.deb'));
    if (files.length !== 1) fail(`apt-get download ${pkg.name} produced ${files.length} files`);
    const data = readFileSync(join(tmp, files[0]!));
    const actual = sha256Of(data);
    if (actual !== pkg.sha256 || data.length !== pkg.size) fail(`${pkg.name}=${pkg.version}: SHA-256 ${actual} does not match the pin ${pkg.sha256}`);
    renameSync(join(tmp, files[0]!), target);
    return target;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Extracts a verified .deb once; the directory name is its hash. */
async function extractDeb(deb: string, sha256: string, cacheDir: string, run: CommandRunner, after?: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(cacheDir, 'extract', sha256);
  if (existsSync(join(dir, '.torvm-complete'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await run.run('dpkg-deb', ['-x', deb, tmp], { timeoutMs: 300_000 });
  if (after) await after(tmp);
  writeFileSync(join(tmp, '.torvm-complete'), '');
  renameSync(tmp, dir);
  return dir;
}

/**
 * xz, with the x86 branch filter where there is one: the smallest image, and
 * the image's size is RAM the guest never gets back (it lives in the
 * initramfs, and the compressed initrd sits next to it while unpacking).
 * Only pages actually read are decompressed, so the cost at boot is small.
 */
const SQUASHFS_COMPRESSION: Record<GuestArch, readonly string[]> = {
  x86_64: ['-comp', 'xz', '-Xbcj', 'x86'],
  aarch64: ['-comp', 'xz'],
};

/**
 * The read-only system image (squashfs). mksquashfs is reproducible here:
 * root-owned, every timestamp 0, no xattrs, entries sorted by name.
 */
async function makeSquashfs(files: readonly SystemFile[], cacheDir: string, run: CommandRunner, compression: readonly string[]): Promise<Buffer> {
  const dir = mkdtempSync(join(cacheDir, '.sqfs-'));
  try {
    const root = join(dir, 'root');
    mkdirSync(root, { mode: 0o755 });
    for (const f of files) {
      const path = join(root, f.path);
      mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
      writeFileSync(path, f.data);
      chmodSync(path, f.mode);
    }
    // mkdir's mode is filtered by the umask; state every directory's mode.
    for (const d of listDirs(root)) chmodSync(d, 0o755);
    const out = join(dir, 'system.sqfs');
    await run.run('mksquashfs', [
      root, out, '-noappend', '-quiet', '-no-progress', ...compression, '-b', '131072',
      '-all-root', '-no-xattrs', '-reproducible', '-mkfs-time', '0', '-all-time', '0', '-root-mode', '0755', '-processors', '1',
    ], { timeoutMs: 600_000 });
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function listDirs(dir: string): string[] {
  const out = [dir];
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...listDirs(join(dir, e.name)));
  return out;
}

/**
 * xz in the form the kernel's initramfs unpacker accepts (CRC32 check, one
 * thread so one block) with a 1 MiB dictionary, so decompressing needs little
 * RAM at boot. xz writes no timestamps: same input, same bytes.
 */
async function xzForKernel(data: Buffer, cacheDir: string, run: CommandRunner): Promise<Buffer> {
  const dir = mkdtempSync(join(cacheDir, '.xz-'));
  try {
    const file = join(dir, 'initramfs.cpio');
    writeFileSync(file, data);
    await run.run('xz', ['--format=xz', '--check=crc32', '--lzma2=preset=9e,dict=1MiB', '--threads=1', '--keep', '--force', file], { timeoutMs: 600_000 });
    return readFileSync(`${file}.xz`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Debian's arm64 vmlinuz is an uncompressed Image (about 30 MB). QEMU's
 * direct kernel boot on aarch64 accepts a gzipped Image, so ship that.
 */
function compressRawArm64Image(kernel: Buffer): Buffer {
  const isRawArm64Image = kernel.length > 64 && kernel.readUInt32LE(0x38) === 0x644d5241; // "ARM\x64"
  return isRawArm64Image ? gzipDeterministic(kernel) : kernel;
}

function writeAtomic(path: string, data: Buffer | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Builds the image into `outDir` and returns its manifest. */
export async function buildImage(options: BuildOptions): Promise<ImageManifest> {
  const log = options.log ?? (() => {});
  const run = options.runner ?? createCommandRunner();
  const pins = options.pins ?? loadPins(options.arch);
  if (pins.arch !== options.arch) fail(`pins are for ${pins.arch}, not ${options.arch}`);
  mkdirSync(options.cacheDir, { recursive: true });
  mkdirSync(options.outDir, { recursive: true });
  const apt = privateApt(options.cacheDir, pins.debianArch);

  const extracted = new Map<string, string>();
  for (const pkg of pins.packages) {
    const deb = await fetchDeb(pkg, pins.debianArch, options.cacheDir, apt, run, log);
    const isKernel = pkg.name === pins.kernelPackage;
    // The .deb ships no modules.dep (its postinst runs depmod); make one.
    const dir = await extractDeb(deb, pkg.sha256, options.cacheDir, run, isKernel
      ? async (root) => { await run.run('depmod', ['-b', root, pins.kernelRelease], { timeoutMs: 120_000 }); }
      : undefined);
    extracted.set(pkg.name, dir);
  }
  const kernelRoot = extracted.get(pins.kernelPackage);
  if (!kernelRoot) fail(`the kernel package ${pins.kernelPackage} is not in the pins`);
  const modulesDir = join(kernelRoot, 'lib/modules', pins.kernelRelease);
  let moduleOrder: string[];
  try {
    moduleOrder = moduleLoadOrder(
      WANTED_MODULES[options.arch],
      parseModulesDep(readFileSync(join(modulesDir, 'modules.dep'), 'utf8')),
      parseModulesBuiltin(readFileSync(join(modulesDir, 'modules.builtin'), 'utf8')),
    );
  } catch (err) {
    fail(`kernel modules: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  log(`${moduleOrder.length} kernel modules`);

  let initramfs: Buffer;
  let initramfsSmall: Buffer;
  let systemImage: Buffer;
  try {
    const rootfs = assembleRootfs({ arch: options.arch, packages: extracted, kernelRelease: pins.kernelRelease, moduleOrder, kernelRoot });
    systemImage = await makeSquashfs(rootfs.system, options.cacheDir, run, SQUASHFS_COMPRESSION[options.arch]);
    log(`${rootfs.entries.length} initramfs entries, system image ${systemImage.length} B (${rootfs.system.length} files)`);
    const complete: CpioEntry = { kind: 'file', path: INITRAMFS_COMPLETE_MARKER, mode: 0o644, data: Buffer.from(`${pins.arch} ${pins.kernelRelease}\n`) };
    // Self-contained: the system image rides inside the initramfs (one -initrd, nothing else).
    initramfs = await xzForKernel(writeCpio([...rootfs.entries, { kind: 'file', path: SYSTEM_IMAGE, mode: 0o444, data: systemImage }], complete), options.cacheDir, run);
    // Small: the system image comes as a read-only disk (serial SYSTEM_DISK_SERIAL), so it never occupies RAM.
    initramfsSmall = await xzForKernel(writeCpio(rootfs.entries, complete), options.cacheDir, run);
  } catch (err) {
    if (err instanceof TorvmError) throw err;
    fail(`initramfs: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const kernel = compressRawArm64Image(readFileSync(join(kernelRoot, 'boot', `vmlinuz-${pins.kernelRelease}`)));

  const artifact = (file: string, data: Buffer) => ({ file, sha256: sha256Of(data), size: data.length });
  const manifest = imageManifestSchema.parse({
    schemaVersion: 1,
    arch: options.arch,
    kernelRelease: pins.kernelRelease,
    artifacts: {
      kernel: artifact(KERNEL_FILE, kernel),
      initramfs: artifact(INITRAMFS_FILE, initramfs),
      initramfsSmall: artifact(INITRAMFS_SMALL_FILE, initramfsSmall),
      systemDisk: artifact(SYSTEM_DISK_FILE, systemImage),
    },
    systemDiskSerial: SYSTEM_DISK_SERIAL,
    packages: pins.packages.map((p) => ({ name: p.name, version: p.version, architecture: p.architecture, sha256: p.sha256, size: p.size, filename: p.filename })),
    modules: moduleOrder,
  });
  writeAtomic(join(options.outDir, KERNEL_FILE), kernel);
  writeAtomic(join(options.outDir, INITRAMFS_FILE), initramfs);
  writeAtomic(join(options.outDir, INITRAMFS_SMALL_FILE), initramfsSmall);
  writeAtomic(join(options.outDir, SYSTEM_DISK_FILE), systemImage);
  // Written last: a manifest on disk means the artifacts next to it are complete.
  writeAtomic(join(options.outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`image ${options.arch}: kernel ${kernel.length} B, initramfs ${initramfs.length} B (small ${initramfsSmall.length} B + system disk ${systemImage.length} B)`);
  return manifest;
}
