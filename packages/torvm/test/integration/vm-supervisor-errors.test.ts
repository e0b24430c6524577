/**
 * Supervisor start failures with a real QEMU and no image: QEMU dies before
 * QMP comes up, and start() must turn its stderr into a coded error and leave
 * nothing behind. No network is touched: wan is slirp with restrict=on, no lan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QemuSupervisor } from '../../src/vm/qemu-supervisor.ts';
import { linuxProcessInspector } from '../../src/platform/linux/process-inspector.ts';
import { ensureStateDisk } from '../../src/vm/state-disk.ts';
import type { QemuLaunchSpec } from '../../src/vm/qemu-args.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import { QEMU, makeTempDir, requirePrerequisites } from './vm-fixtures.ts';

function specIn(dir: string, over: Partial<QemuLaunchSpec> = {}): QemuLaunchSpec {
  return {
    arch: 'x86_64', accel: 'tcg', memoryMiB: 64, cpus: 1,
    kernelPath: join(dir, 'no-such-kernel'), initrdPath: join(dir, 'no-such-initrd'), kernelCmdline: 'console=ttyS0',
    stateDiskPath: join(dir, 'state.img'), lan: { kind: 'none' }, lanMac: '52:54:00:00:00:02', wanMac: '52:54:00:00:00:01',
    wan: { restrict: true }, fwCfg: [], qmpSocketPath: join(dir, 'qmp.sock'), serialSocketPath: join(dir, 'serial.sock'),
    serialLogPath: join(dir, 'serial.log'), pidFilePath: join(dir, 'qemu.pid'), sandbox: true,
    ...over,
  };
}

test('a missing kernel is ERR_IMAGE_MISSING with QEMU stderr, and nothing is left running or locked', async (t) => {
  if (!requirePrerequisites(t)) return;
  const temp = makeTempDir('serr');
  try {
    const spec = specIn(temp.dir);
    await ensureStateDisk(spec.stateDiskPath, () => {});
    const s = new QemuSupervisor({ qemuBinary: QEMU, spec, hostOs: 'linux', inspector: linuxProcessInspector, stderrLogPath: join(temp.dir, 'stderr'), readyTimeoutMs: 20_000 });
    let exits = 0;
    s.on('exit', () => exits++);
    await assert.rejects(s.start(), (e) => isTorvmError(e, 'ERR_IMAGE_MISSING') && /no-such-kernel/.test(e.message));
    assert.equal(s.pid, null);
    assert.equal(exits, 0, 'a start failure is reported by start(), not as a crash');
    assert.equal(existsSync(`${spec.stateDiskPath}.lock`), false);
    await s.dispose();
  } finally {
    temp.remove();
  }
});

test('a bad option QEMU rejects is ERR_VM carrying its stderr', async (t) => {
  if (!requirePrerequisites(t)) return;
  const temp = makeTempDir('serr');
  try {
    // A kernel file that is not a kernel: QEMU refuses it at startup.
    const kernel = join(temp.dir, 'kernel');
    writeFileSync(kernel, 'not a kernel');
    const spec = specIn(temp.dir, { kernelPath: kernel, initrdPath: kernel });
    await ensureStateDisk(spec.stateDiskPath, () => {});
    const s = new QemuSupervisor({ qemuBinary: QEMU, spec, hostOs: 'linux', inspector: linuxProcessInspector, stderrLogPath: join(temp.dir, 'stderr'), readyTimeoutMs: 20_000 });
    await assert.rejects(s.start(), (e) => isTorvmError(e) && ['ERR_VM', 'ERR_IMAGE_MISSING'].includes(e.code) && typeof e.details?.stderr === 'string' && e.details.stderr.length > 0);
    assert.equal(s.pid, null);
    await s.dispose();
  } finally {
    temp.remove();
  }
});
