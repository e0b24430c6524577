/**
 * Linux host networking for one TorVM run, as the lifecycle drives it:
 *
 *   saveNetwork()            journal: the world before (fsynced) ............ SaveNetwork
 *   engageKillSwitch()       nft `inet torvm` = booting, verified ........... EngageKillSwitch
 *   createTap()              TAP + /30 + static neighbour ................... CreateTAP
 *   configureRouting()       policy rules + the VM default route ............ ConfigureTAP
 *   configureDns()           resolver -> VM ................................. FlushDNS
 *   setConnected()           nft = connected ................................ Running
 *   restoreNetwork()         block, DNS, routes, TAP, then nft reset/lockdown  RestoreNetwork
 *
 * Every change is written to the journal before it is made, so `restore()`
 * (another process, after a crash) undoes exactly what was done. The kill
 * switch is engaged before anything else changes and removed last.
 *
 * The watch: once this object has engaged the kill switch for a run
 * (saveNetwork or recover came first), it watches the firewall, and from
 * each later step on also the TAP, routes and DNS, and repairs drift
 * within a second. It keeps watching in the `blocked` state a lockdown or a
 * failed stop leaves (with the policy rules kept as a routing-layer block),
 * and stops only when the kill switch is released or reset (or `close()`).
 * `watch()` only subscribes to repair events. One watch per namespace per
 * process: a newer run's object takes over from an older one's.
 */
import { join } from 'node:path';
import { TorvmError } from '../../core/errors.ts';
import { makePolicy, makePolicyOptions } from '../../core/policy.ts';
import type { FirewallPolicy, NetworkSettings, PolicyOptions, PolicyState } from '../../core/policy.ts';
import { blockingRules, planRouting, tapOnlyRouting } from '../../core/route-plan.ts';
import type { RoutePlan } from '../../core/route-plan.ts';
import type { CommandRunner } from '../exec.ts';
import type { Dns, FirewallStatus, JournalStep, NetworkJournal } from '../host-network.ts';
import { SYSTEM_RESOLV_CONF, createResolvConfDns, createResolvedDns, resolvedIsActive } from './dns.ts';
import { JOURNAL_FILE, createFileJournal } from './journal.ts';
import { startNetWatch, type NetWatch } from './net-watch.ts';
import { NFT_FAMILY, NFT_TABLE } from './nft-render.ts';
import { createNftFirewall } from './nft-firewall.ts';
import { createLinuxRouter } from './router.ts';
import { takeNetworkSnapshot } from './snapshot.ts';
import { linuxProcessIdentity } from './process-inspector.ts';
import { createLinuxTap } from './tap.ts';

export interface LinuxHostNetworkOptions {
  runner: CommandRunner;
  /** Where the journal lives (0700 directory, 0600 file). */
  stateDir: string;
  network: NetworkSettings & { bypassTable: number };
  torvmUid: number;
  torvmGid: number;
  /** Run every command in this namespace (tests). */
  netns?: string;
  /** The resolv.conf to manage. Tests pass /etc/netns/NAME/resolv.conf. */
  resolvConfPath?: string;
  /** `auto` uses systemd-resolved when it answers, else resolv.conf. */
  dnsBackend?: 'auto' | 'resolv-conf' | 'resolved';
  log?: (line: string) => void;
  /** The pid recorded in the journal (default: this process). */
  pid?: number;
}

/** What the watcher did, for logs and tests. */
export interface RepairEvent {
  reason: string;
  repaired: string[];
}

export type LinuxHostNetwork = ReturnType<typeof createLinuxHostNetwork>;

/** The kill-switch watch of each namespace ('' = the host's own) in this process, and the object that owns it. */
const activeWatches = new Map<string, { owner: object; stop(): Promise<void> }>();

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function withOwner(pid: number): { owner?: { bootId: string; startTime: string } } {
  const owner = linuxProcessIdentity(pid);
  return owner ? { owner } : {};
}

/**
 * True while the controller that wrote the journal is still running. A pid
 * alone is not enough: after a reboot the journal's pid may be any early-boot
 * process, and refusing then would leave the boot unblocked.
 */
