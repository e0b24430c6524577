/**
 * End to end (root): a device on the LAN runs `torvm companion` against the
 * LAN gateway of a real `torvm up` (QEMU + Tor on the private test network).
 *
 *   device ns --lan0-- host ns (torvm up, kill switch, VM) --uplink0-- internet ns (Tor network, web, DNS)
 *
 * One bring-up for the whole file; every test reads the same world.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KNOWN_PAGE_MARKER } from '../harness/http-server.ts';
import { createLan, LAN, type Lan } from '../harness/lan.ts';
import { isProcessAlive, killPid } from '../harness/netns.ts';
import { describeFlow, pcapFlows, startCapture, type Capture } from '../harness/pcap.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';
import { startTorNetwork, type TorNetwork } from '../harness/tor-network.ts';
import { waitFor } from '../harness/wait.ts';
import { TORVM_BIN, startTorvmUp, writeTorvmConfig, type TorvmRun } from './torvm-run.ts';

const IMAGE_DIR = process.env.TORVM_IMAGE_DIR ?? '/tmp/torvm-img-x86';
const USER = 'alice';
const PASSWORD = `pw-${process.pid}-e2e`;
const SOCKS = `${LAN.hostAddress}:9050`;
const TUN = 'tvc0';

/** A command in a namespace, bounded; never throws (tests assert on the result). */
function inNs(ns: string, argv: string[], timeoutMs = 60_000) {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Everything the companion may change on the device, as text, to compare byte for byte. */
function deviceRouting(ns: string): string {
  return [['-4', 'route', 'show', 'table', 'all'], ['-6', 'route', 'show', 'table', 'all'], ['-4', 'rule', 'show'], ['-6', 'rule', 'show']]
    .map((argv) => inNs(ns, ['ip', ...argv], 10_000).stdout).join('----\n');
}

/** Flows on the device's uplink that go anywhere but the gateway's SOCKS and DNS ports (link-local IPv6 housekeeping aside). */
function flowsAroundTheGateway(flows: ReturnType<typeof pcapFlows>) {
  const linkLocal = (a: string) => a.startsWith('fe80:') || a.startsWith('ff02:') || a === '::';
  return flows.filter((f) => !(f.protocol === 'icmpv6' && linkLocal(f.client.address) && linkLocal(f.server.address)))
    .filter((f) => !(f.server.address === LAN.hostAddress && (f.server.port === 9050 || f.server.port === 53)));
}

const exitOf = (child: ChildProcess) => new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
  else child.once('exit', (code, signal) => resolve({ code, signal }));
});

