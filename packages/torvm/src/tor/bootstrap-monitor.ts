/**
 * Follows Tor's bootstrap (STATUS_CLIENT BOOTSTRAP events, seeded and
 * re-seeded after every reconnect by `GETINFO status/bootstrap-phase`) and
 * explains failures in Tor's own words: a BOOTSTRAP PROBLEM's WARNING/REASON,
 * a clock-skew report, a pluggable-transport failure or an upstream-proxy
 * failure named in plain words (see proxy-problem.ts), rather than a bare
 * "timed out".
 */
import { TorvmError } from '../core/errors.ts';
import type { CallOptions, ControlClientState } from './control-client.ts';
import { parseBootstrapStatus, type BootstrapStatus, type TorEvent, type TorEventName } from './events.ts';
import { configuredProxyFromConf, describeProxyFailure, PROXY_ADDRESS_KEYS, type ConfiguredProxy, type ProxyFailure } from './proxy-problem.ts';

/** The part of TorControlClient the monitor needs (a fake in unit tests). */
export interface BootstrapSource {
  onEvent(listener: (event: TorEvent) => void): () => void;
  onStateChange(listener: (state: ControlClientState) => void): () => void;
  getInfo(keys: readonly string[], options?: CallOptions): Promise<Map<string, string>>;
  enableEvents(events: readonly TorEventName[], options?: CallOptions): Promise<void>;
  /** To name the upstream proxy in a proxy problem (addresses only). Without it, proxy problems are not recognised. */
  getConf?(keys: readonly string[], options?: CallOptions): Promise<Map<string, string[]>>;
}

/** A problem Tor reported while bootstrapping, in its words. */
export interface BootstrapProblem {
  source: 'bootstrap' | 'clock-skew' | 'transport' | 'proxy';
  /** One readable sentence built from Tor's fields. */
  message: string;
  /** Tor's fields as sent (WARNING, REASON, RECOMMENDATION, COUNT, host; SKEW/SOURCE for clock skew). */
  warning: string | undefined;
  reason: string | undefined;
  recommendation: string | undefined;
  count: number | undefined;
  host: string | undefined;
}

export interface BootstrapSnapshot {
  progress: number;
  tag: string;
  summary: string;
  done: boolean;
  lastProblem: BootstrapProblem | undefined;
  /** The latest Tor WARN log lines (at most 5), newest last. */
  recentWarnings: readonly string[];
}

export interface WaitBootstrapOptions {
  signal?: AbortSignal;
  /** Fail when progress has not moved for this long. Default 120 s. */
  stallTimeoutMs?: number;
  /**
   * Which problems end the wait at once: 'warn' (default) = those Tor itself
   * recommends warning about, clock skew and transport failures, but not an
   * upstream-proxy failure (Tor keeps retrying, and the proxy can be fixed
   * live); 'any' = every problem; 'never' = only the stall timer ends the wait.
   */
  failOn?: 'warn' | 'any' | 'never';
}

/** Events the monitor subscribes to (added to the client's set, never replacing it). */
export const BOOTSTRAP_EVENTS: readonly TorEventName[] = ['STATUS_CLIENT', 'STATUS_GENERAL', 'WARN'];

/** WARN log lines that mean a pluggable transport cannot work: bootstrapping through it cannot finish. */
const TRANSPORT_FAILURES: readonly RegExp[] = [
  /Managed proxy .* failed/i,
  /Pluggable Transport process terminated/i,
  /Could not launch managed proxy/i,
  /Managed proxy .* (?:exited|did not launch)/i,
];

const MAX_WARNINGS = 5;

export class BootstrapMonitor {
  private progress = 0;
  private tag = '';
  private summary = '';
  private lastProblem: BootstrapProblem | undefined;
  /** The latest upstream-proxy failure since bootstrap last moved forward. */
  private proxyFailure: ProxyFailure | undefined;
  private proxyLookup: Promise<ConfiguredProxy | undefined> | undefined;
  private readonly warnings: string[] = [];
  private readonly listeners = new Set<(snapshot: BootstrapSnapshot, problem: BootstrapProblem | undefined) => void>();
  private readonly unsubscribe: Array<() => void> = [];
  private started = false;

  constructor(private readonly source: BootstrapSource, private readonly log: (line: string) => void = () => {}) {}

  /** Subscribes to Tor's events and seeds the state from GETINFO. Call once, after the client connected. */
  async start(options: CallOptions = {}): Promise<BootstrapSnapshot> {
    if (this.started) return this.snapshot;
    this.started = true;
    this.unsubscribe.push(this.source.onEvent((event) => this.handleEvent(event)));
    this.unsubscribe.push(this.source.onStateChange((state) => {
      if (state === 'ready') void this.seed({}).catch((err: unknown) => this.log(`bootstrap: re-seed failed: ${String(err)}`));
    }));
    await this.source.enableEvents(BOOTSTRAP_EVENTS, options);
    await this.seed(options);
    return this.snapshot;
  }

