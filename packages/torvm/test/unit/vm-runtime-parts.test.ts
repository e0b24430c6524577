import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyStartFailure } from '../../src/vm/qemu-stderr.ts';
import { isQemuWithPaths } from '../../src/vm/process-inspector.ts';
import { RotatingLog } from '../../src/vm/rotating-log.ts';
import { SerialConsole } from '../../src/vm/serial-console.ts';
import type { GuestEvent } from '../../src/vm/guest-markers.ts';

test('QEMU startup stderr becomes a coded error', () => {
  const exit = { code: 1, signal: null };
  const cases: Array<[string, string]> = [
    ['qemu-system-x86_64: -drive if=none,id=state: Failed to get "write" lock\nIs another process using the image [/x/state.img]?', 'ERR_VM'],
    ['qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69', 'ERR_ACCEL_UNAVAILABLE'],
    ["qemu: could not open kernel file '/nope/vmlinuz': No such file or directory", 'ERR_IMAGE_MISSING'],
    ['qemu-system-x86_64: -netdev tap,id=lan,ifname=torvm0: could not configure /dev/net/tun (torvm0): Operation not permitted', 'ERR_NETWORK'],
    ['something new', 'ERR_VM'],
  ];
  for (const [stderr, code] of cases) {
    const err = classifyStartFailure(stderr, exit);
    assert.equal(err.code, code, stderr);
    assert.equal(err.details?.exitCode, 1);
  }
  assert.match(classifyStartFailure('', { code: null, signal: 'SIGSYS' }).message, /SIGSYS/);
});

test('isQemuWithPaths matches only our QEMU', () => {
  const argv = ['/usr/bin/qemu-system-x86_64', '-qmp', 'unix:/run/torvm/qmp.sock,server=on,wait=off', '-pidfile', '/run/torvm/qemu.pid'];
  assert.equal(isQemuWithPaths(argv, '/run/torvm/qemu.pid', '/run/torvm/qmp.sock'), true);
  assert.equal(isQemuWithPaths(argv, '/run/other/qemu.pid', '/run/torvm/qmp.sock'), false);
  assert.equal(isQemuWithPaths(argv, '/run/torvm/qemu.pid', '/run/torvm/qmp.so'), false);
  assert.equal(isQemuWithPaths(['/bin/sleep', ...argv.slice(1)], '/run/torvm/qemu.pid', '/run/torvm/qmp.sock'), false);
  assert.equal(isQemuWithPaths(null, '/a', '/b'), false);
});

test('RotatingLog caps the file size and keeps the newest lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tvm-rot-'));
  try {
    const log = new RotatingLog(join(dir, 'serial.log'), { maxBytes: 1024, keep: 2 });
    for (let i = 0; i < 200; i++) log.writeLine(`line ${i} ${'x'.repeat(20)}`);
    log.close();
    const files = readdirSync(dir).sort();
    assert.deepEqual(files, ['serial.log', 'serial.log.1', 'serial.log.2']);
    for (const f of files) assert.ok(readFileSync(join(dir, f)).length <= 1024);
    assert.match(readFileSync(join(dir, 'serial.log'), 'utf8'), /line 199 /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SerialConsole splits lines across chunks, emits markers, caps long lines, and reports close', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tvm-ser-'));
  const path = join(dir, 's.sock');
  const server = createServer((socket) => {
    socket.write('boot text\r\ntorvm-guest: tor sta');
    setImmediate(() => {
      socket.write(`rted pid=7\n${'y'.repeat(5000)}\npartial`);
      socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    const log = new RotatingLog(join(dir, 'serial.log'), { maxBytes: 1 << 20 });
    const serial = await SerialConsole.connect(path, log);
    const lines: string[] = [];
    const events: GuestEvent[] = [];
    serial.on('line', (l) => lines.push(l));
    serial.on('guest', (e) => events.push(e));
    await new Promise<void>((resolve) => serial.once('close', () => resolve()));
    assert.deepEqual(lines.slice(0, 2), ['boot text', 'torvm-guest: tor started pid=7']);
    assert.equal(lines[2]?.length, 4096);
    assert.equal(lines[3]?.length, 5000 - 4096);
    assert.equal(lines.at(-1), 'partial');
    assert.deepEqual(events, [{ kind: 'tor-started', pid: 7 }]);
    assert.match(readFileSync(join(dir, 'serial.log'), 'utf8'), /^boot text\ntorvm-guest: tor started pid=7\n/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
