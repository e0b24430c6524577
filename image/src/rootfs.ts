/**
 * Assembles the guest's initramfs tree from the extracted packages: the
 * programs the guest runs, exactly the shared libraries they need (resolved
 * from the packages' own files, never the build host's), the kernel modules
 * in load order, and the guest files from image/guest/.
 */
import { lstatSync, readFileSync, readlinkSync, readdirSync, existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GuestArch } from '../../packages/torvm/src/core/guest.ts';
import type { CpioEntry } from './cpio.ts';
import { readElfDeps, isElf } from './elf.ts';

/** One extracted .deb: package name -> directory holding its files. */
export type ExtractedPackages = ReadonlyMap<string, string>;

const TRIPLET: Record<GuestArch, string> = { x86_64: 'x86_64-linux-gnu', aarch64: 'aarch64-linux-gnu' };
const ELF_MACHINE: Record<GuestArch, number> = { x86_64: 62, aarch64: 183 };

/** The guest's uid/gid for Tor. image/guest/init and nftables use the name. */
export const TOR_UID = 100;

/**
 * Programs copied from the packages, at their Debian paths (GUEST.transportPlugins
 * relies on these). All but busybox, with their libraries, go into the
 * compressed system image (see SYSTEM_IMAGE): RAM is the guest's scarcest
 * resource, and files in an initramfs stay in RAM uncompressed.
 */
export const PROGRAMS: ReadonlyArray<{ pkg: string; path: string; inInitramfs?: boolean }> = [
  { pkg: 'busybox-static', path: '/bin/busybox', inInitramfs: true },
  { pkg: 'tor', path: '/usr/sbin/tor' },
  { pkg: 'nftables', path: '/usr/sbin/nft' },
  { pkg: 'e2fsprogs', path: '/sbin/mke2fs' },
  { pkg: 'e2fsprogs', path: '/sbin/e2fsck' },
  { pkg: 'obfs4proxy', path: '/usr/bin/obfs4proxy' },
  { pkg: 'snowflake-client', path: '/usr/bin/snowflake-client' },
];

/**
 * Data files copied from the packages into the system image (never the
 * initramfs). Only the IPv4 GeoIP database: Tor holds a parsed database in
 * RAM (about 16 MB each for IPv4 and IPv6, measured with tor 0.4.9), every
 * relay has an IPv4 address, and the guest's RAM is scarce. The torrc names
 * the path (core/torrc.ts GEOIP_FILE; a unit test holds the two together).
 */
export const DATA_FILES: ReadonlyArray<{ pkg: string; path: string }> = [
  { pkg: 'tor-geoipdb', path: '/usr/share/tor/geoip' },
];

/**
 * The TLS root store, built the way Debian's update-ca-certificates builds it
 * (every Mozilla root of the ca-certificates package, in name order, in one
 * PEM file). Go programs (snowflake-client, obfs4proxy's meek_lite) read it
 * at this path; without it they could verify no HTTPS server at all.
 */
export const CA_BUNDLE = { pkg: 'ca-certificates', sourceDir: '/usr/share/ca-certificates/mozilla', path: '/etc/ssl/certs/ca-certificates.crt' } as const;

/** busybox applets the guest scripts call, linked in /bin. */
export const BUSYBOX_APPLETS = [
  'acpid', 'arp', 'basename', 'cat', 'chmod', 'chown', 'cut', 'date', 'dd', 'echo', 'grep', 'head', 'id', 'insmod',
  'ip', 'ipcalc', 'kill', 'ls', 'mkdir', 'mount', 'od', 'poweroff', 'rm', 'sed', 'sh', 'sleep', 'sync',
  'sysctl', 'sort', 'tr', 'udhcpc', 'free', 'umount', 'uname', 'cp', 'ps', 'sha256sum', 'test', '[',
] as const;

/** Guest files: source in image/guest -> path in the image, mode. */
const GUEST_FILES: ReadonlyArray<{ src: string; dest: string; mode: number }> = [
  { src: 'init', dest: '/init', mode: 0o755 },
  { src: 'nftables.nft', dest: '/etc/torvm/nftables.nft', mode: 0o644 },
  { src: 'udhcpc.script', dest: '/etc/torvm/udhcpc.script', mode: 0o755 },
  // busybox acpid runs <conf dir>/PWRF/00000080 on the power button.
  { src: 'acpi-power-button', dest: '/etc/acpi/PWRF/00000080', mode: 0o755 },
];

