/**
 * Bounded waiting on real readiness. Polling a real condition is fine; a bare
 * sleep standing in for readiness is not.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Fail after this long. */
  timeoutMs: number;
  /** Time between checks. Default 100 ms. */
  intervalMs?: number;
  /** Says what was awaited, in the timeout error. */
  what: string;
  /** Extra context for the timeout error (e.g. a log tail), computed lazily. */
  diagnose?: () => Promise<string> | string;
}

/**
 * Calls `check` until it returns a value other than undefined/false and
 * returns that value; throws after `timeoutMs`. Errors thrown by `check` count
 * as "not yet" (the last one is reported on timeout).
 */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const extra = opts.diagnose ? `\n${await Promise.resolve(opts.diagnose()).catch((e: unknown) => String(e))}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${last}${extra}`);
    }
    await delay(opts.intervalMs ?? 100);
  }
}
