/**
 * Throughput of the companion path, measured against the paths it builds on,
 * all in one bring-up (private Tor network, real `torvm up` with the LAN
 * gateway, a device namespace running `torvm companion`):
 *
 *   companion   device plain curl -> TUN -> netstack -> gateway SOCKS -> VM -> Tor
 *   gateway     device curl --socks5-hostname (credentials) -> gateway SOCKS -> VM -> Tor
 *   host        the TorVM host's own plain curl -> TAP -> VM (TransPort) -> Tor
 *
 * Prints medians and ratios; records nothing.
 *   node --import tsx bench/companion-throughput.ts [rounds=3] [megabytes=4]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLan, LAN } from '../test/harness/lan.ts';
import { killPid } from '../test/harness/netns.ts';
import { startTorNetwork } from '../test/harness/tor-network.ts';
import { waitFor } from '../test/harness/wait.ts';
import { TORVM_BIN, startTorvmUp, writeTorvmConfig } from '../test/e2e/torvm-run.ts';

const rounds = Number(process.argv[2] ?? 3);
const megabytes = Number(process.argv[3] ?? 4);
const bytes = megabytes * 1024 * 1024;
const IMAGE_DIR = process.env.TORVM_IMAGE_DIR ?? '/tmp/torvm-img-x86';
const PASSWORD = `bench-${process.pid}`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Bytes per second from curl's own measurement; throws when the download is short or fails. */
function download(ns: string, url: string, extra: string[] = []): number {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'curl', '-sS', '-m', '300', '-o', '/dev/null', '-w', '%{size_download} %{speed_download}', ...extra, url], { encoding: 'utf8', timeout: 320_000 });
  const [size, speed] = (r.stdout ?? '').trim().split(' ').map(Number);
  if (r.status !== 0 || size !== bytes) throw new Error(`download failed (${r.status}, ${size} B): ${r.stderr}`);
  return speed ?? NaN;
}

const dir = mkdtempSync(`/tmp/tvbench-comp-${process.pid}-`);
const network = await startTorNetwork();
let companion: ChildProcess | undefined;
let run: ReturnType<typeof startTorvmUp> | undefined;
const lan = await createLan(network.namespaces.host).catch(async (e: unknown) => { await network.stop(); throw e; });
try {
  const config = writeTorvmConfig(network, dir, IMAGE_DIR, {
    lanGateway: { enabled: true, listenAddress: LAN.hostAddress, allowedSubnets: [LAN.allowedSubnet], users: [{ username: 'bench', password: PASSWORD }], rateLimitPerMinute: 100_000 },
  });
  run = startTorvmUp(network, dir, config);
  await run.waitFor((s) => s.state === 'Running', 420_000, 'Running');
  writeFileSync(join(dir, 'pass'), PASSWORD, { mode: 0o600 });
  let out = '';
  companion = spawn('ip', ['netns', 'exec', lan.device, process.execPath, TORVM_BIN, 'companion', '--gateway-socks', `${LAN.hostAddress}:9050`, '--username', 'bench', '--password-file', join(dir, 'pass'), '--tun', 'tvc0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  companion.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  companion.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor(() => out.includes('companion running'), { timeoutMs: 60_000, what: 'companion', intervalMs: 100, diagnose: () => out });

  const url = `${network.http.nameUrl.replace(/\/$/, '')}/bytes/${bytes}`;
  const results: Record<string, number[]> = { companion: [], gateway: [], host: [] };
  download(lan.device, url); // warm the circuit
  for (let i = 0; i < rounds; i++) {
    results.companion!.push(download(lan.device, url));
    results.gateway!.push(download(lan.device, url, ['--socks5-hostname', `${LAN.hostAddress}:9050`, '--proxy-user', `bench:${PASSWORD}`]));
    results.host!.push(download(network.namespaces.host, url));
  }
  const mbps = (bps: number) => ((bps * 8) / 1e6).toFixed(1);
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)])) as Record<string, number>;
  console.log(`${rounds} rounds of ${megabytes} MiB, median Mbit/s:`);
  for (const [k, v] of Object.entries(m)) console.log(`  ${k.padEnd(10)} ${mbps(v)}   (all: ${results[k]!.map(mbps).join(', ')})`);
  console.log(`ratio companion/gateway: ${(m.companion! / m.gateway!).toFixed(2)}   companion/host: ${(m.companion! / m.host!).toFixed(2)}   gateway/host: ${(m.gateway! / m.host!).toFixed(2)}`);
} finally {
  if (companion?.pid && companion.exitCode === null) await killPid(companion.pid);
  if (run && run.child.exitCode === null) {
    run.cli(['down']);
    await Promise.race([run.exited, new Promise((r) => setTimeout(r, 120_000).unref())]);
    if (run.child.exitCode === null && run.child.pid) await killPid(run.child.pid);
  }
  await lan.stop();
  await network.stop();
  rmSync(dir, { recursive: true, force: true });
}
