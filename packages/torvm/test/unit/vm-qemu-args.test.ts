import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import fc from 'fast-check';
import { buildQemuArgs, type HostOs, type QemuLaunchSpec } from '../../src/vm/qemu-args.ts';
import { isTorvmError } from '../../src/core/errors.ts';

const GOLDEN_DIR = new URL('./golden/qemu/', import.meta.url);

/** One argument per line: a diff shows exactly which argument changed. */
function checkGolden(name: string, argv: string[]): void {
  const file = new URL(`${name}.argv`, GOLDEN_DIR);
  const text = `${argv.join('\n')}\n`;
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI && process.env.UPDATE_GOLDEN !== '1') assert.fail(`golden file ${name}.argv is missing`);
    writeFileSync(file, text);
  }
  assert.equal(text, readFileSync(file, 'utf8'), `golden ${name}.argv differs (UPDATE_GOLDEN=1 to accept)`);
}

function linuxSpec(over: Partial<QemuLaunchSpec> = {}): QemuLaunchSpec {
  return {
    arch: 'x86_64', accel: 'kvm', memoryMiB: 128, cpus: 1,
    kernelPath: '/usr/lib/torvm/image/kernel', initrdPath: '/usr/lib/torvm/image/initramfs',
    kernelCmdline: 'console=ttyS0 loglevel=4 panic=1 oops=panic ipv6.disable=1 rdinit=/init',
    stateDiskPath: '/var/lib/torvm/state.img',
    lan: { kind: 'tap', ifname: 'torvm0' }, lanMac: '52:54:00:74:76:02', wanMac: '52:54:00:74:76:01',
    wan: { restrict: false },
    fwCfg: [{ name: 'opt/org.torvm/torrc', file: '/run/torvm/torrc' }, { name: 'opt/org.torvm/guest.json', file: '/run/torvm/guest.json' }],
    qmpSocketPath: '/run/torvm/qmp.sock', serialLogPath: '/var/log/torvm/serial.log', serialSocketPath: '/run/torvm/serial.sock',
    pidFilePath: '/run/torvm/qemu.pid', runAs: 'torvm', sandbox: true, startPaused: true,
    ...over,
  };
}

function darwinSpec(over: Partial<QemuLaunchSpec> = {}): QemuLaunchSpec {
  return linuxSpec({
    arch: 'aarch64', accel: 'hvf', lan: { kind: 'vmnet-host' }, runAs: undefined,
    kernelPath: '/Library/Application/TorVM/image/kernel', initrdPath: '/Library/Application/TorVM/image/initramfs',
    ...over,
  });
}

function win32Spec(over: Partial<QemuLaunchSpec> = {}): QemuLaunchSpec {
  return linuxSpec({
    accel: 'whpx', lan: { kind: 'none' }, runAs: undefined, qmpTcpPort: 47911, serialSocketPath: undefined,
    kernelPath: 'C:\\Program Files\\TorVM\\image\\kernel', initrdPath: 'C:\\ProgramData\\TorVM\\image\\initramfs',
    stateDiskPath: 'C:\\ProgramData\\TorVM\\state.img', qmpSocketPath: 'C:\\ProgramData\\TorVM\\qmp.sock',
    serialLogPath: 'C:\\ProgramData\\TorVM\\serial.log', pidFilePath: 'C:\\ProgramData\\TorVM\\qemu.pid',
    fwCfg: [{ name: 'opt/org.torvm/torrc', file: 'C:\\ProgramData\\TorVM\\torrc' }],
    ...over,
  });
}

test('golden: linux kvm with TAP, runas and sandbox', () => checkGolden('linux-kvm', buildQemuArgs(linuxSpec(), 'linux')));
test('golden: linux tcg, restricted wan, no lan, serial to a file (test VMs)', () =>
  checkGolden('linux-tcg-test', buildQemuArgs(linuxSpec({ accel: 'tcg', lan: { kind: 'none' }, wan: { restrict: true }, serialSocketPath: undefined, startPaused: false, sandbox: true, runAs: undefined }), 'linux')));
