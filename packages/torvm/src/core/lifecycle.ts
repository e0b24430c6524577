/**
 * The lifecycle state machine. The table below is the whole policy: which
 * state follows which, how long each may take, and what it means. Each
 * state's work is injected, so the engine runs without the OS in tests.
 *
 * Invariants the engine guarantees (and test/unit/lifecycle.test.ts checks):
 *  - Every run ends with Shutdown, RestoreNetwork and Cleanup, each exactly once.
 *  - A failure or a cancellation never releases the kill switch: RestoreNetwork
 *    is told `keepBlocking: true`. Only an explicit user stop releases it, and
 *    lockdown keeps blocking even then.
 *  - Cancellation works in every state; a state that ignores its AbortSignal is
 *    abandoned when it is cancelled or times out.
 */
import { TorvmError } from './errors.ts';

export const STATES = [
  'Init', 'Recover', 'CheckPrivileges', 'SaveNetwork', 'EngageKillSwitch', 'CreateTAP', 'LaunchVM',
  'WaitTAP', 'ConfigureTAP', 'FlushDNS', 'WaitBootstrap', 'Running', 'Shutdown', 'RestoreNetwork', 'Cleanup',
] as const;
export type StateName = (typeof STATES)[number];
export type TeardownState = 'Shutdown' | 'RestoreNetwork' | 'Cleanup';
export type SetupState = Exclude<StateName, TeardownState>;

interface StateSpec {
  /** What happens in this state, as the log says it. */
  describe: string;
  /** The normal successor; null ends the run. */
  next: StateName | null;
  /** Other successors a state's work may choose. */
  branches?: readonly StateName[];
  /** Bound on the state's work; null means "until stopped" (Running). */
  timeoutMs: number | null;
}

/** The lifecycle, top to bottom. */
export const LIFECYCLE: Readonly<Record<StateName, StateSpec>> = {
  Init:             { describe: 'starting up and looking for a journal from a crashed run', next: 'CheckPrivileges', branches: ['Recover'], timeoutMs: 10_000 },
  Recover:          { describe: 'recovering from a crashed run: adopting or undoing what it left', next: 'CheckPrivileges', timeoutMs: 60_000 },
  CheckPrivileges:  { describe: 'checking privileges, tools and the VM image', next: 'SaveNetwork', timeoutMs: 30_000 },
  SaveNetwork:      { describe: 'saving the current routes, rules and DNS to the journal', next: 'EngageKillSwitch', timeoutMs: 15_000 },
  EngageKillSwitch: { describe: 'engaging the kill switch: everything but the VM link is blocked from now on', next: 'CreateTAP', timeoutMs: 15_000 },
  CreateTAP:        { describe: 'creating the TAP link to the VM', next: 'LaunchVM', timeoutMs: 15_000 },
  LaunchVM:         { describe: 'launching the VM', next: 'WaitTAP', timeoutMs: 60_000 },
  WaitTAP:          { describe: 'waiting for the VM to come up on the TAP link', next: 'ConfigureTAP', timeoutMs: 120_000 },
  ConfigureTAP:     { describe: 'routing all traffic into the VM', next: 'FlushDNS', timeoutMs: 15_000 },
  FlushDNS:         { describe: 'pointing DNS at the VM and flushing caches', next: 'WaitBootstrap', timeoutMs: 15_000 },
  WaitBootstrap:    { describe: 'waiting for Tor to bootstrap', next: 'Running', timeoutMs: 300_000 },
  Running:          { describe: 'running: all traffic goes through Tor', next: 'Shutdown', branches: ['LaunchVM'], timeoutMs: null },
  Shutdown:         { describe: 'shutting down the VM', next: 'RestoreNetwork', timeoutMs: 60_000 },
  RestoreNetwork:   { describe: 'restoring host networking', next: 'Cleanup', timeoutMs: 30_000 },
  Cleanup:          { describe: 'cleaning up', next: null, timeoutMs: 15_000 },
};

export const TEARDOWN: readonly TeardownState[] = ['Shutdown', 'RestoreNetwork', 'Cleanup'];

/** Why the run is ending. */
export type EndReason = 'user-stop' | 'cancelled' | 'failed';

export interface StateContext {
  /** Aborted on cancellation or when the state's timeout fires. */
  signal: AbortSignal;
  /** 1 on the first entry of this state in this run, 2 on the next, … */
  attempt: number;
  /** Set for teardown states. */
  ending?: { reason: EndReason; keepBlocking: boolean; error?: unknown };
}

/** A state's work may pick one of its declared branches, or return nothing for `next`. */
export type StateResult = void | { goto: StateName };
export type StateWork = (ctx: StateContext) => Promise<StateResult>;
export type LifecycleWorks = Record<StateName, StateWork>;

export interface Transition {
  from: StateName | null;
  to: StateName;
  /** A readable sentence for the log. */
  sentence: string;
}

export interface LifecycleOptions {
  /** Keep blocking even after an explicit user stop. */
  lockdown: boolean;
  /** Override state timeouts (tests). */
  timeouts?: Partial<Record<StateName, number | null>>;
  onTransition?: (t: Transition) => void;
  /**
   * How many times in a row Running may send the run back to LaunchVM after a
   * VM that did not stay up for `vmStableMs`. A VM that ran that long resets
   * the count, so a long-running VM is always restarted; one that keeps
   * crashing at once ends the run (still blocked). Defaults: 5 and 10 s.
   */
  maxVmRestarts?: number;
  vmStableMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

export interface LifecycleResult {
  reason: EndReason;
  error?: unknown;
  /** Every state entered, in order. */
  visited: StateName[];
  /** Whether the kill switch was left engaged. */
  keptBlocking: boolean;
  /** Errors thrown by teardown states (each still ran). */
  teardownErrors: Array<{ state: TeardownState; error: unknown }>;
}

export class Lifecycle {
  readonly #works: LifecycleWorks;
  readonly #options: LifecycleOptions;
  readonly #stop = new AbortController();
  #stopKind: 'user-stop' | 'cancelled' | null = null;
  #current: StateName | null = null;
  #started = false;

