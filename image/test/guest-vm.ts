/**
 * Boots the TorVM guest image under QEMU for tests and benchmarks, inside a
 * network namespace the caller created:
 *   wan = QEMU user networking with restrict=on (reaches nothing),
 *   lan = a TAP in the namespace, host side 10.10.10.2/30.
 * The guest Tor is pointed at a private test network that does not exist
 * (see testConfig), so it never aims at the public Tor network. QEMU runs under TCG (KVM is broken on these machines).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { defaultConfig, validateConfig, type TorvmConfig } from '../../packages/torvm/src/core/config.ts';
import { GUEST } from '../../packages/torvm/src/core/guest.ts';
import { renderGuestSettings, DEFAULT_GUEST_NICS } from '../../packages/torvm/src/core/guest-config.ts';
import { renderKernelCmdline } from '../../packages/torvm/src/core/kernel-cmdline.ts';
import { renderTorrc } from '../../packages/torvm/src/core/torrc.ts';
import { hashControlPassword } from '../../packages/torvm/src/tor/hashed-password.ts';
import { buildQemuArgs } from '../../packages/torvm/src/vm/qemu-args.ts';
import { parseImageManifest } from '../../packages/torvm/src/vm/image-manifest.ts';
import type { GuestArch } from '../../packages/torvm/src/core/guest.ts';
import { run } from '../../test/harness/run.ts';
import { ipIn, isProcessAlive, killPid } from '../../test/harness/netns.ts';
import { waitFor } from '../../test/harness/wait.ts';

export const QEMU_BINARY: Record<GuestArch, string> = { x86_64: 'qemu-system-x86_64', aarch64: 'qemu-system-aarch64' };

const TEST_DEFAULTS = { stateDir: '/var/lib/torvm', imageDir: '/var/lib/torvm/image', qemuBinary: '/usr/bin/qemu-system-x86_64', apiSocketPath: '/run/torvm/api.sock' };

/**
 * The product defaults, except that Tor joins a private test network whose
 * only authority sits at 203.0.113.1 (TEST-NET-3), which nothing answers: with
 * its own DirAuthority lines Tor never contacts the public network, and
 * restrict=on drops the attempt inside QEMU anyway. Unlike DisableNetwork,
 * this keeps Tor's SocksPort/TransPort/DNSPort listeners open.
 */
export function testConfig(): TorvmConfig {
  const base = defaultConfig(TEST_DEFAULTS);
  const result = validateConfig({
    configVersion: 1,
    tor: {
      testingNetwork: {
        authorities: [{
          nickname: 'torvmtestauth', address: '203.0.113.1', orPort: 5000, dirPort: 7000,
          v3ident: '0000000000000000000000000000000000000001', fingerprint: '0000000000000000000000000000000000000002',
        }],
      },
    },
  }, TEST_DEFAULTS);
  if (!result.ok) throw new Error(`test config: ${JSON.stringify(result.problems)}`);
  if (result.config.network.vmAddress !== base.network.vmAddress) throw new Error('test config drifted from the defaults');
  return result.config;
}

