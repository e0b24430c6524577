/**
 * Every external command goes through a CommandRunner: execFile with an argv
 * array (never a shell), a timeout, LC_ALL=C, and a "[#] argv" debug line that
 * makes the log a replayable transcript (wg-quick's `cmd()`).
 */
import { execFile } from 'node:child_process';
import { TorvmError } from '../core/errors.ts';

export interface RunOptions {
  /** Milliseconds before the command is killed. Required in spirit; defaults to 10 s. */
  timeoutMs?: number;
  /** Written to the command's stdin. */
  input?: string;
  /** Non-zero exit codes that the call site accepts as success. */
  okExitCodes?: readonly number[];
  signal?: AbortSignal;
  /** Extra environment variables (the base is LC_ALL=C plus PATH). */
  env?: Record<string, string>;
  /** Run inside this network namespace (`ip netns exec NAME`). Tests use this. */
  netns?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface CommandRunner {
  run(file: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
}

export type CommandLogger = (line: string) => void;

const DEFAULT_TIMEOUT_MS = 10_000;

/** The real runner. `log` receives one "[#] argv" line per command. */
export function createCommandRunner(log: CommandLogger = () => {}): CommandRunner {
  return {
    run(file, args, options = {}) {
      const argv = options.netns ? ['ip', ['netns', 'exec', options.netns, file, ...args]] as const : [file, args] as const;
      const [bin, binArgs] = argv;
      log(`[#] ${[bin, ...binArgs].join(' ')}`);
      return new Promise<RunResult>((resolve, reject) => {
        const child = execFile(
          bin,
          [...binArgs],
          {
            timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
            killSignal: 'SIGKILL',
            maxBuffer: 64 * 1024 * 1024,
            env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', ...options.env },
            ...(options.signal ? { signal: options.signal } : {}),
          },
          (error, stdout, stderr) => {
            const out = String(stdout);
            const err = String(stderr);
            if (!error) return resolve({ stdout: out, stderr: err, exitCode: 0 });
            const exitCode = typeof error.code === 'number' ? error.code : -1;
            if (exitCode >= 0 && options.okExitCodes?.includes(exitCode)) {
              return resolve({ stdout: out, stderr: err, exitCode });
            }
            const printable = [bin, ...binArgs].join(' ');
            if (error.killed && !options.signal?.aborted) {
              return reject(new TorvmError('ERR_COMMAND_TIMEOUT', `${printable}: timed out after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`, { cause: error, details: { argv: [bin, ...binArgs], stderr: err } }));
            }
            if (options.signal?.aborted) {
              return reject(new TorvmError('ERR_CANCELLED', `${printable}: cancelled`, { cause: error }));
            }
            const reason = (err.trim() || error.message).split('\n').slice(-20).join('\n');
            reject(new TorvmError('ERR_COMMAND_FAILED', `${printable}: exit ${exitCode}: ${reason}`, { cause: error, details: { argv: [bin, ...binArgs], exitCode, stderr: err } }));
          },
        );
        if (options.input !== undefined) child.stdin?.end(options.input);
        else child.stdin?.end();
      });
    },
  };
}
