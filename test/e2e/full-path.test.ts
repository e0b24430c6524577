/**
 * The whole path, for real: an application on the host, the TAP link, the VM,
 * Tor, a private Tor network, and a web server that must see a Tor exit's
 * address rather than the host's. A packet capture on the host's uplink runs
 * the whole time and must show nothing but Tor going to the network's relays.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTorNetwork, type TorNetwork } from '../harness/tor-network.ts';
import { run } from '../harness/run.ts';
import { requireE2e, e2eImageDir } from './prerequisites.ts';
import { startTorvmUp, writeTorvmConfig, type TorvmRun } from './torvm-run.ts';
import { watchUplink, describeLeaks, type LeakWatch } from './leak-watch.ts';
import { createCommandRunner } from '../../packages/torvm/src/platform/exec.ts';
import { diffSnapshots, takeNetworkSnapshot, type NetworkSnapshot } from '../../packages/torvm/src/platform/linux/snapshot.ts';

const skip = requireE2e();

describe('the full path through TorVM', { skip }, () => {
  let network: TorNetwork;
  let dir: string;
  let torvm: TorvmRun;
  let watch: LeakWatch;
  let before_: NetworkSnapshot;
  let resolvBefore: string;
  const runner = createCommandRunner();
  const inHost = (file: string, args: string[], timeoutMs = 60_000) => run(file, args, { netns: network.namespaces.host, timeoutMs, okExitCodes: Array.from({ length: 255 }, (_, i) => i + 1) });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'torvm-e2e-'));
    network = await startTorNetwork({ prefix: 'tvfp' });
    before_ = await takeNetworkSnapshot(runner, { netns: network.namespaces.host });
    resolvBefore = readFileSync(`/etc/netns/${network.namespaces.host}/resolv.conf`, 'utf8');
    watch = await watchUplink(network, dir, 'full-path');
    torvm = startTorvmUp(network, dir, writeTorvmConfig(network, dir, e2eImageDir()));
  });

  after(async () => {
    if (torvm && torvm.child.exitCode === null) {
      torvm.child.kill('SIGKILL');
      await torvm.exited;
      torvm.cli(['restore']);
      torvm.cli(['killswitch', 'release']);
    }
    await network?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('reaches Running with bootstrap at 100% as the control port reports it', async () => {
    const s = await torvm.waitFor((st) => st.state === 'Running' && st.killSwitch === 'connected', 300_000, 'Running');
    assert.equal(s.bootstrap.progress, 100);
    assert.equal(s.killSwitch, 'connected');
    assert.equal(s.testingNetwork, true);
    assert.match(s.tor.version ?? '', /^0\.4\./);
    assert.ok(s.vm.pid !== null);
    // `torvm status --json` says the same, from the CLI.
    const cli = torvm.cli(['--json', 'status']);
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal((JSON.parse(cli.stdout) as { state: string }).state, 'Running');
  });

  test('a plain curl from the host arrives at the server from the exit relay', async () => {
    const r = await inHost('curl', ['-sS', '-m', '60', network.http.url]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /torvm-test-network-known-page/);
    const seen = network.httpRequests().at(-1);
    assert.equal(seen?.peer, network.exitAddress, 'the server saw the exit, not the host');
  });

  test('a DNS name resolves through Tor, and no query for it leaves the host', async () => {
    const r = await inHost('getent', ['hosts', network.http.name]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, new RegExp(network.http.address.replace(/\./g, '\\.')));
    // The test network's resolver was asked by the exit, never by the host.
    const askers = new Set(network.dnsQueries().map((q) => q.peer));
    assert.ok(!askers.has(network.uplink.hostAddress), `the host asked the resolver directly: ${[...askers].join(', ')}`);
    // A hard-coded resolver is captured too: the query still goes to the VM.
    const direct = await inHost('dig', ['+short', '+time=10', '+tries=1', `@${network.dns.address}`, network.http.name]);
    assert.equal(direct.exitCode, 0, direct.stderr);
    assert.ok(!new Set(network.dnsQueries().map((q) => q.peer)).has(network.uplink.hostAddress));
  });

  test('UDP other than DNS, ICMP and IPv6 from the host get nowhere', async () => {
    const udp = await inHost('socat', ['-u', 'OPEN:/dev/null', `UDP:${network.http.address}:9999`]);
    void udp; // sending may "succeed" locally; the capture decides
    const ping = await inHost('ping', ['-c', '2', '-W', '2', network.http.address]);
    assert.notEqual(ping.exitCode, 0, 'ICMP must not get through');
    const ping6 = await inHost('ping', ['-6', '-c', '1', '-W', '2', '2001:db8::1']);
    assert.notEqual(ping6.exitCode, 0, 'IPv6 must not get through');
  });

  test('a plain curl to the onion service works (automapped .onion)', async () => {
    assert.ok(network.onionHostname, 'the harness runs an onion service');
    const r = await inHost('curl', ['-sS', '-m', '120', `http://${network.onionHostname}/`], 150_000);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /torvm-test-network-known-page/);
  });

  test('torvm down restores the host network byte for byte, and the capture shows no leak', async () => {
    const down = torvm.cli(['down']);
    assert.equal(down.status, 0, down.stderr);
    assert.equal(await torvm.exited, 0, torvm.output().slice(-3000));
    assert.deepEqual(diffSnapshots(before_, await takeNetworkSnapshot(runner, { netns: network.namespaces.host })), []);
    assert.equal(readFileSync(`/etc/netns/${network.namespaces.host}/resolv.conf`, 'utf8'), resolvBefore);
    const nft = await inHost('nft', ['list', 'tables']);
    assert.ok(!nft.stdout.includes('torvm'), 'the kill switch table is gone after a user stop');
    const { leaks, flows } = await watch.stop();
    assert.ok(flows.length > 0, 'the capture saw the VM talking to the relays');
    assert.deepEqual(leaks, [], `leaked flows:\n${describeLeaks(leaks)}`);
  });

  test('anti-test: with TorVM stopped, the same detector sees a direct request', async () => {
    const anti = await watchUplink(network, dir, 'anti');
    const r = await inHost('curl', ['-sS', '-m', '20', network.http.url]);
    assert.equal(r.exitCode, 0, r.stderr);
    const { leaks, flows, packets } = await anti.stop();
    assert.ok(leaks.some((f) => f.server.address === network.http.address || f.client.address === network.http.address),
      `the detector must flag a direct connection; saw ${packets.length} packets, flows:\n${describeLeaks(flows)}\nleaks:\n${describeLeaks(leaks)}`);
  });
});
