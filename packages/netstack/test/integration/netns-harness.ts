// Namespaces and the engine fixture for integration tests and the benchmark.
// Everything is named with the test's PID, created here and removed by name.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

// 1,000 connections need ~5,000 fds across client, engine, SOCKS and HTTP servers.
// A fixed script; the command follows as "$@" (argv, never interpolated).
const RAISE_FD_LIMIT = ['sh', '-c', 'ulimit -n "$(ulimit -Hn)" && exec "$@"', 'sh'];

/** Why this machine cannot run the namespace tests, or undefined when it can. */
export function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (!existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip') && !existsSync('/usr/bin/ip')) return 'needs iproute2';
  if (!existsSync(new URL('../../../tun-native/build/Release/tun_native.node', import.meta.url))) return 'needs the tun-native addon built (npm ci)';
  return undefined;
}

export function run(file: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** A network namespace with loopback up and its own resolv.conf pointing into the TUN. */
export class TestNamespace {
  readonly name: string;
  constructor(suffix: string) {
    this.name = `tvns${process.pid}${suffix}`;
  }
  async create(): Promise<void> {
    await run('ip', ['netns', 'add', this.name]);
    mkdirSync(`/etc/netns/${this.name}`, { recursive: true });
    writeFileSync(`/etc/netns/${this.name}/resolv.conf`, 'nameserver 10.99.0.53\noptions timeout:2 attempts:2\n');
    await run('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
  }
  exec(args: string[], timeoutMs = 30_000): Promise<string> {
    return run('ip', ['netns', 'exec', this.name, ...args], timeoutMs);
  }
  /** Runs a fixture script with node inside the namespace, with the fd limit raised to the hard limit. */
  node(script: string, args: string[], timeoutMs: number): Promise<string> {
    return this.exec([...RAISE_FD_LIMIT, process.execPath, '--import', 'tsx', `${fixtures}${script}`, ...args], timeoutMs);
  }
  async destroy(): Promise<void> {
    await run('ip', ['netns', 'del', this.name]).catch(() => {});
    rmSync(`/etc/netns/${this.name}`, { recursive: true, force: true });
  }
}

export interface EngineReady {
  tun: string;
  httpPort: number;
  socksPort: number;
}

/**
 * A long-running fixture script inside a namespace that talks JSON lines:
 * it prints a line containing "ready" (or "held"), answers "stats" on stdin,
 * and exits on "exit" or when stdin ends.
 */
export class EngineProcess {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly #waiters: (() => void)[] = [];
  stderr = '';

  private constructor(child: ChildProcess) {
    this.#child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.#lines.push(line);
      for (const w of this.#waiters.splice(0)) w();
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    child.on('exit', () => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Starts the engine fixture (engine.ts) with a JSON config. */
  static async start(ns: TestNamespace, config: object, timeoutMs = 30_000, nodeArgs: string[] = []): Promise<{ engine: EngineProcess; ready: EngineReady }> {
    const { fixture, line } = await EngineProcess.spawn(ns, 'engine.ts', [JSON.stringify(config)], '"ready"', timeoutMs, nodeArgs);
    return { engine: fixture, ready: (JSON.parse(line) as { ready: EngineReady }).ready };
  }

  /** Starts any fixture script and waits for its first line containing `marker`. */
  static async spawn(ns: TestNamespace, script: string, args: string[], marker: string, timeoutMs: number, nodeArgs: string[] = []): Promise<{ fixture: EngineProcess; line: string }> {
    const child = spawn(
      'ip',
      ['netns', 'exec', ns.name, ...RAISE_FD_LIMIT, process.execPath, ...nodeArgs, '--import', 'tsx', `${fixtures}${script}`, ...args],
      { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const fixture = new EngineProcess(child);
    try {
      const line = await fixture.#nextLine((l) => l.includes(marker), timeoutMs);
      return { fixture, line };
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** Sends one command line (e.g. "gc"). */
  command(line: string): void {
    this.#child.stdin!.write(`${line}\n`);
  }

  async #nextLine(match: (line: string) => boolean, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < this.#lines.length; seen++) if (match(this.#lines[seen]!)) return this.#lines.splice(seen, 1)[0]!;
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) throw new Error(`engine exited: ${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`engine: no answer within ${timeoutMs} ms: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async stats(): Promise<Record<string, unknown>> {
    this.#child.stdin!.write('stats\n');
    const line = await this.#nextLine((l) => l.includes('"stats"'), 10_000);
    return (JSON.parse(line) as { stats: Record<string, unknown> }).stats;
  }

  /** Stops the fixture by PID: asks, then SIGKILL after a bound. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin!.end('exit\n');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Addresses and routes that send the test subnets into the TUN (inside the namespace only). */
export async function routeIntoTun(ns: TestNamespace, tun: string): Promise<void> {
  const ip = (...args: string[]): Promise<string> => run('ip', ['-n', ns.name, ...args]);
  await ip('addr', 'add', '10.98.0.1/32', 'dev', tun);
  await ip('-6', 'addr', 'add', 'fd98::1/128', 'dev', tun, 'nodad');
  await ip('link', 'set', tun, 'up');
  await ip('route', 'add', '10.99.0.0/16', 'dev', tun, 'src', '10.98.0.1');
  await ip('route', 'add', '198.18.0.0/15', 'dev', tun, 'src', '10.98.0.1');
  await ip('-6', 'route', 'add', 'fd99::/64', 'dev', tun, 'src', 'fd98::1');
}
