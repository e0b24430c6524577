/**
 * API routes for Tor features: new identity, bridges, upstream proxy.
 *
 *   POST /v1/newnym   SIGNAL NEWNYM; says whether Tor rate-limited it
 *   GET  /v1/bridges  the bridge settings (lines included: the socket is root/torvm only)
 *   PUT  /v1/bridges  validate -> save -> SETCONF live (when Tor runs)
 *   GET  /v1/proxy    the upstream proxy (password masked)
 *   PUT  /v1/proxy    validate -> save -> SETCONF live (when Tor runs)
 *
 * A change is validated against the whole config schema before it is saved,
 * so a bad line or port changes nothing. It is saved before it is applied:
 * if Tor refuses it, the answer says so (applied: false, with Tor's words)
 * and the next start uses it anyway, after the torrc renderer checks it again.
 */
import { bridgeLogSecrets } from '../core/bridge-secrets.ts';
import { z } from 'zod';
import { validateConfig, type PlatformDefaults, type TorvmConfig } from '../core/config.ts';
import { builtinBridgeLines } from '../core/builtin-bridges.ts';
import { TorvmError } from '../core/errors.ts';
import { applyBridges, applyProxy } from '../daemon/tor-features.ts';
import type { DaemonControl, Route } from './routes.ts';

export const bridgesRequestSchema = z.strictObject({
  enabled: z.boolean(),
  useBuiltin: z.boolean().prefault(false),
  lines: z.array(z.string().max(2048)).max(64).prefault([]),
});
export type BridgesRequest = z.output<typeof bridgesRequestSchema>;

/** The proxy body; the config schema checks the fields' grammar. */
export const proxyRequestSchema = z.strictObject({
  type: z.enum(['none', 'https', 'socks5', 'socks4']),
  host: z.string().max(255).optional(),
  port: z.number().optional(),
  username: z.string().max(255).optional(),
  password: z.string().max(255).optional(),
});
export type ProxyRequest = z.output<typeof proxyRequestSchema>;

/** The answer to a change: saved always; applied live when Tor ran and accepted it. */
export const changeResultSchema = z.strictObject({
  ok: z.literal(true),
  saved: z.boolean(),
  applied: z.boolean(),
  /** Why it was not applied live (no running Tor, or Tor's refusal). */
  note: z.string().nullable(),
});
export type ChangeResult = z.output<typeof changeResultSchema>;

export const bridgesStatusSchema = z.strictObject({
  enabled: z.boolean(),
  useBuiltin: z.boolean(),
  lines: z.array(z.string()),
  builtinCount: z.int(),
});

export const proxyStatusSchema = z.strictObject({
  type: z.enum(['none', 'https', 'socks5', 'socks4']),
  host: z.string().optional(),
  port: z.number().optional(),
  username: z.string().optional(),
  /** Never the password itself. */
  hasPassword: z.boolean(),
});

export const newnymResultSchema = z.strictObject({
  ok: z.literal(true),
  rateLimited: z.boolean(),
  /** Seconds until Tor applies it, when it delays; null when it ignores a repeated request. */
  delaySeconds: z.number().nullable(),
  message: z.string(),
});

/** Features may register secrets so logs are scrubbed of them; the daemon's control may offer this. */
type ControlWithSecrets = DaemonControl & { addSecret?: (secret: string) => void };

/** The current config values stand in as the defaults: a complete config needs none, so nothing changes. */
function defaultsOf(config: TorvmConfig): PlatformDefaults {
  return { stateDir: config.vm.stateDir, imageDir: config.vm.imageDir, qemuBinary: config.vm.qemuBinary, apiSocketPath: config.api.socketPath };
}

/** Validates a changed config with the full schema; throws ERR_CONFIG_INVALID naming each problem. */
export function revalidate(next: unknown, current: TorvmConfig): TorvmConfig {
  const result = validateConfig(next, defaultsOf(current));
  if (!result.ok) {
    throw new TorvmError('ERR_CONFIG_INVALID', result.problems.map((p) => `${p.path}: ${p.message}`).join('; '), {
      details: { paths: result.problems.map((p) => p.path) },
    });
  }
  return result.config;
}

