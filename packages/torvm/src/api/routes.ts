/**
 * The local API as a table: method, path, request schema, handler. The
 * Unix-socket server (CLI) and the loopback server (GUI) both serve this
 * table, so they can never disagree. A request body that fails its schema is
 * refused with 400 before the handler runs, so a bad request changes nothing.
 */
import type { z } from 'zod';
import { TorvmError } from '../core/errors.ts';
import type { DaemonStatus, StopRequest } from './schema.ts';
import type { TorvmConfig } from '../core/config.ts';
import type { TorControlClient } from '../tor/index.ts';
import type { LogLine } from '../log/ring-buffer.ts';
import { stopRequestSchema } from './schema.ts';

/** What the daemon exposes to the API routes. */
export interface DaemonControl {
  status(): DaemonStatus;
  subscribe(listener: (status: DaemonStatus) => void): () => void;
  /** Starts a run if none is going (service mode). */
  start(): void;
  stop(request: StopRequest): void;
  /** The config as it is now; changes apply at the next start unless a route applies them live. */
  config(): TorvmConfig;
  /** Validates nothing itself: callers pass a config that passed the schema. Writes the file atomically. */
  updateConfig(next: TorvmConfig): Promise<void>;
  /** The live Tor control connection while the VM's Tor is up, else null. */
  tor(): TorControlClient | null;
  /** Registers a secret (a bridge line, a proxy password) so no log line carries it. */
  addSecret(secret: string): void;
  logs(): LogLine[];
  subscribeLogs(listener: (line: LogLine) => void): () => void;
}

export interface Route<S extends z.ZodType = z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  /** Schema of the JSON body (POST/PUT). */
  body?: S;
  /** Changes daemon state (the GUI server demands its CSRF checks for these). */
  mutates: boolean;
  handle(control: DaemonControl, body: z.output<S>): Promise<{ code: number; json: unknown }>;
}

export const CORE_ROUTES: Route[] = [
  { method: 'GET', path: '/v1/status', mutates: false, handle: async (c) => ({ code: 200, json: c.status() }) },
  { method: 'POST', path: '/v1/start', mutates: true, handle: async (c) => { c.start(); return { code: 202, json: { ok: true } }; } },
  {
    method: 'POST', path: '/v1/stop', body: stopRequestSchema, mutates: true,
    handle: async (c, body: StopRequest) => { c.stop(body); return { code: 202, json: { ok: true } }; },
  } as Route,
];

export interface RouteResult { code: number; json: unknown }

/** Finds and runs the route for a request. Never throws: errors become JSON error bodies. */
export async function dispatch(routes: readonly Route[], control: DaemonControl, method: string, path: string, readBody: () => Promise<unknown>): Promise<RouteResult> {
  const route = routes.find((r) => r.method === method && r.path === path);
  if (!route) return { code: 404, json: { error: { code: 'ERR_USAGE', message: `no such endpoint: ${method} ${path}` } } };
  try {
    let body: unknown = undefined;
    if (route.body) {
      const parsed = route.body.safeParse(await readBody());
      if (!parsed.success) {
        return { code: 400, json: { error: { code: 'ERR_USAGE', message: parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`).join('; ') } } };
      }
      body = parsed.data;
    }
    return await route.handle(control, body);
  } catch (err) {
    const code = err instanceof TorvmError ? err.code : 'ERR_INTERNAL';
    const http = err instanceof TorvmError && err.isUserError ? 400 : code === 'ERR_NOT_AVAILABLE' ? 501 : 500;
    return { code: http, json: { error: { code, message: err instanceof Error ? err.message : String(err) } } };
  }
}
