/**
 * Watches for anything that could undo TorVM's routing, DNS or kill switch:
 * route, rule, link and address changes (`ip monitor`), nftables changes
 * (`nft monitor`), rewrites of resolv.conf (fs.watch
 * on its directory, since editors and DHCP clients replace the file), and a
 * slow periodic tick as a backstop. Each burst of events triggers one call to
 * `onChange`; calls never overlap.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface NetWatchOptions {
  /** Called after each burst of changes; errors go to `onError`. */
  onChange: (reason: string) => Promise<void>;
  onError?: (err: unknown) => void;
  /** Watch this file's directory (e.g. the managed resolv.conf). */
  resolvConfPath?: string;
  netns?: string;
  /** Quiet time that ends a burst. Default 50 ms. */
  debounceMs?: number;
  /** Backstop check interval. Default 5 s. */
  periodMs?: number;
}

export interface NetWatch {
  /** Resolves once `ip monitor` is running. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

export function startNetWatch(options: NetWatchOptions): NetWatch {
  const debounceMs = options.debounceMs ?? 50;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let pending: string | undefined;

  const fire = () => {
    timer = undefined;
    if (stopped || pending === undefined) return;
    if (running) return; // re-armed when the current call ends
    const reason = pending;
    pending = undefined;
    running = options.onChange(reason).catch((err: unknown) => options.onError?.(err)).finally(() => {
      running = undefined;
      if (pending !== undefined && !stopped) timer = setTimeout(fire, debounceMs);
    });
  };
  const trigger = (reason: string) => {
    if (stopped) return;
    pending = pending ?? reason;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  };

  const monitor = (file: string, argv: string[]): ChildProcess => {
    const [bin, args] = options.netns ? ['ip', ['netns', 'exec', options.netns, file, ...argv]] : [file, argv];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });
    child.on('error', (err) => options.onError?.(err));
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => trigger(`${file} monitor: ${chunk.split('\n')[0] ?? ''}`));
    child.on('exit', (code, signal) => {
      if (!stopped) options.onError?.(new Error(`${file} monitor exited (${String(code ?? signal)})`));
    });
    return child;
  };
  // Routes, rules, links, addresses; and any nftables change (someone flushing the ruleset).
  const monitors = [monitor('ip', ['monitor', 'route', 'rule', 'link', 'address']), monitor('nft', ['monitor', 'ruleset'])];

  let fsWatcher: FSWatcher | undefined;
  if (options.resolvConfPath) {
    const name = basename(options.resolvConfPath);
    fsWatcher = watch(dirname(options.resolvConfPath), (_event, file) => {
      if (file === null || file === name) trigger(`file: ${options.resolvConfPath ?? ''}`);
    });
    fsWatcher.on('error', (err) => options.onError?.(err));
  }
  const tick = setInterval(() => trigger('periodic check'), options.periodMs ?? 5_000);

  // The monitors print no ready line; they listen once spawned (a change in between is caught by the first check).
  const ready = Promise.all(monitors.map((m) => new Promise<void>((resolve, reject) => {
    m.once('spawn', () => resolve());
    m.once('error', reject);
  }))).then(() => trigger('watch started'));

  return {
    ready,
    async stop() {
      stopped = true;
      clearInterval(tick);
      if (timer) clearTimeout(timer);
      fsWatcher?.close();
      for (const m of monitors) {
        if (m.exitCode !== null || m.signalCode !== null) continue;
        const exited = new Promise((resolve) => m.once('exit', resolve));
        m.kill('SIGTERM');
        await exited;
      }
      await running;
    },
  };
}
