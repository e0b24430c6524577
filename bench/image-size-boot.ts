/**
 * Image benchmark (root; QEMU TCG; a private network namespace):
 *   1. kernel + initramfs size, against the 30 MB target;
 *   2. time from QEMU start to `torvm-guest: tor started` and to Tor's control
 *      listener being open, at 128 MB, against a 256 MB baseline boot;
 *   3. the smallest RAM (of 64/72/80/88/96/104/112/120/128 MB) in which the guest
 *      boots and runs Tor, against the 96 MB target, for both boot forms
 *      (self-contained initramfs; small initramfs + system disk).
 *
 *   node --import tsx bench/image-size-boot.ts [--arch x86_64|aarch64] [--image DIR]
 * Without --image (or TORVM_IMAGE_DIR) it builds into /var/cache/torvm-image/out-<arch>.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildImage } from '../image/src/build.ts';
import { DEFAULT_CACHE_DIR } from '../image/src/paths.ts';
import { bootGuest, createBlankDisk, setUpLanTap, testConfig } from '../image/test/guest-vm.ts';
import { createNamespace, deleteNamespace } from '../test/harness/netns.ts';
import type { GuestArch } from '../packages/torvm/src/core/guest.ts';

const { values } = parseArgs({ options: { arch: { type: 'string', default: 'x86_64' }, image: { type: 'string' } } });
const arch = values.arch as GuestArch;
if (arch !== 'x86_64' && arch !== 'aarch64') throw new Error('--arch must be x86_64 or aarch64');

const MiB = 1024 * 1024;
const SIZE_TARGET_MIB = 30;
const RAM_TARGET_MIB = 96;
const RAM_STEPS = [64, 72, 80, 88, 96, 104, 112, 120, 128];
const BOOT_TIMEOUT_MS = arch === 'x86_64' ? 120_000 : 300_000;

const imageDir = values.image ?? process.env.TORVM_IMAGE_DIR ?? join(DEFAULT_CACHE_DIR, `out-${arch}`);
const manifest = await buildImage({ arch, outDir: imageDir, cacheDir: DEFAULT_CACHE_DIR });
const sizeMiB = (manifest.artifacts.kernel.size + manifest.artifacts.initramfs.size) / MiB;

const ns = `tvbench${process.pid}-img`;
const tap = `tvb${process.pid}`.slice(0, 15);
const work = mkdtempSync(join(tmpdir(), `tvbench${process.pid}-`));
const config = testConfig();

interface BootResult { memoryMiB: number; ok: boolean; torStartedS?: number; controlOpenS?: number; why?: string }

async function bootTimed(memoryMiB: number, hostMac: string, n: number, systemDisk = false): Promise<BootResult> {
  const diskPath = join(work, `disk-${n}.img`);
  await createBlankDisk(diskPath);
  const started = Date.now();
  const vm = await bootGuest({ arch, imageDir, workDir: join(work, `boot-${n}`), ns, tap, hostMac, diskPath, memoryMiB, controlPassword: 'bench', config, systemDisk });
  try {
    const first = await vm.waitForSerial(/torvm-guest: (tor started pid=\d+|fatal: .*)/, BOOT_TIMEOUT_MS);
    if (first[1]?.startsWith('fatal')) return { memoryMiB, ok: false, why: first[1] };
    const torStartedS = (Date.now() - started) / 1000;
    await vm.waitForSerial(/Opened Control listener connection \(ready\)/, BOOT_TIMEOUT_MS);
    const controlOpenS = (Date.now() - started) / 1000;
    if (/tor exited code=/.test(vm.serial())) return { memoryMiB, ok: false, why: 'tor exited' };
    return { memoryMiB, ok: true, torStartedS, controlOpenS };
  } catch (err) {
    return { memoryMiB, ok: false, why: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  } finally {
    await vm.kill();
    rmSync(diskPath, { force: true });
  }
}

await createNamespace(ns, 'nameserver 10.10.10.1\n');
try {
  const hostMac = await setUpLanTap(ns, tap, config);
  let n = 0;
  const baseline = await bootTimed(256, hostMac, n++);
  const at128 = await bootTimed(128, hostMac, n++);
  const search: BootResult[] = [];
  for (const mem of RAM_STEPS) search.push(await bootTimed(mem, hostMac, n++));
  const smallest = search.find((r) => r.ok)?.memoryMiB;
  const diskAt128 = await bootTimed(128, hostMac, n++, true);
  const searchDisk: BootResult[] = [];
  for (const mem of RAM_STEPS) searchDisk.push(await bootTimed(mem, hostMac, n++, true));
  const smallestDisk = searchDisk.find((r) => r.ok)?.memoryMiB;

  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? (a / b).toFixed(2) : 'n/a');
  console.log(`image ${arch} (kernel ${manifest.kernelRelease})`);
  console.log(`  size: kernel ${(manifest.artifacts.kernel.size / MiB).toFixed(1)} MiB + initramfs ${(manifest.artifacts.initramfs.size / MiB).toFixed(1)} MiB = ${sizeMiB.toFixed(1)} MiB; target ${SIZE_TARGET_MIB} MiB; ratio ${ratio(sizeMiB, SIZE_TARGET_MIB)}`);
  console.log(`  boot (TCG), QEMU start -> "tor started": 128 MiB ${at128.torStartedS?.toFixed(2) ?? 'failed'} s, baseline 256 MiB ${baseline.torStartedS?.toFixed(2) ?? 'failed'} s; ratio ${ratio(at128.torStartedS, baseline.torStartedS)}`);
  console.log(`  boot (TCG), QEMU start -> Tor control listener open: 128 MiB ${at128.controlOpenS?.toFixed(2) ?? 'failed'} s, baseline 256 MiB ${baseline.controlOpenS?.toFixed(2) ?? 'failed'} s; ratio ${ratio(at128.controlOpenS, baseline.controlOpenS)}`);
  const show = (r: BootResult) => console.log(`    RAM ${String(r.memoryMiB).padStart(3)} MiB: ${r.ok ? `runs Tor (control open after ${r.controlOpenS?.toFixed(2)} s)` : `fails (${r.why})`}`);
  console.log('  self-contained initramfs.img:');
  search.forEach(show);
  console.log(`  smallest RAM that runs Tor (initramfs.img): ${smallest ?? `> ${RAM_STEPS.at(-1)}`} MiB; target ${RAM_TARGET_MIB} MiB; ratio ${ratio(smallest, RAM_TARGET_MIB)}`);
  console.log(`  initramfs-small.img + system.img disk: boot to control open at 128 MiB ${diskAt128.controlOpenS?.toFixed(2) ?? 'failed'} s; ratio vs 256 MiB self-contained ${ratio(diskAt128.controlOpenS, baseline.controlOpenS)}`);
  searchDisk.forEach(show);
  console.log(`  smallest RAM that runs Tor (system disk): ${smallestDisk ?? `> ${RAM_STEPS.at(-1)}`} MiB; target ${RAM_TARGET_MIB} MiB; ratio ${ratio(smallestDisk, RAM_TARGET_MIB)}`);
} finally {
  await deleteNamespace(ns);
  rmSync(work, { recursive: true, force: true });
}