function journalOwnerAlive(j: NetworkJournal): boolean {
  if (!pidAlive(j.pid)) return false;
  if (!j.owner) return true;
  const now = linuxProcessIdentity(j.pid);
  return now !== null && now.bootId === j.owner.bootId && now.startTime === j.owner.startTime;
}

export function createLinuxHostNetwork(opts: LinuxHostNetworkOptions) {
  const log = opts.log ?? (() => {});
  const scope = opts.netns ? { netns: opts.netns } : {};
  const firewall = createNftFirewall(opts.runner, scope);
  const router = createLinuxRouter(opts.runner, scope);
  const tap = createLinuxTap(opts.runner, scope);
  const journal = createFileJournal(opts.stateDir);
  const resolvConfPath = opts.resolvConfPath ?? SYSTEM_RESOLV_CONF;
  const policyOptions: PolicyOptions = makePolicyOptions(opts.network, opts.torvmUid);
  const plan: RoutePlan = planRouting({ options: policyOptions, torvmGid: opts.torvmGid, bypassTable: opts.network.bypassTable });
  const policy = (state: PolicyState): FirewallPolicy => makePolicy(state, policyOptions);

  let current: NetworkJournal | null = null;
  let dns: Dns | null = null;
  let liveState: PolicyState | null = null;
  let inheritedPreviousTable: string | null | undefined;
  /** Set by saveNetwork/recover: this object runs the lifecycle, so engaging the kill switch starts the watch. */
  let ownsRun = false;
  /** The policy rules stay as a routing-layer block (the `blocked` state after a run); the watch keeps them. */
  let routingBlock = false;
  const journalPath = join(opts.stateDir, JOURNAL_FILE);

  async function pickDns(kind: 'resolv-conf' | 'resolved' | null = null): Promise<Dns> {
    const backend = kind ?? (opts.dnsBackend === 'auto' || opts.dnsBackend === undefined
      ? ((await resolvedIsActive(opts.runner, scope)) ? 'resolved' : 'resolv-conf')
      : opts.dnsBackend);
    return backend === 'resolved' ? createResolvedDns(opts.runner, plan.tap.name, scope) : createResolvConfDns(resolvConfPath);
  }

  async function record(step: JournalStep): Promise<void> {
    if (!current) throw new TorvmError('ERR_INTERNAL', `network step ${step} before saveNetwork()`);
    if (current.steps.includes(step)) return;
    current = { ...current, steps: [...current.steps, step] };
    await journal.write(current);
  }

  /**
   * Kill-switch changes and the watcher's repairs run one at a time: a repair
   * racing a state change would put back the old state. The intended state is
   * recorded first, so a repair that runs next restores the new one.
   */
  let firewallTurn: Promise<unknown> = Promise.resolve();
  function exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = firewallTurn.then(fn, fn);
    firewallTurn = next.catch(() => {});
    return next;
  }

  // ---- The watch (see the top of the file). ----
  const self = {};
  const watchKey = opts.netns ?? '';
  let netWatch: NetWatch | null = null;
  let watchStarting: Promise<void> | null = null;
  const repairListeners = new Set<(e: RepairEvent) => void>();
  const errorListeners = new Set<(err: unknown) => void>();

  /** Stops another object's watch of this namespace: two watchers would fight over the table. */
  async function takeOverWatch(): Promise<void> {
    const previous = activeWatches.get(watchKey);
    if (previous && previous.owner !== self) await previous.stop();
  }

  function startWatch(): Promise<void> {
    if (netWatch) return Promise.resolve();
    watchStarting ??= (async () => {
      await takeOverWatch();
      const w = startNetWatch({
        ...scope,
        resolvConfPath,
        unref: true, // it watches while the process lives; it does not keep it alive
        onError: (err) => {
          log(`watch: ${errorText(err)}`);
          for (const l of errorListeners) l(err);
        },
        onChange: async (reason) => {
          const repaired = await api.reconcile();
          if (repaired.length === 0) return;
          log(`repaired after ${reason}: ${repaired.join(', ')}`);
          for (const l of repairListeners) l({ reason, repaired });
        },
      });
      netWatch = w;
      activeWatches.set(watchKey, { owner: self, stop: stopWatch });
      // A monitor that cannot start is restarted by the watch; the periodic check runs meanwhile.
      await w.ready.catch((err: unknown) => log(`watch: ${errorText(err)}`));
    })().finally(() => {
      watchStarting = null;
    });
    return watchStarting;
  }

  async function stopWatch(): Promise<void> {
    await watchStarting?.catch(() => {});
    const w = netWatch;
    netWatch = null;
    if (activeWatches.get(watchKey)?.owner === self) activeWatches.delete(watchKey);
    await w?.stop();
  }

  async function applyFirewall(state: PolicyState): Promise<void> {
    // The newest engage in this process wins: an older object's watch would put its own state back.
    await takeOverWatch();
    await exclusive(async () => {
      liveState = state;
      await firewall.apply(policy(state));
      log(`kill switch: ${state}`);
    });
    if (ownsRun) await startWatch();
  }

  /** The kill switch is removed: nothing left to watch, no routing block to keep. */
  async function released(): Promise<void> {
    routingBlock = false;
    await stopWatch();
  }

  /** Whether the journal belongs to a live controller other than this one (then it is not ours to undo). */
  const ownedByAnother = (j: NetworkJournal) => j.pid !== (opts.pid ?? process.pid) && journalOwnerAlive(j);

  /** Reads the journal; if it cannot be read, blocks first and then reports it. */
  async function readJournalOrBlock(): Promise<NetworkJournal | null> {
    try {
      return await journal.read();
    } catch (err) {
      const blocked = await applyFirewall('blocked').then(() => true, (e: unknown) => {
        log(`could not block after a journal error: ${errorText(e)}`);
        return false;
      });
      throw new TorvmError('ERR_NETWORK', `the network journal ${journalPath} cannot be read; ${blocked ? 'the kill switch stays on (blocked)' : 'blocking failed too'}`, {
        cause: err,
        hint: `inspect ${journalPath} (it records the routes and DNS TorVM changed), fix or remove it, then run \`torvm restore\``,
      });
    }
  }

  /** Undoes a journal's steps, newest first, under a `blocked` kill switch. Leaves nft as the journal says. */
  async function undo(j: NetworkJournal, keepBlocked: boolean, keepTap = false): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
        log(`restore: ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    // A host left blocked keeps the policy rules too: the routing layer blocks on its own (see core/route-plan.ts).
    const keep = keepBlocked || j.lockdown;
    routingBlock = false;
    // Block first: while routes and DNS are put back nothing may slip out.
    await applyFirewall('blocked');
    if (j.steps.includes('dns')) await attempt('DNS', async () => (await pickDns(j.dns.kind)).restore(j.dns));
    const samePlan = JSON.stringify(j.plan.rules) === JSON.stringify(plan.rules);
    if (keep) {
      await attempt('routing block', async () => {
        // Another version's plan goes first (its rules could equal some of ours), then ours block.
        if (j.steps.includes('routes') && !samePlan) await router.remove(j.plan);
        await router.applyRules(blockingRules(plan));
        if (j.steps.includes('routes') && samePlan) await router.remove(tapOnlyRouting(plan));
      });
      routingBlock = true;
    } else if (j.steps.includes('routes')) await attempt('routes', () => router.remove(j.plan));
    // A QEMU that outlived its controller still holds the TAP: keep it, so the VM can be adopted.
    if (j.steps.includes('tap') && !keepTap) await attempt('TAP', () => tap.destroy(j.plan.tap.name));
    if (errors.length > 0) {
      // Keep blocking: a half-restored host must not leak.
      throw new TorvmError('ERR_NETWORK', `restore failed in ${errors.length} step(s); the kill switch stays on`, { cause: errors[0], hint: 'run `torvm restore` again' });
    }
    if (keep) return;
    await exclusive(async () => {
      liveState = null;
      if (j.previousTable !== null) {
        await opts.runner.run('nft', ['-f', '-'], { timeoutMs: 10_000, input: `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n${j.previousTable}`, ...scope });
      } else {
        await firewall.reset();
      }
    });
    await released();
  }

  const api = {
    plan,
    policyOptions,
    firewall,

    /** `torvm killswitch engage`: the early-boot block (default `blocked`). Needs no journal. */
    async engageKillSwitch(state: PolicyState = 'booting'): Promise<void> {
      if (current) {
        try {
          await record('killswitch');
        } catch (err) {
          await applyFirewall('blocked'); // a journal that cannot be written never keeps the block off
          throw err;
        }
      } else {
        // A live controller's watcher would fight this change: refuse instead.
        const j = await readJournalOrBlock();
        if (j && ownedByAnother(j)) {
          throw new TorvmError('ERR_NETWORK', `TorVM controller pid ${j.pid} owns the kill switch`, { hint: 'use `torvm down`' });
        }
      }
      await applyFirewall(state);
    },
    /** `torvm killswitch release`: removes the table. Refused while a run's journal exists (use restore). */
    async releaseKillSwitch(): Promise<void> {
      const j = await journal.read();
      if (j) throw new TorvmError('ERR_NETWORK', 'TorVM is running (or crashed); refusing to open the kill switch', { hint: 'use `torvm down` or `torvm restore`' });
      await exclusive(async () => {
        liveState = null;
        await firewall.reset();
      });
      // The routing block a lockdown or failed stop kept goes with it.
      await router.remove(plan);
      await released();
    },
    /** `torvm killswitch status`: what the kernel enforces right now. */
    killSwitchStatus(): Promise<FirewallStatus> {
      return firewall.status();
    },

    /**
     * Recover: if a crashed run left a journal, undo its changes under a
     * `blocked` kill switch (which stays on). Returns false when there was no
     * journal. Refuses while that run's controller is still alive.
     */
    async recover(options: { keepTap?: boolean } = {}): Promise<boolean> {
      ownsRun = true;
      const old = await readJournalOrBlock();
      if (!old) return false;
      if (ownedByAnother(old)) {
        throw new TorvmError('ERR_NETWORK', `another TorVM controller (pid ${old.pid}) owns the network`, { hint: 'stop it first' });
      }
      log(`recovering: undoing the network changes of crashed run ${old.pid}${options.keepTap ? ' (keeping the TAP for the running VM)' : ''}`);
      await undo(old, true, options.keepTap ?? false);
      await journal.clear();
      inheritedPreviousTable = old.previousTable;
      return true;
    },

    /** SaveNetwork: recover if needed, then journal the host's own state before anything changes. */
    async saveNetwork(): Promise<void> {
      ownsRun = true;
      await api.recover();
      // After a recovery our own `blocked` table is loaded: what came before it is in the old journal.
      const previousTable = inheritedPreviousTable !== undefined ? inheritedPreviousTable : await firewall.listTable();
      dns = await pickDns();
      const before = await takeNetworkSnapshot(opts.runner, scope);
      current = {
        version: 1,
        createdAt: new Date().toISOString(),
        pid: opts.pid ?? process.pid,
        ...withOwner(opts.pid ?? process.pid),
        plan,
        dns: await dns.snapshot(),
        previousTable,
        before: before as unknown as Record<string, unknown>,
        steps: [],
        lockdown: policyOptions.lockdown,
      };
      await journal.write(current);
    },
    // Each step runs in turn with the watch's repairs, so a repair never sees a step half done.
    createTap(): Promise<void> {
      return exclusive(async () => {
        await record('tap');
        await tap.create(plan);
      });
    },
    configureRouting(): Promise<void> {
      return exclusive(async () => {
        if (liveState === null) throw new TorvmError('ERR_INTERNAL', 'routing changed before the kill switch was engaged');
        await record('routes');
        await router.apply(plan);
      });
    },
    configureDns(): Promise<void> {
      return exclusive(async () => {
        if (liveState === null) throw new TorvmError('ERR_INTERNAL', 'DNS changed before the kill switch was engaged');
        await record('dns');
        await (dns ?? (dns = await pickDns())).apply(plan.nameserver);
      });
    },
    /** Running: let host TCP into the VM. */
    async setConnected(): Promise<void> {
      await applyFirewall('connected');
    },
    /** Convenience for tests and the daemon: every set-up step in order, ending in `booting`. */
    async up(): Promise<void> {
      await api.saveNetwork();
      await api.engageKillSwitch('booting');
      await api.createTap();
      await api.configureRouting();
      await api.configureDns();
    },

    /** Checks every piece and puts back what drifted. Returns what it repaired. */
    async reconcile(): Promise<string[]> {
      return exclusive(async () => {
        const repaired: string[] = [];
        if (liveState === null) return repaired;
        const want = policy(liveState);
        try {
          await firewall.verify(want);
        } catch {
          await firewall.apply(want);
          repaired.push('kill switch');
        }
        if (routingBlock && !current) repaired.push(...(await router.applyRules(blockingRules(plan))));
        if (current?.steps.includes('tap') && !(await tap.exists(plan.tap.name))) {
          await tap.create(plan);
          repaired.push('TAP');
        }
        if (current?.steps.includes('routes')) {
          const drift = await router.drift(plan);
          if (drift.length > 0) {
            await router.apply(plan);
            repaired.push(...drift);
          }
        }
        if (current?.steps.includes('dns') && dns && !(await dns.intact(plan.nameserver))) {
          await dns.apply(plan.nameserver);
          repaired.push('DNS');
        }
        return repaired;
      });
    },
    /**
     * Subscribes to repair events (and makes sure the watch runs). `stop()`
     * only unsubscribes: the watch itself lives as long as the kill switch.
     */
    async watch(onRepair: (e: RepairEvent) => void = () => {}, onError?: (err: unknown) => void): Promise<NetWatch> {
      repairListeners.add(onRepair);
      if (onError) errorListeners.add(onError);
      await startWatch();
      return {
        ready: Promise.resolve(),
        async stop() {
          repairListeners.delete(onRepair);
          if (onError) errorListeners.delete(onError);
        },
      };
    },
    /** Whether the kill-switch watch is running (tests, status). */
    get watching(): boolean {
      return netWatch !== null;
    },
    /** Stops the watch without touching the network (end of a test, process shutdown). */
    async close(): Promise<void> {
      repairListeners.clear();
      errorListeners.clear();
      await stopWatch();
    },

    /**
     * RestoreNetwork: routes, DNS and the TAP back as they were. The kill switch is
     * removed only after a user stop; with `keepBlocking` (a failure, a signal) or
     * in lockdown it stays `blocked`.
     */
    async restoreNetwork(options: { keepBlocking?: boolean } = {}): Promise<void> {
      const j = current ?? (await readJournalOrBlock());
      if (!j) {
        // Nothing was changed, but a run that failed must still end blocked.
        if (options.keepBlocking) await applyFirewall('blocked');
        return;
      }
      if (j !== current && ownedByAnother(j)) {
        // Another live controller's run (this one failed before saving its own): not ours to undo.
        log(`restore: the network belongs to TorVM controller pid ${j.pid}; left as it is`);
        return;
      }
      // From here the watch repairs only the kill switch: it must not put back what the undo removes.
      current = null;
      await undo(j, options.keepBlocking ?? false);
      await journal.clear();
    },
    /** `torvm restore`: undo a crashed run from its journal. Returns false when there was nothing to do. */
    async restore(): Promise<boolean> {
      const j = await readJournalOrBlock();
      if (!j) return false;
      if (j.pid !== (opts.pid ?? process.pid) && journalOwnerAlive(j)) {
        throw new TorvmError('ERR_NETWORK', `TorVM controller pid ${j.pid} is still running`, { hint: 'use `torvm down`' });
      }
      await undo(j, false);
      await journal.clear();
      current = null;
      return true;
    },
  };
  return api;
}
