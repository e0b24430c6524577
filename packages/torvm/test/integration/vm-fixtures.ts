/**
 * Shared fixtures of the VM-runtime integration tests (vm-*.test.ts, qmp*.test.ts):
 * prerequisite checks that fail in CI instead of skipping, a private temp dir,
 * and a bare QEMU (`-machine none`) that needs no image.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createNamespace, deleteNamespace } from '../../../../test/harness/netns.ts';
import { setUpLanTap, testConfig } from '../../../../image/test/guest-vm.ts';
import { GUEST } from '../../src/core/guest.ts';
import { DEFAULT_GUEST_NICS, renderGuestSettings } from '../../src/core/guest-config.ts';
import { renderKernelCmdline } from '../../src/core/kernel-cmdline.ts';
import { renderTorrc } from '../../src/core/torrc.ts';
import { hashControlPassword } from '../../src/tor/hashed-password.ts';
import { TORVM_SYSTEM_USER } from '../../src/platform/linux/system-user.ts';
import type { QemuLaunchSpec } from '../../src/vm/qemu-args.ts';
import { ensureStateDisk, mkfsExt4Formatter } from '../../src/vm/state-disk.ts';
import { createCommandRunner } from '../../src/platform/exec.ts';

export const QEMU = '/usr/bin/qemu-system-x86_64';

/** Returns a reason the VM tests cannot run here, or null. */
export function missingPrerequisite(needRoot = false): string | null {
  if (process.platform !== 'linux') return 'these tests need Linux';
  if (!existsSync(QEMU)) return `${QEMU} is missing (apt-get install qemu-system-x86)`;
  if (needRoot && process.getuid?.() !== 0) return 'these tests need root';
  return null;
}

/** Skips the test when a prerequisite is missing, except in CI, where it fails. */
export function requirePrerequisites(t: TestContext, needRoot = false): boolean {
  const missing = missingPrerequisite(needRoot);
  if (missing === null) return true;
  if (process.env.CI) throw new Error(`prerequisite missing in CI: ${missing}`);
  t.skip(missing);
  return false;
}

/** A short, unique temp dir (unix socket paths must stay under ~100 bytes). */
export function makeTempDir(tag: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `tvm-${tag}-${process.pid}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts `qemu-system-x86_64 -machine none` with QMP on `qmpPath`. The caller kills it by PID. */
export function startBareQemu(qmpPath: string, extra: string[] = []): ChildProcess {
  const child = spawn(QEMU, ['-machine', 'none', '-nodefaults', '-no-user-config', '-display', 'none',
    '-qmp', `unix:${qmpPath},server=on,wait=off`, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.on('error', () => {});
  return child;
}

/** Resolves when the child has exited (immediately if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Kills a process we started, by PID, and waits (bounded) for it to be gone. */
export async function killByPid(pid: number | undefined, child?: ChildProcess): Promise<void> {
  if (pid === undefined) return;
  try { process.kill(pid, 'SIGCONT'); process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  if (child) await Promise.race([exited(child), new Promise((r) => setTimeout(r, 5000))]);
}

/** True if PID is alive (and not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/**
 * The guest image built by image/ (a dir with manifest.json naming the kernel
 * and initramfs). Set TORVM_IMAGE_DIR to it; CI builds the image first and
 * must set it. Returns null when there is none.
 */
export function findGuestImage(): { dir: string; kernel: string; initramfs: string } | null {
  const dir = process.env.TORVM_IMAGE_DIR;
  if (!dir || !existsSync(join(dir, 'manifest.json'))) return null;
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { artifacts?: { kernel?: { file?: string }; initramfs?: { file?: string } } };
  const kernel = join(dir, manifest.artifacts?.kernel?.file ?? 'kernel');
  const initramfs = join(dir, manifest.artifacts?.initramfs?.file ?? 'initramfs');
  return existsSync(kernel) && existsSync(initramfs) ? { dir, kernel, initramfs } : null;
}

export interface GuestRun {
  ns: string;
  dir: string;
  spec: QemuLaunchSpec;
  stderrLogPath: string;
  /** Deletes the namespace (ending anything left in it) and the temp dir. */
  cleanup: () => Promise<void>;
}

/**
 * Everything one supervised test VM needs, inside a namespace this test
 * creates: wan = slirp with restrict=on (reaches nothing), lan = a TAP in the
 * namespace, and a torrc with `DisableNetwork 1`, so the guest Tor never tries
 * any network. QEMU runs as the torvm user with the seccomp sandbox, like the
 * product.
 */
export async function prepareGuestRun(tag: string, image: { kernel: string; initramfs: string }, extraCmdline = ''): Promise<GuestRun> {
  const ns = `tvm${tag}${process.pid}`;
  const tap = `tvt${tag}${process.pid}`.slice(0, 15);
  const { dir, remove } = makeTempDir(tag);
  await createNamespace(ns, 'nameserver 127.0.0.1\n');
  try {
    const config = testConfig();
    // The host MAC is not pinned in the guest here: these tests are about the VM runtime, not the LAN.
    await setUpLanTap(ns, tap, config);
    const torrc = `${renderTorrc(config, { hashedControlPassword: hashControlPassword(`test-${process.pid}`), sandbox: false })}DisableNetwork 1\n`;
    writeFileSync(join(dir, 'torrc'), torrc, { mode: 0o600 });
    writeFileSync(join(dir, 'guest.env'), renderGuestSettings(config, { ...DEFAULT_GUEST_NICS }), { mode: 0o600 });
    writeFileSync(join(dir, 'seed'), randomBytes(64), { mode: 0o600 });
    const stateDiskPath = join(dir, 'state.img');
    await ensureStateDisk(stateDiskPath, () => {}, mkfsExt4Formatter(createCommandRunner()));
    const spec: QemuLaunchSpec = {
      arch: 'x86_64', accel: 'tcg', memoryMiB: 192, cpus: 1,
      kernelPath: image.kernel, initrdPath: image.initramfs,
      kernelCmdline: `${renderKernelCmdline(config.vm.kernelParams, 'x86_64')}${extraCmdline ? ` ${extraCmdline}` : ''}`,
      stateDiskPath,
      lan: { kind: 'tap', ifname: tap }, lanMac: DEFAULT_GUEST_NICS.lanMac, wanMac: DEFAULT_GUEST_NICS.wanMac,
      wan: { restrict: true },
      fwCfg: [
        { name: GUEST.fwCfg.torrc, file: join(dir, 'torrc') },
        { name: GUEST.fwCfg.guestConfig, file: join(dir, 'guest.env') },
        { name: GUEST.fwCfg.entropySeed, file: join(dir, 'seed') },
      ],
      qmpSocketPath: join(dir, 'qmp.sock'), serialSocketPath: join(dir, 'serial.sock'), serialLogPath: join(dir, 'serial.log'),
      pidFilePath: join(dir, 'qemu.pid'), runAs: TORVM_SYSTEM_USER, sandbox: true,
    };
    return { ns, dir, spec, stderrLogPath: join(dir, 'qemu.stderr'), cleanup: async () => { await deleteNamespace(ns); remove(); } };
  } catch (err) {
    await deleteNamespace(ns);
    remove();
    throw err;
  }
}
