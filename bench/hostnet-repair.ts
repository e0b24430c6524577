/**
 * How fast the watcher puts routing and DNS back (goal: well under a second),
 * and how long up/down take. Inside test namespaces, like the tests.
 *   node --import tsx bench/hostnet-repair.ts [rounds]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createCommandRunner } from '../packages/torvm/src/platform/exec.ts';
import { createLinuxHostNetwork } from '../packages/torvm/src/platform/linux/host-network.ts';
import { run } from '../test/harness/run.ts';
import { waitFor } from '../test/harness/wait.ts';
import { ADDR, createTopology } from '../test/leak/topology.ts';

const rounds = Number(process.argv[2] ?? 10);
const topo = await createTopology('bench');
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
try {
  const net = createLinuxHostNetwork({
    runner: createCommandRunner(), stateDir: topo.stateDir, netns: topo.host, resolvConfPath: topo.resolvConf, dnsBackend: 'resolv-conf',
    torvmUid: topo.torvmUid, torvmGid: topo.torvmGid,
    network: { tapName: 'torvm0', hostAddress: '10.10.10.2', vmAddress: '10.10.10.1', bypassTable: 7911, allowLan: false, lanSubnets: [], lockdown: false },
  });
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let t0 = process.hrtime.bigint();
    await net.up();
    up.push(ms(t0));
    t0 = process.hrtime.bigint();
    await net.restoreNetwork();
    down.push(ms(t0));
  }
  await net.up();
  const watch = await net.watch();
  const dnsRepair: number[] = [];
  const ruleRepair: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let t0 = process.hrtime.bigint();
    writeFileSync(topo.resolvConf, `nameserver ${ADDR.router4}\n`);
    await waitFor(() => readFileSync(topo.resolvConf, 'utf8').includes('10.10.10.1'), { timeoutMs: 10_000, what: 'DNS repair', intervalMs: 5 });
    dnsRepair.push(ms(t0));
    t0 = process.hrtime.bigint();
    await run('ip', ['rule', 'del', 'pref', '7902'], { netns: topo.host });
    await waitFor(async () => (await run('ip', ['rule', 'show', 'pref', '7902'], { netns: topo.host })).stdout.includes('7911'), { timeoutMs: 10_000, what: 'rule repair', intervalMs: 5 });
    ruleRepair.push(ms(t0));
  }
  await watch.stop();
  // Baseline in the same run: the same damage repaired by a direct reconcile()
  // call, with no watcher. The ratio is what noticing the change costs.
  const directRepair: number[] = [];
  for (let i = 0; i < rounds; i++) {
    await run('ip', ['rule', 'del', 'pref', '7902'], { netns: topo.host });
    const t0 = process.hrtime.bigint();
    await net.reconcile();
    directRepair.push(ms(t0));
  }
  await net.restoreNetwork();
  console.log(JSON.stringify({
    rounds,
    medianMs: { up: median(up), down: median(down), dnsRepair: median(dnsRepair), ruleRepair: median(ruleRepair), directRuleRepair: median(directRepair) },
    maxMs: { dnsRepair: Math.max(...dnsRepair), ruleRepair: Math.max(...ruleRepair) },
    ratio: { watcherVsDirectRuleRepair: +(median(ruleRepair) / median(directRepair)).toFixed(2) },
  }, null, 2));
} finally {
  await topo.destroy();
}
