/**
 * The QMP client against a real QEMU (`-machine none`: no image needed).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { QmpClient, QmpCommandError } from '../../src/vm/qmp-client.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import { exited, killByPid, makeTempDir, requirePrerequisites, startBareQemu } from './vm-fixtures.ts';

const temp = makeTempDir('qmp');
const started: Array<ReturnType<typeof startBareQemu>> = [];
after(async () => {
  for (const child of started) await killByPid(child.pid, child);
  temp.remove();
});

let seq = 0;
async function startQemuAndConnect(): Promise<{ client: QmpClient; child: ReturnType<typeof startBareQemu>; qmpPath: string }> {
  const qmpPath = join(temp.dir, `q${seq++}.sock`);
  const child = startBareQemu(qmpPath);
  started.push(child);
  // Connect right away: the client must retry while QEMU creates the socket.
  const client = await QmpClient.connect({ path: qmpPath }, { connectTimeoutMs: 10_000, commandTimeoutMs: 5_000 });
  return { client, child, qmpPath };
}

test('greeting, capabilities and a command', async (t) => {
  if (!requirePrerequisites(t)) return;
  const { client, child } = await startQemuAndConnect();
  assert.ok(client.greeting.version.qemu.major >= 7, 'QEMU 7 or newer');
  const status = await client.execute<{ status: string; running: boolean }>('query-status');
  assert.equal(typeof status.running, 'boolean');
  const version = await client.execute<{ qemu: { major: number } }>('query-version');
  assert.equal(version.qemu.major, client.greeting.version.qemu.major);
  client.close();
  await killByPid(child.pid, child);
});

test('error replies: CommandNotFound and GenericError carry their class', async (t) => {
  if (!requirePrerequisites(t)) return;
  const { client, child } = await startQemuAndConnect();
  await assert.rejects(client.execute('no-such-command'), (e) => e instanceof QmpCommandError && e.errorClass === 'CommandNotFound' && e.code === 'ERR_QMP');
  // A bad argument type is a GenericError in every QEMU version.
  await assert.rejects(client.execute('query-status', { bogus: 1 }), (e) => e instanceof QmpCommandError && e.errorClass === 'GenericError');
  // The session still works after errors.
  assert.equal(typeof (await client.execute<{ running: boolean }>('query-status')).running, 'boolean');
  client.close();
  await killByPid(child.pid, child);
});

test('events: STOP and RESUME from stop/cont, SHUTDOWN from quit, then close', async (t) => {
  if (!requirePrerequisites(t)) return;
  const { client, child } = await startQemuAndConnect();
  const seen: string[] = [];
  client.on('event', (e) => seen.push(e.event));
  const stopped = client.waitForEvent('STOP', 5000);
  await client.execute('stop');
  await stopped;
  const resumed = client.waitForEvent('RESUME', 5000);
  await client.execute('cont');
  await resumed;
  const shutdown = client.waitForEvent('SHUTDOWN', 5000);
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  await client.execute('quit');
  const event = await shutdown;
  assert.equal(event.data.reason, 'host-qmp-quit');
  await closed;
  assert.deepEqual(seen, ['STOP', 'RESUME', 'SHUTDOWN']);
  await exited(child);
  await assert.rejects(client.execute('query-status'), (e) => isTorvmError(e, 'ERR_QMP'));
});

test('a command with no reply times out with ERR_QMP', async (t) => {
  if (!requirePrerequisites(t)) return;
  const { client, child } = await startQemuAndConnect();
  process.kill(child.pid ?? 0, 'SIGSTOP'); // a frozen QEMU never answers
  try {
    await assert.rejects(client.execute('query-status', undefined, { timeoutMs: 300 }),
      (e) => isTorvmError(e, 'ERR_QMP') && e.details?.reason === 'timeout' && e.details.timeoutMs === 300);
  } finally {
    process.kill(child.pid ?? 0, 'SIGCONT');
  }
  // A late reply to the timed-out command is dropped; a new one still works.
  assert.equal(typeof (await client.execute<{ running: boolean }>('query-status')).running, 'boolean');
  client.close();
  await killByPid(child.pid, child);
});

test('QEMU killed (SIGKILL by PID) mid-command rejects the pending command promptly', async (t) => {
  if (!requirePrerequisites(t)) return;
  const { client, child } = await startQemuAndConnect();
  process.kill(child.pid ?? 0, 'SIGSTOP'); // keep the command pending
  const pending = client.execute('query-status', undefined, { timeoutMs: 30_000 });
  const rejected = assert.rejects(pending, (e) => isTorvmError(e, 'ERR_QMP') && e.details?.reason === 'closed');
  const killedAt = Date.now();
  process.kill(child.pid ?? 0, 'SIGKILL');
  await rejected;
  // "Promptly" is a correctness bound, not a benchmark: far below the 30 s command timeout.
  assert.ok(Date.now() - killedAt < 10_000, 'rejected long before the command timeout');
  assert.equal(client.closed, true);
  await exited(child);
});

test('connect gives up with ERR_QMP when nothing listens', async (t) => {
  if (!requirePrerequisites(t)) return;
  await assert.rejects(QmpClient.connect({ path: join(temp.dir, 'nobody.sock') }, { connectTimeoutMs: 300 }), (e) => isTorvmError(e, 'ERR_QMP'));
});

test('connect is cancellable', async (t) => {
  if (!requirePrerequisites(t)) return;
  const controller = new AbortController();
  const attempt = QmpClient.connect({ path: join(temp.dir, 'never.sock') }, { connectTimeoutMs: 30_000, signal: controller.signal });
  controller.abort();
  await assert.rejects(attempt, (e) => isTorvmError(e, 'ERR_CANCELLED'));
});
