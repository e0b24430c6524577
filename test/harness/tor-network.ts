/**
 * A private Tor network in network namespaces, for end-to-end and leak tests.
 *
 *   host ns  (the user's computer)          internet ns (no route anywhere else)
 *   uplink0 10.98.0.2/24  ---- veth ----  uplink0 10.98.0.1/24
 *   default via 10.98.0.1                    on lo: 10.99.0.11-13 authorities
 *                                                   10.99.0.21.. relays, .31 exit
 *                                                   10.99.0.41 onion service tor
 *                                                   10.99.0.53 DNS, 10.99.0.80 HTTP
 *
 * Every tor runs TestingTorNetwork with this network's own DirAuthority lines,
 * as an unprivileged uid, inside the internet namespace, which has no link to
 * the root namespace: no tor here can reach the public Tor network.
 *
 * Bring-up (each step waits on real readiness, bounded):
 *   keys -> authorities+relays start, first vote scheduled a few seconds out
 *   -> consensus with every relay Running on each authority -> SIGHUP relays
 *   -> every relay holds that consensus -> onion service publishes -> ready.
 */
import { mkdtempSync, chmodSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createNamespace, deleteNamespace, cleanupStale, ipIn, killPid } from './netns.ts';
import { run } from './run.ts';
import { waitFor } from './wait.ts';
import { dirAuthorityLine, renderTorrc, votingStartOffset, FAST_TIMING, type NetworkContext, type TorNodeSpec, type TorRole } from './tor-config.ts';
import { generateAuthorityKeys, listFingerprint, prepareDataDir, readFingerprint, readV3Ident, startTor, LOW_MEMORY_ENV, type TorProcess, type TorRunAs } from './tor-process.ts';
import { DEFAULT_KEY_CACHE, restoreKeys, storeKeys } from './key-cache.ts';
import { parseNetworkStatus, type ControlReply } from './tor-control.ts';
import { startTorClient, type TorClient } from './tor-client.ts';
import type { Endpoint } from './pcap.ts';
import type { HttpRequestLog } from './http-server.ts';
import type { DnsQueryLog } from './dns-server.ts';
import type { ServicesConfig } from './services-main.ts';

export { KNOWN_PAGE_MARKER, patternByte } from './http-server.ts';
export type { TorClient } from './tor-client.ts';

/** Fixed addressing (namespaces are private, so fixed ranges cannot collide between runs). */
export const ADDRESSES = {
  hostUplink: '10.98.0.2',
  gateway: '10.98.0.1',
  uplinkPrefix: 24,
  authority: (i: number) => `10.99.0.${11 + i}`,
  relay: (i: number) => `10.99.0.${21 + i}`,
  exit: '10.99.0.31',
  onion: '10.99.0.41',
  dns: '10.99.0.53',
  http: '10.99.0.80',
} as const;
export const OR_PORT = 5000;
export const DIR_PORT = 7000;
export const UPLINK_IFACE = 'uplink0';
/** The name the DNS server answers (A -> the HTTP server). */
export const HTTP_NAME = 'web.torvm.test';
/** Default uids: network tors, and a test client distinct from them and from the product's user. */
export const DEFAULT_NETWORK_UID = 47950;
export const DEFAULT_CLIENT_UID = 47951;

export interface TorNetworkOptions {
  /** Name prefix for namespaces and temp dirs; cleanupStale only touches this prefix. Default "tvh". */
  prefix?: string;
  /** Non-exit relays besides the authorities (which relay too) and the exit: 0..9. Default 2. */
  relays?: number;
  /** Start the onion service (and wait until it has published). Default true. */
  onion?: boolean;
  /** uid/gid of the network's tors. */
  networkUid?: number;
  /** Keep glibc from hoarding freed heap (see LOW_MEMORY_ENV). Default true. */
  lowMemory?: boolean;
  /** Remove leftovers of crashed runs with the same prefix first. Default true. */
  cleanupStale?: boolean;
  /** Directory to reuse keys from between runs, or false to always generate. Default DEFAULT_KEY_CACHE. */
  keyCache?: string | false;
  /** Bound on the whole bring-up. Default 120 s. */
  timeoutMs?: number;
  /** Progress lines (phase timings). */
  log?: (line: string) => void;
}

/** A relay of the network (authorities included). */
export interface RelayInfo {
  nickname: string;
  role: TorRole;
  address: string;
  orPort: number;
  dirPort: number;
  fingerprint: string;
}

