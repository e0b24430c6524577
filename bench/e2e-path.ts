/**
 * End-to-end benchmarks on the private Tor network, under TCG (root):
 *   1. Start time: `torvm up` to the first successful plain curl through Tor,
 *      cold (fresh state disk) and warm (cached consensus); warm/cold ratio.
 *   2. Throughput: a 50 MB download through the whole TorVM path, against a
 *      stock Tor client in the same host namespace and network in the same run.
 *   3. Protection: N kills of QEMU (default 20), 11 s apart: leaked packets
 *      (must be 0), time until the controller notices, and until traffic flows again.
 *
 *   TORVM_IMAGE_DIR=/var/cache/torvm/image node --import tsx bench/e2e-path.ts [kills] [megabytes]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTorNetwork } from '../test/harness/tor-network.ts';
import { run } from '../test/harness/run.ts';
import { startTorvmUp, writeTorvmConfig, type TorvmRun } from '../test/e2e/torvm-run.ts';
import { watchUplink } from '../test/e2e/leak-watch.ts';
import { e2eImageDir } from '../test/e2e/prerequisites.ts';

const kills = Number(process.argv[2] ?? 20);
const megabytes = Number(process.argv[3] ?? 50);
const ms = (t0: number) => Date.now() - t0;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const network = await startTorNetwork({ prefix: 'tvbe', onion: false });
const dir = mkdtempSync(join(tmpdir(), 'torvm-bench-'));
let current = null as TorvmRun | null;
// Tear down on Ctrl-C or SIGTERM too: nothing may outlive the benchmark.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    current?.child.kill('SIGKILL');
    void network.stop().finally(() => { rmSync(dir, { recursive: true, force: true }); process.exit(130); });
  });
}
const curl = (args: string[], timeoutMs = 300_000) => run('curl', args, { netns: network.namespaces.host, timeoutMs, okExitCodes: [6, 7, 28, 35, 52, 56] });

async function firstFetch(t0: number): Promise<number> {
  for (;;) {
    const r = await curl(['-sS', '-m', '20', '-o', '/dev/null', network.http.url], 30_000);
    if (r.exitCode === 0) return ms(t0);
    if (ms(t0) > 600_000) throw new Error('no fetch within 10 minutes');
    await new Promise((res) => setTimeout(res, 250));
  }
}

async function up(): Promise<{ torvm: TorvmRun; toFetchMs: number }> {
  const t0 = Date.now();
  const torvm = startTorvmUp(network, dir, writeTorvmConfig(network, dir, e2eImageDir()));
  current = torvm;
  await torvm.waitFor((s) => s.state === 'Running', 600_000, 'Running');
  return { torvm, toFetchMs: await firstFetch(t0) };
}

async function down(torvm: TorvmRun): Promise<void> {
  torvm.cli(['down']);
  await torvm.exited;
}

try {
  // 1. Start time, cold then warm.
  const cold = await up();
  await down(cold.torvm);
  const warm = await up();
  console.log(`start: cold ${(cold.toFetchMs / 1000).toFixed(1)} s, warm ${(warm.toFetchMs / 1000).toFixed(1)} s, warm/cold ${(warm.toFetchMs / cold.toFetchMs).toFixed(2)}`);

  // 2. Throughput through TorVM.
  const url = `http://${network.http.address}/bytes/${megabytes * 1_000_000}`;
  let t0 = Date.now();
  const viaTorvm = await curl(['-sS', '-m', '600', '-o', '/dev/null', '-w', '%{size_download}', url], 660_000);
  const torvmSeconds = ms(t0) / 1000;
  const torvmMbps = (Number(viaTorvm.stdout) * 8) / torvmSeconds / 1e6;

  // 3. Protection over N QEMU kills, with a capture the whole time.
  const watch = await watchUplink(network, dir, 'bench-kills');
  const notice: number[] = [];
  const recover: number[] = [];
  const torvm = warm.torvm;
  for (let i = 0; i < kills; i++) {
    // Space the kills past the lifecycle's 10 s "stable VM" window: quick crashes
    // in a row are (deliberately) given up on after 5, with the host blocked.
    await new Promise((res) => setTimeout(res, 11_000));
    const before = await torvm.status();
    const k0 = Date.now();
    process.kill(before.vm.pid as number, 'SIGKILL');
    await torvm.waitFor((s) => s.vm.restarts > before.vm.restarts, 60_000, 'the kill to be noticed');
    notice.push(ms(k0));
    await torvm.waitFor((s) => s.state === 'Running' && s.killSwitch === 'connected', 600_000, 'Running again');
    recover.push(await firstFetch(k0));
  }
  const { leaks, packets } = await watch.stop();
  await down(torvm);

  // 2b. The baseline: a stock Tor client in the same namespace and network.
  const client = await network.startClient();
  t0 = Date.now();
  const viaClient = await run('curl', ['-sS', '-m', '600', '--proxy', `socks5h://${client.socks}`, '-o', '/dev/null', '-w', '%{size_download}', url], { netns: client.netns, timeoutMs: 660_000 });
  const clientSeconds = ms(t0) / 1000;
  const clientMbps = (Number(viaClient.stdout) * 8) / clientSeconds / 1e6;
  console.log(`throughput (${megabytes} MB): TorVM ${torvmMbps.toFixed(1)} Mbit/s, stock Tor client ${clientMbps.toFixed(1)} Mbit/s, ratio ${(torvmMbps / clientMbps).toFixed(2)}`);
  console.log(`protection over ${kills} QEMU kills: ${leaks.length} leaked flows in ${packets.length} packets; noticed in median ${median(notice)} ms (max ${Math.max(...notice)}); traffic again in median ${(median(recover) / 1000).toFixed(1)} s (max ${(Math.max(...recover) / 1000).toFixed(1)} s)`);
  console.log(JSON.stringify({ coldMs: cold.toFetchMs, warmMs: warm.toFetchMs, torvmMbps, clientMbps, kills, leakedFlows: leaks.length, noticeMs: notice, recoverMs: recover }));
} finally {
  current?.child.kill('SIGKILL');
  await network.stop();
  rmSync(dir, { recursive: true, force: true });
}
