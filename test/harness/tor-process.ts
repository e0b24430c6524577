/**
 * Starting and stopping one test tor: data directory ownership, key
 * generation (tor-gencert, tor --list-fingerprint), launch as an unprivileged
 * uid inside a namespace, readiness of its control socket, and teardown by pid.
 */
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { run, spawnDaemon } from './run.ts';
import { killPid, isProcessAlive } from './netns.ts';
import { waitFor } from './wait.ts';
import { TorControl } from './tor-control.ts';
import type { TorNodeSpec } from './tor-config.ts';

/** Where and as whom a tor runs. */
export interface TorRunAs {
  netns: string;
  uid: number;
  gid: number;
  /** Extra environment (e.g. malloc tuning). */
  env?: Record<string, string>;
}

/**
 * glibc keeps freed heap by default (~60 MB per directory server here); these
 * return it to the kernel at a small CPU cost (field-notes: 460 -> ~120 MB).
 */
export const LOW_MEMORY_ENV: Record<string, string> = {
  MALLOC_ARENA_MAX: '1',
  MALLOC_TRIM_THRESHOLD_: '131072',
  MALLOC_TOP_PAD_: '65536',
};

/** Creates `dir` (0700) owned by uid/gid, as tor insists. */
export function prepareDataDir(dir: string, uid: number, gid: number): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  chownSync(dir, uid, gid);
}

/** Creates the v3 authority keys in `${dataDir}/keys`; returns the v3ident (authority_certificate fingerprint). */
export async function generateAuthorityKeys(node: TorNodeSpec, runAs: TorRunAs): Promise<string> {
  const keys = join(node.dataDir, 'keys');
  prepareDataDir(node.dataDir, runAs.uid, runAs.gid);
  prepareDataDir(keys, runAs.uid, runAs.gid);
  if (node.address === undefined || node.dirPort === undefined) throw new Error(`${node.nickname}: an authority needs address and dirPort`);
  await run(
    'tor-gencert',
    ['--create-identity-key', '-m', '12', '-a', `${node.address}:${node.dirPort}`,
      '-i', join(keys, 'authority_identity_key'), '-s', join(keys, 'authority_signing_key'),
      '-c', join(keys, 'authority_certificate'), '--passphrase-fd', '0'],
    { ...runAs, input: '', timeoutMs: 30_000, cwd: keys },
  );
  return readV3Ident(node.dataDir);
}

/** The v3 identity (the `fingerprint` line of keys/authority_certificate). */
export function readV3Ident(dataDir: string): string {
  const cert = readFileSync(join(dataDir, 'keys', 'authority_certificate'), 'utf8');
  const match = /^fingerprint ([0-9A-F]{40})$/m.exec(cert);
  if (!match?.[1]) throw new Error(`${dataDir}: no fingerprint in authority_certificate`);
  return match[1];
}

/** The RSA identity fingerprint from the data directory's `fingerprint` file. */
export function readFingerprint(dataDir: string): string {
  const line = readFileSync(join(dataDir, 'fingerprint'), 'utf8').trim();
  const fingerprint = line.split(' ')[1];
  if (!fingerprint || !/^[0-9A-F]{40}$/.test(fingerprint)) throw new Error(`${dataDir}: bad fingerprint file "${line}"`);
  return fingerprint;
}

/** Creates the relay identity keys and returns the RSA identity fingerprint. Never touches the network. */
export async function listFingerprint(node: TorNodeSpec, emptyTorrc: string, runAs: TorRunAs): Promise<string> {
  prepareDataDir(node.dataDir, runAs.uid, runAs.gid);
  await run(
    'tor',
    ['--list-fingerprint', '-f', emptyTorrc, '--DisableNetwork', '1', '--DataDirectory', node.dataDir,
      '--ORPort', String(node.orPort ?? 5000), '--Nickname', node.nickname, '--ContactInfo', 'test@torvm.test', '--ExitRelay', '0'],
    { ...runAs, timeoutMs: 30_000 },
  );
  return readFingerprint(node.dataDir);
}

/** A running test tor. */
export class TorProcess {
  private controlConnection: TorControl | undefined;

  constructor(
    readonly spec: TorNodeSpec,
    readonly torrcPath: string,
    private readonly child: ChildProcess,
  ) {}

  /** The tor's pid (ip netns exec and setpriv exec, so this is tor itself). */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  get controlSocket(): string {
    return join(this.spec.dataDir, 'control');
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** A shared, authenticated control connection (opened on first use). */
  async control(): Promise<TorControl> {
    this.controlConnection ??= await TorControl.connect(this.controlSocket);
    return this.controlConnection;
  }

  /** The last `lines` lines of the notice log (for error messages). */
  logTail(lines = 15): string {
    const file = join(this.spec.dataDir, 'notice.log');
    if (!existsSync(file)) return `(${this.spec.nickname}: no log yet)`;
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `  ${this.spec.nickname}: ${l}`).join('\n');
  }

  /** Sends a signal by pid (e.g. SIGHUP to make a relay refetch directory info). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid, sig);
  }

  /** Stops tor by its PidFile pid (falling back to the child's pid); bounded. */
  async stop(): Promise<void> {
    this.controlConnection?.close();
    this.controlConnection = undefined;
    const pids = new Set<number>();
    if (this.child.pid !== undefined) pids.add(this.child.pid);
    const pidFile = join(this.spec.dataDir, 'pid');
    if (existsSync(pidFile)) {
      const fromFile = Number(readFileSync(pidFile, 'utf8').trim());
      if (Number.isInteger(fromFile) && fromFile > 1) pids.add(fromFile);
    }
    for (const pid of pids) if (isProcessAlive(pid)) await killPid(pid);
  }
}

/**
 * Writes the torrc next to the data directory and starts tor as runAs.uid in
 * runAs.netns; resolves once its control socket answers (bounded).
 */
export async function startTor(spec: TorNodeSpec, torrc: string, runAs: TorRunAs, timeoutMs = 30_000): Promise<TorProcess> {
  prepareDataDir(spec.dataDir, runAs.uid, runAs.gid);
  const torrcPath = `${spec.dataDir}.torrc`;
  writeFileSync(torrcPath, torrc, { mode: 0o644 });
  // An empty defaults file: nothing from /etc/tor leaks into a test tor.
  writeFileSync(`${spec.dataDir}.defaults`, '', { mode: 0o644 });
  writeFileSync(`${spec.dataDir}.geoip`, '', { mode: 0o644 });
  const child = spawnDaemon('tor', ['-f', torrcPath, '--defaults-torrc', `${spec.dataDir}.defaults`], {
    netns: runAs.netns,
    uid: runAs.uid,
    gid: runAs.gid,
    env: runAs.env,
    logFile: `${spec.dataDir}.stdout`,
  });
  const tor = new TorProcess(spec, torrcPath, child);
  try {
    await waitFor(
      async () => {
        if (!tor.running) throw new Error(`tor ${spec.nickname} exited (${String(child.exitCode ?? child.signalCode)})`);
        return existsSync(tor.controlSocket) && (await tor.control());
      },
      {
        timeoutMs,
        what: `tor ${spec.nickname}'s control socket`,
        diagnose: () => `${tor.logTail()}\n${readTail(`${spec.dataDir}.stdout`)}`,
      },
    );
  } catch (error) {
    await tor.stop();
    throw error;
  }
  return tor;
}

function readTail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-10).join('\n') : '';
}
