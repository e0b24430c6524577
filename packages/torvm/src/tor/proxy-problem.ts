/**
 * Upstream-proxy failures in plain words, from Tor's own WARN log lines.
 * PURE. Tor reports a refused proxy login only in its log, never in the
 * BOOTSTRAP PROBLEM event (whose REASON is a generic MISC/IOERROR), so the
 * bootstrap monitor runs every WARN line through `describeProxyFailure`.
 *
 * The texts matched are tor 0.4.9's (core/mainloop/connection.c,
 * core/proto/proto_socks.c, core/or/connection_or.c):
 *   Proxy Client: unable to connect %s ("%s")           reason from the SOCKS4/5 handshake
 *   The https proxy refused to allow connection to %s (status code %d, %s). Closing.
 *   The https proxy sent back an unexpected status code %d (%s). Closing.
 *   The connection to the %s proxy server at %s just failed. Make sure that the proxy server is up and running.
 * Tor never logs proxy passwords, and nothing here copies more of a line
 * than the reason text, so the result holds no secret.
 */

/** The proxy Tor is configured with (from GETCONF; passwords are never read). */
export interface ConfiguredProxy {
  kind: 'HTTP CONNECT' | 'SOCKS5' | 'SOCKS4';
  /** host:port as configured. */
  address: string;
}

export type ProxyFailureKind = 'credentials' | 'auth-method' | 'unreachable' | 'relay-refused' | 'bad-reply';

export interface ProxyFailure {
  kind: ProxyFailureKind;
  /** One plain sentence for status.bootstrap.problem. */
  text: string;
}

/** The GETCONF keys `configuredProxyFromConf` reads: addresses only, never a password. */
export const PROXY_ADDRESS_KEYS = ['HTTPSProxy', 'Socks5Proxy', 'Socks4Proxy'] as const;

/** The one proxy Tor uses (Tor allows at most one of the three), or undefined. */
export function configuredProxyFromConf(conf: ReadonlyMap<string, readonly string[]>): ConfiguredProxy | undefined {
  const kinds: Record<(typeof PROXY_ADDRESS_KEYS)[number], ConfiguredProxy['kind']> = { HTTPSProxy: 'HTTP CONNECT', Socks5Proxy: 'SOCKS5', Socks4Proxy: 'SOCKS4' };
  for (const key of PROXY_ADDRESS_KEYS) {
    const value = conf.get(key)?.find((v) => v.trim() !== '');
    if (value !== undefined) return { kind: kinds[key], address: value.trim() };
  }
  return undefined;
}

const TOR_PROXY_TYPES: Readonly<Record<string, ConfiguredProxy['kind']>> = { HTTP: 'HTTP CONNECT', SOCKS5: 'SOCKS5', SOCKS4: 'SOCKS4' };

/** A reason Tor got from the proxy's SOCKS reply, quoted by `escaped()`. */
const UNABLE_TO_CONNECT = /^Proxy Client: unable to connect\b.*?(?:\("((?:[^"\\]|\\.)*)"\))?\s*$/;
const HTTP_REFUSED = /^The https proxy refused to allow connection to \S+ \(status code (\d{3}), ?(.*)\)\. Closing\.$/;
const HTTP_UNEXPECTED = /^The https proxy sent back an unexpected status code (\d{3}) \((.*)\)\. Closing\.$/;
const JUST_FAILED = /^The connection to the (\S+) proxy server at (\S+) just failed\./;

const clip = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 80);

/**
 * Reads one Tor WARN line. Returns undefined when the line is not about the
 * user's upstream proxy (including lines about a pluggable transport's local
 * SOCKS listener, which Tor also calls a proxy), or when no proxy is
 * configured: then a "Proxy Client" line can only be about a transport.
 */
export function describeProxyFailure(line: string, proxy: ConfiguredProxy | undefined): ProxyFailure | undefined {
  const message = line.trim();
  const failed = JUST_FAILED.exec(message);
  if (failed) {
    const kind = TOR_PROXY_TYPES[failed[1] ?? ''];
    if (kind === undefined) return undefined; // "pluggable transports SOCKS"
    return { kind: 'unreachable', text: `Tor cannot reach the ${kind} proxy ${failed[2] ?? ''}: check that it is running and that its address and port are right` };
  }
  if (proxy === undefined) return undefined;
  const who = `The ${proxy.kind} proxy ${proxy.address}`;

  const refused = HTTP_REFUSED.exec(message) ?? HTTP_UNEXPECTED.exec(message);
  if (refused && proxy.kind === 'HTTP CONNECT') {
    const code = Number(refused[1]);
    const status = `${code}${refused[2] ? ` ${clip(refused[2])}` : ''}`;
    if (code === 407) return { kind: 'credentials', text: `${who} refused the username or password (HTTP ${status})` };
    if (code === 403 || code === 405) return { kind: 'relay-refused', text: `${who} would not connect Tor to a relay (HTTP ${status})` };
    return { kind: 'bad-reply', text: `${who} answered HTTP ${status} instead of connecting Tor to a relay` };
  }

  const unable = UNABLE_TO_CONNECT.exec(message);
  if (unable && proxy.kind !== 'HTTP CONNECT') {
    const reason = (unable[1] ?? '').replace(/\\(.)/g, '$1');
    if (reason === 'authentication failed') return { kind: 'credentials', text: `${who} refused the username or password` };
    if (/doesn't support any of our available authentication methods/.test(reason)) {
      return { kind: 'auth-method', text: `${who} accepts none of the login methods Tor offered: it may need a username and password` };
    }
    return { kind: 'relay-refused', text: `${who} would not connect Tor to a relay${reason ? ` (${clip(reason)})` : ''}` };
  }
  return undefined;
}
