/**
 * A stock tor client joining the test network, and tools to use it from a
 * namespace: curl through its SocksPort, tor-resolve through it.
 */
import { join } from 'node:path';
import { renderTorrc, type NetworkContext, type TorNodeSpec } from './tor-config.ts';
import { startTor, type TorProcess, type TorRunAs } from './tor-process.ts';
import { waitFor } from './wait.ts';
import { run } from './run.ts';

export interface TorClientOptions {
  /** Namespace the client runs in (usually the network's host namespace). */
  netns: string;
  /** Distinct unprivileged uid (test and product tors must differ; see field-notes). */
  uid: number;
  gid?: number;
  nickname: string;
  /** Parent directory for the data directory. */
  workDir: string;
  /** SocksPort address inside the namespace. Default 127.0.0.1:9050. */
  socksListen?: string;
  extraLines?: readonly string[];
  env?: Record<string, string>;
  /** Bound on reaching bootstrap 100. Default 60 s. */
  timeoutMs?: number;
}

export interface TorClient {
  tor: TorProcess;
  netns: string;
  /** "ADDR:PORT" of the SocksPort, inside `netns`. */
  socks: string;
  stop(): Promise<void>;
}

/** Bootstrap progress (0-100) from `status/bootstrap-phase`. */
export async function bootstrapProgress(tor: TorProcess): Promise<number> {
  const phase = await (await tor.control()).getInfo('status/bootstrap-phase');
  return Number(/PROGRESS=(\d+)/.exec(phase)?.[1] ?? 0);
}

/** Starts a client and resolves once it reports bootstrap 100 (bounded). */
export async function startTorClient(net: NetworkContext, opts: TorClientOptions): Promise<TorClient> {
  const spec: TorNodeSpec = {
    nickname: opts.nickname,
    role: 'client',
    dataDir: join(opts.workDir, opts.nickname),
    socksListen: opts.socksListen ?? '127.0.0.1:9050',
    ...(opts.extraLines ? { extraLines: opts.extraLines } : {}),
  };
  const runAs: TorRunAs = { netns: opts.netns, uid: opts.uid, gid: opts.gid ?? opts.uid, ...(opts.env ? { env: opts.env } : {}) };
  const tor = await startTor(spec, renderTorrc(spec, net), runAs);
  try {
    await waitFor(async () => (await bootstrapProgress(tor)) === 100, {
      timeoutMs: opts.timeoutMs ?? 60_000,
      what: `client ${opts.nickname} to bootstrap to 100`,
      diagnose: () => tor.logTail(),
    });
  } catch (error) {
    await tor.stop();
    throw error;
  }
  return { tor, netns: opts.netns, socks: spec.socksListen ?? '', stop: () => tor.stop() };
}

export interface CurlResult {
  status: number;
  body: string;
}

/**
 * curl through a SOCKS5 proxy with remote name resolution (socks5h), from
 * inside `netns`. Never follows redirects; bounded by timeoutMs.
 */
export async function curlViaSocks(netns: string, socks: string, url: string, timeoutMs = 30_000): Promise<CurlResult> {
  const seconds = String(Math.max(1, Math.floor(timeoutMs / 1000) - 1));
  const { stdout } = await run(
    'curl',
    ['--silent', '--show-error', '--proxy', `socks5h://${socks}`, '--max-time', seconds, '--write-out', '\n%{http_code}', url],
    { netns, timeoutMs },
  );
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

/** Resolves `name` through Tor (SOCKS RESOLVE, `tor-resolve`), from inside `netns`. */
export async function torResolve(netns: string, socks: string, name: string, timeoutMs = 30_000): Promise<string> {
  const { stdout } = await run('tor-resolve', ['-5', name, socks], { netns, timeoutMs });
  return stdout.trim();
}
