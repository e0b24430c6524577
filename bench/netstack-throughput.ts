/**
 * Benchmark: the tun2socks engine (packages/netstack over a real TUN) against
 * the kernel path (nftables REDIRECT into a Node SOCKS forwarder), in two
 * network namespaces created here, measured in the same run.
 *
 *   node --import tsx bench/netstack-throughput.ts [megabytes=200] [connections=2000] [mtu=65535] [rounds=3]
 *
 * The paths are measured in alternating rounds (kernel, engine, kernel, ...) and
 * each figure is the median of its rounds, so that load from other jobs on a
 * shared machine skews both paths alike.
 * Prints single-stream download/upload throughput, connection rate, the
 * engine/kernel ratios, and the engine's memory per 1,000 open connections.
 * Both paths get the same MTU: the engine's TUN and the kernel path's loopback
 * (whose default is 65536). Both links are virtual, so a 64 KiB MTU is as
 * legitimate for the TUN as it is for lo; pass 1500 to compare at Ethernet size.
 * Needs root. Everything runs inside the namespaces; both are removed at the end.
 */
import {
  EngineProcess,
  TestNamespace,
  missingPrerequisite,
  routeIntoTun,
  run,
} from '../packages/netstack/test/integration/netns-harness.ts';

const megabytes = Number(process.argv[2] ?? 200);
const connections = Number(process.argv[3] ?? 2000);
const mtu = Number(process.argv[4] ?? 65535);
const rounds = Number(process.argv[5] ?? 3);
const PARALLEL = 50;
const MB = 1024 * 1024;

interface PathResult {
  downloadMbps: number;
  uploadMbps: number;
  connectionsPerSecond: number;
}