  constructor(works: LifecycleWorks, options: LifecycleOptions) {
    this.#works = works;
    this.#options = options;
  }

  get state(): StateName | null {
    return this.#current;
  }

  /**
   * Asks the run to end. `user-stop` is an explicit stop by the user (the only
   * thing that may release the kill switch); `cancelled` is a signal or an
   * abort, which keeps blocking. The first request wins. Safe to call at any time.
   */
  stop(kind: 'user-stop' | 'cancelled'): void {
    if (this.#stopKind !== null) return;
    this.#stopKind = kind;
    this.#stop.abort(new TorvmError('ERR_CANCELLED', kind === 'user-stop' ? 'stopped by the user' : 'cancelled'));
  }

  /** Runs the lifecycle to its end. Never throws; the result says how it ended. */
  async run(): Promise<LifecycleResult> {
    if (this.#started) throw new TorvmError('ERR_INTERNAL', 'a Lifecycle runs only once');
    this.#started = true;
    const visited: StateName[] = [];
    const attempts = new Map<StateName, number>();
    let failure: unknown;
    let quickRestarts = 0;
    let runningSince = 0;
    const now = this.#options.now ?? Date.now;

    // 1. Set-up states, until Running ends, something fails, or a stop arrives.
    let state: StateName | null = 'Init';
    while (state !== null && !TEARDOWN.includes(state as TeardownState)) {
      if (this.#stop.signal.aborted) break;
      const attempt = (attempts.get(state) ?? 0) + 1;
      attempts.set(state, attempt);
      this.#enter(state, visited);
      if (state === 'Running') runningSince = now();
      let result: StateResult;
      try {
        result = await this.#runState(state, { attempt }, this.#stop.signal);
      } catch (err) {
        if (!this.#stop.signal.aborted) failure = err;
        break;
      }
      const spec: StateSpec = LIFECYCLE[state];
      if (result && 'goto' in result) {
        if (!spec.branches?.includes(result.goto)) {
          failure = new TorvmError('ERR_INTERNAL', `${state} may not go to ${result.goto}`);
          break;
        }
        if (state === 'Running' && result.goto === 'LaunchVM') {
          if (now() - runningSince >= (this.#options.vmStableMs ?? 10_000)) quickRestarts = 0;
          if (++quickRestarts > (this.#options.maxVmRestarts ?? 5)) {
            failure = new TorvmError('ERR_VM', `the VM failed ${quickRestarts} times in a row soon after starting; giving up`);
            break;
          }
        }
        state = result.goto;
      } else {
        state = spec.next;
      }
    }

    // 2. Teardown: each state exactly once, whatever happened above.
    const reason: EndReason = failure !== undefined ? 'failed' : (this.#stopKind ?? 'user-stop');
    let keepBlocking = reason !== 'user-stop' || this.#options.lockdown;
    const teardownErrors: LifecycleResult['teardownErrors'] = [];
    for (const t of TEARDOWN) {
      this.#enter(t, visited);
      try {
        await this.#runState(t, { attempt: 1, ending: { reason, keepBlocking, ...(failure !== undefined ? { error: failure } : {}) } }, new AbortController().signal);
      } catch (err) {
        teardownErrors.push({ state: t, error: err });
        // The network opens only once the VM is known to be gone.
        if (t === 'Shutdown') keepBlocking = true;
      }
    }
    this.#current = null;
    return { reason, ...(failure !== undefined ? { error: failure } : {}), visited, keptBlocking: keepBlocking, teardownErrors };
  }

  #enter(state: StateName, visited: StateName[]): void {
    const from = this.#current;
    this.#current = state;
    visited.push(state);
    this.#options.onTransition?.({ from, to: state, sentence: `${from ? `${from} -> ` : ''}${state}: ${LIFECYCLE[state].describe}` });
  }

  /** Runs one state's work, bounded by its timeout and by `outer` (the stop signal). */
  async #runState(state: StateName, ctx: Omit<StateContext, 'signal'>, outer: AbortSignal): Promise<StateResult> {
    const override = this.#options.timeouts?.[state];
    const timeoutMs = override !== undefined ? override : LIFECYCLE[state].timeoutMs;
    const local = new AbortController();
    const onOuter = () => local.abort(outer.reason);
    outer.addEventListener('abort', onOuter, { once: true });
    let timer: NodeJS.Timeout | undefined;
    try {
      const abandoned = new Promise<never>((_, reject) => {
        local.signal.addEventListener('abort', () => reject(local.signal.reason), { once: true });
        if (timeoutMs !== null) {
          timer = setTimeout(() => local.abort(new TorvmError('ERR_STATE_TIMEOUT', `${state} did not finish within ${timeoutMs} ms`, { details: { state } })), timeoutMs);
        }
      });
      if (outer.aborted) local.abort(outer.reason);
      return await Promise.race([this.#works[state]({ ...ctx, signal: local.signal }), abandoned]);
    } finally {
      clearTimeout(timer);
      outer.removeEventListener('abort', onOuter);
    }
  }
}