export interface ClientStartOptions {
  /** Default: the host namespace. */
  netns?: string;
  /** Default DEFAULT_CLIENT_UID. */
  uid?: number;
  /** Default "client" plus a counter. */
  nickname?: string;
  socksListen?: string;
  extraLines?: readonly string[];
  timeoutMs?: number;
}

/** A running private Tor network. */
export interface TorNetwork {
  /** Unique id of this run, `${prefix}${pid}-${n}`; also the namespace name stem. */
  readonly id: string;
  readonly namespaces: { readonly internet: string; readonly host: string };
  readonly uplink: { readonly hostIface: string; readonly hostAddress: string; readonly gateway: string; readonly prefixLength: number };
  /** DirAuthority lines to give any client of this network. */
  readonly dirAuthorityLines: readonly string[];
  /** Torrc context (DirAuthority lines etc.) for renderTorrc/startTorClient. */
  readonly context: NetworkContext;
  readonly relays: readonly RelayInfo[];
  /** Every ORPort and DirPort of the network: the only places Tor traffic may go. */
  readonly relayAllowlist: readonly Endpoint[];
  readonly exitAddress: string;
  /** "<56 chars>.onion", when the onion service runs. */
  readonly onionHostname: string | undefined;
  readonly http: { readonly address: string; readonly port: number; readonly name: string; readonly url: string; readonly nameUrl: string; readonly logFile: string };
  readonly dns: { readonly address: string; readonly port: number; readonly logFile: string; readonly records: Readonly<Record<string, readonly string[]>> };
  /** Temp dir with every data dir, torrc and log of this run. */
  readonly workDir: string;
  readonly tors: readonly TorProcess[];
  /** Phase name -> ms since start of bring-up. */
  readonly timings: Readonly<Record<string, number>>;
  httpRequests(): HttpRequestLog[];
  dnsQueries(): DnsQueryLog[];
  /** Starts a stock tor client (default: in the host namespace) and waits for bootstrap 100. Stopped by stop() too. */
  startClient(opts?: ClientStartOptions): Promise<TorClient>;
  /** Stops everything by pid, deletes the namespaces by name, removes the work dir. Idempotent; never throws for a partial bring-up. */
  stop(): Promise<void>;
}

