/**
 * `torvm demo`: a complete, sandboxed TorVM run that needs no internet.
 *
 *   1. A private Tor network (3 authorities, relays, an exit, an onion
 *      service) and a web server start in an "internet" network namespace.
 *   2. A "host" namespace stands for your computer; the real `torvm up` runs
 *      in it: kill switch, TAP, VM, Tor bootstrapping on the private network.
 *   3. From the host, a plain curl fetches a page through Tor; the server
 *      tells which address it saw (the exit's, not yours).
 *   4. A short leak check: a packet capture on the host's uplink must show
 *      nothing but Tor talking to the network's relays.
 *   5. The live status, then everything is torn down, also on Ctrl-C.
 *
 * Nothing here touches this machine's own network: every address lives in
 * namespaces created here, and no Tor can reach the public network.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTorNetwork, type TorNetwork } from '../test/harness/tor-network.ts';
import { run } from '../test/harness/run.ts';
import { startTorvmUp, writeTorvmConfig, type TorvmRun } from '../test/e2e/torvm-run.ts';
import { watchUplink, describeLeaks } from '../test/e2e/leak-watch.ts';

export interface DemoOptions {
  imageDir: string;
  say: (line: string) => void;
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const { say } = o;
  const dir = mkdtempSync(join(tmpdir(), 'torvm-demo-'));
  let network: TorNetwork | undefined;
  let torvm: TorvmRun | undefined;
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    say('\nCtrl-C: stopping TorVM and removing the demo namespaces…');
    torvm?.child.kill('SIGTERM');
  };
  process.on('SIGINT', onSigint);
  const step = (n: number, text: string) => say(`\n[${n}/5] ${text}`);
  try {
    step(1, 'Starting a private Tor network in network namespaces (about 15 s)…');
    network = await startTorNetwork({ prefix: 'tvdemo', log: (l) => say(`      ${l.replace(/^\[harness\] /, '')}`) });
    say(`      ${network.relays.length} relays; exit ${network.exitAddress}; web server ${network.http.name} (${network.http.address})`);
    if (interrupted) return 130;

    step(2, `Running \`torvm up\` in the "host" namespace ${network.namespaces.host} (TCG boot and bootstrap: about a minute)…`);
    const watch = await watchUplink(network, dir, 'demo');
    torvm = startTorvmUp(network, dir, writeTorvmConfig(network, dir, o.imageDir));
    let shown = 0;
    const progress = setInterval(() => {
      const out = torvm?.output() ?? '';
      const fresh = out.slice(shown);
      shown = out.length;
      for (const line of fresh.split('\n')) if (line.trim()) say(`      ${line}`);
    }, 250);
    try {
      await torvm.waitFor((s) => s.state === 'Running' && s.killSwitch === 'connected', 300_000, 'Tor to bootstrap');
    } finally {
      clearInterval(progress);
    }
    if (interrupted) return 130;

    step(3, `Fetching http://${network.http.name}/ from the host with a plain curl (no proxy settings)…`);
    const page = await run('curl', ['-sS', '-m', '60', network.http.nameUrl], { netns: network.namespaces.host, timeoutMs: 70_000, okExitCodes: [1, 6, 7, 28, 52, 56] });
    const seen = network.httpRequests().at(-1);
    if (page.exitCode !== 0 || !seen) {
      say(`      the fetch failed: ${page.stderr.trim()}`);
      return 1;
    }
    say(`      got the page (${page.stdout.length} bytes)`);
    say(`      the server saw the request come from ${seen.peer}: ${seen.peer === network.exitAddress ? 'the Tor exit relay' : 'NOT the exit relay'}`);
    say(`      (the host's own address is ${network.uplink.hostAddress}; the name was resolved by Tor, not by the host)`);

    step(4, 'Leak check: every packet on the host\'s uplink must be Tor going to a relay…');
    await run('ping', ['-c', '1', '-W', '1', network.http.address], { netns: network.namespaces.host, timeoutMs: 5_000, okExitCodes: [1, 2] });
    await run('dig', ['+short', '+time=3', '+tries=1', `@${network.dns.address}`, network.http.name], { netns: network.namespaces.host, timeoutMs: 10_000, okExitCodes: [9, 10] });
    const { leaks, flows, packets } = await watch.stop();
    say(`      ${packets.length} packets in ${flows.length} flows, all to relays: ${leaks.length === 0 ? 'yes — no leak' : 'NO'}`);
    if (leaks.length > 0) say(describeLeaks(leaks));

    step(5, 'Live status (`torvm status`):');
    const status = torvm.cli(['status']);
    for (const line of status.stdout.split('\n')) if (line.trim()) say(`      ${line}`);
    say('\n      Stopping: `torvm down` restores the host namespace exactly as it was.');
    torvm.cli(['down']);
    const code = await torvm.exited;
    return leaks.length === 0 && seen.peer === network.exitAddress && code === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    if (torvm && torvm.child.exitCode === null) {
      torvm.child.kill('SIGTERM');
      await torvm.exited;
    }
    await network?.stop();
    rmSync(dir, { recursive: true, force: true });
    say('Demo namespaces removed.');
  }
}