describe('torvm companion through the LAN gateway', { skip: skipUnlessPrerequisites(['qemu-system-x86_64', 'nft']), timeout: 900_000 }, () => {
  let network: TorNetwork | undefined;
  let lan: Lan | undefined;
  let run: TorvmRun | undefined;
  let companion: ChildProcess | undefined;
  let companionOut = '';
  let capture: Capture | undefined;
  let dir = '';
  let passwordFile = '';
  let routingBefore = '';
  let download: ChildProcess | undefined;

  /** Stops the running capture and asserts the device's uplink carried only SOCKS and DNS to the gateway (and saw some SOCKS). */
  async function assertOnlyGatewayTraffic(): Promise<void> {
    const pcap = await capture!.stop();
    capture = undefined;
    const flows = pcapFlows(pcap.packets);
    assert.ok(flows.some((f) => f.server.port === 9050), 'the capture saw the SOCKS traffic');
    assert.deepEqual(flowsAroundTheGateway(flows).map(describeFlow), []);
  }

  async function startCompanion(): Promise<void> {
    companionOut = '';
    companion = spawn('ip', ['netns', 'exec', lan!.device, process.execPath, TORVM_BIN, 'companion',
      '--gateway-socks', SOCKS, '--gateway-dns', `${LAN.hostAddress}:53`, '--username', USER, '--password-file', passwordFile, '--tun', TUN,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    companion.stdout?.on('data', (d: Buffer) => { companionOut += d.toString(); });
    companion.stderr?.on('data', (d: Buffer) => { companionOut += d.toString(); });
    await waitFor(() => {
      if (companion?.exitCode !== null) throw new Error(`torvm companion exited: ${companionOut}`);
      return companionOut.includes('companion running');
    }, { timeoutMs: 60_000, what: 'torvm companion to start', intervalMs: 100, diagnose: () => companionOut });
  }

  before(async () => {
    dir = mkdtempSync(`/tmp/tvcomp-${process.pid}-`);
    network = await startTorNetwork();
    lan = await createLan(network.namespaces.host);
    const config = writeTorvmConfig(network, dir, IMAGE_DIR, {
      lanGateway: {
        enabled: true, listenAddress: LAN.hostAddress, socksPort: 9050, dnsPort: 53,
        allowedSubnets: [LAN.allowedSubnet], users: [{ username: USER, password: PASSWORD }],
      },
    });
    run = startTorvmUp(network, dir, config);
    await run.waitFor((s) => s.state === 'Running', 420_000, 'torvm up to reach Running');
    capture = await startCapture({ netns: lan.device, iface: LAN.iface, file: join(dir, 'device-lan0.pcap'), filter: ['not', 'arp'] });

    passwordFile = join(dir, 'companion.pass');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    await waitFor(() => inNs(lan!.device, ['ip', '-6', 'addr', 'show', 'tentative'], 10_000).stdout.trim() === '', { timeoutMs: 30_000, what: 'IPv6 DAD on the device', intervalMs: 200 });
    routingBefore = deviceRouting(lan.device);
    await startCompanion();
  });

  after(async () => {
    if (download?.pid && isProcessAlive(download.pid)) await killPid(download.pid);
    if (companion?.pid && companion.exitCode === null && companion.signalCode === null) await killPid(companion.pid);
    await capture?.stop().catch(() => undefined);
    if (run) {
      if (run.child.exitCode === null) run.cli(['down']);
      const exited = await Promise.race([run.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 120_000).unref())]);
      if (exited === 'timeout' && run.child.pid) await killPid(run.child.pid);
    }
    await lan?.stop();
    await network?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the host's kill switch opens the gateway's ports for the allowed subnet", () => {
    const set = inNs(network!.namespaces.host, ['nft', 'list', 'set', 'inet', 'torvm', 'gateway_clients'], 10_000);
    assert.equal(set.status, 0, `no gateway_clients set in the kill switch (is config.lanGateway passed to the host network's policy?): ${set.stderr}`);
    assert.match(set.stdout, /192\.168\.77\.0\/25/);
  });

  test("the device's plain curl reaches the web server from the exit's address (TCP and DNS through Tor)", () => {
    const before = network!.httpRequests().length;
    const r = inNs(lan!.device, ['curl', '-sS', '-m', '60', network!.http.nameUrl], 90_000);
    assert.equal(r.status, 0, `curl failed: ${r.stderr}\ncompanion: ${companionOut.slice(-2000)}`);
    assert.ok(r.stdout.includes(KNOWN_PAGE_MARKER));
    const requests = network!.httpRequests().slice(before);
    assert.ok(requests.length >= 1 && requests.every((q) => q.peer === network!.exitAddress), JSON.stringify(requests));
    const dns = network!.dnsQueries().filter((q) => q.name.startsWith('web.torvm.test'));
    assert.ok(dns.length >= 1, 'the name was resolved (by the exit)');
    assert.ok(dns.every((q) => q.peer !== LAN.deviceAddress && q.peer !== network!.uplink.hostAddress), JSON.stringify(dns));
  });

  test('IPv6 fails at once on the device', () => {
    const r = inNs(lan!.device, ['curl', '-sS', '-m', '10', '-6', 'http://[2001:db8::80]/'], 20_000);
    assert.notEqual(r.status, 0);
    assert.notEqual(r.status, 28, `IPv6 must fail fast, not time out: ${r.stderr}`);
  });

  test('a client that offers no credentials gets nothing', () => {
    const before = network!.httpRequests().length;
    const r = inNs(lan!.device, ['curl', '-sS', '-m', '20', '--socks5-hostname', SOCKS, network!.http.nameUrl], 40_000);
    assert.notEqual(r.status, 0, r.stdout);
    assert.equal(network!.httpRequests().length, before);
  });

  test('a wrong password gets nothing; the right one works from the allowed address', () => {
    const before = network!.httpRequests().length;
    const wrong = inNs(lan!.device, ['curl', '-sS', '-m', '20', '--socks5-hostname', SOCKS, '--proxy-user', `${USER}:not-${PASSWORD}`, network!.http.nameUrl], 40_000);
    assert.notEqual(wrong.status, 0, wrong.stdout);
    assert.equal(network!.httpRequests().length, before);
    const right = inNs(lan!.device, ['curl', '-sS', '-m', '60', '--interface', LAN.deviceAddress, '--socks5-hostname', SOCKS, '--proxy-user', `${USER}:${PASSWORD}`, network!.http.nameUrl], 90_000);
    assert.equal(right.status, 0, right.stderr);
    assert.ok(right.stdout.includes(KNOWN_PAGE_MARKER));
  });

  test('the right credentials from an address outside allowedSubnets get nothing', () => {
    const before = network!.httpRequests().length;
    const r = inNs(lan!.device, ['curl', '-sS', '-m', '8', '--interface', LAN.outsiderAddress, '--socks5-hostname', SOCKS, '--proxy-user', `${USER}:${PASSWORD}`, network!.http.nameUrl], 30_000);
    assert.notEqual(r.status, 0, r.stdout);
    assert.equal(network!.httpRequests().length, before);
  });

  test("the device's uplink carried only traffic to the gateway's two ports", async () => {
    await assertOnlyGatewayTraffic();
  });

  test('SIGKILL of the companion during a download: the device fails closed', async () => {
    capture = await startCapture({ netns: lan!.device, iface: LAN.iface, file: join(dir, 'device-lan0-kill.pcap'), filter: ['not', 'arp'] });
    const file = join(dir, 'download.bin');
    // Slow on purpose, so it is still running when the companion dies.
    download = spawn('ip', ['netns', 'exec', lan!.device, 'curl', '-sS', '-o', file, '--limit-rate', '20k', '-m', '300', `${network!.http.nameUrl}bytes/50000000`], { stdio: 'ignore' });
    await waitFor(() => {
      if (download?.exitCode !== null) throw new Error(`the download ended early (exit ${download?.exitCode})`);
      return existsSync(file) && statSync(file).size > 0;
    }, { timeoutMs: 120_000, what: 'the download through Tor to start', intervalMs: 200 });

    companion!.kill('SIGKILL');
    assert.equal((await exitOf(companion!)).signal, 'SIGKILL');
    await waitFor(() => inNs(lan!.device, ['ip', 'link', 'show', TUN], 10_000).status !== 0, { timeoutMs: 20_000, what: 'the TUN to vanish with its process', intervalMs: 100 });

    // (b) New connections fail at once: the device's own default route is not used.
    const requestsBefore = network!.httpRequests().length;
    const direct = inNs(lan!.device, ['curl', '-sS', '-m', '20', network!.http.url], 40_000);
    assert.equal(direct.status, 7, `expected "could not connect" (7), got ${direct.status}: ${direct.stderr}`);
    const get = inNs(lan!.device, ['ip', '-4', 'route', 'get', network!.http.address], 10_000);
    assert.notEqual(get.status, 0, `the route lookup must fail: ${get.stdout}`);
    assert.equal(network!.httpRequests().length, requestsBefore, 'no request reached the web server');
    assert.equal(download!.exitCode === 0, false, 'the download did not complete');
    await killPid(download!.pid!);
  });

  test('torvm companion started again brings traffic back through Tor; the uplink never carried anything but gateway traffic', async () => {
    await startCompanion();
    const before = network!.httpRequests().length;
    const r = inNs(lan!.device, ['curl', '-sS', '-m', '60', network!.http.nameUrl], 90_000);
    assert.equal(r.status, 0, `curl failed: ${r.stderr}\ncompanion: ${companionOut.slice(-2000)}`);
    assert.ok(r.stdout.includes(KNOWN_PAGE_MARKER));
    const requests = network!.httpRequests().slice(before);
    assert.ok(requests.length >= 1 && requests.every((q) => q.peer === network!.exitAddress), JSON.stringify(requests));

    // (a) From before the SIGKILL until now: only the gateway's two ports.
    await assertOnlyGatewayTraffic();
  });

  test('SIGTERM restores the device routing and removes the TUN', async () => {
    companion!.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => {
      if (companion!.exitCode !== null) resolve(companion!.exitCode);
      else companion!.once('exit', (c) => resolve(c));
    });
    assert.equal(code, 0, companionOut);
    assert.doesNotMatch(inNs(lan!.device, ['ip', '-4', 'rule']).stdout, /7910/);
    assert.doesNotMatch(inNs(lan!.device, ['ip', '-6', 'rule']).stdout, /7910/);
    assert.equal(inNs(lan!.device, ['ip', '-4', 'route', 'show', 'table', '7912']).stdout.trim(), '');
    assert.notEqual(inNs(lan!.device, ['ip', 'link', 'show', TUN]).status, 0, 'the TUN is gone');
    assert.match(inNs(lan!.device, ['ip', '-4', 'route']).stdout, /default via 192\.168\.77\.1 dev lan0/);
    assert.equal(deviceRouting(lan!.device), routingBefore, "the device's routes and rules are back byte for byte");
  });
});
