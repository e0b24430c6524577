/**
 * Regenerates image/packages.<arch>.json from the apt mirror's current
 * candidates: `node --import tsx image/src/pin.ts [--arch x86_64|aarch64|all]`.
 *
 * The set: the guest's programs (ROOTS), the kernel the mirror serves, and the
 * library packages they depend on (Depends/Pre-Depends, followed only into
 * lib* packages). The build later copies just the files it needs.
 */
import { writeFileSync } from 'node:fs';
import { createCommandRunner, type CommandRunner } from '../../packages/torvm/src/platform/exec.ts';
import type { GuestArch } from '../../packages/torvm/src/core/guest.ts';
import { privateApt, ensureAptLists, parseStanzas, dependencyNames, type PrivateApt } from './apt.ts';
import { DEBIAN_ARCH, pinFilePath, pinFileSchema, type PinFile, type PinnedPackage } from './pins.ts';
import { DEFAULT_CACHE_DIR } from './paths.ts';

/**
 * The programs the guest runs, and two data packages: tor-geoipdb (relay
 * countries in status) and ca-certificates (the TLS roots snowflake-client
 * and meek_lite verify their broker and CDN against).
 */
export const ROOTS = ['busybox-static', 'tor', 'nftables', 'e2fsprogs', 'obfs4proxy', 'snowflake-client', 'tor-geoipdb', 'ca-certificates'] as const;

/**
 * x86_64 uses Debian's "cloud" kernel flavour: built for VMs, with far fewer
 * drivers and about 12 MB less static kernel memory (bss) than the generic
 * flavour, which matters in a small guest. The arm64 cloud flavour lacks
 * gpio_keys, the power button of QEMU's virt machine, so aarch64 uses the
 * generic flavour (ACPI power-off must work on both).
 */
export const KERNEL_METAPACKAGE: Record<GuestArch, string> = { x86_64: 'linux-image-cloud-amd64', aarch64: 'linux-image-arm64' };

const isLibraryPackage = (name: string) => name.startsWith('lib') || name === 'zlib1g';

async function show(run: CommandRunner, apt: PrivateApt, name: string): Promise<Record<string, string>> {
  const { stdout } = await run.run('apt-cache', [...apt.options, 'show', '--no-all-versions', name], { timeoutMs: 60_000 });
  const stanza = parseStanzas(stdout)[0];
  if (!stanza) throw new Error(`apt-cache show ${name}: no candidate`);
  return stanza;
}

export async function pinArch(arch: GuestArch, cacheDir: string, run: CommandRunner): Promise<PinFile> {
  const debianArch = DEBIAN_ARCH[arch];
  const apt = privateApt(cacheDir, debianArch);
  await ensureAptLists(run, apt, true);
  const meta = await show(run, apt, KERNEL_METAPACKAGE[arch]);
  const kernelPackage = dependencyNames(meta.Depends).find((n) => n.startsWith('linux-image-'));
  if (!kernelPackage) throw new Error(`${KERNEL_METAPACKAGE[arch]} does not name a kernel package`);
  const kernelRelease = kernelPackage.slice('linux-image-'.length);

  const seen = new Map<string, PinnedPackage>();
  const queue: string[] = [...ROOTS, kernelPackage];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    const s = await show(run, apt, name);
    if (!s.SHA256 || !s.Version || !s.Size || !s.Filename || !s.Architecture) throw new Error(`apt-cache show ${name}: incomplete stanza`);
    seen.set(name, {
      name, version: s.Version, architecture: s.Architecture as PinnedPackage['architecture'],
      sha256: s.SHA256, size: Number(s.Size), filename: s.Filename,
    });
    if (name === kernelPackage) continue;
    for (const dep of [...dependencyNames(s['Pre-Depends']), ...dependencyNames(s.Depends)]) {
      if (isLibraryPackage(dep) && !seen.has(dep)) queue.push(dep);
    }
  }
  const packages = [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  return pinFileSchema.parse({ arch, debianArch, kernelRelease, kernelPackage, packages });
}

async function main(): Promise<void> {
  const archArg = process.argv.includes('--arch') ? process.argv[process.argv.indexOf('--arch') + 1] : 'all';
  const arches: GuestArch[] = archArg === 'all' ? ['x86_64', 'aarch64'] : [archArg as GuestArch];
  const run = createCommandRunner();
  for (const arch of arches) {
    if (arch !== 'x86_64' && arch !== 'aarch64') throw new Error(`unknown arch ${String(arch)}`);
    const pins = await pinArch(arch, DEFAULT_CACHE_DIR, run);
    writeFileSync(pinFilePath(arch), `${JSON.stringify(pins, null, 2)}\n`);
    process.stdout.write(`${pinFilePath(arch)}: ${pins.packages.length} packages, kernel ${pins.kernelRelease}\n`);
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => { process.stderr.write(`pin: ${err instanceof Error ? err.message : String(err)}\n`); process.exit(1); });
}
