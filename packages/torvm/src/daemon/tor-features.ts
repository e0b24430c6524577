/**
 * Tor features on top of the control connection:
 *
 *   attachTorStatus    CIRC + BW events -> status.tor.circuits / status.tor.bandwidth
 *   bridgeConfEntries  the bridge part of the config as SETCONF entries (same lines as torrc.ts renders)
 *   proxyConfEntries   the upstream-proxy part, with every other proxy option reset
 *   applyBridges / applyProxy   one SETCONF each, so Tor sees the change atomically
 *
 * Bridge lines and proxy passwords only ever travel inside SETCONF; nothing
 * here logs them, and errors name the option, never the value.
 */
import type { ProxyConfig, TorvmConfig } from '../core/config.ts';
import { formatBridgeLine, parseBridgeLine, type BridgeLine } from '../core/bridge-line.ts';
import { TorvmError } from '../core/errors.ts';
import { GUEST } from '../core/guest.ts';
import type { DaemonStatus } from '../api/schema.ts';
import type { CallOptions, ConfEntries, ControlClientState, TorEvent, TorEventName } from '../tor/index.ts';
import { parseCircuitPath } from '../tor/events.ts';
import { parseKeywordLine } from '../tor/quoting.ts';

/** Samples of bandwidth history kept in the status (one per second: two minutes). */
export const BANDWIDTH_HISTORY = 120;
/** Built circuits kept in the status; Tor rarely holds more, and the GUI shows a handful. */
export const MAX_CIRCUITS = 32;

/** What attachTorStatus needs of TorControlClient (tests pass a fake). */
export interface TorStatusSource {
  enableEvents(events: readonly TorEventName[], options?: CallOptions): Promise<void>;
  getInfo(keys: readonly string[], options?: CallOptions): Promise<Map<string, string>>;
  onEvent(listener: (event: TorEvent) => void): () => void;
  onStateChange(listener: (state: ControlClientState) => void): () => void;
}

/** What attachTorStatus needs of StatusStore. */
export interface StatusSink {
  update(change: (s: DaemonStatus) => void): void;
}

type Circuit = DaemonStatus['tor']['circuits'][number];
type Hop = Circuit['hops'][number];

/**
 * Keeps `status.tor.circuits` (built circuits, with hop countries when the
 * VM's Tor has GeoIP data) and `status.tor.bandwidth` current for one control
 * connection. Re-reads the circuit list after a reconnect; clears both when
 * the connection closes for good. Returns a function that detaches.
 */