let runCounter = 0;
/** Seconds from starting the relays to the first vote: time to start and upload descriptors. */
const FIRST_VOTE_LEAD_SECONDS = 4;
const SERVICES_MAIN = fileURLToPath(new URL('./services-main.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Brings up the network; on any failure tears down what it built and rethrows. */
export async function startTorNetwork(opts: TorNetworkOptions = {}): Promise<TorNetwork> {
  const prefix = opts.prefix ?? 'tvh';
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const deadline = started + (opts.timeoutMs ?? 120_000);
  const remaining = (): number => Math.max(1_000, deadline - Date.now());
  const timings: Record<string, number> = {};
  const mark = (phase: string): void => {
    timings[phase] = Date.now() - started;
    log(`[harness] ${phase} at ${timings[phase]} ms`);
  };

  if (opts.cleanupStale ?? true) {
    const removed = await cleanupStale(prefix);
    if (removed.length > 0) log(`[harness] removed stale: ${removed.join(', ')}`);
  }
  const relayCount = opts.relays ?? 2;
  if (!Number.isInteger(relayCount) || relayCount < 0 || relayCount > 9) throw new Error(`relays must be 0..9 (addresses 10.99.0.21-29), got ${relayCount}`);
  const id = `${prefix}${process.pid}-${++runCounter}`;
  const internet = `${id}-inet`;
  const host = `${id}-host`;
  const workDir = mkdtempSync(join(tmpdir(), `${id}-`));
  chmodSync(workDir, 0o755); // tors (unprivileged) must traverse to their own 0700 data dirs
  const uid = opts.networkUid ?? DEFAULT_NETWORK_UID;
  const runAs: TorRunAs = { netns: internet, uid, gid: uid, ...(opts.lowMemory ?? true ? { env: LOW_MEMORY_ENV } : {}) };

  // Teardown state, filled as things come up so stop() works after a partial bring-up.
  const tors: TorProcess[] = [];
  const clients: TorClient[] = [];
  let services: ChildProcess | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const errors: unknown[] = [];
    const attempt = async (fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    };
    await Promise.all(clients.map((c) => attempt(() => c.stop())));
    await Promise.all(tors.map((t) => attempt(() => t.stop())));
    if (services?.pid !== undefined) await attempt(() => killPid(services!.pid!));
    for (const ns of [host, internet]) await attempt(() => deleteNamespace(ns));
    if (!process.env.TORVM_HARNESS_KEEP) rmSync(workDir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, `tor network ${id}: teardown had ${errors.length} error(s)`);
  };

  try {
    // 1. Namespaces and links. Every ip(8) call names its namespace.
    const dnsResolvConf = `nameserver ${ADDRESSES.dns}\noptions timeout:2 attempts:1\n`;
    await createNamespace(internet, dnsResolvConf);
    await createNamespace(host, dnsResolvConf);
    for (const ns of [internet, host]) {
      // IPv4 only: keeps captures free of IPv6 autoconfiguration chatter.
      await run('sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], { netns: ns, timeoutMs: 5_000 });
    }
    const worldAddresses = [
      ...[0, 1, 2].map(ADDRESSES.authority),
      ...Array.from({ length: relayCount }, (_, i) => ADDRESSES.relay(i)),
      ADDRESSES.exit, ADDRESSES.onion, ADDRESSES.dns, ADDRESSES.http,
    ];
    for (const address of worldAddresses) await ipIn(internet, ['addr', 'add', `${address}/32`, 'dev', 'lo']);
    await ipIn(internet, ['link', 'add', UPLINK_IFACE, 'type', 'veth', 'peer', 'name', UPLINK_IFACE, 'netns', host]);
    await ipIn(internet, ['addr', 'add', `${ADDRESSES.gateway}/${ADDRESSES.uplinkPrefix}`, 'dev', UPLINK_IFACE]);
    await ipIn(internet, ['link', 'set', UPLINK_IFACE, 'up']);
    await ipIn(host, ['addr', 'add', `${ADDRESSES.hostUplink}/${ADDRESSES.uplinkPrefix}`, 'dev', UPLINK_IFACE]);
    await ipIn(host, ['link', 'set', UPLINK_IFACE, 'up']);
    await ipIn(host, ['route', 'add', 'default', 'via', ADDRESSES.gateway]);
    mark('namespaces');

    // 2. DNS and HTTP servers (one node process inside the internet namespace).
    const records = { [HTTP_NAME]: [ADDRESSES.http] };
    const servicesConfig: ServicesConfig = {
      dns: { address: ADDRESSES.dns, port: 53, records, logFile: join(workDir, 'dns.log') },
      http: { addresses: [ADDRESSES.http], port: 80, logFile: join(workDir, 'http.log') },
    };
    writeFileSync(servicesConfig.dns.logFile, '');
    writeFileSync(servicesConfig.http.logFile, '');
    services = spawn('ip', ['netns', 'exec', internet, process.execPath, '--import', 'tsx', SERVICES_MAIN, JSON.stringify(servicesConfig)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let servicesOutput = '';
    services.stdout?.setEncoding('utf8').on('data', (c: string) => (servicesOutput += c));
    services.stderr?.setEncoding('utf8').on('data', (c: string) => (servicesOutput += c));
    const servicesChild = services;
    await waitFor(
      () => {
        if (servicesChild.exitCode !== null) throw new Error(`services exited: ${servicesOutput}`);
        return servicesOutput.includes('READY');
      },
      { timeoutMs: Math.min(remaining(), 20_000), what: 'DNS and HTTP servers', diagnose: () => servicesOutput },
    );
    mark('services');

    // 3. Keys and fingerprints (in the namespace, as the tor uid; nothing connects).
    const authoritySpecs: TorNodeSpec[] = [0, 1, 2].map((i) => relaySpec(`auth${i + 1}`, 'authority', ADDRESSES.authority(i), workDir));
    const relaySpecs: TorNodeSpec[] = [
      ...Array.from({ length: relayCount }, (_, i) => relaySpec(`relay${i + 1}`, 'relay', ADDRESSES.relay(i), workDir)),
      relaySpec('exit1', 'exit', ADDRESSES.exit, workDir),
    ];
    const emptyTorrc = join(workDir, 'empty.torrc');
    writeFileSync(emptyTorrc, '', { mode: 0o644 });
    const keyCache = opts.keyCache === undefined ? DEFAULT_KEY_CACHE : opts.keyCache;
    const cacheKey = (spec: TorNodeSpec): string => `${spec.nickname}-${spec.address}`;
    const restored = (spec: TorNodeSpec): boolean => {
      prepareDataDir(spec.dataDir, uid, uid);
      return keyCache !== false && restoreKeys(keyCache, cacheKey(spec), spec.dataDir, uid, uid);
    };
    const keysFor = async (spec: TorNodeSpec): Promise<void> => {
      if (restored(spec)) return;
      if (spec.role === 'authority') await generateAuthorityKeys(spec, runAs);
      await listFingerprint(spec, emptyTorrc, runAs);
      if (keyCache !== false) storeKeys(keyCache, cacheKey(spec), spec.dataDir);
    };
    await Promise.all([...authoritySpecs, ...relaySpecs].map(keysFor));
    const authorityKeys = authoritySpecs.map((spec) => ({ v3ident: readV3Ident(spec.dataDir), fingerprint: readFingerprint(spec.dataDir) }));
    const relayFingerprints = relaySpecs.map((spec) => readFingerprint(spec.dataDir));
    mark('keys');

    const relays: RelayInfo[] = [
      ...authoritySpecs.map((s, i) => relayInfo(s, authorityKeys[i]!.fingerprint)),
      ...relaySpecs.map((s, i) => relayInfo(s, relayFingerprints[i]!)),
    ];
    const dirAuthorityLines = authoritySpecs.map((s, i) =>
      dirAuthorityLine({ nickname: s.nickname, address: s.address!, orPort: OR_PORT, dirPort: DIR_PORT, ...authorityKeys[i]! }),
    );
    const exit = relays.find((r) => r.role === 'exit')!;
    // 4. Start every relay; the first vote is scheduled shortly after they are up.
    const context: NetworkContext = {
      dirAuthorityLines,
      exitFingerprints: [exit.fingerprint],
      timing: { ...FAST_TIMING, startOffset: votingStartOffset(Date.now() / 1000, FIRST_VOTE_LEAD_SECONDS, FAST_TIMING) },
      exitResolvConf: join('/etc/netns', internet, 'resolv.conf'),
    };
    const relayTors = await Promise.all(
      [...authoritySpecs, ...relaySpecs].map(async (spec) => {
        const tor = await startTor(spec, renderTorrc(spec, context), runAs, Math.min(remaining(), 30_000));
        tors.push(tor);
        return tor;
      }),
    );
    mark('relays-started');

    // 5. A consensus listing every relay as Running (and the exit as Exit) on each authority.
    const expected = new Set(relays.map((r) => r.nickname));
    const gaps: Record<string, string> = {};
    const hasFullConsensus = async (tor: TorProcess): Promise<boolean> => {
      const entries = parseNetworkStatus(await (await tor.control()).getInfo('ns/all'));
      const running = new Set(entries.filter((e) => e.flags.includes('Running')).map((e) => e.nickname));
      const missing = [...expected].filter((n) => !running.has(n));
      const exitEntry = entries.find((e) => e.nickname === exit.nickname);
      if (exitEntry && !exitEntry.flags.includes('Exit')) missing.push(`${exit.nickname}(no Exit flag)`);
      const gap = missing.length === 0 ? 'complete' : `missing ${missing.join(',')}`;
      if (gaps[tor.spec.nickname] !== gap) log(`[harness] ${tor.spec.nickname}: consensus ${gap} at ${Date.now() - started} ms`);
      gaps[tor.spec.nickname] = gap;
      return missing.length === 0;
    };
    const describeGaps = (): string => Object.entries(gaps).map(([n, g]) => `  ${n}: ${g}`).join('\n');
    const authorityTors = relayTors.slice(0, 3);
    const otherRelayTors = relayTors.slice(3);
    await waitFor(async () => (await Promise.all(authorityTors.map(hasFullConsensus))).every(Boolean), {
      timeoutMs: remaining(),
      intervalMs: 250,
      what: 'a consensus with every relay on each authority',
      diagnose: () => `${describeGaps()}\n${authorityTors.map((t) => t.logTail(6)).join('\n')}`,
    });
    mark('consensus');

    // 6. Make the relays fetch it now, and wait until each has it and enough descriptors.
    for (const tor of otherRelayTors) tor.signal('SIGHUP');
    await waitFor(
      async () => {
        for (const tor of otherRelayTors) {
          if (!(await hasFullConsensus(tor))) return false;
          if ((await (await tor.control()).getInfo('status/enough-dir-info')) !== '1') {
            gaps[tor.spec.nickname] = 'not enough dir info';
            return false;
          }
        }
        return true;
      },
      { timeoutMs: remaining(), intervalMs: 250, what: 'every relay to hold the consensus', diagnose: () => `${describeGaps()}\n${otherRelayTors.map((t) => t.logTail(6)).join('\n')}` },
    );
    mark('relays-have-consensus');

    // 7. The onion service, started only now (clients started earlier back off).
    let onionHostname: string | undefined;
    if (opts.onion ?? true) {
      const spec: TorNodeSpec = {
        nickname: 'onion1',
        role: 'onion',
        dataDir: join(workDir, 'onion1'),
        address: ADDRESSES.onion,
        onion: { virtualPort: 80, target: `${ADDRESSES.http}:80` },
      };
      const tor = await startTor(spec, renderTorrc(spec, context), runAs, Math.min(remaining(), 30_000));
      tors.push(tor);
      onionHostname = await waitForOnionPublished(tor, remaining());
      mark('onion-published');
    }

    const relayAllowlist: Endpoint[] = relays.flatMap((r) => [
      { address: r.address, port: r.orPort },
      { address: r.address, port: r.dirPort },
    ]);
    const readJsonLines = <T>(file: string): T[] =>
      existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as T) : [];
    let clientCounter = 0;
    mark('ready');
    return {
      id,
      namespaces: { internet, host },
      uplink: { hostIface: UPLINK_IFACE, hostAddress: ADDRESSES.hostUplink, gateway: ADDRESSES.gateway, prefixLength: ADDRESSES.uplinkPrefix },
      dirAuthorityLines,
      context,
      relays,
      relayAllowlist,
      exitAddress: exit.address,
      onionHostname,
      http: {
        address: ADDRESSES.http,
        port: 80,
        name: HTTP_NAME,
        url: `http://${ADDRESSES.http}/`,
        nameUrl: `http://${HTTP_NAME}/`,
        logFile: servicesConfig.http.logFile,
      },
      dns: { address: ADDRESSES.dns, port: 53, logFile: servicesConfig.dns.logFile, records },
      workDir,
      tors,
      timings,
      httpRequests: () => readJsonLines<HttpRequestLog>(servicesConfig.http.logFile),
      dnsQueries: () => readJsonLines<DnsQueryLog>(servicesConfig.dns.logFile),
      async startClient(clientOpts: ClientStartOptions = {}) {
        if (stopped) throw new Error(`tor network ${id} is stopped`);
        const client = await startTorClient(context, {
          netns: clientOpts.netns ?? host,
          uid: clientOpts.uid ?? DEFAULT_CLIENT_UID,
          nickname: clientOpts.nickname ?? `client${++clientCounter}`,
          workDir,
          ...(clientOpts.socksListen ? { socksListen: clientOpts.socksListen } : {}),
          ...(clientOpts.extraLines ? { extraLines: clientOpts.extraLines } : {}),
          ...(clientOpts.timeoutMs ? { timeoutMs: clientOpts.timeoutMs } : {}),
          ...(opts.lowMemory ?? true ? { env: LOW_MEMORY_ENV } : {}),
        });
        clients.push(client);
        return client;
      },
      stop,
    };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

function relaySpec(nickname: string, role: TorRole, address: string, workDir: string): TorNodeSpec {
  return { nickname, role, dataDir: join(workDir, nickname), address, orPort: OR_PORT, dirPort: DIR_PORT };
}

function relayInfo(spec: TorNodeSpec, fingerprint: string): RelayInfo {
  return { nickname: spec.nickname, role: spec.role, address: spec.address!, orPort: spec.orPort!, dirPort: spec.dirPort!, fingerprint };
}

/**
 * Waits until the onion service has uploaded its descriptors: at least one
 * HS_DESC UPLOADED and no upload still in flight. Returns "<addr>.onion".
 */
async function waitForOnionPublished(tor: TorProcess, timeoutMs: number): Promise<string> {
  const control = await tor.control();
  const inFlight = new Set<string>();
  let uploaded = 0;
  control.on('event', (reply: ControlReply) => {
    const [kind, action, , , hsdir] = (reply.lines[0] ?? '').split(' ');
    if (kind !== 'HS_DESC' || hsdir === undefined) return;
    if (action === 'UPLOAD') inFlight.add(hsdir);
    if (action === 'UPLOADED' || action === 'FAILED') inFlight.delete(hsdir);
    if (action === 'UPLOADED') uploaded++;
  });
  await control.command('SETEVENTS HS_DESC');
  const hostnameFile = join(tor.spec.dataDir, 'hs', 'hostname');
  await waitFor(() => uploaded > 0 && inFlight.size === 0 && existsSync(hostnameFile), {
    timeoutMs,
    intervalMs: 100,
    what: 'the onion service to publish its descriptor',
    diagnose: () => tor.logTail(),
  });
  return readFileSync(hostnameFile, 'utf8').trim();
}
