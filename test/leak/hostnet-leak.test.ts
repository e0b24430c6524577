/**
 * Leak tests of the Linux kill switch, routing and DNS (docs/security.md is
 * the spec). A capture on the router side of the host's uplink must show no
 * packet from the host except the torvm user's (QEMU's) flows, in every
 * scenario; the anti-test proves the capture would see the probes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createCommandRunner } from '../../packages/torvm/src/platform/exec.ts';
import { createLinuxHostNetwork, type LinuxHostNetworkOptions } from '../../packages/torvm/src/platform/linux/host-network.ts';
import { diffSnapshots, takeNetworkSnapshot, type NetworkSnapshot } from '../../packages/torvm/src/platform/linux/snapshot.ts';
import { isProcessAlive, killPid } from '../harness/netns.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';
import { run, spawnDaemon } from '../harness/run.ts';
import { waitFor } from '../harness/wait.ts';
import { captured as capturedOn } from './capture.ts';
import { describePacket, type findLeaks } from './leak-oracle.ts';
import { ADDR, ORIGINAL_RESOLV_CONF, PEER_PY, PYTHON, createTopology, runProbes, torvmExchange, type Topology } from './topology.ts';

const skip = skipUnlessPrerequisites(['nft', 'python3']);
const runner = createCommandRunner();
const REAL_RESOLV_CONF = '/etc/resolv.conf';

describe('host networking leaks nothing', { skip, timeout: 240_000 }, () => {
  let topo: Topology;
  let initial: NetworkSnapshot;
  let realResolvConf: Buffer;
  let options: Omit<LinuxHostNetworkOptions, 'runner'>;
  const pids: number[] = [];

  before(async () => {
    realResolvConf = readFileSync(REAL_RESOLV_CONF);
    topo = await createTopology('leak');
    options = {
      stateDir: topo.stateDir, netns: topo.host, resolvConfPath: topo.resolvConf, dnsBackend: 'resolv-conf', torvmUid: topo.torvmUid, torvmGid: topo.torvmGid,
      network: { tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', bypassTable: 7911, allowLan: false, lanSubnets: [], lockdown: false },
    };
    initial = await takeNetworkSnapshot(runner, { netns: topo.host });
  });

  after(async () => {
    for (const pid of pids) await killPid(pid);
    await topo?.destroy();
    assert.ok(readFileSync(REAL_RESOLV_CONF).equals(realResolvConf), 'the real /etc/resolv.conf must be byte-identical');
  });

  const captured = (name: string, body: () => Promise<void>) => capturedOn(topo, name, body);
  const assertNoLeaks = (report: ReturnType<typeof findLeaks>) =>
    assert.deepEqual(report.leaks.map(describePacket), [], 'packets from the host outside the torvm flows');

  const net = () => createLinuxHostNetwork({ ...options, runner });
  let controller: ReturnType<typeof net>;
  let watcher: { stop(): Promise<void> } | undefined;

  test('anti-test: with no kill switch the detector sees every kind of probe', async () => {
    const report = await captured('anti', async () => {
      await runProbes(topo);
    });
    const seen = report.leaks.map(describePacket).join('\n');
    for (const kind of [`tcp ${ADDR.host4}:`, `udp ${ADDR.host4}:`, `icmp ${ADDR.host4} -> ${ADDR.internet4}`, `tcp ${ADDR.host6}:`, `icmpv6 ${ADDR.host6}`, `-> ${ADDR.router4}:53`, `-> 8.8.8.8:53`, 'flags 0x4', 'flags 0x11']) {
      assert.ok(seen.includes(kind), `the anti-test must see "${kind}" in:\n${seen}`);
    }
  });

  test('start: from save to DNS, nothing leaks, and QEMU still reaches the internet', async () => {
    controller = net();
    const report = await captured('start', async () => {
      await controller.up();
      await runProbes(topo);
      assert.equal(await torvmExchange(topo, 40101), 'qemu-slirp');
    });
    assertNoLeaks(report);
    assert.ok(report.allowed.length > 0, 'the torvm flow must be on the wire');
  });

  test('running (connected, watched): every probe is blocked or goes into the TAP', async () => {
    await controller.setConnected();
    watcher = await controller.watch();
    let probes: Record<string, string> = {};
    const report = await captured('running', async () => {
      probes = await runProbes(topo);
      assert.equal(await torvmExchange(topo, 40102), 'qemu-slirp');
    });
    assertNoLeaks(report);
    // The LAN is routed into the VM like the internet (allowLan off); IPv6 is refused at once.
    assert.match(probes[`tcp ${ADDR.router4}:80`] ?? '', /^error: /);
    assert.match(probes[`tcp ${ADDR.internet6}:80`] ?? '', /^error: /);
    for (const dst of [ADDR.internet4, ADDR.router4]) assert.match((await run('ip', ['route', 'get', dst], { netns: topo.host })).stdout, /dev torvm0/);
    const v6 = await run('ip', ['-6', 'route', 'get', ADDR.router6], { netns: topo.host, okExitCodes: [2] });
    assert.notEqual(v6.exitCode, 0, 'even on-link IPv6 is prohibited');
    assert.match((await run('ip', ['route', 'get', ADDR.router4, 'ipproto', 'udp', 'dport', '67'], { netns: topo.host })).stdout, /dev up0/, 'DHCP renewals keep the real uplink');
    assert.match((await run('ip', ['-6', 'route', 'get', '::1'], { netns: topo.host })).stdout, /dev lo/, 'IPv6 loopback still works');
  });

  test('a DHCP client re-adds a default route with a lower metric: still no leak', async () => {
    const report = await captured('dhcp', async () => {
      // No `onlink`: the kernel must still find the gateway on up0 (rule 7903), or real DHCP clients would fail here.
      await run('ip', ['route', 'add', 'default', 'via', ADDR.router4, 'dev', 'up0', 'proto', 'dhcp', 'metric', '10'], { netns: topo.host });
      await runProbes(topo);
      assert.equal(await torvmExchange(topo, 40103), 'qemu-slirp');
    });
    assertNoLeaks(report);
    assert.match((await run('ip', ['route', 'get', ADDR.internet4], { netns: topo.host })).stdout, /dev torvm0/);
    await run('ip', ['route', 'del', 'default', 'via', ADDR.router4, 'dev', 'up0', 'metric', '10'], { netns: topo.host });
  });

  test('an IPv6 router advertisement adds a default route: still no leak', async () => {
    const report = await captured('ra', async () => {
      await run('ip', ['-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'up0', 'proto', 'ra', 'metric', '1'], { netns: topo.host });
      await runProbes(topo);
    });
    assertNoLeaks(report);
    await run('ip', ['-6', 'route', 'del', 'default', 'via', 'fe80::1', 'dev', 'up0', 'metric', '1'], { netns: topo.host });
  });

  test('resolv.conf rewritten by a DHCP client: put back by the watcher, no leak', async () => {
    const report = await captured('resolv', async () => {
      writeFileSync(topo.resolvConf, `nameserver ${ADDR.router4}\n`);
      await waitFor(() => readFileSync(topo.resolvConf, 'utf8').includes('nameserver 10.10.10.1'), { timeoutMs: 5_000, what: 'the watcher to restore resolv.conf', intervalMs: 20 });
      await runProbes(topo);
    });
    assertNoLeaks(report);
  });

  test('the QEMU stand-in is killed: still no leak', async () => {
    const log = join(topo.dir, 'hold.log');
    const qemu = spawnDaemon(PYTHON, ['-u', PEER_PY, 'hold', ADDR.internet4, '80', '40104'], { netns: topo.host, uid: topo.torvmUid, gid: topo.torvmGid, logFile: log });
    assert.ok(qemu.pid);
    pids.push(qemu.pid);
    await waitFor(() => readFileSync(log, 'utf8').includes('HOLDING'), { timeoutMs: 10_000, what: 'the QEMU stand-in', intervalMs: 20 });
    const report = await captured('qemu-killed', async () => {
      process.kill(qemu.pid as number, 'SIGKILL');
      await waitFor(() => !isProcessAlive(qemu.pid as number), { timeoutMs: 5_000, what: 'the stand-in to die' });
      await runProbes(topo);
    });
    assertNoLeaks(report);
  });

  test('stop: the restore leaks nothing and leaves ip -json state and resolv.conf exactly as before', async () => {
    const report = await captured('stop', async () => {
      await watcher?.stop();
      await controller.restoreNetwork();
    });
    assertNoLeaks(report);
    assert.deepEqual(diffSnapshots(initial, await takeNetworkSnapshot(runner, { netns: topo.host })), []);
    assert.equal(readFileSync(topo.resolvConf, 'utf8'), ORIGINAL_RESOLV_CONF);
    assert.equal((await controller.killSwitchStatus()).present, false);
  });

  test('controller killed with SIGKILL: the kernel keeps blocking; restore puts everything back', async () => {
    const main = fileURLToPath(new URL('./controller-main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    assert.ok(child.pid);
    pids.push(child.pid);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    await waitFor(() => out.includes('READY'), { timeoutMs: 30_000, what: 'the controller to come up' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const report = await captured('controller-killed', async () => {
      await runProbes(topo);
      assert.equal(await torvmExchange(topo, 40105), 'qemu-slirp');
    });
    assertNoLeaks(report);
    assert.equal((await net().killSwitchStatus()).state, 'connected');

    const restoreReport = await captured('restore', async () => {
      assert.equal(await net().restore(), true);
    });
    assertNoLeaks(restoreReport);
    assert.deepEqual(diffSnapshots(initial, await takeNetworkSnapshot(runner, { netns: topo.host })), []);
    assert.equal(readFileSync(topo.resolvConf, 'utf8'), ORIGINAL_RESOLV_CONF);
    assert.equal((await net().killSwitchStatus()).present, false);
  });
});
