/**
 * Benchmark: the tun2socks engine (packages/netstack over a real TUN) against
 * the kernel path (nftables REDIRECT into a Node SOCKS forwarder), in two
 * network namespaces created here, measured in the same run.
 *
 *   node --import tsx bench/netstack-throughput.ts [megabytes=200] [connections=2000]
 *
 * Prints single-stream download/upload throughput, connection rate, the
 * engine/kernel ratios, and the engine's memory per 1,000 open connections.
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

async function rssAfterGc(fixture: EngineProcess): Promise<number> {
  fixture.command('gc');
  return (await fixture.stats()).rssBytes as number;
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
    const { engine, ready } = await EngineProcess.start(engineNs, { tun: `tvt${process.pid}b`, external }, 30_000, ['--expose-gc']);
    fixtures.push(engine);
    await routeIntoTun(engineNs, ready.tun);

    // Kernel path: REDIRECT inside its own namespace; the route only has to exist
    // for connect() to get as far as the nat OUTPUT hook.
    await kernelNs.destroy();
    await kernelNs.create();
    const kernel = await EngineProcess.spawn(kernelNs, 'kernel-path.ts', [], '"ready"', 30_000);
    fixtures.push(kernel.fixture);
    const { redirectPort } = (JSON.parse(kernel.line) as { ready: { redirectPort: number } }).ready;
    const ip = (...args: string[]): Promise<string> => run('ip', ['-n', kernelNs.name, ...args]);
    await ip('addr', 'add', '10.98.0.1/32', 'dev', 'lo');
    await ip('route', 'add', '10.99.0.0/16', 'dev', 'lo', 'src', '10.98.0.1');
    await kernelNs.exec(['nft', 'add', 'table', 'ip', 'tvbench']);
    await kernelNs.exec(['nft', 'add', 'chain', 'ip', 'tvbench', 'out', '{ type nat hook output priority -100 ; }']);
    await kernelNs.exec(['nft', 'add', 'rule', 'ip', 'tvbench', 'out', 'ip', 'daddr', '10.99.0.0/16', 'tcp', 'dport', '80', 'redirect', 'to', `:${redirectPort}`]);

    console.log(`netstack bench: ${megabytes} MB transfers, ${connections} connections (${PARALLEL} in parallel)`);
    const kernelResult = await measure(kernelNs, 'kernel');
    const engineResult = await measure(engineNs, 'engine');

    // Memory: RSS of the engine process with 1,000 idle connections open, minus without.
    const before = await rssAfterGc(engine);
    const hold = await EngineProcess.spawn(engineNs, 'client.ts', ['hold', '1000', '10.99'], '"held"', 120_000);
    fixtures.push(hold.fixture);
    const flows = (await engine.stats()).flows as number;
    const during = await rssAfterGc(engine);
    await hold.fixture.stop();

    const row = (name: string, k: number, e: number, unit: string): void =>
      console.log(`${name.padEnd(22)} kernel ${k.toFixed(1).padStart(9)} ${unit}   engine ${e.toFixed(1).padStart(9)} ${unit}   engine/kernel ${(e / k).toFixed(2)}`);
    row('download (1 stream)', kernelResult.downloadMbps, engineResult.downloadMbps, 'Mbit/s');
    row('upload (1 stream)', kernelResult.uploadMbps, engineResult.uploadMbps, 'Mbit/s');
    row('connection rate', kernelResult.connectionsPerSecond, engineResult.connectionsPerSecond, 'conn/s');
    console.log(
      `engine memory: ${flows} open flows (1000 connections held): ` +
        `RSS +${((during - before) / MB).toFixed(1)} MB per 1,000 connections (${before / MB | 0} MB -> ${during / MB | 0} MB)`,
    );
  } finally {
    for (const f of fixtures.reverse()) await f.stop().catch(() => {});
    await engineNs.destroy();
    await kernelNs.destroy();
  }
}

await main();
