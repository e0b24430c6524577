// The engine end to end inside a network namespace: the kernel's TCP talks to
// the TUN, the engine dials a local SOCKS5 server, which reaches a local HTTP
// server. Nothing leaves the namespace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { EngineProcess, TestNamespace, missingPrerequisite, routeIntoTun, type EngineReady } from './netns-harness.ts';

const missing = missingPrerequisite();
if (missing && process.env.CI) throw new Error(`netstack integration: ${missing} (CI must run every test)`);

const MB = 1024 * 1024;

describe('netstack engine over a real TUN', { skip: missing, timeout: 300_000 }, () => {
  const ns = new TestNamespace('e');
  let engine: EngineProcess | undefined;
  let ready: EngineReady;

  before(async () => {
    await ns.destroy();
    await ns.create();
    ({ engine, ready } = await EngineProcess.start(ns, { tun: `tvt${process.pid}e` }));
    await routeIntoTun(ns, ready.tun);
  });

  after(async () => {
    await engine?.stop();
    await ns.destroy();
  });

  it('carries curl to any destination through SOCKS, with per-destination isolation', async () => {
    const body = await ns.exec(['curl', '-sS', '--max-time', '20', 'http://10.99.7.7/hello/curl']);
    assert.equal(body, 'hello curl via 10.99.7.7');
    const stats = await engine!.stats();
    assert.deepEqual((stats.socksSample as unknown[]).at(-1), { host: '10.99.7.7', port: 80, atyp: 1, username: 'iso-10.99.7.7' });
  });

  it('resolves names through the DNS relay', async () => {
    const body = await ns.exec(['curl', '-sS', '--max-time', '20', 'http://some-name.test/hello/dns']);
    assert.equal(body, 'hello dns via some-name.test');
  });

  it('fails IPv6 fast (RST), not by timeout', async () => {
    const started = Date.now();
    await assert.rejects(ns.exec(['curl', '-sS', '--max-time', '20', 'http://[fd99::80]/']), /Connection refused|Couldn't connect/);
    // Not a timing assertion on the engine: only proof that the 20 s curl timeout did not fire.
    assert.ok(Date.now() - started < 15_000, 'refused, not timed out');
  });

  it('serves 1,000 concurrent connections', async () => {
    const out = JSON.parse(await ns.node('client.ts', ['concurrent', '1000', '10.99'], 120_000)) as { ok: number; errors: string[] };
    assert.deepEqual(out.errors, []);
    assert.equal(out.ok, 1000);
  });

  it('downloads 100 MB with the same SHA-256 at both ends', async () => {
    const out = JSON.parse(await ns.node('client.ts', ['download', String(100 * MB), '10.99.0.80', 'dl100'], 180_000)) as { length: number; sha256: string };
    assert.equal(out.length, 100 * MB);
    const sent = await ns.exec(['curl', '-sS', '--max-time', '20', 'http://10.99.0.80/sent/dl100']);
    assert.match(sent, /^[0-9a-f]{64}$/);
    assert.equal(out.sha256, sent, 'what arrived is what the server sent');
  });

  it('uploads 100 MB with the same SHA-256 at both ends', async () => {
    const out = JSON.parse(await ns.node('client.ts', ['upload', String(100 * MB), '10.99.0.81'], 180_000)) as {
      sha256: string;
      server: { sha256: string; length: number };
    };
    assert.equal(out.server.length, 100 * MB);
    assert.equal(out.server.sha256, out.sha256);
  });

  it('carries iperf3 both ways (control and data connections)', { skip: existsSync('/usr/bin/iperf3') || process.env.CI ? false : 'iperf3 not installed' }, async () => {
    for (const reverse of [false, true]) {
      // One-off server on the namespace's loopback; the SOCKS server sends port 5201 to it.
      const server = spawn('ip', ['netns', 'exec', ns.name, 'iperf3', '-s', '-1', '--forceflush', '-B', '127.0.0.1', '-p', '5201'], { stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('iperf3 server did not start')), 10_000);
          createInterface({ input: server.stdout! }).on('line', (line) => {
            if (line.includes('Server listening')) {
              clearTimeout(timer);
              resolve();
            }
          });
          server.once('exit', () => reject(new Error('iperf3 server exited')));
        });
        const args = ['iperf3', '-c', '10.99.0.90', '-p', '5201', '-t', '2', '-J', ...(reverse ? ['-R'] : [])];
        const report = JSON.parse(await ns.exec(args, 60_000)) as { error?: string; end: { sum_received: { bytes: number } } };
        assert.equal(report.error, undefined);
        assert.ok(report.end.sum_received.bytes > 10 * MB, `${reverse ? 'reverse' : 'forward'}: ${report.end.sum_received.bytes} bytes`);
      } finally {
        if (server.exitCode === null) server.kill('SIGKILL');
      }
    }
  });

  it('leaves no flows behind once connections close', async () => {
    // TIME-WAIT is 500 ms in the fixture; wait on the real count, bounded.
    const deadline = Date.now() + 30_000;
    let flows = -1;
    while (Date.now() < deadline) {
      flows = (await engine!.stats()).flows as number;
      if (flows === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(flows, 0);
  });
});

// The benchmark's configuration: a 64 KiB MTU on the TUN (legitimate on a virtual link),
// so that segments are 64 KiB and window scaling carries the throughput.
describe('netstack engine over a real TUN with a 64 KiB MTU', { skip: missing, timeout: 300_000 }, () => {
  const ns = new TestNamespace('m');
  let engine: EngineProcess | undefined;

  before(async () => {
    await ns.destroy();
    await ns.create();
    let ready: EngineReady;
    ({ engine, ready } = await EngineProcess.start(ns, { tun: `tvt${process.pid}m`, mtu: 65535 }));
    await routeIntoTun(ns, ready.tun);
    const link = await ns.exec(['ip', '-o', 'link', 'show', ready.tun]);
    assert.match(link, / mtu 65535 /);
  });

  after(async () => {
    await engine?.stop();
    await ns.destroy();
  });

  it('downloads 100 MB with the same SHA-256 at both ends', async () => {
    const out = JSON.parse(await ns.node('client.ts', ['download', String(100 * MB), '10.99.0.80', 'dl100m'], 180_000)) as { length: number; sha256: string };
    assert.equal(out.length, 100 * MB);
    const sent = await ns.exec(['curl', '-sS', '--max-time', '20', 'http://10.99.0.80/sent/dl100m']);
    assert.equal(out.sha256, sent);
  });

  it('uploads 100 MB with the same SHA-256 at both ends', async () => {
    const out = JSON.parse(await ns.node('client.ts', ['upload', String(100 * MB), '10.99.0.81'], 180_000)) as {
      sha256: string;
      server: { sha256: string; length: number };
    };
    assert.equal(out.server.length, 100 * MB);
    assert.equal(out.server.sha256, out.sha256);
  });

  it('serves 1,000 concurrent connections', async () => {
    const out = JSON.parse(await ns.node('client.ts', ['concurrent', '1000', '10.99'], 120_000)) as { ok: number; errors: string[] };
    assert.deepEqual(out.errors, []);
    assert.equal(out.ok, 1000);
  });
});