export function attachTorStatus(client: TorStatusSource, status: StatusSink, o: { now?: () => number; log?: (line: string) => void } = {}): () => void {
  const now = o.now ?? Date.now;
  const log = o.log ?? (() => {});
  const circuits = new Map<string, Circuit>();
  const countries = new CountryLookup(client, log);
  let detached = false;

  const publish = () => {
    if (detached) return;
    const list = [...circuits.values()].slice(-MAX_CIRCUITS).map((c) => ({ ...c, hops: c.hops.map((h) => ({ ...h })) }));
    status.update((s) => { s.tor.circuits = list; });
  };

  const fillCountries = (circuit: Circuit) => {
    void countries.forHops(circuit.hops).then((found) => {
      const current = circuits.get(circuit.id);
      if (!current || !found.some((c) => c !== null)) return;
      current.hops = current.hops.map((h, i) => ({ ...h, country: found[i] ?? h.country }));
      publish();
    });
  };

  const onCircuit = (id: string, circStatus: string, path: Hop[], purpose: string | null) => {
    if (circStatus === 'BUILT') {
      const circuit: Circuit = { id, status: circStatus, purpose, hops: path };
      circuits.delete(id); // re-insert at the end: newest last
      circuits.set(id, circuit);
      fillCountries(circuit);
      publish();
    } else if ((circStatus === 'CLOSED' || circStatus === 'FAILED') && circuits.delete(id)) {
      publish();
    }
  };

  const reload = async () => {
    try {
      const text = (await client.getInfo(['circuit-status'])).get('circuit-status') ?? '';
      circuits.clear();
      for (const line of text.split('\n')) {
        const parsed = parseCircuitStatusLine(line);
        if (parsed) onCircuit(parsed.id, parsed.status, parsed.hops, parsed.purpose);
      }
      publish();
    } catch (err) {
      log(`circuit list unavailable: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  const offEvent = client.onEvent((e) => {
    if (e.type === 'CIRC') {
      onCircuit(e.circuitId, e.status, e.path.map(toHop), e.purpose ?? null);
    } else if (e.type === 'BW') {
      const sample = { t: now(), read: e.bytesRead, written: e.bytesWritten };
      status.update((s) => {
        s.tor.bandwidth = { readBps: sample.read, writtenBps: sample.written, history: [...s.tor.bandwidth.history, sample].slice(-BANDWIDTH_HISTORY) };
      });
    }
  });
  const offState = client.onStateChange((state) => {
    if (state === 'ready') void reload();
    if (state === 'closed') {
      circuits.clear();
      status.update((s) => { s.tor.circuits = []; s.tor.bandwidth = { readBps: 0, writtenBps: 0, history: [] }; });
    }
  });
  void client.enableEvents(['CIRC', 'BW']).then(reload, (err: unknown) => log(`cannot subscribe to CIRC/BW: ${err instanceof Error ? err.message : String(err)}`));

  return () => {
    detached = true;
    offEvent();
    offState();
  };
}

/** Tor's placeholder identity for a hop it has not learned yet (a bridge line without fingerprint). */
const UNKNOWN_IDENTITY = /^0{40}$/;

function toHop(h: { fingerprint: string | undefined; nickname: string | undefined }): Hop {
  const fingerprint = h.fingerprint === undefined || UNKNOWN_IDENTITY.test(h.fingerprint) ? null : h.fingerprint;
  return { fingerprint, nickname: h.nickname ?? null, country: null };
}

/** One line of `GETINFO circuit-status`: `ID STATUS [PATH] [KEY=VALUE...]`. */
export function parseCircuitStatusLine(line: string): { id: string; status: string; hops: Hop[]; purpose: string | null } | undefined {
  if (line.trim() === '') return undefined;
  const { positional, keywords } = parseKeywordLine(line.trim());
  const [id, circStatus, path] = positional;
  if (id === undefined || circStatus === undefined || !/^\d+$/.test(id)) return undefined;
  return { id, status: circStatus, hops: path === undefined ? [] : parseCircuitPath(path).map(toHop), purpose: keywords.get('PURPOSE') ?? null };
}

/** The relay's IPv4 address from `GETINFO ns/id/FP` (its `r` line). */
export function addressFromNetworkStatus(text: string): string | null {
  for (const line of text.split('\n')) {
    const words = line.trim().split(/ +/);
    // r nickname identity digest date time IP ORPort DirPort
    if (words[0] === 'r' && words.length >= 9 && /^\d{1,3}(?:\.\d{1,3}){3}$/.test(words[6] ?? '')) return words[6] ?? null;
  }
  return null;
}

/**
 * Countries of relays, cached per fingerprint. The first time Tor answers
 * without a country (no GeoIP file in the image: `??`, or an error), lookups
 * stop for good: every hop keeps `country: null`.
 */
class CountryLookup {
  private readonly cache = new Map<string, string | null>();
  private available = true;

  constructor(private readonly client: Pick<TorStatusSource, 'getInfo'>, private readonly log: (line: string) => void) {}

  async forHops(hops: readonly Hop[]): Promise<Array<string | null>> {
    const out: Array<string | null> = [];
    for (const hop of hops) out.push(hop.fingerprint === null ? null : await this.country(hop.fingerprint));
    return out;
  }

  private async country(fingerprint: string): Promise<string | null> {
    if (!this.available || !/^[0-9A-F]{40}$/.test(fingerprint)) return null;
    const cached = this.cache.get(fingerprint);
    if (cached !== undefined) return cached;
    try {
      const ns = (await this.client.getInfo([`ns/id/${fingerprint}`])).get(`ns/id/${fingerprint}`) ?? '';
      const address = addressFromNetworkStatus(ns);
      if (address === null) return null;
      const cc = (await this.client.getInfo([`ip-to-country/${address}`])).get(`ip-to-country/${address}`) ?? '';
      if (!/^[a-z]{2}$/i.test(cc) || cc === '??') {
        // Private addresses (a test network) also answer `??`: treat as "no data", not as an error.
        this.cache.set(fingerprint, null);
        return null;
      }
      this.cache.set(fingerprint, cc.toLowerCase());
      return cc.toLowerCase();
    } catch (err) {
      this.available = false;
      this.log(`relay countries unavailable (no GeoIP data in the VM?): ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
  }
}

// ---------------------------------------------------------------------------
// Bridges and upstream proxies, live

/** Every option this module may set; a change resets the ones it does not set. */
export const BRIDGE_OPTIONS = ['UseBridges', 'Bridge', 'ClientTransportPlugin'] as const;
export const PROXY_OPTIONS = [
  'HTTPSProxy', 'HTTPSProxyAuthenticator', 'Socks5Proxy', 'Socks5ProxyUsername', 'Socks5ProxyPassword', 'Socks4Proxy',
] as const;

/**
 * The bridge settings as SETCONF entries, matching what core/torrc.ts renders
 * at boot (a unit test holds the two together). Disabled means every bridge
 * option back to Tor's default.
 */
export function bridgeConfEntries(bridges: TorvmConfig['tor']['bridges'], builtin: readonly string[]): ConfEntries {
  if (!bridges.enabled) return { UseBridges: null, Bridge: null, ClientTransportPlugin: null };
  const parsed: BridgeLine[] = [];
  for (const line of [...bridges.lines, ...(bridges.useBuiltin ? builtin : [])]) {
    const result = parseBridgeLine(line);
    if (!result.ok) throw new TorvmError('ERR_CONFIG_INVALID', `a bridge line ${result.error}`, { details: { path: 'tor.bridges.lines' } });
    parsed.push(result.bridge);
  }
  if (parsed.length === 0) throw new TorvmError('ERR_CONFIG_INVALID', 'bridges are enabled, but there is no bridge line to use', { details: { path: 'tor.bridges' } });
  const plugins: string[] = [];
  for (const transport of [...new Set(parsed.map((b) => b.transport))].sort()) {
    if (transport === 'vanilla') continue;
    const plugin = GUEST.transportPlugins[transport];
    if (!plugin) throw new TorvmError('ERR_CONFIG_INVALID', `the VM image ships no client for the ${transport} transport`, { details: { path: 'tor.bridges.lines' } });
    plugins.push(`${transport} exec ${plugin}`);
  }
  return { UseBridges: '1', ClientTransportPlugin: plugins, Bridge: parsed.map(formatBridgeLine) };
}

/** The upstream proxy as SETCONF entries; every proxy option not in use is reset. */
export function proxyConfEntries(proxy: ProxyConfig): ConfEntries {
  const entries: Record<string, string | null> = Object.fromEntries(PROXY_OPTIONS.map((k) => [k, null]));
  if (proxy.type === 'https') {
    entries.HTTPSProxy = `${proxy.host}:${proxy.port}`;
    if (proxy.username !== undefined && proxy.password !== undefined) entries.HTTPSProxyAuthenticator = `${proxy.username}:${proxy.password}`;
  } else if (proxy.type === 'socks5') {
    entries.Socks5Proxy = `${proxy.host}:${proxy.port}`;
    if (proxy.username !== undefined && proxy.password !== undefined) {
      entries.Socks5ProxyUsername = proxy.username;
      entries.Socks5ProxyPassword = proxy.password;
    }
  } else if (proxy.type === 'socks4') {
    entries.Socks4Proxy = `${proxy.host}:${proxy.port}`;
  }
  return entries;
}

/** What a live change needs of TorControlClient. */
export interface TorConfTarget {
  setConf(entries: ConfEntries, options?: CallOptions): Promise<void>;
}

/**
 * Applies bridge settings to a running Tor in one SETCONF (atomic: Tor
 * accepts all of it or none). Tor's refusal surfaces as ERR_TOR_CONTROL with
 * its reply, which never echoes our values.
 */
export async function applyBridges(tor: TorConfTarget, bridges: TorvmConfig['tor']['bridges'], builtin: readonly string[]): Promise<void> {
  await tor.setConf(bridgeConfEntries(bridges, builtin), { timeoutMs: 20_000 });
}

/** Applies the upstream proxy to a running Tor in one SETCONF. New connections to the first hop use it. */
export async function applyProxy(tor: TorConfTarget, proxy: ProxyConfig): Promise<void> {
  await tor.setConf(proxyConfEntries(proxy), { timeoutMs: 20_000 });
}
