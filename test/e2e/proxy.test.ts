/**
 * Upstream proxies end to end, with the real `torvm up` on the private
 * network, direct access to every relay blocked (nft in the internet
 * namespace): Tor starts with a SOCKS5 proxy and a wrong password, which
 * shows as Tor's proxy warning in `torvm status --json`; `torvm proxy set https …`
 * with the right password is applied live (no VM reboot), and Tor then
 * bootstraps through the authenticated HTTP CONNECT proxy.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTorNetwork, type TorNetwork } from '../harness/tor-network.ts';
import { blockDirectRelayAccess } from '../harness/obfs4-bridge.ts';
import { startProxies, type Proxies } from '../harness/proxies.ts';
import { skipUnlessPrerequisites } from '../harness/prerequisites.ts';
import { startTorvmUp, writeTorvmConfig, type TorvmRun } from './torvm-run.ts';

const imageDir = process.env.TORVM_IMAGE_DIR ?? '/tmp/torvm-img-x86';
const prereq = skipUnlessPrerequisites();
if (process.env.CI && !existsSync(join(imageDir, 'manifest.json'))) throw new Error(`CI must run this test, but there is no VM image in ${imageDir}`);
const skip = prereq || (!existsSync(join(imageDir, 'manifest.json')) && `no VM image in ${imageDir}`);

const USER = 'torvmtest';
const PASSWORD = `right-${process.pid}`;

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

  test("a wrong SOCKS5 password: the proxy refuses it and torvm status --json shows Tor's proxy warning", async () => {
    const s = await run!.waitFor((st) => st.bootstrap.problem !== null || st.tor.warnings.some((w) => /proxy/i.test(w)), 240_000, 'a bootstrap problem');
    assert.notEqual(s.state, 'Running');
    assert.ok(proxies.attempts().some((a) => a.kind === 'socks5' && a.reason === 'wrong credentials'), JSON.stringify(proxies.attempts()));
    // Tor reports the refused proxy as a WARN (kept in status.tor.warnings) and, after repeated failures, as a bootstrap problem.
    const json = run!.cli(['--json', 'status']);
    assert.equal(json.status, 0, json.stderr);
    const st = JSON.parse(json.stdout) as { bootstrap: { problem: string | null }; tor: { warnings: string[] } };
    const said = [st.bootstrap.problem ?? '', ...st.tor.warnings].join('\n');
    assert.match(said, /proxy/i, said);
    assert.ok(!json.stdout.includes('wrong-password'));
  });

  test('torvm proxy set https (password from a file) applies live, and Tor bootstraps through the CONNECT proxy', async () => {
    const passwordFile = join(dir, 'proxy-password');
    writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const set = run!.cli(['--json', 'proxy', 'set', 'https', `${proxies.http.address}:${proxies.http.port}`, '--username', USER, '--password-file', passwordFile]);
    assert.equal(set.status, 0, set.stderr + set.stdout);
    assert.equal((JSON.parse(set.stdout) as { applied: boolean }).applied, true, set.stdout);
    const s = await run!.waitFor((st) => st.state === 'Running', 300_000, 'Running through the HTTP CONNECT proxy');
    assert.equal(s.bootstrap.progress, 100);
    assert.ok(proxies.attempts().some((a) => a.kind === 'http' && a.ok), JSON.stringify(proxies.attempts()));
    const shown = run!.cli(['--json', 'proxy', 'show']);
    assert.deepEqual(JSON.parse(shown.stdout), { type: 'https', host: proxies.http.address, port: proxies.http.port, username: USER, hasPassword: true });
    const saved = readFileSync(run!.configPath, 'utf8');
    assert.match(saved, /"type": "https"/, 'the change was saved to the config file');
    assert.ok(!run!.output().includes(PASSWORD), 'the password never reached the daemon output');
  });
});
