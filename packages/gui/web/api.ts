/**
 * The GUI's client of the daemon's loopback API. The token arrives once in
 * the URL fragment (never sent to a server), moves to sessionStorage, and is
 * sent only as a header. The event stream is read with fetch so that it can
 * carry the header too (EventSource cannot).
 */
import type { DaemonStatus } from '../../torvm/src/api/schema.ts';

export type { DaemonStatus };
export type LogLine = { time: number; level: string; component: string; msg: string };
export type GuiSettings = {
  accel: 'auto' | 'kvm' | 'hvf' | 'whpx' | 'tcg';
  memoryMiB: number;
  lockdown: boolean;
  allowLan: boolean;
  autostart: boolean;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
};
export type BridgesState = { enabled: boolean; useBuiltin: boolean; lines: string[]; builtinCount: number };
export type ProxyType = 'none' | 'https' | 'socks5' | 'socks4';
export type ProxyState = { type: ProxyType; host?: string; port?: number; username?: string; hasPassword: boolean };
/** GET /v1/bridges/live: what the running Tor uses (never a cert). */
export type LiveBridges = { running: boolean; useBridges: boolean; bridges: Array<{ transport: string; address: string; fingerprint: string | null }> };
export type ChangeResult = { ok: true; saved: boolean; applied: boolean; note: string | null };

const TOKEN_HEADER = 'X-Torvm-Token';
const STORAGE_KEY = 'torvm-token';

/** Takes the token out of the URL (so it is not in history or screenshots) and keeps it for this tab. */
export function takeToken(): string | null {
  const match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (match?.[1]) {
    sessionStorage.setItem(STORAGE_KEY, match[1]);
    history.replaceState(null, '', location.pathname);
  }
  return sessionStorage.getItem(STORAGE_KEY);
}

let token: string | null = null;
export function setToken(t: string | null): void { token = t; }

/** An API refusal, with the server's own message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

export async function api<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { [TOKEN_HEADER]: token ?? '' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? null : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
  const json: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const message = (json as { error?: { message?: string } } | null)?.error?.message ?? `the daemon answered ${res.status}`;
    throw new ApiError(res.status, message);
  }
  return json as T;
}

export interface StreamHandlers {
  status(s: DaemonStatus): void;
  log(l: LogLine): void;
  connected(up: boolean): void;
}

/** Follows /v1/events, reconnecting with backoff until `signal` aborts. */
export async function followEvents(h: StreamHandlers, signal: AbortSignal): Promise<void> {
  let delay = 500;
  while (!signal.aborted) {
    try {
      const res = await fetch('/v1/events', { headers: { [TOKEN_HEADER]: token ?? '' }, signal, cache: 'no-store', credentials: 'omit' });
      if (!res.ok || !res.body) throw new ApiError(res.status, `event stream refused (${res.status})`);
      h.connected(true);
      delay = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!event || data === undefined) continue;
          if (event === 'status') h.status(JSON.parse(data) as DaemonStatus);
          else if (event === 'log') h.log(JSON.parse(data) as LogLine);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status === 401) { h.connected(false); return; }
    }
    h.connected(false);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 8000);
  }
}
