/**
 * The supervisor with the real guest image, in a namespace this test creates
 * (wan: slirp restrict=on; lan: a TAP in the namespace; guest Tor with
 * DisableNetwork 1). Needs root and TORVM_IMAGE_DIR (CI builds the image first).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { createCommandRunner } from '../../src/platform/exec.ts';
import { ensureSystemUser } from '../../src/platform/linux/system-user.ts';
import { linuxProcessInspector } from '../../src/platform/linux/process-inspector.ts';
import { QemuSupervisor, type QemuSupervisorOptions, type VmExit } from '../../src/vm/qemu-supervisor.ts';
import type { GuestEvent } from '../../src/vm/guest-markers.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import { ensureStateDisk, mkfsExt4Formatter } from '../../src/vm/state-disk.ts';
import { classifyStartFailure } from '../../src/vm/qemu-stderr.ts';
import { QEMU, findGuestImage, isAlive, prepareGuestRun, requirePrerequisites, type GuestRun } from './vm-fixtures.ts';

const BOOT_TIMEOUT_MS = 90_000;
const image = findGuestImage();
let run: GuestRun | undefined;
const supervisors: QemuSupervisor[] = [];

function ready(t: import('node:test').TestContext): GuestRun | undefined {
  if (!requirePrerequisites(t, true)) return undefined;
  if (!image || !run) {
    if (process.env.CI) throw new Error('TORVM_IMAGE_DIR must point at a built guest image in CI');
    t.skip('no guest image (set TORVM_IMAGE_DIR)');
    return undefined;
  }
  return run;
}

before(async () => {
  if (!image || process.getuid?.() !== 0) return;
  await ensureSystemUser(createCommandRunner());
  // unknown_nmi_panic: QMP inject-nmi then panics the guest kernel (the panic test).
  run = await prepareGuestRun('sup', image, 'sysctl.kernel.unknown_nmi_panic=1');
});

after(async () => {
  for (const s of supervisors) await s.dispose();
  await run?.cleanup();
});

function supervisorOptions(r: GuestRun, over: Partial<QemuSupervisorOptions> = {}): QemuSupervisorOptions {
  return { qemuBinary: QEMU, spec: r.spec, hostOs: 'linux', inspector: linuxProcessInspector, stderrLogPath: r.stderrLogPath, netns: r.ns, readyTimeoutMs: 30_000, ...over };
}

function newSupervisor(r: GuestRun, over: Partial<QemuSupervisorOptions> = {}): QemuSupervisor {
  const s = new QemuSupervisor(supervisorOptions(r, over));
  supervisors.push(s);
  return s;
}

/** The next guest event matching `match`; rejects if the VM exits first or on timeout. */
function guestEvent(s: QemuSupervisor, match: (e: GuestEvent) => boolean, what: string, timeoutMs = BOOT_TIMEOUT_MS): Promise<GuestEvent> {
  const serial: string[] = [];
  return new Promise((resolve, reject) => {
    const onLine = (l: string) => { serial.push(l); if (serial.length > 40) serial.shift(); };
    const onGuest = (e: GuestEvent) => { if (match(e)) { done(); resolve(e); } };
    const onExit = (e: VmExit) => { done(); reject(new Error(`VM exited (${e.cause}) while waiting for ${what}\n${serial.join('\n')}`)); };
    const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what}\n${serial.join('\n')}`)); }, timeoutMs);
    const done = () => { clearTimeout(timer); s.off('guest', onGuest); s.off('exit', onExit); s.off('serial', onLine); };
    s.on('guest', onGuest);
    s.on('exit', onExit);
    s.on('serial', onLine);
  });
}

function nextEvent<K extends 'exit' | 'ready'>(s: QemuSupervisor, name: K, timeoutMs: number): Promise<K extends 'exit' ? VmExit : { pid: number; adopted: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} event within ${timeoutMs} ms`)), timeoutMs);
    s.once(name, ((value: never) => { clearTimeout(timer); resolve(value); }) as never);
  });
}

const torStarted = (e: GuestEvent) => e.kind === 'tor-started';

