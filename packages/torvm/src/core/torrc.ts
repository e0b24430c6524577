/**
 * Renders the VM's torrc from the validated config. Pure.
 *
 * Every line is built by `directive(key, value)`, which refuses any value
 * that could end the line or start a comment, so no field can smuggle in a
 * second directive even if the schema were bypassed.
 */
import type { TorvmConfig } from './config.ts';
import { formatBridgeLine, parseBridgeLine, type BridgeLine } from './bridge-line.ts';
import { TorvmError } from './errors.ts';
import { GUEST } from './guest.ts';

export interface TorrcRuntime {
  /** `16:…` hash of this boot's control password (see tor/hashed-password.ts). */
  hashedControlPassword: string;
  /** Tor's seccomp sandbox; the image test proves it works with our options. */
  sandbox: boolean;
  /** Built-in bridge lines, used when `tor.bridges.useBuiltin` is on. */
  builtinBridges?: readonly string[];
}

/**
 * The IPv4 GeoIP database in the image (Debian's tor-geoipdb, on the system
 * disk; image/src/rootfs.ts DATA_FILES). It gives circuit hops a country
 * (`GETINFO ip-to-country/…`). The IPv6 database is left out on purpose:
 * parsed, it costs Tor about 16 MB more RAM in a small guest, and every relay
 * has an IPv4 address.
 */
export const GEOIP_FILE = '/usr/share/tor/geoip';

const UNSAFE_VALUE = /[\u0000-\u001f\u007f#"\\]/;

function directive(key: string, ...values: Array<string | number>): string {
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(key)) throw new TorvmError('ERR_UNSAFE_VALUE', `torrc: bad directive name ${JSON.stringify(key)}`);
  const rendered = values.map(String);
  for (const v of rendered) {
    if (v.length === 0 || UNSAFE_VALUE.test(v) || v !== v.trim()) {
      throw new TorvmError('ERR_UNSAFE_VALUE', `torrc: the value for ${key} contains a character that could escape its line`, { details: { key } });
    }
  }
  return [key, ...rendered].join(' ');
}

const bool = (b: boolean) => (b ? '1' : '0');

