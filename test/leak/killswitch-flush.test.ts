/**
 * The kill switch is flushed (Debian's nftables.service runs `nft flush
 * ruleset` on start, reload and stop) while apps keep sending: in the booting
 * state, and in the blocked state a lockdown stop leaves. The watch puts the
 * table back, and meanwhile the routing layer blocks on its own, so a capture
 * of the uplink over the whole flush + repair window holds no packet of the
 * host's (LAN or internet, IPv4 or IPv6). Then the same with an address
 * flapping every 20 ms (a stream of netlink events must not starve the repair).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makePolicy, type PolicyState } from '../../packages/torvm/src/core/policy.ts';
import { createCommandRunner } from '../../packages/torvm/src/platform/exec.ts';
import { createLinuxHostNetwork, type LinuxHostNetwork, type LinuxHostNetworkOptions } from '../../packages/torvm/src/platform/linux/host-network.ts';
import { killPid } from '../harness/netns.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';
import { run, spawnDaemon } from '../harness/run.ts';
import { waitFor } from '../harness/wait.ts';
import { captured } from './capture.ts';
import { describePacket } from './leak-oracle.ts';
import { ADDR, PYTHON, createTopology, type Topology } from './topology.ts';

const skip = skipUnlessPrerequisites(['nft', 'python3', 'tcpdump']);
const runner = createCommandRunner();
const STREAM_PY = fileURLToPath(new URL('./probe-stream.py', import.meta.url));

describe('a flushed kill switch is put back, and nothing leaks meanwhile', { skip, timeout: 240_000 }, () => {
  let topo: Topology;
  let options: LinuxHostNetworkOptions;
  const realResolvConf = readFileSync('/etc/resolv.conf');
  const nets: LinuxHostNetwork[] = [];
  const pids: number[] = [];
  let round = 0;

  before(async () => {
    topo = await createTopology('flush');
    options = {
      runner, stateDir: topo.stateDir, netns: topo.host, resolvConfPath: topo.resolvConf, dnsBackend: 'resolv-conf', torvmUid: topo.torvmUid, torvmGid: topo.torvmGid,
      network: { tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', bypassTable: 7911, allowLan: false, lanSubnets: [], lockdown: false },
    };
    // IPv6 works end to end (neighbour resolved) before anything is measured.
    const echo6 = `import socket; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b'hi', ('${ADDR.router6}', 9999)); assert s.recv(8) == b'hi'`;
    await waitFor(() => run(PYTHON, ['-c', echo6], { netns: topo.host, timeoutMs: 5_000 }).then(() => true, () => false), { timeoutMs: 15_000, what: 'IPv6 to the router' });
  });
  after(async () => {
    for (const n of nets) await n.close();
    for (const pid of pids) await killPid(pid);
    await topo?.destroy();
    assert.ok(readFileSync('/etc/resolv.conf').equals(realResolvConf), 'the real /etc/resolv.conf must be byte-identical');
  });

  const net = (network: Partial<LinuxHostNetworkOptions['network']> = {}) => {
    const n = createLinuxHostNetwork({ ...options, network: { ...options.network, ...network } });
    nets.push(n);
    return n;
  };

  /** Runs `body` while the probe stream flows; returns what the capture saw, and the stream's own account. */
  async function underFire(name: string, body: () => Promise<void>) {
    const stopFile = join(topo.dir, `stop-${round++}`);
    const log = join(topo.dir, `${name}-stream.log`);
    let stream: { rounds: number; start: number; end: number } | undefined;
    const report = await captured(topo, name, async () => {
      const sender = spawnDaemon(PYTHON, ['-u', STREAM_PY, stopFile, ADDR.router4, ADDR.internet4, '--', ADDR.router6, ADDR.internet6], { netns: topo.host, logFile: log });
      assert.ok(sender.pid);
      pids.push(sender.pid);
      const exited = new Promise((resolve) => sender.once('exit', resolve));
      try {
        await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').includes('FLOWING'), { timeoutMs: 10_000, intervalMs: 10, what: 'the probe stream' });
        await body();
      } finally {
        writeFileSync(stopFile, '');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      }
      stream = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').pop() ?? '{}') as typeof stream;
    });
    assert.ok(stream && stream.rounds > 3, `the probe stream must have run (${JSON.stringify(stream)})`);
    return { report, stream };
  }

  /** Flushes the ruleset under fire, waits for the watch to put `state` back, and checks the stream covered the window. */
  async function flushUnderFire(n: LinuxHostNetwork, name: string, state: PolicyState) {
    let flushedAt = 0;
    let repairedAt = 0;
    const { report, stream } = await underFire(name, async () => {
      flushedAt = Date.now();
      await run('nft', ['flush', 'ruleset'], { netns: topo.host });
      await waitFor(async () => (await n.killSwitchStatus()).state === state, { timeoutMs: 4_000, intervalMs: 5, what: `the watch to put back the ${state} kill switch` });
      repairedAt = Date.now();
      await n.firewall.verify(makePolicy(state, n.policyOptions)); // the whole table, not just its comment
      await new Promise((resolve) => setTimeout(resolve, 200)); // a few more rounds against the repaired table
    });
    assert.ok(stream && stream.start < flushedAt && stream.end > repairedAt, 'the stream ran across the whole flush + repair window');
    // Each leak with its time relative to the flush, to tell a repair gap from anything else.
    return report.leaks.map((p) => `${describePacket(p)} at ${Math.round(p.time * 1000 - flushedAt)} ms (repaired at ${repairedAt - flushedAt} ms)`);
  }

  test('anti-test: with no kill switch the capture sees the stream (UDP, DNS, TCP, ICMP; LAN and internet; v4 and v6)', async () => {
    const { report } = await underFire('anti-stream', async () => {
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    const seen = report.leaks.map(describePacket).join('\n');
    for (const kind of [`udp ${ADDR.host4}:`, `-> ${ADDR.router4}:53`, `-> ${ADDR.internet4}:9999`, `tcp ${ADDR.host4}:`, `icmp ${ADDR.host4} -> ${ADDR.internet4}`, `udp ${ADDR.host6}:`, `-> ${ADDR.router6}:9999`, `tcp ${ADDR.host6}:`, `icmpv6 ${ADDR.host6} -> ${ADDR.internet6}`]) {
      assert.ok(seen.includes(kind), `the anti-test must see "${kind}"`);
    }
  });

  test('booting (before Running, no watch() subscriber): flushed, repaired, nothing on the wire', async () => {
    const n = net();
    await n.up();
    assert.equal(n.watching, true, 'engaging the kill switch for a run starts the watch');
    assert.deepEqual(await flushUnderFire(n, 'booting-flush', 'booting'), [], 'packets from the host during the flush window');
    await n.restoreNetwork();
    assert.equal(n.watching, false, 'the watch ends with the kill switch');
  });

  test('blocked after a lockdown stop: still watched, flushed, repaired, nothing on the wire', async () => {
    const n = net({ lockdown: true });
    await n.up();
    await n.setConnected();
    await n.restoreNetwork({ keepBlocking: true });
    assert.equal((await n.killSwitchStatus()).state, 'blocked');
    assert.equal(n.watching, true, 'a blocked host stays watched while the controller lives');
    assert.equal((await run('ip', ['link', 'show', 'torvm0'], { netns: topo.host, okExitCodes: [1] })).exitCode, 1, 'the TAP is gone');
    assert.deepEqual(await flushUnderFire(n, 'lockdown-flush', 'blocked'), [], 'packets from the host during the flush window');
    // The routing block is watched too.
    assert.doesNotMatch((await run('ip', ['rule'], { netns: topo.host })).stdout, /^7903:/m, 'no on-link escape while blocked');
    await run('ip', ['rule', 'del', 'pref', '7904'], { netns: topo.host });
    await waitFor(async () => (await run('ip', ['rule', 'show', 'pref', '7904'], { netns: topo.host })).stdout.includes('prohibit'), { timeoutMs: 4_000, what: 'the routing block to be put back' });
    await n.releaseKillSwitch();
    assert.equal(n.watching, false);
    assert.equal((await n.killSwitchStatus()).present, false);
    assert.doesNotMatch((await run('ip', ['rule'], { netns: topo.host })).stdout, /79\d\d/, 'release removes the routing block');
  });

  test('an address flapping every 20 ms does not starve the repair of a flushed table', async () => {
    const n = net();
    await n.up();
    await n.setConnected();
    const storm = spawn('ip', ['netns', 'exec', topo.host, 'sh', '-c', 'while :; do ip addr add 192.168.77.50/32 dev up0; sleep 0.01; ip addr del 192.168.77.50/32 dev up0; sleep 0.01; done'], { stdio: 'ignore' });
    assert.ok(storm.pid);
    pids.push(storm.pid);
    try {
      // The storm is on: the watch keeps reacting to it.
      await waitFor(async () => (await run('ip', ['addr', 'show', 'dev', 'up0'], { netns: topo.host })).stdout.includes('192.168.77.50'), { timeoutMs: 5_000, intervalMs: 5, what: 'the flapping address' });
      await run('nft', ['flush', 'ruleset'], { netns: topo.host });
      // Bounded below the 5 s backstop: the event-driven repair must get through the storm.
      await waitFor(async () => (await n.killSwitchStatus()).state === 'connected', { timeoutMs: 4_000, intervalMs: 20, what: 'the repair during the storm' });
    } finally {
      const gone = new Promise((resolve) => storm.once('exit', resolve));
      storm.kill('SIGTERM');
      await gone;
    }
    await run('ip', ['addr', 'del', '192.168.77.50/32', 'dev', 'up0'], { netns: topo.host, okExitCodes: [2] });
    await n.restoreNetwork();
  });
});