test('golden: linux with QEMU >= 9.1 spelling (-run-with)', () =>
  checkGolden('linux-tcg-run-with', buildQemuArgs(linuxSpec({ accel: 'tcg', qemuFeatures: { runWith: true } }), 'linux')));
test('golden: macOS aarch64 hvf with vmnet-host (no sandbox, no runas)', () => checkGolden('darwin-hvf', buildQemuArgs(darwinSpec(), 'darwin')));
test('golden: macOS tcg', () => checkGolden('darwin-tcg', buildQemuArgs(darwinSpec({ accel: 'tcg' }), 'darwin')));
test('golden: windows whpx with QMP on loopback TCP', () => checkGolden('win32-whpx', buildQemuArgs(win32Spec(), 'win32')));
test('golden: windows tcg', () => checkGolden('win32-tcg', buildQemuArgs(win32Spec({ accel: 'tcg' }), 'win32')));

test('sandbox: elevateprivileges=deny without runas, allow with runas (QEMU 7.2 installs seccomp before the drop)', () => {
  const withRunAs = buildQemuArgs(linuxSpec(), 'linux');
  const without = buildQemuArgs(linuxSpec({ runAs: undefined }), 'linux');
  assert.match(withRunAs[withRunAs.indexOf('-sandbox') + 1] ?? '', /elevateprivileges=allow/);
  assert.match(without[without.indexOf('-sandbox') + 1] ?? '', /elevateprivileges=deny,spawn=deny/);
  assert.equal(buildQemuArgs(darwinSpec({ sandbox: true }), 'darwin').includes('-sandbox'), false);
});