  /** Stops listening. Pending waits keep their own timers and abort signal. */
  stop(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  get snapshot(): BootstrapSnapshot {
    return {
      progress: this.progress,
      tag: this.tag,
      summary: this.summary,
      done: this.progress >= 100,
      lastProblem: this.lastProblem,
      recentWarnings: [...this.warnings],
    };
  }

  /** Calls `listener` on every progress change or problem; returns the unsubscribe function. */
  onChange(listener: (snapshot: BootstrapSnapshot, problem: BootstrapProblem | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolves when Tor reports 100%. Rejects with ERR_BOOTSTRAP carrying Tor's
   * own problem text when a problem ends the wait (see `failOn`) or when
   * progress stalls for `stallTimeoutMs`; ERR_CANCELLED when `signal` aborts.
   */
  waitUntilBootstrapped(options: WaitBootstrapOptions = {}): Promise<BootstrapSnapshot> {
    const stallTimeoutMs = options.stallTimeoutMs ?? 120_000;
    const failOn = options.failOn ?? 'warn';
    return new Promise((resolve, reject) => {
      if (this.progress >= 100) return resolve(this.snapshot);
      let stallTimer: NodeJS.Timeout | undefined;
      let lastKey = `${this.progress}/${this.tag}`;
      const finish = (): void => {
        clearTimeout(stallTimer);
        stopListening();
        options.signal?.removeEventListener('abort', onAbort);
      };
      const armStallTimer = (): void => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(() => {
          finish();
          reject(this.stallError(stallTimeoutMs));
        }, stallTimeoutMs);
      };
      const onAbort = (): void => {
        finish();
        reject(new TorvmError('ERR_CANCELLED', 'waiting for Tor to bootstrap was cancelled'));
      };
      const stopListening = this.onChange((snapshot, problem) => {
        if (snapshot.done) {
          finish();
          resolve(snapshot);
        } else if (problem && endsWait(problem, failOn)) {
          finish();
          reject(problemError(problem, snapshot));
        } else if (`${snapshot.progress}/${snapshot.tag}` !== lastKey) {
          lastKey = `${snapshot.progress}/${snapshot.tag}`;
          armStallTimer();
        }
      });
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      armStallTimer();
    });
  }

  private async seed(options: CallOptions): Promise<void> {
    const phase = (await this.source.getInfo(['status/bootstrap-phase'], options)).get('status/bootstrap-phase');
    const status = phase === undefined ? undefined : parseBootstrapStatus(phase);
    // After a reconnect Tor may have restarted, so the seed is taken as is, even if lower.
    if (status) this.apply(status, { allowBackwards: true });
  }

  private handleEvent(event: TorEvent): void {
    if (event.type === 'STATUS_CLIENT' && event.bootstrap) {
      this.apply(event.bootstrap, { allowBackwards: false });
    } else if (event.type === 'STATUS_GENERAL' && event.action === 'CLOCK_SKEW') {
      const skew = event.args.get('SKEW');
      const source = event.args.get('SOURCE');
      this.report({
        source: 'clock-skew',
        message: `Tor reports a clock skew of ${skew ?? '?'} s${source ? ` (source ${source})` : ''}; check the VM's clock`,
        warning: skew === undefined ? undefined : `SKEW=${skew}`,
        reason: 'CLOCK_SKEW',
        recommendation: 'warn',
        count: undefined,
        host: source,
      });
    } else if (event.type === 'LOG' && (event.severity === 'WARN' || event.severity === 'ERR')) {
      this.warnings.push(event.message);
      if (this.warnings.length > MAX_WARNINGS) this.warnings.shift();
      if (this.progress < 100 && /proxy/i.test(event.message)) void this.checkProxyWarning(event.message);
      if (TRANSPORT_FAILURES.some((pattern) => pattern.test(event.message))) {
        this.report({
          source: 'transport', message: `Tor reports a pluggable transport failure: ${event.message}`,
          warning: event.message, reason: undefined, recommendation: 'warn', count: undefined, host: undefined,
        });
      }
    }
  }

  /**
   * A WARN line that may be about the upstream proxy: asks Tor which proxy it
   * uses (once per line; the proxy can change live) and reports the failure
   * in plain words. A refused login is in no BOOTSTRAP event, only here.
   */
  private async checkProxyWarning(message: string): Promise<void> {
    let proxy: ConfiguredProxy | undefined;
    if (this.source.getConf) {
      this.proxyLookup ??= this.source.getConf([...PROXY_ADDRESS_KEYS], { timeoutMs: 10_000 })
        .then(configuredProxyFromConf, () => undefined)
        .finally(() => { this.proxyLookup = undefined; });
      proxy = await this.proxyLookup;
    }
    const failure = describeProxyFailure(message, proxy);
    if (!failure || this.progress >= 100) return;
    this.proxyFailure = failure;
    this.report({ ...this.proxyProblem(failure), warning: message });
  }

  private proxyProblem(failure: ProxyFailure): BootstrapProblem {
    return { source: 'proxy', message: failure.text, warning: undefined, reason: failure.kind, recommendation: 'warn', count: undefined, host: undefined };
  }

  private apply(status: BootstrapStatus, { allowBackwards }: { allowBackwards: boolean }): void {
    if (status.kind === 'problem' && this.proxyFailure) {
      // Tor's generic report (REASON=MISC …) of the same failure: keep the proxy's plain words.
      this.report({ ...this.proxyProblem(this.proxyFailure), warning: status.warning, count: status.count, host: status.host });
      return;
    }
    if (status.kind === 'problem') {
      this.report({
        source: 'bootstrap',
        message: describeBootstrapProblem(status),
        warning: status.warning,
        reason: status.reason,
        recommendation: status.recommendation,
        count: status.count,
        host: status.host,
      });
      return;
    }
    if (!allowBackwards && status.progress < this.progress) return;
    if (status.progress > this.progress) this.proxyFailure = undefined;
    // Past the first hop the proxy works, and at 100% nothing is a bootstrap problem any more.
    if (status.progress >= 100 || (this.lastProblem?.source === 'proxy' && status.progress > this.progress)) this.lastProblem = undefined;
    this.progress = status.progress;
    this.tag = status.tag;
    this.summary = status.summary;
    this.notify(undefined);
  }

  private report(problem: BootstrapProblem): void {
    this.lastProblem = problem;
    this.log(`bootstrap: ${problem.message}`);
    this.notify(problem);
  }

  private notify(problem: BootstrapProblem | undefined): void {
    const snapshot = this.snapshot;
    for (const listener of [...this.listeners]) {
      try {
        listener(snapshot, problem);
      } catch (err) {
        this.log(`bootstrap: a listener threw: ${String(err)}`);
      }
    }
  }

  private stallError(stallTimeoutMs: number): TorvmError {
    const snapshot = this.snapshot;
    const parts = [`Tor made no bootstrap progress for ${Math.round(stallTimeoutMs / 1000)} s; stuck at ${describePhase(snapshot)}`];
    if (snapshot.lastProblem) parts.push(`last problem: ${snapshot.lastProblem.message}`);
    const lastWarning = snapshot.recentWarnings.at(-1);
    if (lastWarning) parts.push(`last Tor warning: ${lastWarning}`);
    return new TorvmError('ERR_BOOTSTRAP', parts.join('; '), {
      hint: 'Check the bridges and the network, and that the VM clock is right.',
      details: { ...snapshot, stallTimeoutMs },
    });
  }
}

function endsWait(problem: BootstrapProblem, failOn: 'warn' | 'any' | 'never'): boolean {
  if (failOn === 'never') return false;
  if (failOn === 'any') return true;
  if (problem.source === 'proxy') return false;
  return problem.source !== 'bootstrap' || problem.recommendation?.toLowerCase() === 'warn';
}

function describePhase(snapshot: { progress: number; tag: string; summary: string }): string {
  return `${snapshot.progress}%${snapshot.tag ? ` (${snapshot.tag}${snapshot.summary ? `: ${snapshot.summary}` : ''})` : ''}`;
}

/** "Connection refused (reason CONNECTREFUSED, host 127.0.0.1:1, seen 3 times)". */
export function describeBootstrapProblem(status: BootstrapStatus): string {
  const facts = [
    status.reason && `reason ${status.reason}`,
    status.host && `host ${status.host}`,
    status.count !== undefined && status.count > 1 && `seen ${status.count} times`,
  ].filter(Boolean);
  const what = status.warning || status.summary || 'unknown problem';
  return `Tor reports a bootstrap problem at ${describePhase(status)}: ${what}${facts.length ? ` (${facts.join(', ')})` : ''}`;
}

function problemError(problem: BootstrapProblem, snapshot: BootstrapSnapshot): TorvmError {
  return new TorvmError('ERR_BOOTSTRAP', problem.message, {
    hint: problem.source === 'clock-skew'
      ? "Fix the VM's clock (it follows the host's clock)."
      : problem.source === 'transport'
        ? 'Check the pluggable transport binary and the bridge lines.'
        : problem.source === 'proxy'
          ? 'Check the proxy settings: torvm proxy show, torvm proxy set.'
        : 'Check the bridges and the network; Tor keeps retrying on its own.',
    details: { ...snapshot, problem },
  });
}
