/**
 * `torvm killswitch engage|status|release` and `torvm restore`, run as a user
 * would, inside a network namespace this test creates (never the root one):
 * a "host" namespace with a veth uplink to a "peer" namespace that listens.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const id = `${process.pid % 10000}`;
const hostNs = `tvks-h${id}`;
const peerNs = `tvks-p${id}`;
const bin = new URL('../../bin/torvm.js', import.meta.url).pathname;
let dir: string;
let listener: ChildProcess | undefined;
const rootResolvConf = readFileSync('/etc/resolv.conf');

const ip = (...args: string[]) => execFileSync('ip', args, { timeout: 10_000 });
const inNs = (ns: string, file: string, args: string[], timeout = 30_000) =>
  spawnSync('ip', ['netns', 'exec', ns, file, ...args], { encoding: 'utf8', timeout });

function torvm(args: string[]) {
  return inNs(hostNs, process.execPath, [bin, '--config', join(dir, 'config.json'), ...args], 60_000);
}

/** Whether a TCP connection from the host namespace to the peer gets through. */
function canConnect(): boolean {
  const r = inNs(hostNs, 'socat', ['-u', 'OPEN:/dev/null', 'TCP:10.77.0.2:8080,connect-timeout=2'], 10_000);
  return r.status === 0;
}

before(() => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI) throw new Error('this test needs root');
    return;
  }
  dir = mkdtempSync(join(tmpdir(), 'torvm-ks-'));
  mkdirSync(join(dir, 'state'), { mode: 0o700 });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ configVersion: 1, vm: { stateDir: join(dir, 'state') } }), { mode: 0o600 });
  for (const ns of [hostNs, peerNs]) {
    ip('netns', 'add', ns);
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 10.77.0.2\n');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  ip('link', 'add', `tvks${id}a`, 'netns', hostNs, 'type', 'veth', 'peer', 'name', `tvks${id}b`, 'netns', peerNs);
  ip('-n', hostNs, 'addr', 'add', '10.77.0.1/24', 'dev', `tvks${id}a`);
  ip('-n', peerNs, 'addr', 'add', '10.77.0.2/24', 'dev', `tvks${id}b`);
  ip('-n', hostNs, 'link', 'set', `tvks${id}a`, 'up');
  ip('-n', peerNs, 'link', 'set', `tvks${id}b`, 'up');
  ip('-n', hostNs, 'route', 'add', 'default', 'via', '10.77.0.2');
  listener = spawn('ip', ['netns', 'exec', peerNs, 'socat', 'TCP-LISTEN:8080,fork,reuseaddr', 'OPEN:/dev/null'], { stdio: 'ignore' });
});

after(() => {
  if (listener?.pid) listener.kill('SIGKILL');
  for (const ns of [hostNs, peerNs]) {
    spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
  // The machine's own namespace is untouched.
  assert.deepEqual(readFileSync('/etc/resolv.conf'), rootResolvConf);
  const tables = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8', timeout: 10_000 }).stdout;
  assert.ok(!tables.includes('torvm'), 'no torvm table in the root namespace');
});

test('killswitch engage blocks, status reports it, release opens, restore has nothing to do', { skip: process.getuid?.() !== 0 && !process.env.CI && 'needs root' }, async () => {
  // The listener may need a moment to bind: wait on it, bounded.
  const deadline = Date.now() + 10_000;
  while (!canConnect()) {
    assert.ok(Date.now() < deadline, 'the peer listener never came up');
    await new Promise((r) => setTimeout(r, 100));
  }

  let r = torvm(['--json', 'killswitch', 'status']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { present: boolean }).present, false);

  r = torvm(['killswitch', 'engage']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(canConnect(), false, 'the kill switch blocks the uplink');
  const table = inNs(hostNs, 'nft', ['list', 'table', 'inet', 'torvm']);
  assert.equal(table.status, 0);
  assert.match(table.stdout, /policy drop/);

  r = torvm(['--json', 'killswitch', 'status']);
  assert.deepEqual((JSON.parse(r.stdout) as { present: boolean; state: string }).state, 'blocked');

  r = torvm(['--json', 'restore']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { restored: boolean }).restored, false);
  assert.equal(canConnect(), false, 'restore with no journal leaves the block in place');

  r = torvm(['killswitch', 'release']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(canConnect(), true, 'released: traffic flows again');
  assert.notEqual(inNs(hostNs, 'nft', ['list', 'table', 'inet', 'torvm']).status, 0);
});

test('killswitch engage as a non-root user is refused with exit 2', { skip: process.getuid?.() !== 0 && !process.env.CI && 'needs root' }, () => {
  const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, bin, '--config', join(dir, 'config.json'), 'killswitch', 'engage'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /needs root/);
});