test('boots with typed guest events and stops gracefully through the ACPI power button', async (t) => {
  const r = ready(t);
  if (!r) return;
  const s = newSupervisor(r);
  const events: string[] = [];
  s.on('guest', (e) => events.push(e.kind));
  const lines: string[] = [];
  s.on('serial', (l) => lines.push(l));
  await s.start();
  assert.ok(s.pid !== null && isAlive(s.pid));
  // QEMU dropped to the torvm user.
  const status = readFileSync(`/proc/${s.pid}/status`, 'utf8');
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  assert.notEqual(uid, 0, 'QEMU must not run as root');
  await guestEvent(s, torStarted, 'tor started');
  assert.ok(events.includes('init-started') && events.includes('state-disk'), `events: ${events.join(',')}`);
  assert.ok(existsSync(`${r.spec.stateDiskPath}.lock`), 'the state disk is locked while the VM runs');
  const exit = nextEvent(s, 'exit', 60_000);
  const report = await s.stop({ powerdownTimeoutMs: 45_000 });
  assert.equal(report.stoppedBy, 'powerdown');
  assert.equal((await exit).expected, true);
  assert.ok(lines.some((l) => l.includes('torvm-guest: shutdown complete')), 'the guest shut down cleanly');
  assert.match(readFileSync(r.spec.serialLogPath, 'utf8'), /torvm-guest: shutdown complete/);
  assert.equal(existsSync(`${r.spec.stateDiskPath}.lock`), false, 'the lock is released');
});

test('QEMU killed with SIGKILL is detected and restarted; a second VM cannot take the disk', async (t) => {
  const r = ready(t);
  if (!r) return;
  const s = newSupervisor(r, { restart: { initialDelayMs: 200, maxAttempts: 2 } });
  await s.start();
  await guestEvent(s, torStarted, 'tor started');
  await assert.rejects(newSupervisor(r).start(), (e) => isTorvmError(e, 'ERR_VM') && /in use/.test(e.message));
  // QEMU's own image lock is the second line: a QEMU started behind the supervisor's back is refused too.
  const rogue = spawnSync(QEMU, ['-machine', 'q35,accel=tcg', '-nodefaults', '-display', 'none', '-S',
    '-drive', `if=none,id=d,format=raw,file=${r.spec.stateDiskPath},file.locking=on`, '-device', 'virtio-blk-pci,drive=d'],
  { timeout: 15_000, encoding: 'utf8' });
  assert.notEqual(rogue.status, null, 'the second QEMU must fail at once, not run');
  assert.match(classifyStartFailure(rogue.stderr, { code: rogue.status, signal: null }).message, /another QEMU already uses the state disk/);
  const firstPid = s.pid as number;
  const exit = nextEvent(s, 'exit', 10_000);
  const restarted = nextEvent(s, 'ready', 60_000);
  const killedAt = Date.now();
  process.kill(firstPid, 'SIGKILL');
  const report = await exit;
  t.diagnostic(`exit detected ${Date.now() - killedAt} ms after SIGKILL`);
  assert.equal(report.cause, 'killed');
  assert.equal(report.expected, false);
  assert.equal(report.pid, firstPid);
  const again = await restarted;
  assert.notEqual(again.pid, firstPid);
  await guestEvent(s, torStarted, 'tor started after the restart');
  assert.equal((await s.stop({ powerdownTimeoutMs: 45_000 })).stoppedBy, 'powerdown');
});

test('a guest kernel panic is detected', async (t) => {
  const r = ready(t);
  if (!r) return;
  const s = newSupervisor(r);
  await s.start();
  await guestEvent(s, torStarted, 'tor started');
  const exit = nextEvent(s, 'exit', 60_000);
  await s.qmp?.execute('inject-nmi');
  const report = await exit;
  assert.equal(report.cause, 'guest-panic');
  assert.equal(report.expected, false);
  assert.ok(report.serialTail.some((l) => /Kernel panic|\bpanic\+0x|nmi_panic/.test(l)), report.serialTail.join('\n'));
});