test('the accelerator must belong to the host OS', () => {
  const bad: Array<[QemuLaunchSpec, HostOs]> = [
    [linuxSpec({ accel: 'hvf' }), 'linux'], [darwinSpec({ accel: 'kvm' }), 'darwin'], [win32Spec({ accel: 'kvm' }), 'win32'],
    [linuxSpec({ accel: 'whpx' }), 'linux'],
  ];
  for (const [spec, os] of bad) assert.throws(() => buildQemuArgs(spec, os), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
});

test('a TAP is Linux-only and vmnet-host is macOS-only', () => {
  assert.throws(() => buildQemuArgs(darwinSpec({ lan: { kind: 'tap', ifname: 'torvm0' } }), 'darwin'), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
  assert.throws(() => buildQemuArgs(linuxSpec({ lan: { kind: 'vmnet-host' } }), 'linux'), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
});

test('commas in paths are refused, not escaped', () => {
  assert.throws(() => buildQemuArgs(linuxSpec({ stateDiskPath: '/var/lib/torvm/a,format=qcow2' }), 'linux'), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
  assert.throws(() => buildQemuArgs(linuxSpec({ fwCfg: [{ name: 'opt/x', file: '/tmp/a,,b' }] }), 'linux'), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
});

test('other refusals: relative path, long socket path, multicast MAC, duplicate fw_cfg, bad user, cmdline newline, memory', () => {
  const cases: Array<Partial<QemuLaunchSpec>> = [
    { kernelPath: 'kernel' },
    { qmpSocketPath: `/run/${'x'.repeat(110)}` },
    { wanMac: '53:54:00:00:00:01' },
    { lanMac: '52:54:00:00:00:0G' },
    { fwCfg: [{ name: 'opt/a', file: '/a' }, { name: 'opt/a', file: '/b' }] },
    { fwCfg: [{ name: 'etc/a', file: '/a' }] },
    { runAs: 'root;x' },
    { kernelCmdline: 'console=ttyS0\ninit=/bin/sh' },
    { memoryMiB: 12.5 },
    { cpus: 0 },
    { lan: { kind: 'tap', ifname: 'torvm0,script=/x' } },
  ];
  for (const over of cases) {
    assert.throws(() => buildQemuArgs(linuxSpec(over), 'linux'), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'), JSON.stringify(over));
  }
});

/** Splits a QEMU option value on unescaped commas (",," is a literal comma) into its keys. */
function optionKeys(value: string): string[] {
  return value.replaceAll(',,', '\u0000').split(',').map((part) => (part.includes('=') ? part.slice(0, part.indexOf('=')) : '<positional>'));
}

type StringField = 'kernelPath' | 'initrdPath' | 'kernelCmdline' | 'stateDiskPath' | 'lanMac' | 'wanMac' | 'qmpSocketPath'
  | 'serialLogPath' | 'serialSocketPath' | 'pidFilePath' | 'runAs' | 'ifname' | 'fwName' | 'fwFile';
const FIELDS: StringField[] = ['kernelPath', 'initrdPath', 'kernelCmdline', 'stateDiskPath', 'lanMac', 'wanMac', 'qmpSocketPath',
  'serialLogPath', 'serialSocketPath', 'pidFilePath', 'runAs', 'ifname', 'fwName', 'fwFile'];

const SAFE_VALUES: Record<StringField, string> = {
  kernelPath: '/a/kernel', initrdPath: '/a/initrd', kernelCmdline: 'console=ttyS0', stateDiskPath: '/a/state.img',
  lanMac: '52:54:00:00:00:02', wanMac: '52:54:00:00:00:01', qmpSocketPath: '/a/qmp.sock', serialLogPath: '/a/serial.log',
  serialSocketPath: '/a/serial.sock', pidFilePath: '/a/qemu.pid', runAs: 'torvm', ifname: 'torvm0',
  fwName: 'opt/org.torvm/torrc', fwFile: '/a/torrc',
};

function withField(field: StringField, value: string): QemuLaunchSpec {
  const spec = linuxSpec();
  if (field === 'ifname') return { ...spec, lan: { kind: 'tap', ifname: value } };
  if (field === 'fwName') return { ...spec, fwCfg: [{ name: value, file: '/run/torvm/torrc' }] };
  if (field === 'fwFile') return { ...spec, fwCfg: [{ name: 'opt/org.torvm/torrc', file: value }] };
  return { ...spec, [field]: value };
}

test('property: a random string in any field is refused or stays inside its field', () => {
  const hostile = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: fc.constantFrom(',', '=', '/', ' ', '\n', '-', 'a', ':', '.', '\\', '"', '0'), maxLength: 30 }),
    fc.string({ maxLength: 30 }).map((s) => `/tmp/${s}`),
  );
  fc.assert(fc.property(fc.constantFrom(...FIELDS), hostile, (field, value) => {
    const baselineArgv = buildQemuArgs(withField(field, SAFE_VALUES[field]), 'linux');
    let argv: string[];
    try {
      argv = buildQemuArgs(withField(field, value), 'linux');
    } catch (err) {
      assert.ok(isTorvmError(err, 'ERR_UNSAFE_VALUE'), `unexpected error ${String(err)}`);
      return;
    }
    // Same number of arguments, same options in the same places, same option keys.
    assert.equal(argv.length, baselineArgv.length);
    for (let i = 0; i < argv.length; i++) {
      const got = argv[i] ?? '';
      const want = baselineArgv[i] ?? '';
      if (want.startsWith('-') && !want.includes('=')) assert.equal(got, want, `option at ${i}`);
      else if (want.includes('=') && baselineArgv[i - 1] !== '-append') assert.deepEqual(optionKeys(got), optionKeys(want), `keys of argument ${i}`);
    }
  }), { numRuns: 3000 });
});

test('the read-only system disk is attached with its serial; a comma in its path or a bad serial is refused', () => {
  const argv = buildQemuArgs(linuxSpec({ systemDisk: { path: '/usr/lib/torvm/image/system.img', serial: 'torvm-system' } }), 'linux');
  const i = argv.indexOf('if=none,id=system,format=raw,readonly=on,file=/usr/lib/torvm/image/system.img');
  assert.ok(i > 0 && argv[i - 1] === '-drive');
  assert.equal(argv[i + 2], 'virtio-blk-pci,drive=system,serial=torvm-system');
  assert.throws(() => buildQemuArgs(linuxSpec({ systemDisk: { path: '/tmp/a,b/system.img', serial: 'torvm-system' } }), 'linux'), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
  assert.throws(() => buildQemuArgs(linuxSpec({ systemDisk: { path: '/tmp/system.img', serial: 'x,file=/etc/shadow' } }), 'linux'), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
});