const DIRECTORIES: ReadonlyArray<[string, number]> = [
  ['/bin', 0o755], ['/sbin', 0o755], ['/usr', 0o755], ['/usr/bin', 0o755], ['/usr/sbin', 0o755], ['/lib', 0o755],
  ['/etc', 0o755], ['/etc/torvm', 0o755], ['/etc/acpi', 0o755], ['/etc/acpi/PWRF', 0o755],
  ['/proc', 0o555], ['/sys', 0o555], ['/dev', 0o755], ['/run', 0o755], ['/state', 0o755], ['/tmp', 0o1777], ['/root', 0o700],
];

/**
 * The system image: a squashfs inside the initramfs, loop-mounted read-only
 * by /init at SYSTEM_MOUNT. It holds Tor, nft, e2fsprogs, the transports and
 * their libraries; the initramfs has a symlink at each of their paths. Only
 * the compressed image occupies RAM, and pages are read in as used.
 */
export const SYSTEM_IMAGE = '/system.sqfs';
export const SYSTEM_MOUNT = '/system';

/** A file of the system image. */
export interface SystemFile { path: string; mode: number; data: Buffer }

export const guestDir = (): string => fileURLToPath(new URL('../guest/', import.meta.url));

/** Follows symlinks inside `root`, mapping absolute targets into it. Returns the real file path. */
export function resolveInRoot(root: string, path: string): string | undefined {
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    const full = join(root, current);
    if (!existsSync(full) && !isDanglingLink(full)) return undefined;
    const st = lstatSync(full);
    if (!st.isSymbolicLink()) return st.isFile() ? full : undefined;
    const target = readlinkSync(full);
    current = target.startsWith('/') ? target : posix.join(posix.dirname(current), target);
  }
  return undefined;
}

function isDanglingLink(full: string): boolean {
  try { return lstatSync(full).isSymbolicLink(); } catch { return false; }
}

export interface RootfsInput {
  arch: GuestArch;
  packages: ExtractedPackages;
  kernelRelease: string;
  /** Module paths relative to lib/modules/<release>/, in load order. */
  moduleOrder: readonly string[];
  /** Root of the extracted kernel package. */
  kernelRoot: string;
}

export interface Rootfs {
  /** The initramfs, without the system image file itself. */
  entries: CpioEntry[];
  /** The files of the system image (absolute guest paths). */
  system: SystemFile[];
}

/** The concatenated root certificates (see CA_BUNDLE). Throws if the package holds none. */
export function caBundle(packages: ExtractedPackages): Buffer {
  const root = packages.get(CA_BUNDLE.pkg);
  const dir = root ? join(root, CA_BUNDLE.sourceDir) : undefined;
  const names = dir && existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.crt')).sort() : [];
  if (!dir || names.length < 50) throw new Error(`rootfs: ${CA_BUNDLE.pkg} holds ${names.length} root certificates in ${CA_BUNDLE.sourceDir}`);
  return Buffer.concat(names.map((n) => {
    const pem = readFileSync(join(dir, n));
    return pem.at(-1) === 0x0a ? pem : Buffer.concat([pem, Buffer.from('\n')]);
  }));
}

