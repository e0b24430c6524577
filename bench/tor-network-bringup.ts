/**
 * Benchmark: time until the private Tor network (test/harness) is usable.
 *
 *   node --import tsx bench/tor-network-bringup.ts [cycles=5]
 *
 * Each cycle brings the network up, starts a stock client in the host
 * namespace, fetches one page through it, and tears everything down. The
 * first cycle generates fresh keys (no key cache) and is the baseline; the
 * later cycles use the key cache, as tests do. Reports per-phase medians and
 * the ratio of each median to the baseline cycle. Needs root.
 */
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTorNetwork } from '../test/harness/tor-network.ts';
import { curlViaSocks } from '../test/harness/tor-client.ts';
import { missingPrerequisites } from '../test/harness/prerequisites.ts';

interface Cycle {
  keys: number;
  usable: number;
  onion: number;
  clientFetch: number;
  rssMb: number;
}

function rssKb(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function cycle(keyCache: string): Promise<Cycle> {
  const started = Date.now();
  const network = await startTorNetwork({ keyCache, timeoutMs: 180_000 });
  try {
    const client = await network.startClient();
    const page = await curlViaSocks(client.netns, client.socks, network.http.url);
    if (page.status !== 200) throw new Error(`fetch through the client returned ${page.status}`);
    const clientFetch = Date.now() - started;
    const rss = [...network.tors, client.tor].reduce((sum, t) => sum + rssKb(t.pid), 0);
    return {
      keys: network.timings.keys ?? NaN,
      usable: network.timings['relays-have-consensus'] ?? NaN,
      onion: network.timings['onion-published'] ?? NaN,
      clientFetch,
      rssMb: Math.round(rss / 1024),
    };
  } finally {
    await network.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const missing = missingPrerequisites();
if (missing.length > 0) {
  console.error(`tor-network-bringup: missing ${missing.join(', ')}`);
  process.exit(2);
}
const cycles = Math.max(2, Number(process.argv[2] ?? 5));
const keyCache = mkdtempSync(join(tmpdir(), 'tvhbench-keys-'));
try {
  const results: Cycle[] = [];
  for (let i = 0; i < cycles; i++) {
    const result = await cycle(keyCache); // cycle 0 fills the empty cache: the cold baseline
    results.push(result);
    console.log(`cycle ${i + 1}/${cycles}${i === 0 ? ' (baseline: fresh keys)' : ''}: ${JSON.stringify(result)}`);
  }
  const [baseline, ...warm] = results as [Cycle, ...Cycle[]];
  const fields: (keyof Cycle)[] = ['keys', 'usable', 'onion', 'clientFetch', 'rssMb'];
  console.log('\nphase          baseline   median(warm)   ratio');
  for (const field of fields) {
    const m = median(warm.map((r) => r[field]));
    const unit = field === 'rssMb' ? 'MB' : 'ms';
    console.log(`${field.padEnd(14)} ${`${baseline[field]} ${unit}`.padStart(9)}   ${`${m} ${unit}`.padStart(12)}   ${(m / baseline[field]).toFixed(2)}x`);
  }
  console.log(`\nusable network (every relay holds a full consensus): median ${median(warm.map((r) => r.usable))} ms over ${warm.length} warm cycles`);
} finally {
  rmSync(keyCache, { recursive: true, force: true });
}
