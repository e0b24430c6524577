/**
 * Bridge lines, validated per transport grammar. A bridge line is a secret
 * (it reveals an unlisted relay), so it is redacted from logs.
 *
 *   vanilla    IP:PORT [FINGERPRINT]
 *   obfs4      obfs4 IP:PORT FINGERPRINT cert=BASE64 iat-mode=0|1|2
 *   snowflake  snowflake IP:PORT FINGERPRINT [fingerprint=… url=… fronts=… ice=… utls-imitate=…]
 *   meek_lite  meek_lite IP:PORT [FINGERPRINT] url=… [front=… utls=…]   ("meek-azure" is read as meek_lite)
 *   webtunnel  webtunnel IP:PORT FINGERPRINT url=… [ver=…]
 */
import { checkFingerprint, parseHostPort } from './validators.ts';

export const TRANSPORTS = ['vanilla', 'obfs4', 'snowflake', 'meek_lite', 'webtunnel'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export interface BridgeLine {
  transport: Transport;
  host: string;
  port: number;
  fingerprint: string | undefined;
  /** key=value arguments in their original order. */
  args: Array<[string, string]>;
}

/**
 * Transports whose lines may leave out the bridge's fingerprint. Tor accepts a
 * Bridge line without one (it learns the identity at connect time); the other
 * transports' clients need it (obfs4's cert binds to it, snowflake picks its
 * bridge by it), and all their published lines carry one. meek_lite's does
 * not: its server behind the CDN is picked by the url, so Tor Browser's
 * built-in meek line names no fingerprint.
 */
const FINGERPRINT_OPTIONAL: ReadonlySet<Transport> = new Set<Transport>(['vanilla', 'meek_lite']);

/** Per-transport argument grammar: allowed keys and their value patterns. */
const URL_VALUE = /^https:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~/%-]*)?$/;
/**
 * meek_lite also takes plain http:// (obfs4proxy's meek_lite speaks both):
 * for a self-hosted meek server without a CDN. It leaks nothing Tor's own TLS
 * does not already hide, but it has no domain fronting, and the meek traffic
 * itself is plain to see. TLS certificates are always verified for https://.
 */
const MEEK_URL_VALUE = /^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~/%-]*)?$/;
const HOST_LIST = /^[A-Za-z0-9.-]+(?:,[A-Za-z0-9.-]+)*$/;
const ICE_LIST = /^stuns?:[A-Za-z0-9.-]+(?::\d{1,5})?(?:,stuns?:[A-Za-z0-9.-]+(?::\d{1,5})?)*$/;
const HEX40 = /^[0-9A-Fa-f]{40}$/;

const ARG_RULES: Record<Exclude<Transport, 'vanilla'>, { required: string[]; allowed: Record<string, RegExp> }> = {
  obfs4: {
    required: ['cert', 'iat-mode'],
    allowed: { cert: /^[A-Za-z0-9+/]{40,200}={0,2}$/, 'iat-mode': /^[012]$/ },
  },
  snowflake: {
    required: [],
    allowed: { fingerprint: HEX40, url: URL_VALUE, front: HOST_LIST, fronts: HOST_LIST, ice: ICE_LIST, 'utls-imitate': /^[A-Za-z0-9_-]{1,40}$/ },
  },
  meek_lite: {
    required: ['url'],
    allowed: { url: MEEK_URL_VALUE, front: /^[A-Za-z0-9.-]+$/, utls: /^[A-Za-z0-9_-]{1,40}$/ },
  },
  webtunnel: {
    required: ['url'],
    allowed: { url: URL_VALUE, ver: /^[0-9.]{1,10}$/ },
  },
};

export type BridgeParse = { ok: true; bridge: BridgeLine } | { ok: false; error: string };

/** Parses and validates one bridge line. Never throws. */
export function parseBridgeLine(input: string): BridgeParse {
  if (/[\u0000-\u001f\u007f]/.test(input)) return { ok: false, error: 'must be a single line without control characters' };
  let words = input.trim().split(/ +/).filter((w) => w.length > 0);
  if (words[0] === 'Bridge') words = words.slice(1); // accept lines pasted from a torrc
  if (words.length === 0) return { ok: false, error: 'is empty' };

  let transport: Transport = 'vanilla';
  const first = words[0] ?? '';
  if (!/^[\d[]/.test(first)) {
    const name = first === 'meek-azure' || first === 'meek' ? 'meek_lite' : first;
    if (!(TRANSPORTS as readonly string[]).includes(name) || name === 'vanilla') {
      return { ok: false, error: `has unknown transport "${first.slice(0, 20)}" (known: obfs4, snowflake, meek_lite, webtunnel, or none for a vanilla bridge)` };
    }
    transport = name as Transport;
    words = words.slice(1);
  }

  const address = parseHostPort(words[0] ?? '');
  if (!address) return { ok: false, error: 'needs an address as IPv4:PORT or [IPv6]:PORT' };
  const rest = words.slice(1);

  let fingerprint: string | undefined;
  if (rest[0] !== undefined && !rest[0].includes('=')) {
    if (checkFingerprint(rest[0]) !== null) return { ok: false, error: 'has an invalid fingerprint (must be 40 hex digits)' };
    fingerprint = rest.shift()?.replace(/^\$/, '').toUpperCase();
  }

  if (transport === 'vanilla') {
    if (rest.length > 0) return { ok: false, error: 'is a vanilla bridge and takes only IP:PORT and an optional fingerprint' };
    return { ok: true, bridge: { transport, host: address.host, port: address.port, fingerprint, args: [] } };
  }

  if (!fingerprint && !FINGERPRINT_OPTIONAL.has(transport)) return { ok: false, error: `needs a fingerprint for ${transport}` };
  const rules = ARG_RULES[transport];
  const args: Array<[string, string]> = [];
  const seen = new Set<string>();
  for (const word of rest) {
    const eq = word.indexOf('=');
    if (eq <= 0) return { ok: false, error: `has "${word.slice(0, 20)}", but ${transport} arguments must be key=value` };
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    const pattern = rules.allowed[key];
    if (!pattern) return { ok: false, error: `has unknown ${transport} argument "${key.slice(0, 20)}" (allowed: ${Object.keys(rules.allowed).join(', ')})` };
    if (seen.has(key)) return { ok: false, error: `repeats the argument "${key}"` };
    if (!pattern.test(value)) return { ok: false, error: `has an invalid value for ${key}=` };
    seen.add(key);
    args.push([key, value]);
  }
  for (const key of rules.required) {
    if (!seen.has(key)) return { ok: false, error: `needs ${key}= for ${transport}` };
  }
  return { ok: true, bridge: { transport, host: address.host, port: address.port, fingerprint, args } };
}

/** Renders a validated bridge as the value of a torrc `Bridge` line. */
export function formatBridgeLine(bridge: BridgeLine): string {
  const addr = bridge.host.includes(':') ? `[${bridge.host}]:${bridge.port}` : `${bridge.host}:${bridge.port}`;
  const parts = bridge.transport === 'vanilla' ? [addr] : [bridge.transport, addr];
  if (bridge.fingerprint) parts.push(bridge.fingerprint);
  for (const [k, v] of bridge.args) parts.push(`${k}=${v}`);
  return parts.join(' ');
}
