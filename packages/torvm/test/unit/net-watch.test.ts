/**
 * The watcher's timing rules, with fake timers and fake monitor processes:
 * a stream of events cannot push a repair back, the backstop runs outside the
 * debounce, and an exited monitor is restarted with a bounded backoff.
 */
import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import { startNetWatch, type MonitorSpawner, type NetWatch } from '../../src/platform/linux/net-watch.ts';

class FakeMonitor extends EventEmitter {
  readonly stdout = new PassThrough();
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  constructor(readonly file: string) {
    super();
    queueMicrotask(() => this.emit('spawn'));
  }
  event(line: string) { this.stdout.write(`${line}\n`); }
  exit(code: number) { this.exitCode = code; this.emit('exit', code, null); }
  kill() { this.signalCode = 'SIGTERM'; queueMicrotask(() => this.emit('exit', null, 'SIGTERM')); return true; }
  unref() {}
}

let spawned: FakeMonitor[];
const spawner: MonitorSpawner = (file) => {
  const m = new FakeMonitor(file);
  spawned.push(m);
  return m as unknown as ChildProcess;
};
const latest = (file: string) => [...spawned].reverse().find((m) => m.file === file) as FakeMonitor;
/** Lets stream 'data' handlers and promise callbacks run. */
const settle = async () => { for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r)); };

let calls: string[];
let watcher: NetWatch | undefined;
const start = async (extra: Partial<Parameters<typeof startNetWatch>[0]> = {}) => {
  watcher = startNetWatch({ onChange: async (reason) => { calls.push(reason); }, spawnMonitor: spawner, debounceMs: 50, periodMs: 5_000, ...extra });
  await watcher.ready;
  mock.timers.tick(50); // the 'watch started' check
  await settle();
  calls.length = 0;
};

beforeEach(() => {
  spawned = [];
  calls = [];
  mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
});
afterEach(async () => {
  mock.timers.reset();
  await watcher?.stop();
  watcher = undefined;
});

test('a steady stream of events cannot push the check back: it runs debounceMs after the first event', async () => {
  await start();
  const ip = latest('ip');
  // An address flapping every 20 ms, for 2 s.
  for (let t = 0; t < 2_000; t += 20) {
    ip.event(`event at ${t}`);
    await settle();
    mock.timers.tick(20);
    await settle();
  }
  // One check per ~50 ms window, not zero until the storm ends.
  assert.ok(calls.length >= 30, `expected a check at least every ~60 ms during the storm, got ${calls.length}`);
  assert.equal(calls[0], 'ip monitor: event at 0');
});

test('one burst, one call, at debounceMs after its first event', async () => {
  await start();
  const nft = latest('nft');
  nft.event('delete table inet torvm');
  await settle();
  mock.timers.tick(30);
  nft.event('add table inet torvm');
  await settle();
  mock.timers.tick(19);
  await settle();
  assert.deepEqual(calls, []);
  mock.timers.tick(1);
  await settle();
  assert.deepEqual(calls, ['nft monitor: delete table inet torvm']);
});

test('the periodic backstop runs on its own clock even while events keep arriving', async () => {
  await start({ debounceMs: 1_000_000 });
  const ip = latest('ip');
  for (let t = 0; t < 5_000; t += 100) {
    ip.event('flap');
    await settle();
    mock.timers.tick(100);
    await settle();
  }
  // The debounce never fired (1000 s), yet the backstop checked once in 5 s.
  assert.deepEqual(calls, ['watch started']);
});

test('calls never overlap: events during a call run one more call after it', async () => {
  let release: () => void = () => {};
  let active = 0;
  let maxActive = 0;
  await start({
    onChange: async (reason) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      calls.push(reason);
      await new Promise<void>((r) => { release = r; });
      active -= 1;
    },
  });
  release(); // the 'watch started' check
  await settle();
  calls.length = 0;
  const ip = latest('ip');
  ip.event('first');
  await settle();
  mock.timers.tick(50);
  await settle();
  ip.event('during');
  await settle();
  mock.timers.tick(5_000); // the backstop, too, waits for the running call
  await settle();
  assert.deepEqual(calls, ['ip monitor: first']);
  release();
  await settle();
  mock.timers.tick(50);
  await settle();
  assert.deepEqual(calls, ['ip monitor: first', 'ip monitor: during']);
  release();
  await settle();
  assert.equal(maxActive, 1);
});

test('an exited monitor is restarted with a doubling, bounded delay, and a check follows each restart', async () => {
  const errors: string[] = [];
  await start({ restartMinMs: 100, restartMaxMs: 400, onError: (e) => errors.push(String(e)) });
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    const before = spawned.length;
    latest('nft').exit(1);
    let waited = 0;
    while (spawned.length === before) {
      mock.timers.tick(10);
      waited += 10;
      await settle();
      assert.ok(waited <= 1_000, 'the monitor must be restarted');
    }
    delays.push(waited);
    mock.timers.tick(50);
    await settle();
  }
  assert.deepEqual(delays, [100, 200, 400, 400, 400]);
  assert.equal(errors.filter((e) => e.includes('nft monitor exited')).length, 5);
  assert.ok(calls.filter((c) => c === 'nft monitor restarted').length >= 1);
  // The restarted monitor is live: its events trigger checks.
  calls.length = 0;
  latest('nft').event('flush ruleset');
  await settle();
  mock.timers.tick(50);
  await settle();
  assert.deepEqual(calls, ['nft monitor: flush ruleset']);
});

test('stop ends every monitor and cancels a pending restart', async () => {
  await start({ restartMinMs: 100 });
  latest('ip').exit(1);
  await watcher?.stop();
  const count = spawned.length;
  mock.timers.tick(1_000);
  await settle();
  assert.equal(spawned.length, count, 'no restart after stop');
  assert.ok(spawned.every((m) => m.exitCode !== null || m.signalCode !== null));
  watcher = undefined;
});
