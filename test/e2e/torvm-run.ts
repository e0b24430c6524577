/**
 * Runs the real `torvm up` in a harness network's host namespace, for the
 * end-to-end tests and the demo's checks: a config pointing at the private
 * network, the daemon as a child process, and its API for status.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TorNetwork } from '../harness/tor-network.ts';
import { getStatus } from '../../packages/torvm/src/api/client.ts';
import type { DaemonStatus } from '../../packages/torvm/src/api/schema.ts';

export const TORVM_BIN = new URL('../../packages/torvm/bin/torvm.js', import.meta.url).pathname;

/** The structured form of `DirAuthority nick orport=N no-v2 v3ident=V ADDR:DIRPORT FP` lines. */
export function authoritiesFromLines(lines: readonly string[]) {
  return lines.map((line) => {
    const m = /^DirAuthority (\S+) orport=(\d+)(?: no-v2)? v3ident=([0-9A-F]{40}) ([0-9.]+):(\d+) ([0-9A-F ]{40,49})$/.exec(line.trim());
    if (!m) throw new Error(`cannot parse ${line}`);
    return { nickname: m[1] ?? '', orPort: Number(m[2]), v3ident: m[3] ?? '', address: m[4] ?? '', dirPort: Number(m[5]), fingerprint: (m[6] ?? '').replace(/ /g, '') };
  });
}

export interface TorvmRun {
  dir: string;
  configPath: string;
  socketPath: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** `torvm ARGS` with this run's config, in the host namespace. */
  cli(args: string[]): { status: number | null; stdout: string; stderr: string };
  status(): Promise<DaemonStatus>;
  waitFor(pred: (s: DaemonStatus) => boolean, timeoutMs: number, what: string): Promise<DaemonStatus>;
}

export function writeTorvmConfig(network: TorNetwork, dir: string, imageDir: string, extra: Record<string, unknown> = {}): string {
  mkdirSync(join(dir, 'state'), { recursive: true, mode: 0o700 });
  const config = {
    configVersion: 1,
    vm: { accel: 'auto', imageDir, stateDir: join(dir, 'state'), memoryMiB: 128 },
    tor: { testingNetwork: { authorities: authoritiesFromLines(network.dirAuthorityLines) } },
    api: { socketPath: join(dir, 'run', 'torvm.sock') },
    ...extra,
  };
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return path;
}

/** Starts `torvm up` in the host namespace. The caller stops it with `torvm down` or by pid. */
export function startTorvmUp(network: TorNetwork, dir: string, configPath: string): TorvmRun {
  const socketPath = join(dir, 'run', 'torvm.sock');
  let out = '';
  const child = spawn('ip', ['netns', 'exec', network.namespaces.host, process.execPath, TORVM_BIN, '--config', configPath, 'up'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const run: TorvmRun = {
    dir, configPath, socketPath, child, exited,
    output: () => out,
    cli: (args) => {
      const r = spawnSync('ip', ['netns', 'exec', network.namespaces.host, process.execPath, TORVM_BIN, '--config', configPath, ...args], { encoding: 'utf8', timeout: 60_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    status: () => getStatus(socketPath),
    async waitFor(pred, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      let last: DaemonStatus | undefined;
      let exitCode: number | null | undefined;
      void exited.then((c) => { exitCode = c; });
      for (;;) {
        try {
          last = await getStatus(socketPath);
          if (pred(last)) return last;
        } catch {
          // not up yet
        }
        if (exitCode !== undefined) throw new Error(`torvm up exited (${exitCode}) before ${what}:\n${out.slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last status ${JSON.stringify(last)}\n${out.slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  };
  return run;
}