/** Creates a TAP named `tap` in namespace `ns` at the host address, with the default route into the guest. Returns its MAC. */
export async function setUpLanTap(ns: string, tap: string, config: TorvmConfig): Promise<string> {
  await ipIn(ns, ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  await ipIn(ns, ['addr', 'add', `${config.network.hostAddress}/30`, 'dev', tap]);
  await ipIn(ns, ['link', 'set', tap, 'up']);
  await ipIn(ns, ['route', 'add', 'default', 'via', config.network.vmAddress, 'dev', tap, 'onlink']);
  const info = JSON.parse(await ipIn(ns, ['-j', 'link', 'show', 'dev', tap])) as Array<{ address: string }>;
  const mac = info[0]?.address;
  if (!mac) throw new Error(`no MAC on ${tap}`);
  return mac;
}

export interface GuestBootOptions {
  arch: GuestArch;
  imageDir: string;
  /** Per-boot files (torrc, settings, seed, serial log, sockets) go here. */
  workDir: string;
  ns: string;
  tap: string;
  hostMac: string;
  diskPath: string;
  memoryMiB?: number;
  config?: TorvmConfig;
  controlPassword: string;
  /** Tor's seccomp sandbox in the guest. */
  sandbox?: boolean;
  /** Tor log level for the serial console (default notice). */
  torLogLevel?: 'notice' | 'info';
  /** Boot the small initramfs with system.img as a read-only disk, instead of the self-contained initramfs. */
  systemDisk?: boolean;
}

export interface GuestVm {
  pid: number;
  serialPath: string;
  /** The serial console so far. */
  serial(): string;
  /** Waits for a serial line matching `pattern` (after `fromOffset`), returns the match. */
  waitForSerial(pattern: RegExp, timeoutMs: number, fromOffset?: number): Promise<RegExpExecArray>;
  /** ACPI power button via QMP, then waits for QEMU to exit. */
  powerdown(timeoutMs: number): Promise<void>;
  /** Ends QEMU by pid (cleanup). */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

/** Renders the guest's per-boot files and starts QEMU in the namespace. */
export async function bootGuest(o: GuestBootOptions): Promise<GuestVm> {
  const config = o.config ?? testConfig();
  mkdirSync(o.workDir, { recursive: true });
  const torrcPath = join(o.workDir, 'torrc');
  const settingsPath = join(o.workDir, 'guest.env');
  const seedPath = join(o.workDir, 'seed');
  const serialPath = join(o.workDir, 'serial.log');
  const pidPath = join(o.workDir, 'qemu.pid');
  const qmpPath = join(o.workDir, 'qmp.sock');
  let torrc = renderTorrc(config, { hashedControlPassword: hashControlPassword(o.controlPassword), sandbox: o.sandbox ?? false });
  if (!torrc.includes('\nTestingTorNetwork 1\n') || /^DirAuthority .* 203\.0\.113\.1:/m.test(torrc) === false) {
    throw new Error('refusing to boot a test guest whose Tor could aim at the public network');
  }
  if (o.torLogLevel === 'info') torrc = torrc.replace('Log notice stdout', 'Log info stdout');
  writeFileSync(torrcPath, torrc, { mode: 0o600 });
  writeFileSync(settingsPath, renderGuestSettings(config, { ...DEFAULT_GUEST_NICS, hostMac: o.hostMac }), { mode: 0o600 });
  writeFileSync(seedPath, randomBytes(64), { mode: 0o600 });
  writeFileSync(serialPath, '');

  const manifest = parseImageManifest(readFileSync(join(o.imageDir, 'manifest.json'), 'utf8'));
  const initramfs = o.systemDisk ? manifest.artifacts.initramfsSmall : manifest.artifacts.initramfs;
  const args = buildQemuArgs({
    arch: o.arch,
    accel: 'tcg',
    memoryMiB: o.memoryMiB ?? config.vm.memoryMiB,
    cpus: 1,
    kernelPath: join(o.imageDir, manifest.artifacts.kernel.file),
    initrdPath: join(o.imageDir, initramfs.file),
    kernelCmdline: renderKernelCmdline(config.vm.kernelParams, o.arch),
    stateDiskPath: o.diskPath,
    lan: { kind: 'tap', ifname: o.tap },
    lanMac: DEFAULT_GUEST_NICS.lanMac,
    wanMac: DEFAULT_GUEST_NICS.wanMac,
    wan: { restrict: true },
    fwCfg: [
      { name: GUEST.fwCfg.torrc, file: torrcPath },
      { name: GUEST.fwCfg.guestConfig, file: settingsPath },
      { name: GUEST.fwCfg.entropySeed, file: seedPath },
    ],
    qmpSocketPath: qmpPath,
    serialLogPath: serialPath,
    pidFilePath: pidPath,
    sandbox: false,
  }, 'linux');
  if (o.systemDisk) {
    // qemu-args.ts does not know the system disk yet; it is attached here as manifest.json describes.
    args.push('-drive', `if=none,id=system,format=raw,readonly=on,file=${join(o.imageDir, manifest.artifacts.systemDisk.file)}`,
      '-device', `virtio-blk-pci,drive=system,serial=${manifest.systemDiskSerial}`);
  }
  const child: ChildProcess = spawn('ip', ['netns', 'exec', o.ns, QEMU_BINARY[o.arch], ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const pid = child.pid;
  if (pid === undefined) throw new Error('QEMU did not start');
  const serial = () => readFileSync(serialPath, 'utf8');
  const tail = () => `--- serial (tail) ---\n${serial().split('\n').slice(-40).join('\n')}\n--- qemu stderr ---\n${stderr}`;

  const vm: GuestVm = {
    pid,
    serialPath,
    serial,
    exited,
    async waitForSerial(pattern, timeoutMs, fromOffset = 0) {
      const found = await waitFor(() => {
        const m = pattern.exec(serial().slice(fromOffset));
        if (m) return m;
        // QEMU gone: stop waiting at once and report it below.
        return isProcessAlive(pid) ? undefined : ('exited' as const);
      }, { timeoutMs, what: `guest serial ${pattern}`, intervalMs: 100, diagnose: tail });
      if (found === 'exited') throw new Error(`QEMU exited before the guest printed ${pattern}\n${tail()}`);
      return found;
    },
    async powerdown(timeoutMs) {
      await waitFor(() => existsSync(qmpPath), { timeoutMs: 10_000, what: 'the QMP socket' });
      await qmpCommand(qmpPath, 'system_powerdown');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref())]);
      if (code === 'timeout') throw new Error(`the guest did not power off within ${timeoutMs} ms\n${tail()}`);
    },
    async kill() {
      if (existsSync(pidPath)) {
        const qemuPid = Number(readFileSync(pidPath, 'utf8').trim());
        if (Number.isInteger(qemuPid) && qemuPid > 1) await killPid(qemuPid);
      }
      await killPid(pid);
    },
  };
  return vm;
}

/** One QMP command over the unix socket (greeting, qmp_capabilities, the command). */
export function qmpCommand(socketPath: string, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`QMP ${command}: timed out`)); }, 10_000);
    let buffer = '';
    let step = 0;
    sock.on('data', (d) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
        buffer = buffer.slice(nl + 1);
        if ('event' in msg) continue;
        if ('error' in msg) { clearTimeout(timer); sock.destroy(); reject(new Error(`QMP ${command}: ${JSON.stringify(msg.error)}`)); return; }
        if (step === 0 && 'QMP' in msg) { sock.write('{"execute":"qmp_capabilities"}\n'); step = 1; } else if (step === 1 && 'return' in msg) { sock.write(`{"execute":"${command}"}\n`); step = 2; } else if (step === 2 && 'return' in msg) { clearTimeout(timer); sock.end(); resolve(); }
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** A blank (all-zero, sparse) raw state disk. */
export async function createBlankDisk(path: string, sizeMiB = 64): Promise<void> {
  await run('truncate', ['-s', `${sizeMiB}M`, path], { timeoutMs: 10_000 });
}

/** Copies PATH out of the (unmounted) ext4 state disk with debugfs; undefined if it does not exist. */
export async function readFromDisk(diskPath: string, path: string): Promise<Buffer | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'tvimg-dump-'));
  try {
    const out = join(dir, 'out');
    await run('debugfs', ['-R', `dump ${path} ${out}`, diskPath], { timeoutMs: 30_000 });
    return existsSync(out) ? readFileSync(out) : undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
