/**
 * Watches for anything that could undo TorVM's routing, DNS or kill switch:
 * route, rule, link and address changes (`ip monitor`), nftables changes
 * (`nft monitor`), rewrites of resolv.conf (fs.watch on its directory, since
 * editors and DHCP clients replace the file), and a periodic backstop check.
 *
 * Timing rules (a repair must never be starved):
 *   - a burst of events calls `onChange` once, at most `debounceMs` after the
 *     FIRST event of the burst: later events never push the call back, so a
 *     steady stream of events (a flapping address) cannot delay a repair;
 *   - the periodic check runs on its own clock, outside the debounce;
 *   - calls never overlap: events during a call run one more call after it;
 *   - a monitor that exits is restarted with a bounded backoff, and a check
 *     runs after each restart (events may have been missed meanwhile).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/** Starts one monitor process (injectable for tests). */
export type MonitorSpawner = (file: string, argv: readonly string[], netns: string | undefined) => ChildProcess;

export interface NetWatchOptions {
  /** Called after each burst of changes; errors go to `onError`. */
  onChange: (reason: string) => Promise<void>;
  onError?: (err: unknown) => void;
  /** Watch this file's directory (e.g. the managed resolv.conf). */
  resolvConfPath?: string;
  netns?: string;
  /** Longest wait from the first event of a burst to the check. Default 50 ms. */
  debounceMs?: number;
  /** Backstop check interval. Default 5 s. */
  periodMs?: number;
  /** First restart delay of an exited monitor; doubles up to `restartMaxMs`. Default 100 ms. */
  restartMinMs?: number;
  /** Default 5 s. */
  restartMaxMs?: number;
  /** Do not keep the process alive just for the watch (a daemon's lingering kill switch watch). */
  unref?: boolean;
  spawnMonitor?: MonitorSpawner;
}

export interface NetWatch {
  /** Resolves once the monitors are running. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

/** util-linux setpriv: the monitors die with their controller, even one killed with SIGKILL. */
const SETPRIV = '/usr/bin/setpriv';

const defaultSpawner: MonitorSpawner = (file, argv, netns) => {
  const command = netns ? ['ip', 'netns', 'exec', netns, file, ...argv] : [file, ...argv];
  const [bin, ...args] = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'TERM', '--', ...command] : command;
  return spawn(bin as string, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });
};

/** Routes, rules, links, addresses; and any nftables change (someone flushing the ruleset). */
const MONITORS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['ip', ['monitor', 'route', 'rule', 'link', 'address']],
  ['nft', ['monitor', 'ruleset']],
];

/** A process that ran this long before exiting gets the shortest restart delay again. */
const STABLE_RUN_MS = 10_000;

export function startNetWatch(options: NetWatchOptions): NetWatch {
  const debounceMs = options.debounceMs ?? 50;
  const restartMinMs = options.restartMinMs ?? 100;
  const restartMaxMs = options.restartMaxMs ?? 5_000;
  const spawnMonitor = options.spawnMonitor ?? defaultSpawner;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let pending: string | undefined;

  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (stopped || pending === undefined) return;
    if (running) return; // runs again when the current call ends
    const reason = pending;
    pending = undefined;
    running = options.onChange(reason).catch((err: unknown) => options.onError?.(err)).finally(() => {
      running = undefined;
      if (pending !== undefined && !stopped) arm();
    });
  };
  // Armed once per burst: an event that finds the timer armed joins that burst.
  const arm = () => {
    if (timer || stopped) return;
    timer = setTimeout(fire, debounceMs);
    if (options.unref) timer.unref();
  };
  const trigger = (reason: string) => {
    if (stopped) return;
    pending = pending ?? reason;
    if (!running) arm();
  };

  const children = new Set<ChildProcess>();
  const restartTimers = new Set<NodeJS.Timeout>();
  const startMonitor = (file: string, argv: readonly string[], attempt: number): ChildProcess => {
    const child = spawnMonitor(file, argv, options.netns);
    const startedAt = Date.now();
    children.add(child);
    if (options.unref) {
      child.unref();
      (child.stdout as { unref?: () => void } | null)?.unref?.();
    }
    child.on('error', (err) => options.onError?.(err));
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => trigger(`${file} monitor: ${chunk.split('\n')[0] ?? ''}`));
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (stopped) return;
      const next = Date.now() - startedAt >= STABLE_RUN_MS ? 0 : attempt + 1;
      const delay = Math.min(restartMaxMs, restartMinMs * 2 ** Math.max(0, next - 1));
      options.onError?.(new Error(`${file} monitor exited (${String(code ?? signal)}); restarting in ${delay} ms`));
      const t = setTimeout(() => {
        restartTimers.delete(t);
        if (stopped) return;
        startMonitor(file, argv, next);
        trigger(`${file} monitor restarted`);
      }, delay);
      if (options.unref) t.unref();
      restartTimers.add(t);
    });
    return child;
  };
  const first = MONITORS.map(([file, argv]) => startMonitor(file, argv, 0));
  // A watch that outlives the work (unref) must not outlive the process.
  const killOnExit = () => { for (const c of children) c.kill('SIGTERM'); };
  process.on('exit', killOnExit);

  let fsWatcher: FSWatcher | undefined;
  if (options.resolvConfPath) {
    const name = basename(options.resolvConfPath);
    fsWatcher = watch(dirname(options.resolvConfPath), (_event, file) => {
      if (file === null || file === name) trigger(`file: ${options.resolvConfPath ?? ''}`);
    });
    fsWatcher.on('error', (err) => options.onError?.(err));
    if (options.unref) fsWatcher.unref();
  }
  // The backstop bypasses the debounce: it checks now, or right after the running call.
  const tick = setInterval(() => {
    if (stopped) return;
    pending = pending ?? 'periodic check';
    if (running) return;
    fire();
  }, options.periodMs ?? 5_000);
  if (options.unref) tick.unref();

  // The monitors print no ready line; they listen once spawned (a change in between is caught by the first check).
  const ready = Promise.all(first.map((m) => new Promise<void>((resolve, reject) => {
    m.once('spawn', () => resolve());
    m.once('error', reject);
  }))).then(() => trigger('watch started'));

  return {
    ready,
    async stop() {
      stopped = true;
      process.off('exit', killOnExit);
      clearInterval(tick);
      if (timer) clearTimeout(timer);
      timer = undefined;
      for (const t of restartTimers) clearTimeout(t);
      restartTimers.clear();
      fsWatcher?.close();
      for (const m of [...children]) {
        if (m.exitCode !== null || m.signalCode !== null) continue;
        const exited = new Promise((resolve) => m.once('exit', resolve));
        m.kill('SIGTERM');
        await exited;
      }
      await running;
    },
  };
}
