/**
 * The host-networking vocabulary every OS implements: a kill-switch firewall,
 * a router, a resolver, the VM link and a journal. Linux lives in
 * platform/linux, a text-printing fake in platform/fake.
 */
import type { FirewallPolicy, PolicyState } from '../core/policy.ts';
import type { RoutePlan } from '../core/route-plan.ts';

/** What the kernel currently enforces, read back from it. */
export interface FirewallStatus {
  /** Whether TorVM's table is loaded at all. */
  readonly present: boolean;
  /** The state recorded in the live table; null if absent or not ours. */
  readonly state: PolicyState | null;
  /** Fingerprint of the live ruleset (equal to the rendered one when verified). */
  readonly fingerprint: string | null;
}

/**
 * The kill switch. `apply` replaces the whole ruleset atomically and verifies
 * it; it never leaves a moment without a drop policy once engaged. The rules
 * live in the kernel and outlive the controller.
 */
export interface Firewall {
  apply(policy: FirewallPolicy): Promise<void>;
  /** Throws ERR_FIREWALL unless the live ruleset is exactly `policy`'s. */
  verify(policy: FirewallPolicy): Promise<void>;
  /** Removes TorVM's rules entirely (traffic flows as before TorVM). */
  reset(): Promise<void>;
  status(): Promise<FirewallStatus>;
}

/** Policy routing that sends the host's traffic into the VM link. */
export interface Router {
  apply(plan: RoutePlan): Promise<void>;
  /** The plan's rules/routes that are missing right now (empty when intact). */
  drift(plan: RoutePlan): Promise<string[]>;
  remove(plan: RoutePlan): Promise<void>;
}

/** The host's system resolver. */
export interface Dns {
  /** Points the system resolver at `nameserver` only. */
  apply(nameserver: string): Promise<void>;
  /** Whether the resolver still names only `nameserver`. */
  intact(nameserver: string): Promise<boolean>;
  /** Puts back exactly what `snapshot` saw. */
  restore(saved: DnsSnapshot): Promise<void>;
  snapshot(): Promise<DnsSnapshot>;
}

/** The DNS setup before TorVM touched it. */
export type DnsSnapshot =
  | { readonly kind: 'resolv-conf'; readonly path: string; readonly symlinkTarget: string | null; readonly content: string | null; readonly mode: number | null }
  | { readonly kind: 'resolved'; readonly links: readonly { readonly link: string; readonly servers: readonly string[]; readonly domains: readonly string[] }[] };

/** The host end of the VM's LAN link. */
export interface TapLink {
  create(plan: RoutePlan): Promise<void>;
  exists(name: string): Promise<boolean>;
  destroy(name: string): Promise<void>;
}

/** What `restore` needs after a crash: the world before, and what TorVM changed. */
export interface NetworkJournal {
  readonly version: 1;
  readonly createdAt: string;
  /** The controller's pid when written (for "is it still running"). */
  readonly pid: number;
  /** That pid's boot id and start time, so a reused pid (after a reboot, above all) is not taken for the controller. Absent in journals from older versions. */
  readonly owner?: { readonly bootId: string; readonly startTime: string };
  readonly plan: RoutePlan;
  readonly dns: DnsSnapshot;
  /** The `inet torvm` table found before TorVM started (a leftover), as nft text; null if none. */
  readonly previousTable: string | null;
  /** Opaque snapshot of routes and rules (`ip -json`), for diagnostics and tests. */
  readonly before: Record<string, unknown>;
  /** Applied steps, in order, so restore undoes only what happened. */
  readonly steps: readonly JournalStep[];
  /** Keep blocking after restore (lockdown). */
  readonly lockdown: boolean;
}

export type JournalStep = 'killswitch' | 'tap' | 'routes' | 'dns';

export interface Journal {
  read(): Promise<NetworkJournal | null>;
  /** Atomic, durable (write, fsync, rename, fsync dir), mode 0600. */
  write(journal: NetworkJournal): Promise<void>;
  clear(): Promise<void>;
}

/** Host networking as the lifecycle drives it (each OS implements it in platform/<os>/host-network.ts). */
export interface HostNetworkLifecycle {
  /** Undo a crashed run under a blocked kill switch; `keepTap` when its VM is still running (to be adopted). */
  recover(options?: { keepTap?: boolean }): Promise<boolean>;
  saveNetwork(): Promise<void>;
  engageKillSwitch(state: PolicyState): Promise<void>;
  createTap(): Promise<void>;
  configureRouting(): Promise<void>;
  configureDns(): Promise<void>;
  setConnected(): Promise<void>;
  watch(onRepair: (e: { reason: string; repaired: string[] }) => void): Promise<{ stop(): Promise<void> }>;
  restoreNetwork(options: { keepBlocking: boolean }): Promise<void>;
}