/** Renders the full torrc. Throws TorvmError on anything it cannot render safely. */
export function renderTorrc(config: TorvmConfig, runtime: TorrcRuntime): string {
  const { tor, network } = config;
  const listen = network.vmAddress;
  const lines: string[] = ['# Written by the TorVM controller at each boot. Do not edit.'];
  const add = (key: string, ...values: Array<string | number>) => lines.push(directive(key, ...values));

  // 1. Listeners: only on the VM's end of the host link, never on wan.
  add('SocksPort', `${listen}:${tor.socksPort}`);
  add('TransPort', `${listen}:${tor.transPort}`);
  add('DNSPort', `${listen}:${tor.dnsPort}`);
  add('ControlPort', `${listen}:${tor.controlPort}`);
  add('HashedControlPassword', runtime.hashedControlPassword);
  add('CookieAuthentication', '0');

  // 2. Transparent proxying of names: .onion works without per-app setup.
  add('AutomapHostsOnResolve', '1');
  add('AutomapHostsSuffixes', '.onion,.exit');
  add('VirtualAddrNetworkIPv4', GUEST.virtualAddrNetwork);

  // 3. Client only; state on the persistent disk; logs to the serial console.
  add('ClientOnly', '1');
  add('DataDirectory', GUEST.torDataDirectory);
  add('User', GUEST.torUser);
  add('Log', 'notice', 'stdout');
  add('SafeLogging', tor.extra.SafeLogging ?? '1');
  add('Sandbox', bool(runtime.sandbox));
  add('AvoidDiskWrites', '1');
  add('GeoIPFile', GEOIP_FILE);

  // 4. Bridges and their transports.
  if (tor.bridges.enabled) {
    const bridges = bridgeLines(tor.bridges.lines, tor.bridges.useBuiltin ? (runtime.builtinBridges ?? []) : []);
    if (bridges.length === 0) throw new TorvmError('ERR_CONFIG_INVALID', 'bridges are enabled, but there is no bridge line to use', { details: { path: 'tor.bridges' } });
    add('UseBridges', '1');
    for (const transport of [...new Set(bridges.map((b) => b.transport))].sort()) {
      if (transport === 'vanilla') continue;
      const plugin = GUEST.transportPlugins[transport];
      if (!plugin) throw new TorvmError('ERR_CONFIG_INVALID', `the VM image ships no client for the ${transport} transport`, { details: { path: 'tor.bridges.lines' } });
      add('ClientTransportPlugin', transport, 'exec', plugin);
    }
    for (const b of bridges) add('Bridge', formatBridgeLine(b));
  }

  // 5. Upstream proxy. Tor's "HTTPSProxy" is an HTTP proxy that supports CONNECT.
  const proxy = tor.proxy;
  if (proxy.type === 'https') {
    add('HTTPSProxy', `${proxy.host}:${proxy.port}`);
    if (proxy.username !== undefined && proxy.password !== undefined) add('HTTPSProxyAuthenticator', `${proxy.username}:${proxy.password}`);
  } else if (proxy.type === 'socks5') {
    add('Socks5Proxy', `${proxy.host}:${proxy.port}`);
    if (proxy.username !== undefined && proxy.password !== undefined) {
      add('Socks5ProxyUsername', proxy.username);
      add('Socks5ProxyPassword', proxy.password);
    }
  } else if (proxy.type === 'socks4') {
    add('Socks4Proxy', `${proxy.host}:${proxy.port}`);
  }

  // 6. Node selection and the allowlisted extras.
  const nodes: Array<[string, readonly string[]]> = [
    ['EntryNodes', tor.nodes.entry], ['ExitNodes', tor.nodes.exit],
    ['ExcludeNodes', tor.nodes.exclude], ['ExcludeExitNodes', tor.nodes.excludeExit],
  ];
  for (const [key, list] of nodes) if (list.length > 0) add(key, list.join(','));
  if (tor.nodes.strict) add('StrictNodes', '1');
  const extra = tor.extra;
  if (extra.NumEntryGuards !== undefined) add('NumEntryGuards', extra.NumEntryGuards);
  if (extra.CircuitBuildTimeout !== undefined) add('CircuitBuildTimeout', extra.CircuitBuildTimeout);
  if (extra.MaxCircuitDirtiness !== undefined) add('MaxCircuitDirtiness', extra.MaxCircuitDirtiness);
  if (extra.NewCircuitPeriod !== undefined) add('NewCircuitPeriod', extra.NewCircuitPeriod);
  if (extra.ConnectionPadding !== undefined) add('ConnectionPadding', extra.ConnectionPadding);
  if (extra.ReducedConnectionPadding !== undefined) add('ReducedConnectionPadding', bool(extra.ReducedConnectionPadding));
  if (extra.LongLivedPorts !== undefined && extra.LongLivedPorts.length > 0) add('LongLivedPorts', extra.LongLivedPorts.join(','));

  // 7. A private test network replaces the public directory authorities.
  if (tor.testingNetwork) {
    lines.push('# TESTING NETWORK: not the public Tor network.');
    add('TestingTorNetwork', '1');
    for (const a of tor.testingNetwork.authorities) {
      add('DirAuthority', a.nickname, `orport=${a.orPort}`, 'no-v2', `v3ident=${a.v3ident.replace(/^\$/, '').toUpperCase()}`, `${a.address}:${a.dirPort}`, a.fingerprint.replace(/^\$/, '').toUpperCase());
    }
  }
  return `${lines.join('\n')}\n`;
}

function bridgeLines(configured: readonly string[], builtin: readonly string[]): BridgeLine[] {
  const out: BridgeLine[] = [];
  for (const line of [...configured, ...builtin]) {
    const parsed = parseBridgeLine(line);
    if (!parsed.ok) throw new TorvmError('ERR_CONFIG_INVALID', `a bridge line ${parsed.error}`, { details: { path: 'tor.bridges.lines' } });
    out.push(parsed.bridge);
  }
  return out;
}
