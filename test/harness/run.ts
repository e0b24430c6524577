/**
 * Command execution for the test harness: execFile with an argv array (never a
 * shell), always a timeout, stderr carried in errors. Optional `netns` runs the
 * command through `ip netns exec`, which also bind-mounts /etc/netns/NAME/*.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

export interface RunOptions {
  /** Kill the command after this long (SIGKILL). Default 20 s. */
  timeoutMs?: number;
  /** Written to stdin. */
  input?: string;
  /** Exit codes accepted besides 0. */
  okExitCodes?: readonly number[];
  /** Run inside this network namespace. */
  netns?: string;
  /** Drop to this uid/gid (via setpriv) before exec. */
  uid?: number;
  gid?: number;
  cwd?: string;
  env?: Record<string, string>;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The argv prefix that enters `netns` and drops to `uid`/`gid`. */
export function wrapArgv(file: string, args: readonly string[], opts: Pick<RunOptions, 'netns' | 'uid' | 'gid'>): string[] {
  let argv = [file, ...args];
  if (opts.uid !== undefined) {
    const gid = opts.gid ?? opts.uid;
    argv = ['setpriv', `--reuid=${opts.uid}`, `--regid=${gid}`, '--clear-groups', '--no-new-privs', ...argv];
  }
  if (opts.netns !== undefined) argv = ['ip', 'netns', 'exec', opts.netns, ...argv];
  return argv;
}

function baseEnv(extra: Record<string, string> | undefined): Record<string, string> {
  return { PATH: process.env.PATH ?? BASE_PATH, LC_ALL: 'C', HOME: '/nonexistent', ...extra };
}

/** Runs a command to completion; rejects on a non-accepted exit code or timeout, with stderr in the message. */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [bin, ...binArgs] = wrapArgv(file, args, opts) as [string, ...string[]];
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      bin,
      binArgs,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024 * 1024, env: baseEnv(opts.env), cwd: opts.cwd, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr, exitCode: 0 });
        const exitCode = typeof error.code === 'number' ? error.code : -1;
        if (exitCode > 0 && opts.okExitCodes?.includes(exitCode)) return resolve({ stdout, stderr, exitCode });
        const why = error.killed ? `timed out after ${timeoutMs} ms` : `exit ${String(error.code ?? error.signal)}`;
        reject(new Error(`${[bin, ...binArgs].join(' ')}: ${why}: ${stderr.trim().slice(-2000)}`, { cause: error }));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export interface DaemonOptions extends Pick<RunOptions, 'netns' | 'uid' | 'gid' | 'cwd' | 'env'> {
  /** stdout and stderr are appended here (the file is created if missing). */
  logFile: string;
}

/**
 * Starts a long-running process. Because `ip netns exec` and `setpriv` both
 * exec (no fork), the returned child's pid is the daemon's own pid.
 */
export function spawnDaemon(file: string, args: readonly string[], opts: DaemonOptions): ChildProcess {
  const [bin, ...binArgs] = wrapArgv(file, args, opts) as [string, ...string[]];
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(bin, binArgs, { stdio: ['ignore', fd, fd], env: baseEnv(opts.env), cwd: opts.cwd });
    child.on('error', () => {}); // surfaced via exit/readiness checks
    return child;
  } finally {
    closeSync(fd);
  }
}
