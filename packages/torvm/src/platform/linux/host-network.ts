/**
 * Linux host networking for one TorVM run, as the lifecycle drives it:
 *
 *   saveNetwork()            journal: the world before (fsynced) ............ SaveNetwork
 *   engageKillSwitch()       nft `inet torvm` = booting, verified ........... EngageKillSwitch
 *   createTap()              TAP + /30 + static neighbour ................... CreateTAP
 *   configureRouting()       policy rules + the VM default route ............ ConfigureTAP
 *   configureDns()           resolver -> VM ................................. FlushDNS
 *   setConnected()           nft = connected ................................ Running
 *   watch()                  repair drift within a second ................... Running
 *   restoreNetwork()         block, DNS, routes, TAP, then nft reset/lockdown  RestoreNetwork
 *
 * Every change is written to the journal before it is made, so `restore()`
 * (another process, after a crash) undoes exactly what was done. The kill
 * switch is engaged before anything else changes and removed last.
 */
import { TorvmError } from '../../core/errors.ts';
import { makePolicy, makePolicyOptions } from '../../core/policy.ts';
import type { FirewallPolicy, NetworkSettings, PolicyOptions, PolicyState } from '../../core/policy.ts';
import { planRouting } from '../../core/route-plan.ts';
import type { RoutePlan } from '../../core/route-plan.ts';
import type { CommandRunner } from '../exec.ts';
import type { Dns, FirewallStatus, JournalStep, NetworkJournal } from '../host-network.ts';
import { SYSTEM_RESOLV_CONF, createResolvConfDns, createResolvedDns, resolvedIsActive } from './dns.ts';
import { createFileJournal } from './journal.ts';
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

  function applyFirewall(state: PolicyState): Promise<void> {
    return exclusive(async () => {
      liveState = state;
      await firewall.apply(policy(state));
      log(`kill switch: ${state}`);
    });
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
    // Block first: while routes and DNS are put back nothing may slip out.
    await applyFirewall('blocked');
    if (j.steps.includes('dns')) await attempt('DNS', async () => (await pickDns(j.dns.kind)).restore(j.dns));
    if (j.steps.includes('routes')) await attempt('routes', () => router.remove(j.plan));
    // A QEMU that outlived its controller still holds the TAP: keep it, so the VM can be adopted.
    if (j.steps.includes('tap') && !keepTap) await attempt('TAP', () => tap.destroy(j.plan.tap.name));
    if (errors.length > 0) {
      // Keep blocking: a half-restored host must not leak.
      throw new TorvmError('ERR_NETWORK', `restore failed in ${errors.length} step(s); the kill switch stays on`, { cause: errors[0], hint: 'run `torvm restore` again' });
    }
    if (keepBlocked || j.lockdown) return;
    await exclusive(async () => {
      liveState = null;
      if (j.previousTable !== null) {
        await opts.runner.run('nft', ['-f', '-'], { timeoutMs: 10_000, input: `table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n${j.previousTable}`, ...scope });
      } else {
        await firewall.reset();
      }
    });
  }

  const api = {
    plan,
    policyOptions,
    firewall,

    /** `torvm killswitch engage`: the early-boot block (default `blocked`). Needs no journal. */
    async engageKillSwitch(state: PolicyState = 'booting'): Promise<void> {
      if (current) await record('killswitch');
      else {
        // A live controller's watcher would fight this change: refuse instead.
        const j = await journal.read();
        if (j && j.pid !== (opts.pid ?? process.pid) && journalOwnerAlive(j)) {
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
      const old = await journal.read();
      if (!old) return false;
      if (old.pid !== (opts.pid ?? process.pid) && journalOwnerAlive(old)) {
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
    async createTap(): Promise<void> {
      await record('tap');
      await tap.create(plan);
    },
    async configureRouting(): Promise<void> {
      if (liveState === null) throw new TorvmError('ERR_INTERNAL', 'routing changed before the kill switch was engaged');
      await record('routes');
      await router.apply(plan);
    },
    async configureDns(): Promise<void> {
      if (liveState === null) throw new TorvmError('ERR_INTERNAL', 'DNS changed before the kill switch was engaged');
      await record('dns');
      await (dns ?? (dns = await pickDns())).apply(plan.nameserver);
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
      const repaired: string[] = [];
      await exclusive(async () => {
        if (liveState === null) return;
        const want = policy(liveState);
        try {
          await firewall.verify(want);
        } catch {
          await firewall.apply(want);
          repaired.push('kill switch');
        }
      });
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
    },
    /** Starts the watcher; `onRepair` hears about each repair. */
    async watch(onRepair: (e: RepairEvent) => void = () => {}, onError: (err: unknown) => void = (err) => log(`watch: ${String(err)}`)): Promise<NetWatch> {
      const w = startNetWatch({
        ...scope,
        resolvConfPath,
        onError,
        onChange: async (reason) => {
          const repaired = await api.reconcile();
          if (repaired.length > 0) {
            log(`repaired after ${reason}: ${repaired.join(', ')}`);
            onRepair({ reason, repaired });
          }
        },
      });
      await w.ready;
      return w;
    },

    /**
     * RestoreNetwork: routes, DNS and the TAP back as they were. The kill switch is
     * removed only after a user stop; with `keepBlocking` (a failure, a signal) or
     * in lockdown it stays `blocked`.
     */
    async restoreNetwork(options: { keepBlocking?: boolean } = {}): Promise<void> {
      const j = current ?? (await journal.read());
      if (!j) {
        // Nothing was changed, but a run that failed must still end blocked.
        if (options.keepBlocking) await applyFirewall('blocked');
        return;
      }
      await undo(j, options.keepBlocking ?? false);
      await journal.clear();
      current = null;
    },
    /** `torvm restore`: undo a crashed run from its journal. Returns false when there was nothing to do. */
    async restore(): Promise<boolean> {
      const j = await journal.read();
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
