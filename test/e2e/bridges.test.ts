/**
 * Bridges end to end, with the real `torvm up` on the private network: the
 * host namespace may reach no relay directly (nft in the internet namespace
 * resets every connection to one), so reaching Running proves the VM's Tor
 * went through the obfs4 bridge (the VM's obfs4proxy to the bridge's). In
 * the same bring-up: bootstrap progress streams over GET /v1/events, circuits
 * (first hop: the bridge) and bandwidth show in `torvm status --json` during
 * a download, `torvm newnym` answers, and bridge lines never reach the output.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { startTorNetwork, type TorNetwork } from '../harness/tor-network.ts';
import { blockDirectRelayAccess, startObfs4Bridge, type Obfs4Bridge } from '../harness/obfs4-bridge.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';
import { startTorvmUp, writeTorvmConfig, type TorvmRun } from './torvm-run.ts';
import { statusSchema, type DaemonStatus } from '../../packages/torvm/src/api/schema.ts';

const imageDir = process.env.TORVM_IMAGE_DIR ?? '/tmp/torvm-img-x86';
const prereq = skipUnlessPrerequisites();
const skip = prereq || (!existsSync(join(imageDir, 'manifest.json')) && (process.env.CI ? false : `no VM image in ${imageDir}`));
if (process.env.CI && !existsSync(join(imageDir, 'manifest.json'))) throw new Error(`CI must run this test, but there is no VM image in ${imageDir}`);

/** Collects status events from GET /v1/events on the daemon's socket, reconnecting until it answers. */
function followEvents(socketPath: string): { events: DaemonStatus[]; stop(): void } {
  const events: DaemonStatus[] = [];
  let stopped = false;
  let current: ReturnType<typeof request> | null = null;
  const connect = () => {
    if (stopped) return;
    if (!existsSync(socketPath)) { setTimeout(connect, 200); return; }
    let buffer = '';
    current = request({ socketPath, path: '/v1/events', method: 'GET' }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (data) events.push(statusSchema.parse(JSON.parse(data.slice(6))));
        }
      });
      res.on('end', () => setTimeout(connect, 200));
    });
    current.on('error', () => setTimeout(connect, 200));
    current.end();
  };
  connect();
  return { events, stop: () => { stopped = true; current?.destroy(); } };
}

describe('obfs4 bridge on the private network (torvm up)', { skip, timeout: 600_000 }, () => {
  let network: TorNetwork;
  let bridge: Obfs4Bridge;
  let run: TorvmRun | undefined;
  let dir: string;
  let events: ReturnType<typeof followEvents> | undefined;

  before(async () => {
    dir = mkdtempSync(`/tmp/tvbridge-${process.pid}-`);
    network = await startTorNetwork({ timeoutMs: 150_000, onion: false });
    bridge = await startObfs4Bridge(network);
    await blockDirectRelayAccess(network);
    const configPath = writeTorvmConfig(network, dir, imageDir);
    // Bridges go in through the API-facing schema path too: the config file is the user's.
    const { readFileSync, writeFileSync } = await import('node:fs');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as { tor: Record<string, unknown> };
    config.tor.bridges = { enabled: true, lines: [bridge.line] };
    writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
    run = startTorvmUp(network, dir, configPath);
    events = followEvents(run.socketPath);
    await run.waitFor((s) => s.state === 'Running', 360_000, 'Running through the obfs4 bridge');
  }, { timeout: 540_000 });

  after(async () => {
    events?.stop();
    if (run && run.child.exitCode === null) {
      run.cli(['down']);
      const exited = await Promise.race([run.exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))]);
      if (exited === 'timeout' && run.child.pid !== undefined) { run.child.kill('SIGTERM'); await run.exited; }
    }
    await network?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('Tor bootstrapped with every relay unreachable: only the bridge was used', async () => {
    const s = await run!.status();
    assert.equal(s.state, 'Running');
    assert.equal(s.bootstrap.progress, 100);
    const direct = spawn('ip', ['netns', 'exec', network.namespaces.host, 'curl', '-sS', '-m', '5', `http://${network.relays[0]?.address}:7000/`]);
    const code = await new Promise<number | null>((r) => direct.once('exit', r));
    assert.notEqual(code, 0, 'the host namespace cannot reach a relay directly');
  });

  test('bootstrap progress streamed over GET /v1/events', () => {
    const progress = [...new Set(events!.events.map((e) => e.bootstrap.progress))];
    assert.ok(progress.includes(100), `progress seen: ${progress.join(',')}`);
    assert.ok(progress.some((p) => p > 0 && p < 100), `intermediate progress seen: ${progress.join(',')}`);
    assert.ok(events!.events.some((e) => e.state === 'WaitBootstrap'));
  });

  test('circuits (first hop: the bridge) and bandwidth appear in status --json during a download', async () => {
    const download = spawn('ip', ['netns', 'exec', network.namespaces.host, 'curl', '-sS', '-m', '120', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `${network.http.url}bytes/30000000`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let curlOut = '';
    download.stdout?.on('data', (d: Buffer) => { curlOut += d.toString(); });
    const done = new Promise<number | null>((r) => download.once('exit', r));
    let seen: DaemonStatus | undefined;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const r = run!.cli(['--json', 'status']);
      assert.equal(r.status, 0, r.stderr);
      const s = statusSchema.parse(JSON.parse(r.stdout));
      if (s.tor.circuits.length > 0 && s.tor.bandwidth.history.some((h) => h.read > 50_000)) { seen = s; break; }
      await new Promise((res) => setTimeout(res, 1000));
    }
    assert.equal(await done, 0, `curl: ${curlOut}`);
    assert.match(curlOut, /^200 30000000$/);
    assert.ok(seen, 'status showed circuits and download-sized bandwidth');
    assert.ok(seen.tor.circuits.every((c) => c.status === 'BUILT'));
    assert.ok(seen.tor.circuits.some((c) => c.hops[0]?.fingerprint === bridge.fingerprint), JSON.stringify(seen.tor.circuits));
    assert.ok(seen.tor.bandwidth.history.length <= 120);
  });

  test('torvm newnym answers, and a second request at once is rate-limited', () => {
    const first = run!.cli(['--json', 'newnym']);
    assert.equal(first.status, 0, first.stderr);
    const second = run!.cli(['--json', 'newnym']);
    assert.equal(second.status, 0, second.stderr);
    assert.equal((JSON.parse(second.stdout) as { rateLimited: boolean }).rateLimited, true);
  });

  test('torvm bridges list masks the line; the daemon output never shows it', () => {
    const r = run!.cli(['bridges', 'list']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /bridges:\s+on/);
    assert.ok(!r.stdout.includes(bridge.line.split(' ')[3] ?? 'cert'), 'no cert in the listing');
    const cert = /cert=(\S+)/.exec(bridge.line)?.[1] ?? '';
    assert.ok(cert.length > 20);
    assert.ok(!run!.output().includes(cert), 'the cert never reached the daemon output');
  });
});