/** Builds the initramfs entries and the system image's files. Throws if a program or library is missing. */
export function assembleRootfs(input: RootfsInput): Rootfs {
  const entries = new Map<string, CpioEntry>();
  const addDir = (path: string, mode = 0o755) => {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = `/${parts.slice(0, i).join('/')}`;
      if (!entries.has(p)) entries.set(p, { kind: 'dir', path: p, mode: i === parts.length ? mode : 0o755 });
    }
  };
  const add = (entry: CpioEntry) => {
    if (entries.has(entry.path)) throw new Error(`rootfs: ${entry.path} added twice`);
    addDir(posix.dirname(entry.path));
    entries.set(entry.path, entry);
  };
  const system = new Map<string, SystemFile>();
  // A system file lives in the image; the initramfs points at it.
  const addSystem = (file: SystemFile) => {
    if (system.has(file.path)) throw new Error(`rootfs: ${file.path} added twice`);
    system.set(file.path, file);
    add({ kind: 'symlink', path: file.path, target: `${SYSTEM_MOUNT}${file.path}` });
  };
  for (const [d, mode] of DIRECTORIES) addDir(d, mode);
  addDir(SYSTEM_MOUNT, 0o755);
  add({ kind: 'chardev', path: '/dev/console', mode: 0o600, major: 5, minor: 1 });
  add({ kind: 'chardev', path: '/dev/null', mode: 0o666, major: 1, minor: 3 });

  // Programs and their library closure.
  const triplet = TRIPLET[input.arch];
  const libDirs = [`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib', '/usr/lib'];
  const findLibrary = (soname: string): string | undefined => {
    for (const root of input.packages.values()) {
      for (const dir of libDirs) {
        const real = resolveInRoot(root, `${dir}/${soname}`);
        if (real) return real;
      }
    }
    return undefined;
  };
  const libsPlaced = new Set<string>();
  const pending: Array<{ file: string; by: string }> = [];
  const addElf = (data: Buffer, what: string) => {
    if (!isElf(data)) return;
    const deps = readElfDeps(data);
    if (deps.machine !== ELF_MACHINE[input.arch]) throw new Error(`rootfs: ${what} is not a ${input.arch} binary`);
    if (deps.interpreter && !entries.has(deps.interpreter)) {
      const real = findLibrary(posix.basename(deps.interpreter));
      if (!real) throw new Error(`rootfs: interpreter ${deps.interpreter} of ${what} not found in the packages`);
      addSystem({ path: deps.interpreter, mode: 0o755, data: readFileSync(real) });
      libsPlaced.add(posix.basename(deps.interpreter));
    }
    for (const soname of deps.needed) pending.push({ file: soname, by: what });
  };
  for (const prog of PROGRAMS) {
    const root = input.packages.get(prog.pkg);
    if (!root) throw new Error(`rootfs: package ${prog.pkg} is not in the pins`);
    const real = resolveInRoot(root, prog.path);
    if (!real) throw new Error(`rootfs: ${prog.path} not found in ${prog.pkg}`);
    const data = readFileSync(real);
    if (prog.inInitramfs) add({ kind: 'file', path: prog.path, mode: 0o755, data });
    else addSystem({ path: prog.path, mode: 0o755, data });
    addElf(data, prog.path);
  }
  while (pending.length > 0) {
    const { file: soname, by } = pending.shift()!;
    if (libsPlaced.has(soname)) continue;
    const real = findLibrary(soname);
    if (!real) throw new Error(`rootfs: library ${soname} (needed by ${by}) is not in any pinned package`);
    const data = readFileSync(real);
    addSystem({ path: `/lib/${triplet}/${soname}`, mode: 0o755, data });
    libsPlaced.add(soname);
    addElf(data, soname);
  }
  for (const file of DATA_FILES) {
    const root = input.packages.get(file.pkg);
    const real = root ? resolveInRoot(root, file.path) : undefined;
    if (!real) throw new Error(`rootfs: ${file.path} not found in ${file.pkg}`);
    addSystem({ path: file.path, mode: 0o644, data: readFileSync(real) });
  }
  addSystem({ path: CA_BUNDLE.path, mode: 0o644, data: caBundle(input.packages) });
  for (const applet of BUSYBOX_APPLETS) add({ kind: 'symlink', path: `/bin/${applet}`, target: 'busybox' });

  // Kernel modules, and the order init loads them in.
  for (const rel of input.moduleOrder) {
    const real = resolveInRoot(input.kernelRoot, `/lib/modules/${input.kernelRelease}/${rel}`);
    if (!real) throw new Error(`rootfs: module ${rel} missing from the kernel package`);
    add({ kind: 'file', path: `/lib/modules/${input.kernelRelease}/${rel}`, mode: 0o644, data: readFileSync(real) });
  }
  add({ kind: 'file', path: '/etc/torvm/modules.order', mode: 0o644, data: Buffer.from(`${input.moduleOrder.join('\n')}\n`) });

  // Configuration files.
  const e2fs = input.packages.get('e2fsprogs');
  const mke2fsConf = e2fs ? resolveInRoot(e2fs, '/etc/mke2fs.conf') : undefined;
  if (!mke2fsConf) throw new Error('rootfs: /etc/mke2fs.conf missing from e2fsprogs');
  add({ kind: 'file', path: '/etc/mke2fs.conf', mode: 0o644, data: readFileSync(mke2fsConf) });
  add({ kind: 'file', path: '/etc/passwd', mode: 0o644, data: Buffer.from(`root:x:0:0:root:/root:/bin/sh\ntor:x:${TOR_UID}:${TOR_UID}:Tor:/state/tor:/bin/false\n`) });
  add({ kind: 'file', path: '/etc/group', mode: 0o644, data: Buffer.from(`root:x:0:\ntor:x:${TOR_UID}:\n`) });
  add({ kind: 'file', path: '/etc/nsswitch.conf', mode: 0o644, data: Buffer.from('passwd: files\ngroup: files\nhosts: files\n') });
  add({ kind: 'symlink', path: '/etc/mtab', target: '../proc/mounts' });
  add({ kind: 'file', path: '/etc/hosts', mode: 0o644, data: Buffer.from('127.0.0.1 localhost\n') });
  for (const f of GUEST_FILES) add({ kind: 'file', path: f.dest, mode: f.mode, data: readFileSync(join(guestDir(), f.src)) });

  return { entries: [...entries.values()], system: [...system.values()] };
}
