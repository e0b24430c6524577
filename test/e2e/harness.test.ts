/**
 * The private Tor network harness, end to end: bring the network up, join it
 * with a stock tor client from the host namespace, prove traffic goes where it
 * should (exit address, DNS through Tor, onion service, uplink capture only
 * towards relays), then tear down and prove nothing is left.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTorNetwork, KNOWN_PAGE_MARKER, HTTP_NAME, type TorNetwork, type TorClient } from '../harness/tor-network.ts';
import { bootstrapProgress, curlViaSocks, torResolve } from '../harness/tor-client.ts';
import { startCapture, pcapFlows, isFlowAllowed, describeFlow, type Capture } from '../harness/pcap.ts';
import { listNamespaces, isProcessAlive } from '../harness/netns.ts';
import { run } from '../harness/run.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';

const skip = skipUnlessPrerequisites();

describe('private Tor network harness', { skip, timeout: 300_000 }, () => {
  let network: TorNetwork;
  let client: TorClient;
  let capture: Capture;
  let stopped = false;
  const uniquePath = (label: string): string => `/${label}-${randomBytes(6).toString('hex')}`;

  before(async () => {
    network = await startTorNetwork({ timeoutMs: 150_000 });
    // Capture the host's uplink from before the client's first packet.
    capture = await startCapture({ netns: network.namespaces.host, iface: network.uplink.hostIface, file: join(network.workDir, 'uplink.pcap') });
    client = await network.startClient({ timeoutMs: 60_000 });
  }, { timeout: 240_000 });

  after(async () => {
    if (!stopped) await network?.stop();
  });

  test('a stock client in the host namespace bootstraps to 100', async () => {
    assert.equal(await bootstrapProgress(client.tor), 100);
    assert.equal(network.dirAuthorityLines.length, 3);
    assert.ok(network.relays.some((r) => r.role === 'exit' && r.address === network.exitAddress));
  });

  test('a request through the SocksPort arrives from the exit address', async () => {
    const path = uniquePath('via-exit');
    const reply = await curlViaSocks(client.netns, client.socks, `${network.http.url.replace(/\/$/, '')}${path}`);
    assert.equal(reply.status, 404); // unknown path, but the server saw it
    const logged = network.httpRequests().filter((r) => r.path === path);
    assert.equal(logged.length, 1, 'the server logged the request once');
    assert.equal(logged[0]?.peer, network.exitAddress);
    const page = await curlViaSocks(client.netns, client.socks, network.http.url);
    assert.equal(page.status, 200);
    assert.match(page.body, new RegExp(KNOWN_PAGE_MARKER));
  });

  test('a name resolves through Tor, and is looked up by the exit, never by the host', async () => {
    assert.equal(await torResolve(client.netns, client.socks, HTTP_NAME), network.http.address);
    const path = uniquePath('by-name');
    const reply = await curlViaSocks(client.netns, client.socks, `${network.http.nameUrl.replace(/\/$/, '')}${path}`);
    assert.equal(reply.status, 404);
    const logged = network.httpRequests().find((r) => r.path === path);
    assert.equal(logged?.host, HTTP_NAME);
    assert.equal(logged?.peer, network.exitAddress);
    const queries = network.dnsQueries().filter((q) => q.name === HTTP_NAME);
    assert.ok(queries.length > 0, 'the DNS server saw the exit resolve the name');
    assert.ok(queries.every((q) => q.peer !== network.uplink.hostAddress), 'no DNS query came from the host');
  });

  test('a large file comes through intact', async () => {
    const size = 3 * 1024 * 1024;
    const { stdout } = await run(
      'curl',
      ['--silent', '--show-error', '--proxy', `socks5h://${client.socks}`, '--max-time', '60', '--output', '/dev/null', '--write-out', '%{http_code} %{size_download}', `${network.http.nameUrl}bytes/${size}`],
      { netns: client.netns, timeoutMs: 65_000 },
    );
    assert.equal(stdout.trim(), `200 ${size}`);
  });

  test('the onion service page is reachable through the SocksPort', async () => {
    assert.match(network.onionHostname ?? '', /^[a-z2-7]{56}\.onion$/);
    const page = await curlViaSocks(client.netns, client.socks, `http://${network.onionHostname}/`, 60_000);
    assert.equal(page.status, 200);
    assert.match(page.body, new RegExp(KNOWN_PAGE_MARKER));
  });

  test('every flow captured on the host uplink goes to a relay ORPort/DirPort', async () => {
    const decoded = await capture.stop();
    // Cross-check the hand-written reader against tcpdump's own reading of the file.
    const { stdout } = await run('tcpdump', ['-r', capture.file, '-n', 'ip or ip6'], { timeoutMs: 30_000 });
    const tcpdumpCount = stdout.split('\n').filter((l) => l.trim() !== '').length;
    assert.equal(decoded.packets.length, tcpdumpCount, 'reader and tcpdump agree on the IP packet count');
    const flows = pcapFlows(decoded.packets);
    assert.ok(flows.some((f) => f.protocol === 'tcp' && f.sawSyn), 'the capture saw the client connect');
    const outside = flows.filter((f) => !isFlowAllowed(f, network.relayAllowlist));
    assert.deepEqual(outside.map(describeFlow), [], 'flows outside the relay allowlist');
    assert.ok(flows.every((f) => f.protocol === 'tcp'), 'only TCP on the uplink (no DNS, no ICMP)');
  });

  test('teardown leaves no namespace, process, or directory behind', async () => {
    const pids = [...network.tors.map((t) => t.pid), client.tor.pid, capture.pid];
    await network.stop();
    stopped = true;
    const namespaces = await listNamespaces();
    assert.ok(!namespaces.includes(network.namespaces.internet));
    assert.ok(!namespaces.includes(network.namespaces.host));
    for (const pid of pids) assert.equal(isProcessAlive(pid), false, `pid ${pid} still running`);
    assert.equal(existsSync(join('/etc/netns', network.namespaces.host)), false);
    assert.equal(existsSync(join('/etc/netns', network.namespaces.internet)), false);
    assert.equal(existsSync(network.workDir), false);
    await network.stop(); // idempotent
  });
});
