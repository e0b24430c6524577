/**
 * Pluggable transports in the VM, with the real `torvm up` on the private
 * network (the VM has no route beyond the harness's namespaces):
 *
 *   snowflake  The full path (broker, WebRTC proxies) cannot run here. Proven:
 *              with Tor Browser's built-in snowflake lines, Tor in the VM spawns
 *              /usr/bin/snowflake-client, the managed-proxy handshake completes
 *              (Tor reaches "conn_done_pt": it connected to the SOCKS listener
 *              the client announced in its CMETHOD line), and the client's own
 *              log lines reach Tor ("Managed proxy …snowflake-client…" on the
 *              serial console). It then fails to reach the broker, as it must.
 *   meek_lite  End to end: a meek server (test/harness/meek-server.ts, plain
 *              HTTP) in the internet namespace relays each meek session to a
 *              relay's ORPort; every relay is unreachable directly, so reaching
 *              Running proves Tor bootstrapped through obfs4proxy's meek_lite.
 *              The bridge line has no fingerprint, like the built-in meek line.
 *              Not proven here: meek over HTTPS through a CDN with domain
 *              fronting (no CDN and no publicly trusted certificate here).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTorNetwork, type TorNetwork } from '../harness/tor-network.ts';
import { blockDirectRelayAccess } from '../harness/obfs4-bridge.ts';
import { MEEK_ADDRESS, MEEK_PORT, startMeekServer, type MeekServer } from '../harness/meek-server.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';
import { startTorvmUp, writeTorvmConfig, type TorvmRun } from './torvm-run.ts';
import { BUILTIN_BRIDGES } from '../../packages/torvm/src/core/builtin-bridges.ts';

const imageDir = process.env.TORVM_IMAGE_DIR ?? '/tmp/torvm-img-x86';
const prereq = skipUnlessPrerequisites();
if (process.env.CI && !existsSync(join(imageDir, 'manifest.json'))) throw new Error(`CI must run this test, but there is no VM image in ${imageDir}`);
const skip = prereq || (!existsSync(join(imageDir, 'manifest.json')) && `no VM image in ${imageDir}`);

/** `torvm up` with these bridge lines, in its own directory. */
function upWithBridges(network: TorNetwork, lines: readonly string[]): TorvmRun {
  const dir = mkdtempSync(`/tmp/tvpt-${process.pid}-`);
  const configPath = writeTorvmConfig(network, dir, imageDir);
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as { tor: Record<string, unknown> };
  config.tor.bridges = { enabled: true, lines };
  writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
  return startTorvmUp(network, dir, configPath);
}

async function down(run: TorvmRun | undefined): Promise<void> {
  if (!run) return;
  if (run.child.exitCode === null) {
    run.cli(['down']);
    const exited = await Promise.race([run.exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))]);
    if (exited === 'timeout') { run.child.kill('SIGTERM'); await run.exited; }
  }
  rmSync(run.dir, { recursive: true, force: true });
}

const serialLog = (run: TorvmRun) => {
  const path = join(run.dir, 'state', 'serial.log');
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
};

describe('pluggable transports in the VM (torvm up, private network)', { skip, timeout: 900_000 }, () => {
  let network: TorNetwork;

  before(async () => {
    network = await startTorNetwork({ timeoutMs: 150_000, onion: false });
    await blockDirectRelayAccess(network);
  }, { timeout: 200_000 });

  after(async () => {
    await network?.stop();
  });

  describe('snowflake: the client starts and completes the managed-proxy handshake', () => {
    let run: TorvmRun | undefined;
    after(async () => down(run));

    test("Tor spawns snowflake-client, connects to the SOCKS port it announced, and relays the client's own log", async () => {
      run = upWithBridges(network, BUILTIN_BRIDGES.snowflake);
      // 2% (conn_done_pt) and beyond need a connection to the transport's announced listener.
      const s = await run.waitFor((st) => st.bootstrap.progress >= 2, 300_000, 'Tor connected to snowflake-client');
      assert.notEqual(s.state, 'Running', 'there is no broker here: snowflake cannot bootstrap');
      await run.waitFor(() => /Managed proxy "\/usr\/bin\/snowflake-client": /.test(serialLog(run!)), 120_000, "snowflake-client's own log line through Tor");
      const serial = serialLog(run);
      assert.match(serial, /Bootstrapped 1% \(conn_pt\): Connecting to pluggable transport/);
      assert.match(serial, /Bootstrapped 2% \(conn_done_pt\): Connected to pluggable transport/);
      assert.doesNotMatch(serial, /Could not launch managed proxy|Managed proxy .* failed/i);
      // The sandbox is off with a transport (Tor refuses managed proxies under Sandbox 1), and Tor keeps running.
      assert.doesNotMatch(serial, /tor exited code=/);
    });
  });

  describe('meek_lite end to end through a meek server (plain HTTP)', () => {
    let run: TorvmRun | undefined;
    let meek: MeekServer | undefined;
    after(async () => {
      await down(run);
      await meek?.stop();
    });

    test('Tor bootstraps to 100% through obfs4proxy meek_lite and the meek server (a line without fingerprint); the relay is reachable only that way', async () => {
      const relay = network.relays.find((r) => r.role === 'relay');
      assert.ok(relay, 'the network has a non-exit relay');
      meek = await startMeekServer(network, { address: relay.address, port: relay.orPort });
      // Like Tor Browser's built-in meek line, no fingerprint: Tor learns the bridge's identity when it connects.
      const line = `meek_lite ${MEEK_ADDRESS}:${MEEK_PORT} url=${meek.url}`;
      run = upWithBridges(network, [line]);
      const s = await run.waitFor((st) => st.state === 'Running', 420_000, 'Running through meek_lite');
      assert.equal(s.bootstrap.progress, 100);
      const sessions = meek.sessions();
      assert.ok(sessions.some((x) => x.upBytes > 1000 && x.downBytes > 1000), JSON.stringify(sessions));
      const direct = spawnSync('ip', ['netns', 'exec', network.namespaces.host, 'curl', '-sS', '-m', '5', `http://${relay.address}:${relay.orPort}/`], { timeout: 15_000 });
      assert.notEqual(direct.status, 0, 'the host namespace cannot reach the relay directly');
      const page = spawnSync('ip', ['netns', 'exec', network.namespaces.host, 'curl', '-sS', '-m', '90', '-o', '/dev/null', '-w', '%{http_code}', network.http.url], { encoding: 'utf8', timeout: 100_000 });
      assert.equal(page.stdout.trim(), '200', `${page.stdout}${page.stderr}`);
      const circuits = (await run.status()).tor.circuits;
      // First hops: the relay behind the meek server, or (Tor's first one-hop circuit, before it learned the identity) unknown.
      assert.ok(circuits.some((c) => c.hops[0]?.fingerprint === relay.fingerprint), JSON.stringify(circuits));
      assert.ok(circuits.every((c) => c.hops[0]?.fingerprint === relay.fingerprint || c.hops[0]?.fingerprint === null), JSON.stringify(circuits));
    });
  });
});
