// Fault injection at the TUN boundary: the engine's PacketIO drops, duplicates
// and reorders packets in both directions; transfers must still arrive intact.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EngineProcess, TestNamespace, missingPrerequisite, routeIntoTun } from './netns-harness.ts';

const missing = missingPrerequisite();
if (missing && process.env.CI) throw new Error(`netstack integration: ${missing} (CI must run every test)`);

const MB = 1024 * 1024;
const FAULTS = { drop: 0.02, duplicate: 0.01, reorder: 0.02 };

describe('netstack engine with 2% loss, 1% duplication, 2% reordering', { skip: missing, timeout: 300_000 }, () => {
  const ns = new TestNamespace('f');
  let engine: EngineProcess | undefined;

  before(async () => {
    await ns.destroy();
    await ns.create();
    const started = await EngineProcess.start(ns, { tun: `tvt${process.pid}f`, faults: FAULTS });
    engine = started.engine;
    await routeIntoTun(ns, started.ready.tun);
  });

  after(async () => {
    await engine?.stop();
    await ns.destroy();
  });

  it('downloads 20 MB intact', async () => {
    const out = JSON.parse(await ns.node('client.ts', ['download', String(20 * MB), '10.99.0.80', 'faulty'], 180_000)) as { length: number; sha256: string };
    assert.equal(out.length, 20 * MB);
    const sent = await ns.exec(['curl', '-sS', '--retry', '3', '--max-time', '30', 'http://10.99.0.80/sent/faulty'], 150_000);
    assert.equal(out.sha256, sent);
  });

  it('uploads 20 MB intact', async () => {
    const out = JSON.parse(await ns.node('client.ts', ['upload', String(20 * MB), '10.99.0.81'], 180_000)) as {
      sha256: string;
      server: { sha256: string; length: number };
    };
    assert.equal(out.server.length, 20 * MB);
    assert.equal(out.server.sha256, out.sha256);
  });

  it('completes 200 concurrent connections', async () => {
    const out = JSON.parse(await ns.node('client.ts', ['concurrent', '200', '10.99'], 180_000)) as { ok: number; errors: string[] };
    assert.deepEqual(out.errors, []);
    assert.equal(out.ok, 200);
  });

  it('really injected faults in both directions', async () => {
    const faults = (await engine!.stats()).faults as Record<'in' | 'out', { dropped: number; duplicated: number; reordered: number }>;
    for (const direction of ['in', 'out'] as const) {
      assert.ok(faults[direction].dropped > 100, `${direction}: ${JSON.stringify(faults[direction])}`);
      assert.ok(faults[direction].duplicated > 50);
      assert.ok(faults[direction].reordered > 100);
    }
  });
});