async function measure(ns: TestNamespace, label: string): Promise<PathResult> {
  const bytes = String(megabytes * MB);
  const download = JSON.parse(await ns.node('client.ts', ['download', bytes, '10.99.0.80', `bench-${label}`], 600_000)) as { length: number; elapsedMs: number };
  if (download.length !== megabytes * MB) throw new Error(`${label}: short download`);
  const upload = JSON.parse(await ns.node('client.ts', ['upload', bytes, '10.99.0.80'], 600_000)) as { server: { length: number }; elapsedMs: number };
  if (upload.server.length !== megabytes * MB) throw new Error(`${label}: short upload`);
  const rate = JSON.parse(await ns.node('client.ts', ['rate', String(connections), String(PARALLEL), '10.99.0.80'], 600_000)) as { ok: number; elapsedMs: number };
  if (rate.ok !== connections) throw new Error(`${label}: ${connections - rate.ok} connections failed`);
  const mbps = (ms: number): number => (megabytes * MB * 8) / (ms / 1000) / 1e6;
  return {
    downloadMbps: mbps(download.elapsedMs),
    uploadMbps: mbps(upload.elapsedMs),
    connectionsPerSecond: connections / (rate.elapsedMs / 1000),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function medianResult(results: PathResult[]): PathResult {
  return {
    downloadMbps: median(results.map((r) => r.downloadMbps)),
    uploadMbps: median(results.map((r) => r.uploadMbps)),
    connectionsPerSecond: median(results.map((r) => r.connectionsPerSecond)),
  };
}

/** The MTU the kernel reports for a link: proof that both paths ran with the same one. */
async function linkMtu(ns: TestNamespace, link: string): Promise<number> {
  const out = await run('ip', ['-n', ns.name, '-o', 'link', 'show', link]);
  return Number(/ mtu (\d+)/.exec(out)?.[1]);
}

async function memoryAfterGc(fixture: EngineProcess): Promise<{ rss: number; js: number }> {
  fixture.command('gc');
  const stats = await fixture.stats();
  return { rss: stats.rssBytes as number, js: (stats.heapUsedBytes as number) + (stats.externalBytes as number) };
}

async function main(): Promise<void> {
  const missing = missingPrerequisite();
  if (missing) throw new Error(`bench: ${missing}`);
  const engineNs = new TestNamespace('be');
  const kernelNs = new TestNamespace('bk');
  const fixtures: EngineProcess[] = [];
  try {
    // Engine path.
    await engineNs.destroy();
    await engineNs.create();
    // The test servers run in their own process so that the engine's RSS is the engine's.
    const servers = await EngineProcess.spawn(engineNs, 'servers-main.ts', [], '"ready"', 30_000);
    fixtures.push(servers.fixture);
    const external = (JSON.parse(servers.line) as { ready: { socksPort: number; dnsPort: number } }).ready;
    const { engine, ready } = await EngineProcess.start(engineNs, { tun: `tvt${process.pid}b`, external, mtu }, 30_000, ['--expose-gc']);
    fixtures.push(engine);
    await routeIntoTun(engineNs, ready.tun);

    // Memory first, in the fresh engine: RSS with 1,000 idle connections open, minus
    // without. (After the 200 MB transfers RSS stays high and hides the difference.)
    const before = await memoryAfterGc(engine);
    const hold = await EngineProcess.spawn(engineNs, 'client.ts', ['hold', '1000', '10.99'], '"held"', 120_000);
    fixtures.push(hold.fixture);
    const flows = (await engine.stats()).flows as number;
    const during = await memoryAfterGc(engine);
    await hold.fixture.stop();

    // Kernel path: REDIRECT inside its own namespace; the route only has to exist
    // for connect() to get as far as the nat OUTPUT hook.
    await kernelNs.destroy();
    await kernelNs.create();
    const kernel = await EngineProcess.spawn(kernelNs, 'kernel-path.ts', [], '"ready"', 30_000);
    fixtures.push(kernel.fixture);
    const { redirectPort } = (JSON.parse(kernel.line) as { ready: { redirectPort: number } }).ready;
    const ip = (...args: string[]): Promise<string> => run('ip', ['-n', kernelNs.name, ...args]);
    await ip('link', 'set', 'lo', 'mtu', String(mtu));
    await ip('addr', 'add', '10.98.0.1/32', 'dev', 'lo');
    await ip('route', 'add', '10.99.0.0/16', 'dev', 'lo', 'src', '10.98.0.1');
    await kernelNs.exec(['nft', 'add', 'table', 'ip', 'tvbench']);
    await kernelNs.exec(['nft', 'add', 'chain', 'ip', 'tvbench', 'out', '{ type nat hook output priority -100 ; }']);
    await kernelNs.exec(['nft', 'add', 'rule', 'ip', 'tvbench', 'out', 'ip', 'daddr', '10.99.0.0/16', 'tcp', 'dport', '80', 'redirect', 'to', `:${redirectPort}`]);

    const mtus = `engine TUN ${await linkMtu(engineNs, ready.tun)}, kernel lo ${await linkMtu(kernelNs, 'lo')}`;
    console.log(`netstack bench: ${megabytes} MB transfers, ${connections} connections (${PARALLEL} in parallel), MTU ${mtus}, median of ${rounds} alternating rounds`);
    const kernelRounds: PathResult[] = [];
    const engineRounds: PathResult[] = [];
    for (let i = 0; i < rounds; i++) {
      kernelRounds.push(await measure(kernelNs, `kernel${i}`));
      engineRounds.push(await measure(engineNs, `engine${i}`));
    }
    const kernelResult = medianResult(kernelRounds);
    const engineResult = medianResult(engineRounds);

    const row = (name: string, metric: keyof PathResult, unit: string): void => {
      const k = kernelResult[metric];
      const e = engineResult[metric];
      const perRound = kernelRounds.map((kr, i) => (engineRounds[i]![metric] / kr[metric]).toFixed(2)).join(', ');
      console.log(
        `${name.padEnd(22)} kernel ${k.toFixed(1).padStart(9)} ${unit}   engine ${e.toFixed(1).padStart(9)} ${unit}   engine/kernel ${(e / k).toFixed(2)}   (rounds: ${perRound})`,
      );
    };
    row('download (1 stream)', 'downloadMbps', 'Mbit/s');
    row('upload (1 stream)', 'uploadMbps', 'Mbit/s');
    row('connection rate', 'connectionsPerSecond', 'conn/s');
    console.log(
      `engine memory: ${flows} open flows (1000 connections held): ` +
        `RSS +${((during.rss - before.rss) / MB).toFixed(1)} MB per 1,000 connections (${before.rss / MB | 0} MB -> ${during.rss / MB | 0} MB), ` +
        `JS heap + buffers +${((during.js - before.js) / MB).toFixed(1)} MB`,
    );
  } finally {
    for (const f of fixtures.reverse()) await f.stop().catch(() => {});
    await engineNs.destroy();
    await kernelNs.destroy();
  }
}

await main();
