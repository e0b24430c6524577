/** The QMP client against an in-process fake QMP server (protocol edge cases). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../../src/vm/qmp-client.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import { vmPaths } from '../../src/vm/vm-paths.ts';

const GREETING = `${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: '' }, capabilities: ['oob'] } })}\n`;

/** A fake QEMU: greets, answers qmp_capabilities, then runs `onCommand`. */
function fakeQmp(path: string, onCommand: (msg: { execute: string; id: number }, socket: Socket) => void, greeting = GREETING): Promise<Server> {
  const server = createServer((socket) => {
    socket.write(greeting);
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id: number };
        buf = buf.slice(nl + 1);
        if (msg.execute === 'qmp_capabilities') socket.write(`${JSON.stringify({ return: {}, id: msg.id })}\n`);
        else onCommand(msg, socket);
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

function withDir(fn: (dir: string) => Promise<void>) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvm-qmpu-'));
    try { await fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

test('connect retries until the socket appears (QEMU still starting)', withDir(async (dir) => {
  const path = join(dir, 'q.sock');
  const connecting = QmpClient.connect({ path }, { connectTimeoutMs: 5000 });
  const server = await new Promise<Server>((resolve) => setTimeout(() => resolve(fakeQmp(path, () => {})), 200));
  const client = await connecting;
  assert.equal(client.greeting.version.qemu.minor, 2);
  client.close();
  server.close();
}));

test('replies are matched by id, out of order; events interleave', withDir(async (dir) => {
  const path = join(dir, 'q.sock');
  const held: Array<{ id: number; execute: string }> = [];
  const server = await fakeQmp(path, (msg, socket) => {
    held.push(msg);
    if (held.length === 2) {
      // Answer the second first, with an event in between, split across writes.
      const [a, b] = held;
      const out = `${JSON.stringify({ return: b?.execute, id: b?.id })}\n${JSON.stringify({ event: 'STOP', data: {}, timestamp: { seconds: 1, microseconds: 2 } })}\n${JSON.stringify({ return: a?.execute, id: a?.id })}\n`;
      socket.write(out.slice(0, 17));
      setImmediate(() => socket.write(out.slice(17)));
    }
  });
  const client = await QmpClient.connect({ path });
  const events: string[] = [];
  client.on('event', (e) => events.push(e.event));
  const [first, second] = await Promise.all([client.execute('first'), client.execute('second')]);
  assert.equal(first, 'first');
  assert.equal(second, 'second');
  assert.deepEqual(events, ['STOP']);
  client.close();
  server.close();
}));

test('a first message that is not a greeting is ERR_QMP', withDir(async (dir) => {
  const path = join(dir, 'q.sock');
  const server = await fakeQmp(path, () => {}, '{"hello": 1}\n');
  await assert.rejects(QmpClient.connect({ path }, { connectTimeoutMs: 1000 }), (e) => isTorvmError(e, 'ERR_QMP') && /greeting/.test(e.message));
  server.close();
}));

test('waitForEvent rejects when the connection closes first', withDir(async (dir) => {
  const path = join(dir, 'q.sock');
  const server = await fakeQmp(path, (_msg, socket) => socket.destroy());
  const client = await QmpClient.connect({ path });
  const waiting = client.waitForEvent('SHUTDOWN', 10_000);
  await assert.rejects(client.execute('quit'), (e) => isTorvmError(e, 'ERR_QMP') && e.details?.reason === 'closed');
  await assert.rejects(waiting, (e) => isTorvmError(e, 'ERR_QMP'));
  server.close();
}));

test('vmPaths: one layout, short socket paths', () => {
  const p = vmPaths('/var/lib/torvm', '/run/torvm');
  assert.equal(p.qmpSocketPath, '/run/torvm/qmp.sock');
  assert.equal(p.stateDiskPath, '/var/lib/torvm/state.img');
  assert.throws(() => vmPaths('/var/lib/torvm', `/run/${'x'.repeat(100)}`), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
});