test('a controller killed with SIGKILL leaves QEMU running, and a new controller adopts it', async (t) => {
  const r = ready(t);
  if (!r) return;
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./vm-supervisor-child.ts', import.meta.url).pathname, JSON.stringify({ ...supervisorOptions(r), inspector: undefined })],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  let qemuPid = 0;
  try {
    qemuPid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`controller child not ready: ${err}`)), 60_000);
      child.stdout.on('data', () => {
        const m = /READY (\d+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`controller child exited ${code}: ${err}`)); });
    });
  } finally {
    const gone = new Promise((resolve) => child.once('exit', resolve));
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    await gone;
  }
  assert.ok(isAlive(qemuPid), 'QEMU outlives its controller');
  const s = newSupervisor(r);
  assert.equal(await s.adopt(), true);
  assert.equal(s.pid, qemuPid, 'the same QEMU, not a second one');
  const status = await s.qmp?.execute<{ running: boolean }>('query-status');
  assert.equal(status?.running, true);
  await guestEvent(s, torStarted, 'tor started (or already running)', 60_000).catch(() => undefined);
  assert.equal((await s.stop({ powerdownTimeoutMs: 45_000 })).stoppedBy, 'powerdown');
  assert.equal(isAlive(qemuPid), false);
  // Nothing left to adopt now.
  assert.equal(await newSupervisor(r).adopt(), false);
});

test('a corrupted state disk: errors are repaired by the guest; a destroyed superblock is recreated by the host', async (t) => {
  const r = ready(t);
  if (!r) return;
  const disk = r.spec.stateDiskPath;
  // 1. A wrong free-block count and the "errors" state, written with debugfs (which keeps the
  //    superblock checksum valid): the host keeps the disk, and the guest's e2fsck -p must repair it.
  for (const request of ['ssv free_blocks_count 7', 'ssv state 2']) {
    const r1 = spawnSync('/usr/sbin/debugfs', ['-w', '-R', request, disk], { timeout: 30_000, encoding: 'utf8' });
    assert.equal(r1.status, 0, r1.stderr);
  }
  assert.equal(await ensureStateDisk(disk, () => {}, mkfsExt4Formatter(createCommandRunner())), 'kept');
  let s = newSupervisor(r);
  const repaired = guestEvent(s, (e) => e.kind === 'state-disk' && e.status === 'repaired', 'the guest repairing the state disk');
  await s.start();
  await repaired;
  await guestEvent(s, torStarted, 'tor started');
  assert.equal((await s.stop({ powerdownTimeoutMs: 45_000 })).stoppedBy, 'powerdown');
  // 2. Overwrite the primary superblock (bytes 1024–2047): the host sees no ext4 magic and recreates the disk.
  const fd = openSync(disk, 'r+');
  try { writeSync(fd, Buffer.alloc(1024, 0xa5), 0, 1024, 1024); } finally { closeSync(fd); }
  const warnings: string[] = [];
  assert.equal(await ensureStateDisk(disk, (w) => warnings.push(w), mkfsExt4Formatter(createCommandRunner())), 'recreated');
  assert.match(warnings[0] ?? '', /no ext4 superblock/);
  s = newSupervisor(r);
  const readyDisk = guestEvent(s, (e) => e.kind === 'state-disk' && e.status === 'ready', 'state disk ready');
  await s.start();
  await readyDisk;
  await guestEvent(s, torStarted, 'tor started');
  assert.equal((await s.stop({ powerdownTimeoutMs: 45_000 })).stoppedBy, 'powerdown');
  const fsck = spawnSync('/usr/sbin/e2fsck', ['-n', '-f', disk], { timeout: 30_000, encoding: 'utf8' });
  assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
});

test('stop falls back to QMP quit when the guest does not power off in time', async (t) => {
  const r = ready(t);
  if (!r) return;
  const s = newSupervisor(r);
  await s.start();
  const pid = s.pid as number;
  // A 1 ms power-down bound: the guest cannot make it, so step 2 (quit) must end QEMU.
  const report = await s.stop({ powerdownTimeoutMs: 1, quitTimeoutMs: 10_000 });
  assert.equal(report.stoppedBy, 'quit');
  assert.equal(isAlive(pid), false);
  assert.equal(s.pid, null);
});
