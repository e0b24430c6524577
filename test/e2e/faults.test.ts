/**
 * TorVM under faults, with a packet capture on the host's uplink for the whole
 * run: QEMU killed, Tor killed inside the VM, a DHCP-style default route
 * re-added, resolv.conf rewritten, the controller killed and started again
 * (the VM is adopted), and the controller killed then `torvm restore`.
 * Nothing may leak at any point; traffic must flow again after each fault;
 * after restore the host's network is byte-equal to the start.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTorNetwork, type TorNetwork } from '../harness/tor-network.ts';
import { run } from '../harness/run.ts';
import { isProcessAlive } from '../harness/netns.ts';
import { requireE2e, e2eImageDir } from './prerequisites.ts';
import { startTorvmUp, writeTorvmConfig, type TorvmRun } from './torvm-run.ts';
import { watchUplink, describeLeaks, type LeakWatch } from './leak-watch.ts';
import { createCommandRunner } from '../../packages/torvm/src/platform/exec.ts';
import { diffSnapshots, takeNetworkSnapshot, type NetworkSnapshot } from '../../packages/torvm/src/platform/linux/snapshot.ts';

const skip = requireE2e();
const RUNNING = (s: { state: string; killSwitch: string }) => s.state === 'Running' && s.killSwitch === 'connected';

describe('TorVM under faults leaks nothing and recovers', { skip }, () => {
  let network: TorNetwork;
  let dir: string;
  let configPath: string;
  let torvm: TorvmRun;
  let watch: LeakWatch;
  let start: NetworkSnapshot;
  let resolvPath: string;
  let resolvStart: string;
  const runner = createCommandRunner();
  const inHost = (file: string, args: string[], timeoutMs = 60_000, input?: string) =>
    run(file, args, { netns: network.namespaces.host, timeoutMs, okExitCodes: Array.from({ length: 255 }, (_, i) => i + 1), ...(input !== undefined ? { input } : {}) });

  /** A plain fetch from the host must arrive from the exit; retried while the path recovers (bounded). */
  async function fetchesThroughTor(what: string, withinMs = 180_000): Promise<void> {
    const deadline = Date.now() + withinMs;
    let last = '';
    for (;;) {
      const before_ = network.httpRequests().length;
      const r = await inHost('curl', ['-sS', '-m', '30', network.http.nameUrl], 40_000);
      const seen = network.httpRequests().slice(before_);
      if (r.exitCode === 0 && seen.length > 0) {
        assert.ok(seen.every((q) => q.peer === network.exitAddress), `${what}: the server saw ${seen.map((q) => q.peer).join(', ')}`);
        return;
      }
      last = r.stderr.trim();
      assert.ok(Date.now() < deadline, `${what}: traffic did not flow again (${last})`);
      await new Promise((res) => setTimeout(res, 2_000));
    }
  }

  function hostNeverAskedTheResolver(what: string): void {
    const askers = network.dnsQueries().map((q) => q.peer);
    assert.ok(!askers.includes(network.uplink.hostAddress), `${what}: the host queried the resolver directly`);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'torvm-faults-'));
    network = await startTorNetwork({ prefix: 'tvft', onion: false });
    resolvPath = `/etc/netns/${network.namespaces.host}/resolv.conf`;
    resolvStart = readFileSync(resolvPath, 'utf8');
    start = await takeNetworkSnapshot(runner, { netns: network.namespaces.host });
    watch = await watchUplink(network, dir, 'faults');
    configPath = writeTorvmConfig(network, dir, e2eImageDir());
    torvm = startTorvmUp(network, dir, configPath);
    await torvm.waitFor(RUNNING, 300_000, 'Running');
  });

  after(async () => {
    for (const r of [torvm]) {
      if (r && r.child.exitCode === null) {
        r.child.kill('SIGKILL');
        await r.exited;
      }
    }
    if (torvm) {
      torvm.cli(['restore']);
      torvm.cli(['killswitch', 'release']);
    }
    await network?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('traffic flows through Tor to begin with', async () => {
    await fetchesThroughTor('start');
    hostNeverAskedTheResolver('start');
  });

  test('kill -9 of QEMU: detected, the VM restarted, traffic flows again', async () => {
    const s = await torvm.status();
    assert.ok(s.vm.pid !== null);
    process.kill(s.vm.pid, 'SIGKILL');
    // Truthful status while it recovers: the kill switch drops back to booting.
    await torvm.waitFor((st) => st.vm.restarts >= 1, 60_000, 'the restart to be reported');
    const back = await torvm.waitFor(RUNNING, 300_000, 'Running again');
    assert.notEqual(back.vm.pid, s.vm.pid);
    await fetchesThroughTor('after QEMU was killed');
  });

  test('Tor killed inside the VM: the guest restarts it and traffic flows again', async () => {
    const password = readFileSync(join(dir, 'run', 'control-password'), 'utf8').trim();
    const r = await inHost('socat', ['-t', '2', '-', 'TCP:10.10.10.1:9051,connect-timeout=5'], 20_000, `AUTHENTICATE "${password}"\r\nSIGNAL HALT\r\n`);
    assert.match(r.stdout, /^250 OK/m, `control port: ${r.stdout} ${r.stderr}`);
    await fetchesThroughTor('after Tor was killed in the VM');
    assert.equal((await torvm.status()).state, 'Running');
  });

  test('a DHCP-style default route with a lower metric changes nothing', async () => {
    await inHost('ip', ['route', 'add', 'default', 'via', network.uplink.gateway, 'dev', network.uplink.hostIface, 'metric', '1']);
    try {
      await fetchesThroughTor('with a competing default route');
    } finally {
      await inHost('ip', ['route', 'del', 'default', 'via', network.uplink.gateway, 'dev', network.uplink.hostIface, 'metric', '1']);
    }
  });

  test('resolv.conf rewritten: DNS still goes to the VM and is put back', async () => {
    writeFileSync(resolvPath, `nameserver ${network.dns.address}\n`);
    const r = await inHost('getent', ['hosts', network.http.name]);
    assert.equal(r.exitCode, 0, r.stderr);
    const deadline = Date.now() + 10_000;
    while (!readFileSync(resolvPath, 'utf8').includes('10.10.10.1')) {
      assert.ok(Date.now() < deadline, 'resolv.conf was not put back');
      await new Promise((res) => setTimeout(res, 100));
    }
    hostNeverAskedTheResolver('after resolv.conf was rewritten');
  });

  test('kill -9 of the controller: the VM keeps serving, and `torvm up` adopts it', async () => {
    const vmPid = (await torvm.status()).vm.pid;
    assert.ok(vmPid !== null);
    torvm.child.kill('SIGKILL');
    await torvm.exited;
    assert.ok(isProcessAlive(vmPid), 'QEMU outlives its controller');
    await fetchesThroughTor('with the controller dead', 60_000);
    torvm = startTorvmUp(network, dir, configPath);
    const s = await torvm.waitFor(RUNNING, 300_000, 'Running after adoption');
    assert.equal(s.vm.pid, vmPid, 'the running VM was adopted, not replaced');
    await fetchesThroughTor('after adoption');
  });

  test('kill -9 of the controller, then `torvm restore`: the host is back exactly as before, and nothing leaked', async () => {
    const vmPid = (await torvm.status()).vm.pid;
    torvm.child.kill('SIGKILL');
    await torvm.exited;
    const r = torvm.cli(['restore']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(vmPid === null || !isProcessAlive(vmPid), 'restore ended the orphaned VM');
    assert.deepEqual(diffSnapshots(start, await takeNetworkSnapshot(runner, { netns: network.namespaces.host })), []);
    assert.equal(readFileSync(resolvPath, 'utf8'), resolvStart);
    const nft = spawnSync('ip', ['netns', 'exec', network.namespaces.host, 'nft', 'list', 'tables'], { encoding: 'utf8', timeout: 10_000 });
    assert.ok(!nft.stdout.includes('torvm'));
    const { leaks, flows } = await watch.stop();
    assert.ok(flows.length > 0);
    assert.deepEqual(leaks, [], `leaked flows:\n${describeLeaks(leaks)}`);
  });
});
