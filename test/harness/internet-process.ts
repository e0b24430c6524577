/**
 * Runs a harness module as its own process in the "internet" namespace
 * (`node --import tsx FILE CONFIG_JSON`) and waits until it prints READY.
 * The test proxies and the meek server use it: each file is both the
 * library that starts it and, run as a script, the server itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killPid } from './netns.ts';
import type { TorNetwork } from './tor-network.ts';
import { waitFor } from './wait.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface InternetProcess {
  readonly child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Ends it by pid; idempotent. */
  stop(): Promise<void>;
}

export async function startInInternet(network: TorNetwork, script: string, config: unknown, what: string): Promise<InternetProcess> {
  const child = spawn('ip', ['netns', 'exec', network.namespaces.internet, process.execPath, '--import', 'tsx', script, JSON.stringify(config)], {
    cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (output += c));
  const stop = async () => { if (child.pid !== undefined && child.exitCode === null) await killPid(child.pid); };
  try {
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`${what} exited: ${output}`);
      return output.includes('READY');
    }, { timeoutMs: 20_000, what, diagnose: () => output });
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, output: () => output, stop };
}
