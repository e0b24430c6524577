import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogging } from '../../src/log/logger.ts';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _e, done) { lines.push(chunk.toString()); done(); } });
  return { lines, stream };
}

test('secrets are redacted from every destination and the ring buffer', async () => {
  const { lines, stream } = capture();
  const logging = createLogging({ level: 'info', stream });
  const controlPassword = 'c0ntrol-pass-0123456789abcdef';
  const bridge = 'obfs4 192.0.2.10:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=abcdefgh iat-mode=0';
  logging.secrets.add(controlPassword);
  logging.secrets.add(bridge);
  const log = logging.forComponent('tor');
  log.info(`authenticating with ${controlPassword}`);
  log.info({ line: bridge }, 'applying a bridge');
  log.info({ proxy: { password: 'hunter2-proxy' }, token: 'tok-123456' }, 'fields named like secrets');
  await new Promise((r) => setImmediate(r));
  const all = lines.join('') + JSON.stringify(logging.ring.snapshot());
  for (const secret of [controlPassword, bridge, 'hunter2-proxy', 'tok-123456']) assert.ok(!all.includes(secret), `leaked ${secret}`);
  assert.ok(all.includes('[redacted]'));
  assert.equal(logging.ring.snapshot().length, 3);
  assert.equal(logging.ring.snapshot()[0]?.component, 'tor');
});

test('the ring buffer keeps only the last lines and notifies subscribers', async () => {
  const logging = createLogging({ level: 'info', stream: null, ringCapacity: 5 });
  const seen: string[] = [];
  const unsubscribe = logging.ring.subscribe((l) => seen.push(l.msg));
  for (let i = 0; i < 12; i++) logging.root.info(`line ${i}`);
  await new Promise((r) => setImmediate(r));
  unsubscribe();
  logging.root.info('after');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(logging.ring.snapshot().map((l) => l.msg), ['line 8', 'line 9', 'line 10', 'line 11', 'after']);
  assert.equal(seen.length, 12);
});
