/**
 * Upstream proxies end to end, with the real `torvm up` on the private
 * network, direct access to every relay blocked (nft in the internet
 * namespace), so every OR connection must go through the proxy in use:
 *   1. Tor starts with a SOCKS5 proxy and a wrong password: the proxy refuses
 *      it, and `torvm status --json` names the problem in plain words in
 *      bootstrap.problem.
 *   2. `torvm proxy set socks5 …` with the right password, applied live (no
 *      VM reboot): Tor bootstraps to 100% through the authenticated SOCKS5 proxy.
 *   3. `torvm proxy set https …` live, then the proxies drop their relayed
 *      connections: Tor reconnects through the authenticated HTTP CONNECT
 *      proxy only, and a page loads through Tor.
 *   4. The same for `torvm proxy set socks4 …` (SOCKS4 has no password).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTorNetwork, type TorNetwork } from '../harness/tor-network.ts';
import { blockDirectRelayAccess } from '../harness/obfs4-bridge.ts';
import { startProxies, type ProxyAttempt, type Proxies } from '../harness/proxies.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';
import { startTorvmUp, writeTorvmConfig, type TorvmRun } from './torvm-run.ts';

const imageDir = process.env.TORVM_IMAGE_DIR ?? '/tmp/torvm-img-x86';
const prereq = skipUnlessPrerequisites();
if (process.env.CI && !existsSync(join(imageDir, 'manifest.json'))) throw new Error(`CI must run this test, but there is no VM image in ${imageDir}`);
const skip = prereq || (!existsSync(join(imageDir, 'manifest.json')) && `no VM image in ${imageDir}`);

const USER = 'torvmtest';
const PASSWORD = `right-${process.pid}`;

/** A page through Tor from the host namespace (TransPort), bounded. */
function fetchThroughTor(network: TorNetwork): { status: number | null; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', network.namespaces.host, 'curl', '-sS', '-m', '90', '-o', '/dev/null', '-w', '%{http_code}', `${network.http.url}`], { encoding: 'utf8', timeout: 100_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('upstream proxies on the private network (torvm up)', { skip, timeout: 600_000 }, () => {
  let network: TorNetwork;
  let proxies: Proxies;
  let run: TorvmRun | undefined;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(`/tmp/tvproxy-${process.pid}-`);
    network = await startTorNetwork({ timeoutMs: 150_000, onion: false });
    proxies = await startProxies(network, { username: USER, password: PASSWORD });
    await blockDirectRelayAccess(network);
    const configPath = writeTorvmConfig(network, dir, imageDir);
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as { tor: Record<string, unknown> };
    config.tor.proxy = { type: 'socks5', host: proxies.socks.address, port: proxies.socks.port, username: USER, password: 'wrong-password' };
    writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
    run = startTorvmUp(network, dir, configPath);
  }, { timeout: 240_000 });

  after(async () => {
    if (run && run.child.exitCode === null) {
      run.cli(['down']);
      const exited = await Promise.race([run.exited, new Promise((r) => setTimeout(() => r('timeout'), 60_000))]);
      if (exited === 'timeout') { run.child.kill('SIGTERM'); await run.exited; }
    }
    await proxies?.stop();
    await network?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a wrong SOCKS5 password: the proxy refuses it, and bootstrap.problem in torvm status --json says so in plain words', async () => {
    const expected = `The SOCKS5 proxy ${proxies.socks.address}:${proxies.socks.port} refused the username or password`;
    const s = await run!.waitFor((st) => st.bootstrap.problem === expected, 240_000, 'the proxy problem in status');
    assert.notEqual(s.state, 'Running');
    assert.ok(proxies.attempts().some((a) => a.kind === 'socks5' && a.reason === 'wrong credentials'), JSON.stringify(proxies.attempts()));
    assert.ok(!proxies.attempts().some((a) => a.ok), 'nothing got through with the wrong password');
    const json = run!.cli(['--json', 'status']);
    assert.equal(json.status, 0, json.stderr);
    const st = JSON.parse(json.stdout) as { state: string; bootstrap: { problem: string | null } };
    assert.equal(st.bootstrap.problem, expected, json.stdout);
    assert.notEqual(st.state, 'Running');
    assert.ok(!json.stdout.includes('wrong-password') && !json.stdout.includes(USER), 'no credential in the status');
  });

  test('torvm proxy set socks5 with the right password applies live, and Tor bootstraps to 100% through the SOCKS5 proxy', async () => {
    const passwordFile = join(dir, 'proxy-password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const set = run!.cli(['--json', 'proxy', 'set', 'socks5', `${proxies.socks.address}:${proxies.socks.port}`, '--username', USER, '--password-file', passwordFile]);
    assert.equal(set.status, 0, set.stderr + set.stdout);
    assert.equal((JSON.parse(set.stdout) as { applied: boolean }).applied, true, set.stdout);
    const s = await run!.waitFor((st) => st.state === 'Running', 300_000, 'Running through the SOCKS5 proxy');
    assert.equal(s.bootstrap.progress, 100);
    assert.equal(s.bootstrap.problem, null, 'no problem once bootstrapped');
    assert.equal(s.vm.restarts, 0, 'applied live: the VM was not restarted');
    const through = proxies.attempts().filter((a) => a.ok);
    assert.ok(through.length > 0 && through.every((a) => a.kind === 'socks5'), JSON.stringify(proxies.attempts()));
    const page = fetchThroughTor(network);
    assert.equal(page.out.trim().slice(-3), '200', page.out);
  });

  /** Switches to `args` live, drops every relayed connection, and returns the attempts made after the switch once a page loaded. */
  async function switchProxy(args: string[], kind: ProxyAttempt['kind']): Promise<ProxyAttempt[]> {
    const set = run!.cli(['--json', 'proxy', 'set', ...args]);
    assert.equal(set.status, 0, set.stderr + set.stdout);
    assert.equal((JSON.parse(set.stdout) as { applied: boolean }).applied, true, set.stdout);
    const mark = proxies.attempts().length;
    // Tor keeps open OR connections across SETCONF; closing them makes it connect again, through the new proxy.
    await proxies.dropConnections();
    const deadline = Date.now() + 240_000;
    let page = fetchThroughTor(network);
    while (page.out.trim().slice(-3) !== '200' || !proxies.attempts().slice(mark).some((a) => a.kind === kind && a.ok)) {
      if (Date.now() > deadline) assert.fail(`no page through the ${kind} proxy: ${page.out}; attempts ${JSON.stringify(proxies.attempts().slice(mark))}`);
      await new Promise((r) => setTimeout(r, 2000));
      page = fetchThroughTor(network);
    }
    return proxies.attempts().slice(mark);
  }

  test('torvm proxy set https (password from a file) applies live; after the old connections drop, Tor goes through the CONNECT proxy only', async () => {
    const passwordFile = join(dir, 'proxy-password');
    const after = await switchProxy(['https', `${proxies.http.address}:${proxies.http.port}`, '--username', USER, '--password-file', passwordFile], 'http');
    assert.ok(after.filter((a) => a.ok).every((a) => a.kind === 'http'), JSON.stringify(after));
    const s = await run!.status();
    assert.equal(s.state, 'Running');
    assert.equal(s.vm.restarts, 0);
    const shown = run!.cli(['--json', 'proxy', 'show']);
    assert.deepEqual(JSON.parse(shown.stdout), { type: 'https', host: proxies.http.address, port: proxies.http.port, username: USER, hasPassword: true });
    const saved = readFileSync(run!.configPath, 'utf8');
    assert.match(saved, /"type": "https"/, 'the change was saved to the config file');
    assert.ok(!run!.output().includes(PASSWORD), 'the password never reached the daemon output');
  });

  test('torvm proxy set socks4 applies live; Tor then goes through the SOCKS4 proxy only', async () => {
    const after = await switchProxy(['socks4', `${proxies.socks4.address}:${proxies.socks4.port}`], 'socks4');
    assert.ok(after.filter((a) => a.ok).every((a) => a.kind === 'socks4'), JSON.stringify(after));
    const shown = run!.cli(['--json', 'proxy', 'show']);
    assert.deepEqual(JSON.parse(shown.stdout), { type: 'socks4', host: proxies.socks4.address, port: proxies.socks4.port, hasPassword: false });
  });
});
