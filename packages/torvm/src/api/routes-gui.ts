/**
 * The GUI's own routes: the log ring buffer and the settings the GUI edits.
 *
 * PUT /v1/settings builds the whole next config, runs it through the config
 * schema (`validateConfig`) and only then saves it, so a bad request changes
 * nothing. Settings apply at the next start; the response says so.
 *
 * GET /v1/bridges/live asks the running Tor itself (GETCONF UseBridges
 * Bridge), so the GUI can show which bridges are really in use, not just
 * what the config file says. It answers transport, address and fingerprint
 * of each bridge, never the rest of the line (an obfs4 cert is the secret).
 */
import { z } from 'zod';
import { parseBridgeLine } from '../core/bridge-line.ts';
import { ACCELERATORS, LOG_LEVELS, validateConfig, type PlatformDefaults, type TorvmConfig } from '../core/config.ts';
import { TorvmError } from '../core/errors.ts';
import type { DaemonControl, Route } from './routes.ts';

/** The settings the GUI shows, flat. Every field of a PUT is optional: absent means unchanged. */
export const guiSettingsSchema = z.strictObject({
  accel: z.enum(ACCELERATORS),
  memoryMiB: z.int(),
  lockdown: z.boolean(),
  allowLan: z.boolean(),
  autostart: z.boolean(),
  logLevel: z.enum(LOG_LEVELS),
});
export type GuiSettings = z.output<typeof guiSettingsSchema>;

export const settingsUpdateSchema = guiSettingsSchema.partial();
export type SettingsUpdate = z.output<typeof settingsUpdateSchema>;

/** Said in every settings response, so the GUI never implies a live change. */
export const SETTINGS_APPLY_NOTE = 'Changes apply the next time TorVM starts.';

export function settingsOf(c: TorvmConfig): GuiSettings {
  return {
    accel: c.vm.accel, memoryMiB: c.vm.memoryMiB, lockdown: c.network.lockdown,
    allowLan: c.network.allowLan, autostart: c.service.autostart, logLevel: c.log.level,
  };
}

/** The config with `update` applied; pure. */
export function applySettings(c: TorvmConfig, update: SettingsUpdate): TorvmConfig {
  const next = structuredClone(c);
  if (update.accel !== undefined) next.vm.accel = update.accel;
  if (update.memoryMiB !== undefined) next.vm.memoryMiB = update.memoryMiB;
  if (update.lockdown !== undefined) next.network.lockdown = update.lockdown;
  if (update.allowLan !== undefined) next.network.allowLan = update.allowLan;
  if (update.autostart !== undefined) next.service.autostart = update.autostart;
  if (update.logLevel !== undefined) next.log.level = update.logLevel;
  return next;
}

/** The bridges the running Tor uses, as it reports them; `running: false` when there is no Tor to ask. */
export const liveBridgesSchema = z.strictObject({
  running: z.boolean(),
  useBridges: z.boolean(),
  bridges: z.array(z.strictObject({ transport: z.string(), address: z.string(), fingerprint: z.string().nullable() })),
});
export type LiveBridges = z.output<typeof liveBridgesSchema>;

/** What the live-bridges route needs of the Tor control client (tests pass a fake). */
export interface TorConfSource {
  getConf(keys: readonly string[], options?: { timeoutMs?: number }): Promise<Map<string, string[]>>;
}

/** Reads UseBridges and Bridge from a running Tor; a line Tor holds but we cannot parse shows as "unknown". */
export async function readLiveBridges(tor: TorConfSource | null): Promise<LiveBridges> {
  if (!tor) return { running: false, useBridges: false, bridges: [] };
  const conf = await tor.getConf(['UseBridges', 'Bridge'], { timeoutMs: 10_000 });
  // Tor answers with its canonical option names; compare without case anyway.
  const values = (key: string) => [...conf].filter(([k]) => k.toLowerCase() === key.toLowerCase()).flatMap(([, v]) => v);
  const useBridges = values('UseBridges').some((v) => v === '1');
  const bridges = values('Bridge').map((line) => {
    const parsed = parseBridgeLine(line);
    if (!parsed.ok) return { transport: 'unknown', address: 'unknown', fingerprint: null };
    const b = parsed.bridge;
    return { transport: b.transport, address: b.host.includes(':') ? `[${b.host}]:${b.port}` : `${b.host}:${b.port}`, fingerprint: b.fingerprint ?? null };
  });
  return { running: true, useBridges, bridges };
}

const settingsResponse = (c: TorvmConfig) => ({ settings: settingsOf(c), appliesAt: 'next-start' as const, note: SETTINGS_APPLY_NOTE });

/** Builds the GUI routes; `defaults` are the platform's, for `validateConfig`. */
export function createGuiRoutes(defaults: PlatformDefaults): Route[] {
  return [
    {
      method: 'GET', path: '/v1/logs', mutates: false,
      handle: async (c: DaemonControl) => ({
        code: 200,
        json: { lines: c.logs().map((l) => ({ time: l.time, level: l.level, component: l.component, msg: l.msg })) },
      }),
    },
    { method: 'GET', path: '/v1/bridges/live', mutates: false, handle: async (c: DaemonControl) => ({ code: 200, json: await readLiveBridges(c.tor()) }) },
    { method: 'GET', path: '/v1/settings', mutates: false, handle: async (c: DaemonControl) => ({ code: 200, json: settingsResponse(c.config()) }) },
    {
      method: 'PUT', path: '/v1/settings', body: settingsUpdateSchema, mutates: true,
      handle: async (c: DaemonControl, update: SettingsUpdate) => {
        const result = validateConfig(applySettings(c.config(), update), defaults);
        if (!result.ok) {
          throw new TorvmError('ERR_CONFIG_INVALID', result.problems.map((p) => `${p.path}: ${p.message}`).join('; '), { details: { problems: result.problems } });
        }
        await c.updateConfig(result.config);
        return { code: 200, json: settingsResponse(result.config) };
      },
    } as Route,
  ];
}

/** The answer of GET /v1/gui-url (Unix socket only): where the running daemon's GUI is, with its token. */
export const guiUrlSchema = z.strictObject({ url: z.string().nullable() });

/**
 * GET /v1/gui-url, for `torvm gui`. Served on the Unix socket only (root and
 * the torvm group), never by the GUI server: it hands out the token.
 */
export function createGuiUrlRoute(holder: { readonly url: string | null }): Route {
  return { method: 'GET', path: '/v1/gui-url', mutates: false, handle: async () => ({ code: 200, json: { url: holder.url } }) };
}
