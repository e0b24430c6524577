/**
 * Linux host networking against the real kernel, inside test namespaces:
 * the nft goldens load, up/down leaves no trace (20 cycles, byte-equal
 * `ip -json` and nft ruleset), lockdown keeps blocking, the boot-time
 * killswitch commands, the journal's durability and permissions.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTorvmError } from '../../src/core/errors.ts';
import { makePolicy } from '../../src/core/policy.ts';
import { renderRuleset } from '../../src/platform/linux/nft-render.ts';
import { createCommandRunner } from '../../src/platform/exec.ts';
import { createLinuxHostNetwork, type LinuxHostNetworkOptions } from '../../src/platform/linux/host-network.ts';
import { JOURNAL_FILE } from '../../src/platform/linux/journal.ts';
import { diffSnapshots, takeNetworkSnapshot } from '../../src/platform/linux/snapshot.ts';
import { skipUnlessPrerequisites } from '../../../../test/harness/prerequisites.ts';
import { run } from '../../../../test/harness/run.ts';
import { waitFor } from '../../../../test/harness/wait.ts';
import { ORIGINAL_RESOLV_CONF, PYTHON, createTopology, type Topology } from '../../../../test/leak/topology.ts';

const skip = skipUnlessPrerequisites(['nft', 'python3']);
const runner = createCommandRunner();
const GOLDEN_DIR = fileURLToPath(new URL('../unit/golden/nft/', import.meta.url));

describe('linux host networking (namespaces)', { skip, timeout: 300_000 }, () => {
  let topo: Topology;
  let base: Omit<LinuxHostNetworkOptions, 'runner'>;
  const realResolvConf = readFileSync('/etc/resolv.conf');
  const ruleset = async () => (await run('nft', ['list', 'ruleset'], { netns: topo.host })).stdout;
  const net = (network: Partial<LinuxHostNetworkOptions['network']> = {}) => createLinuxHostNetwork({ ...base, network: { ...base.network, ...network }, runner });

  before(async () => {
    topo = await createTopology('life');
    base = {
      stateDir: topo.stateDir, netns: topo.host, resolvConfPath: topo.resolvConf, dnsBackend: 'resolv-conf', torvmUid: topo.torvmUid, torvmGid: topo.torvmGid,
      network: { tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', bypassTable: 7911, allowLan: false, lanSubnets: [], lockdown: false },
    };
  });
  after(async () => {
    await topo?.destroy();
    assert.ok(readFileSync('/etc/resolv.conf').equals(realResolvConf), 'the real /etc/resolv.conf must be byte-identical');
  });

  test('every nft golden loads into the kernel and reads back verified', async () => {
    const files = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.nft'));
    assert.ok(files.length >= 15);
    for (const f of files) await run('nft', ['-c', '-f', join(GOLDEN_DIR, f)], { netns: topo.host });
    const n = net({ allowLan: true });
    for (const state of ['blocked', 'booting', 'connected'] as const) {
      await n.engageKillSwitch(state);
      assert.equal((await n.killSwitchStatus()).state, state);
    }
    await n.releaseKillSwitch();
    assert.equal((await n.killSwitchStatus()).present, false);
  });

  test('up builds the TAP, rules, route and DNS as planned', async () => {
    const n = net();
    await n.up();
    try {
      const link = JSON.parse((await run('ip', ['-json', '-d', 'link', 'show', 'torvm0'], { netns: topo.host })).stdout) as Array<{ linkinfo?: { info_data?: { user?: string; group?: string } } }>;
      assert.equal(link[0]?.linkinfo?.info_data?.user, 'torvm-qemu');
      const neigh = (await run('ip', ['neigh', 'show', 'dev', 'torvm0'], { netns: topo.host })).stdout;
      assert.match(neigh, /10\.10\.10\.1 lladdr 52:54:00:10:10:01 PERMANENT/);
      assert.match((await run('ip', ['route', 'get', '203.0.113.10'], { netns: topo.host })).stdout, /via 10\.10\.10\.1 dev torvm0/);
      assert.match((await run('ip', ['route', 'get', '203.0.113.10', 'uid', String(topo.torvmUid)], { netns: topo.host })).stdout, /dev up0/);
      const v6 = await run('ip', ['-6', 'route', 'get', '2001:db8:99::10'], { netns: topo.host, okExitCodes: [2] });
      assert.notEqual(v6.exitCode, 0, 'IPv6 beyond the link must be prohibited');
      assert.match(readFileSync(topo.resolvConf, 'utf8'), /^nameserver 10\.10\.10\.1$/m);
      const journal = join(topo.stateDir, JOURNAL_FILE);
      assert.equal(statSync(journal).mode & 0o777, 0o600);
      assert.deepEqual(JSON.parse(readFileSync(journal, 'utf8')).steps, ['killswitch', 'tap', 'routes', 'dns']);
      assert.deepEqual(await n.reconcile(), [], 'nothing has drifted');
    } finally {
      await n.restoreNetwork();
    }
  });

  test('the watcher repairs deleted rules, a removed route and the nft table', async () => {
    const n = net();
    await n.up();
    const repairs: string[] = [];
    const w = await n.watch((e) => repairs.push(...e.repaired));
    try {
      await run('ip', ['rule', 'del', 'pref', '7901'], { netns: topo.host });
      await run('ip', ['route', 'flush', 'table', '7911'], { netns: topo.host });
      await run('nft', ['delete', 'table', 'inet', 'torvm'], { netns: topo.host });
      // The backstop tick is 5 s; this bound is below it, so the monitors must be what reacted.
      await waitFor(() => repairs.includes('kill switch') && repairs.some((r) => r.startsWith('rule ')) && repairs.some((r) => r.startsWith('route ')), { timeoutMs: 4_000, what: `the watcher to repair everything (so far: ${repairs.join(', ')})` });
      assert.deepEqual(await n.reconcile(), [], 'nothing left to repair');
      assert.equal((await n.killSwitchStatus()).state, 'booting');
    } finally {
      await w.stop();
      await n.restoreNetwork();
    }
  });

  test('20 up/down cycles leave ip -json state, the nft ruleset and resolv.conf byte-equal', async () => {
    const before = await takeNetworkSnapshot(runner, { netns: topo.host });
    const rulesBefore = await ruleset();
    for (let i = 0; i < 20; i++) {
      const n = net();
      await n.up();
      await n.setConnected();
      await n.restoreNetwork();
    }
    assert.deepEqual(diffSnapshots(before, await takeNetworkSnapshot(runner, { netns: topo.host })), []);
    assert.equal(await ruleset(), rulesBefore);
    assert.equal(readFileSync(topo.resolvConf, 'utf8'), ORIGINAL_RESOLV_CONF);
  });

  test('a boot-time kill switch found at up is put back at down', async () => {
    const boot = net();
    await boot.engageKillSwitch('blocked');
    const bootTable = (await run('nft', ['list', 'table', 'inet', 'torvm'], { netns: topo.host })).stdout;
    const n = net();
    await n.up();
    await n.restoreNetwork();
    assert.equal((await run('nft', ['list', 'table', 'inet', 'torvm'], { netns: topo.host })).stdout, bootTable);
    await boot.releaseKillSwitch();
  });

  test('lockdown: stop keeps everything blocked; release is refused while a journal exists', async () => {
    const n = net({ lockdown: true });
    await n.up();
    await assert.rejects(n.releaseKillSwitch(), (e: unknown) => isTorvmError(e, 'ERR_NETWORK'));
    await n.restoreNetwork();
    assert.equal((await n.killSwitchStatus()).state, 'blocked');
    const probe = await run(PYTHON, ['-c', 'import socket; socket.create_connection(("203.0.113.10", 80), timeout=2)'], { netns: topo.host, okExitCodes: [1] });
    assert.equal(probe.exitCode, 1, 'lockdown must block');
    await n.releaseKillSwitch();
    assert.equal((await n.killSwitchStatus()).present, false);
  });

  test('restore with no journal is a no-op; a second up while the first controller lives is refused', async () => {
    assert.equal(await net().restore(), false);
    const first = createLinuxHostNetwork({ ...base, runner, pid: process.ppid });
    await first.up();
    try {
      await assert.rejects(net().saveNetwork(), (e: unknown) => isTorvmError(e, 'ERR_NETWORK'));
    } finally {
      await first.restoreNetwork();
    }
  });

  test("a journal's pid only counts as its controller with the same boot id and start time (pids are reused, above all after a reboot)", async () => {
    const first = createLinuxHostNetwork({ ...base, runner, pid: process.ppid });
    await first.up();
    const path = join(topo.stateDir, JOURNAL_FILE);
    const written = readFileSync(path, 'utf8');
    try {
      const journal = JSON.parse(written) as { owner?: { bootId: string; startTime: string } };
      assert.ok(journal.owner?.bootId && journal.owner.startTime, 'the journal records who its pid is');
      await assert.rejects(net().engageKillSwitch('blocked'), (e: unknown) => isTorvmError(e, 'ERR_NETWORK'), 'a live controller keeps the kill switch');
      for (const owner of [{ ...journal.owner, bootId: 'another-boot' }, { ...journal.owner, startTime: '1' }]) {
        writeFileSync(path, JSON.stringify({ ...journal, owner }), { mode: 0o600 });
        await net().engageKillSwitch('blocked'); // the early-boot block must not be refused by a stranger's pid
        assert.equal((await net().killSwitchStatus()).state, 'blocked');
      }
    } finally {
      writeFileSync(path, written, { mode: 0o600 });
      await first.restoreNetwork();
    }
  });

  test('up after a crashed run recovers under the kill switch, and the next stop restores the original state', async () => {
    const before = await takeNetworkSnapshot(runner, { netns: topo.host });
    const deadPid = Number((await run('sh', ['-c', 'echo $$'])).stdout.trim()); // a pid that has exited
    const crashed = createLinuxHostNetwork({ ...base, runner, pid: deadPid });
    await crashed.up();
    await crashed.setConnected();
    const next = net();
    await next.up();
    assert.equal((await next.killSwitchStatus()).state, 'booting');
    await next.restoreNetwork();
    assert.deepEqual(diffSnapshots(before, await takeNetworkSnapshot(runner, { netns: topo.host })), []);
    assert.equal(readFileSync(topo.resolvConf, 'utf8'), ORIGINAL_RESOLV_CONF);
    assert.equal((await next.killSwitchStatus()).present, false);
  });

  test('a dormant table, a verdict turned to accept and a moved chain priority all fail verify, and the watch repairs each', async () => {
    const n = net();
    await n.up();
    await n.setConnected();
    const repairs: string[] = [];
    const w = await n.watch((e) => repairs.push(...e.repaired));
    const want = makePolicy('connected', n.policyOptions);
    const script = renderRuleset(want);
    const lastRule = /^\t\treject with icmpx admin-prohibited comment "anything else: refused"$/m;
    assert.match(script, lastRule);
    const tamperings: Array<[string, () => Promise<unknown>]> = [
      ['dormant', () => run('nft', ['add', 'table', 'inet', 'torvm', '{ flags dormant; }'], { netns: topo.host })],
      // Same comments and fingerprint, so only a full comparison sees it.
      ['verdict', () => run('nft', ['-f', '-'], { netns: topo.host, input: script.replace(lastRule, '\t\taccept comment "anything else: refused"') })],
      ['priority', () => run('nft', ['-f', '-'], { netns: topo.host, input: script.replace('hook output priority filter;', 'hook output priority 10;') })],
    ];
    try {
      for (const [what, tamper] of tamperings) {
        await w.stop(); // verify must see the tampering before the watch repairs it
        await n.close();
        await tamper();
        await assert.rejects(n.firewall.verify(want), (e: unknown) => isTorvmError(e, 'ERR_FIREWALL'), `${what}: verify must fail`);
        assert.deepEqual(await n.reconcile(), ['kill switch'], `${what}: reconcile repairs it`);
        await n.firewall.verify(want);
        assert.doesNotMatch(await ruleset(), /dormant|priority 10;|\taccept comment "anything else/);
        // And the watch does it by itself.
        repairs.length = 0;
        const w2 = await n.watch((e) => repairs.push(...e.repaired));
        await tamper();
        await waitFor(() => repairs.includes('kill switch'), { timeoutMs: 4_000, what: `the watch to repair the ${what} table` });
        await n.firewall.verify(want);
        await w2.stop();
      }
    } finally {
      await w.stop();
      await n.restoreNetwork();
    }
  });

  test('an unreadable journal never keeps the kill switch off, and restore says which file to fix', async () => {
    const path = join(topo.stateDir, JOURNAL_FILE);
    mkdirSync(topo.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(path, '{"version": 1, "pl', { mode: 0o600 }); // truncated
    const n = net({ lockdown: true });
    try {
      const namesTheFile = (e: unknown) => isTorvmError(e, 'ERR_NETWORK') && e.message.includes(path) && /torvm restore/.test(e.hint ?? '');
      await assert.rejects(n.recover(), namesTheFile);
      assert.equal((await n.killSwitchStatus()).state, 'blocked', 'Init: blocked despite the journal');
      // The watch would repair a reset on its own: stop it, so what follows is the call's own doing.
      await n.close();
      await n.firewall.reset();
      await assert.rejects(n.engageKillSwitch('blocked'), namesTheFile);
      assert.equal((await n.killSwitchStatus()).state, 'blocked', 'Shutdown: the block is applied first, the journal error reported after');
      await n.close();
      await n.firewall.reset();
      await assert.rejects(n.restoreNetwork({ keepBlocking: true }), namesTheFile);
      assert.equal((await n.killSwitchStatus()).state, 'blocked', 'RestoreNetwork: keeps blocking');
      const probe = await run(PYTHON, ['-c', 'import socket; socket.create_connection(("192.168.77.1", 80), timeout=2)'], { netns: topo.host, okExitCodes: [1] });
      assert.equal(probe.exitCode, 1, 'the LAN is blocked');
    } finally {
      await n.close();
      rmSync(path, { force: true });
      await n.releaseKillSwitch();
    }
  });

  test("a second controller that failed at Init leaves the live controller's journal, TAP, routes and DNS alone", async () => {
    const first = createLinuxHostNetwork({ ...base, runner, pid: process.ppid }); // a live pid that is not us
    await first.up();
    await first.setConnected();
    const path = join(topo.stateDir, JOURNAL_FILE);
    const journalBefore = readFileSync(path, 'utf8');
    const second = net();
    try {
      await assert.rejects(second.recover(), (e: unknown) => isTorvmError(e, 'ERR_NETWORK'));
      await second.restoreNetwork({ keepBlocking: true });
      assert.equal(readFileSync(path, 'utf8'), journalBefore, 'the journal is untouched');
      assert.equal((await run('ip', ['link', 'show', 'torvm0'], { netns: topo.host, okExitCodes: [1] })).exitCode, 0, 'the TAP is still there');
      assert.match(readFileSync(topo.resolvConf, 'utf8'), /^nameserver 10\.10\.10\.1$/m, 'DNS still goes to the VM');
      assert.deepEqual(await first.reconcile(), [], 'nothing of the first controller drifted');
      assert.equal((await first.killSwitchStatus()).state, 'connected');
    } finally {
      await second.close();
      await first.restoreNetwork();
      await first.close();
    }
  });

  test('allowLan opens the LAN for TCP but never its DNS', async () => {
    const n = net({ allowLan: true, lanSubnets: ['192.168.77.0/24'] });
    await n.up();
    await n.setConnected();
    try {
      const py = (code: string) => run(PYTHON, ['-c', code, '192.168.77.1'], { netns: topo.host, okExitCodes: [1], timeoutMs: 10_000 });
      const tcp = await py('import socket,sys; c=socket.create_connection((sys.argv[1], 80), timeout=2); c.sendall(b"lan"); assert c.recv(8) == b"lan"');
      assert.equal(tcp.exitCode, 0, tcp.stderr);
      // The echo server answers on 53 too: an answer would mean the query reached the LAN.
      const dns = await py('import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b"q", (sys.argv[1], 53)); s.recvfrom(64)');
      assert.equal(dns.exitCode, 1, 'DNS to the LAN must not be answered by the LAN');
      // DNS over TLS to a LAN resolver: the echo server answers on 853 too.
      const dotTcp = await py('import socket,sys; c=socket.create_connection((sys.argv[1], 853), timeout=2); c.sendall(b"dot"); assert c.recv(8) == b"dot"');
      assert.equal(dotTcp.exitCode, 1, 'DNS over TLS (TCP 853) to the LAN must be refused');
      const dotUdp = await py('import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b"q", (sys.argv[1], 853)); s.recvfrom(64)');
      assert.equal(dotUdp.exitCode, 1, 'DNS over QUIC/DTLS (UDP 853) to the LAN must be refused');
      const other = await py('import socket,sys; socket.create_connection(("203.0.113.10", 80), timeout=1)');
      assert.equal(other.exitCode, 1, 'beyond the LAN still goes only to the VM');
    } finally {
      await n.restoreNetwork();
    }
  });
});
