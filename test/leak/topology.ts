/**
 * The leak-test world: a "host" namespace (where TorVM's host networking runs)
 * wired by a veth uplink to a "router" namespace that plays both LAN and
 * internet, with echo servers on every address. tcpdump on the router end sees
 * everything the host puts on the wire. Names carry process.pid.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { createNamespace, deleteNamespace, ipIn, killPid } from '../harness/netns.ts';
import { run, spawnDaemon } from '../harness/run.ts';
import { waitFor } from '../harness/wait.ts';

export const PEER_PY = fileURLToPath(new URL('./peer.py', import.meta.url));
/** The system python (a pyenv shim under /root is not executable by the torvm user). */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export const ADDR = {
  host4: '192.168.77.2',
  router4: '192.168.77.1',
  internet4: '203.0.113.10',
  host6: '2001:db8:77::2',
  router6: '2001:db8:77::1',
  internet6: '2001:db8:99::10',
  /** Nobody's address: the router sends capture markers there (pinned to a MAC nobody has, so nothing answers). */
  sink4: '192.168.77.99',
} as const;

/** The resolv.conf the host starts with: a LAN resolver, short timeouts so probes stay fast. */
export const ORIGINAL_RESOLV_CONF = `nameserver ${ADDR.router4}\noptions timeout:1 attempts:1\n`;

/** Source ports the QEMU stand-in uses; its flows are the only allowed ones. */
export const TORVM_PORT_RANGE = { min: 40100, max: 40199 } as const;

export interface Topology {
  host: string;
  router: string;
  uplink: string;
  resolvConf: string;
  stateDir: string;
  dir: string;
  torvmUid: number;
  torvmGid: number;
  destroy(): Promise<void>;
}

/** Makes sure the `torvm-qemu` system user (QEMU's) exists (idempotent; serialized with other test files). */
export function ensureTorvmUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'torvm-qemu'], { encoding: 'utf8', timeout: 5_000 }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('flock', ['/tmp/torvm-useradd.lock', 'sh', '-c', 'id torvm-qemu >/dev/null 2>&1 || { getent group torvm-qemu >/dev/null || groupadd --system torvm-qemu; useradd --system --gid torvm-qemu --no-create-home --shell /usr/sbin/nologin torvm-qemu; }'], { timeout: 30_000 });
    return { uid: id('-u'), gid: id('-g') };
  }
}

let counter = 0;

export async function createTopology(tag: string): Promise<Topology> {
  const n = `${process.pid}-${tag}${counter++}`;
  const host = `tvlh${n}`;
  const router = `tvlr${n}`;
  const { uid, gid } = ensureTorvmUser();
  const dir = mkdtempSync(join(tmpdir(), `tvl${process.pid}-`));
  const pids: number[] = [];
  const topo: Topology = {
    host, router, uplink: 'up0', resolvConf: `/etc/netns/${host}/resolv.conf`, stateDir: join(dir, 'state'), dir, torvmUid: uid, torvmGid: gid,
    async destroy() {
      for (const pid of pids) await killPid(pid);
      await deleteNamespace(host);
      await deleteNamespace(router);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await createNamespace(host, ORIGINAL_RESOLV_CONF);
    await createNamespace(router, `nameserver ${ADDR.router4}\n`);
    // Quiet IPv6 autoconfiguration: no router solicitations, no DAD delay.
    for (const key of ['net.ipv6.conf.default.router_solicitations=0', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.default.accept_ra=0']) {
      await run('sysctl', ['-q', '-w', key], { netns: host, timeoutMs: 5_000 });
    }
    await ipIn(host, ['link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'rt0', 'netns', router]);
    await ipIn(host, ['addr', 'add', `${ADDR.host4}/24`, 'dev', 'up0']);
    await ipIn(host, ['addr', 'add', `${ADDR.host6}/64`, 'dev', 'up0', 'nodad']);
    await ipIn(host, ['link', 'set', 'up0', 'up']);
    await ipIn(host, ['route', 'add', 'default', 'via', ADDR.router4, 'dev', 'up0', 'proto', 'dhcp', 'metric', '100']);
    await ipIn(host, ['-6', 'route', 'add', 'default', 'via', ADDR.router6, 'dev', 'up0', 'metric', '1024']);
    await ipIn(router, ['addr', 'add', `${ADDR.router4}/24`, 'dev', 'rt0']);
    await ipIn(router, ['addr', 'add', `${ADDR.router6}/64`, 'dev', 'rt0', 'nodad']);
    await ipIn(router, ['addr', 'add', `${ADDR.internet4}/32`, 'dev', 'lo']);
    await ipIn(router, ['addr', 'add', `${ADDR.internet6}/128`, 'dev', 'lo']);
    await ipIn(router, ['link', 'set', 'rt0', 'up']);
    await ipIn(router, ['neigh', 'add', ADDR.sink4, 'lladdr', '02:00:00:00:00:99', 'dev', 'rt0', 'nud', 'permanent']);
    const server = spawnDaemon(PYTHON, ['-u', PEER_PY, 'serve'], { netns: router, logFile: join(dir, 'servers.log') });
    if (server.pid === undefined) throw new Error('could not start the echo servers');
    pids.push(server.pid);
    await waitFor(() => run('cat', [join(dir, 'servers.log')]).then((r) => r.stdout.includes('READY')), { timeoutMs: 10_000, what: 'echo servers', intervalMs: 50 });
    // Reachability, so an anti-test failure cannot be a broken topology.
    await waitFor(() => run(PYTHON, [PEER_PY, 'torvm', ADDR.internet4, '80', '40199'], { netns: host, timeoutMs: 5_000 }).then(() => true), { timeoutMs: 10_000, what: 'host -> internet through the uplink' });
    return topo;
  } catch (err) {
    await topo.destroy();
    throw err;
  }
}

/** Runs the QEMU stand-in as the torvm user from source port `sport`; resolves to its echo. */
export async function torvmExchange(topo: Topology, sport: number): Promise<string> {
  const r = await run(PYTHON, [PEER_PY, 'torvm', ADDR.internet4, '80', String(sport)], { netns: topo.host, uid: topo.torvmUid, gid: topo.torvmGid, timeoutMs: 10_000 });
  return r.stdout.trim();
}

/** Every probe an app could send, from the host namespace as root. Returns probe -> outcome. */
export async function runProbes(topo: Topology): Promise<Record<string, string>> {
  const cfg = {
    hosts: [ADDR.internet4, ADDR.router4, ADDR.internet6, ADDR.router6, '8.8.8.8'],
    rawTargets: [ADDR.internet4, ADDR.router4],
    source: ADDR.host4,
  };
  const r = await run(PYTHON, [PEER_PY, 'probe', JSON.stringify(cfg)], { netns: topo.host, timeoutMs: 60_000, env: { RES_OPTIONS: 'timeout:1 attempts:1' } });
  return JSON.parse(r.stdout) as Record<string, string>;
}