async function saveThenApply(control: ControlWithSecrets, next: TorvmConfig, apply: (tor: NonNullable<ReturnType<DaemonControl['tor']>>) => Promise<void>): Promise<ChangeResult> {
  await control.updateConfig(next);
  const tor = control.tor();
  if (!tor) return { ok: true, saved: true, applied: false, note: 'Tor is not running; the change applies at the next start' };
  try {
    await apply(tor);
    return { ok: true, saved: true, applied: true, note: null };
  } catch (err) {
    if (!(err instanceof TorvmError) || err.code !== 'ERR_TOR_CONTROL') throw err;
    return { ok: true, saved: true, applied: false, note: `Tor refused the live change (${err.message}); it applies at the next start` };
  }
}

export const TOR_ROUTES: Route[] = [
  {
    method: 'POST', path: '/v1/newnym', mutates: true,
    handle: async (control) => {
      const tor = control.tor();
      if (!tor) throw new TorvmError('ERR_NOT_AVAILABLE', 'Tor is not running', { hint: 'start TorVM first (`torvm up`)' });
      const result = await tor.newIdentity({ timeoutMs: 15_000 });
      const json = result.rateLimited
        ? { ok: true, rateLimited: true, delaySeconds: result.delaySeconds, message: result.delaySeconds === null ? 'Tor already has a new identity pending' : `Tor rate-limits new identities: it applies this one in ${result.delaySeconds} s` }
        : { ok: true, rateLimited: false, delaySeconds: null, message: 'New circuits will be used for new connections' };
      return { code: 200, json };
    },
  },
  {
    method: 'GET', path: '/v1/bridges', mutates: false,
    handle: async (control) => {
      const b = control.config().tor.bridges;
      return { code: 200, json: { enabled: b.enabled, useBuiltin: b.useBuiltin, lines: b.lines, builtinCount: builtinBridgeLines().length } };
    },
  },
  {
    method: 'PUT', path: '/v1/bridges', body: bridgesRequestSchema, mutates: true,
    handle: async (control: ControlWithSecrets, body: BridgesRequest) => {
      const current = control.config();
      const next = revalidate({ ...current, tor: { ...current.tor, bridges: body } }, current);
      for (const line of next.tor.bridges.lines) for (const s of bridgeLogSecrets(line)) control.addSecret?.(s);
      const result = await saveThenApply(control, next, (tor) => applyBridges(tor, next.tor.bridges, builtinBridgeLines()));
      return { code: 200, json: result };
    },
  } as Route,
  {
    method: 'GET', path: '/v1/proxy', mutates: false,
    handle: async (control) => ({ code: 200, json: describeProxy(control.config().tor.proxy) }),
  },
  {
    method: 'PUT', path: '/v1/proxy', body: proxyRequestSchema, mutates: true,
    handle: async (control: ControlWithSecrets, body: ProxyRequest) => {
      const current = control.config();
      const proxy = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
      const next = revalidate({ ...current, tor: { ...current.tor, proxy } }, current);
      const p = next.tor.proxy;
      if ('password' in p && p.password !== undefined) control.addSecret?.(p.password);
      const result = await saveThenApply(control, next, (tor) => applyProxy(tor, p));
      return { code: 200, json: result };
    },
  } as Route,
];

/** The proxy without its password. */
export function describeProxy(p: TorvmConfig['tor']['proxy']): z.output<typeof proxyStatusSchema> {
  if (p.type === 'none') return { type: 'none', hasPassword: false };
  const out: z.output<typeof proxyStatusSchema> = { type: p.type, host: p.host, port: p.port, hasPassword: 'password' in p && p.password !== undefined };
  if ('username' in p && p.username !== undefined) out.username = p.username;
  return out;
}
