/**
 * TorControlClient: an authenticated, self-healing connection to Tor's control
 * port (control-spec v1) over TCP.
 *
 *   connect     PROTOCOLINFO 1 -> AUTHENTICATE "password" -> SETEVENTS (remembered set)
 *   commands    one FIFO per connection (Tor answers in order), each with a timeout
 *   drop        pending commands fail, then reconnect with exponential backoff,
 *               re-authenticate and re-issue SETEVENTS, until close()
 *
 * The password is never logged and never put in error details.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { TorvmError, isTorvmError } from '../core/errors.ts';
import {
  isSuccess, parseGetConfReply, parseGetInfoReply, parseProtocolInfo, renderAuthenticate, renderGetConf, renderGetInfo,
  renderResetConf, renderSetConf, renderSetEvents, renderSignal, replyError,
  type ConfEntries, type ProtocolInfo, type TorSignal,
} from './commands.ts';
import { ControlConnection, describeEndpoint, type ControlEndpoint } from './control-connection.ts';
import { parseEvent, type TorEvent, type TorEventName } from './events.ts';
import type { ControlMessage } from './reply-parser.ts';

export type { ConfEntries, ProtocolInfo, TorSignal } from './commands.ts';
export type { ControlEndpoint } from './control-connection.ts';
export type { TorEvent, TorEventName } from './events.ts';

/** Where to connect (TCP host and port, or a unix socket path) and how to behave. */
export type TorControlClientOptions = ControlEndpoint & TorControlClientSettings;

export interface TorControlClientSettings {
  /** The plain control password (Tor holds only its `16:` hash). */
  password: string;
  /** Per-command timeout; default 10 s. */
  commandTimeoutMs?: number;
  /** TCP connect plus authentication timeout; default 5 s. */
  connectTimeoutMs?: number;
  /** Reconnect after a drop (default on): first delay and cap of the exponential backoff. */
  reconnect?: false | { initialDelayMs?: number; maxDelayMs?: number };
  /** Receives one line per notable step (never secrets). */
  log?: (line: string) => void;
}

/**
 * `idle` (never connected) -> `connecting` -> `ready` <-> `reconnecting`; any -> `closed`.
 */
export type ControlClientState = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closed';

/** Per-call options of long operations. */
export interface CallOptions {
  /** Overrides the client's command timeout for this call. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Outcome of SIGNAL NEWNYM, as Tor reported it. */
export type NewIdentityResult =
  | { rateLimited: false }
  /** Tor delays the request (`delaySeconds`) or ignores it because one is already pending (`null`). */
  | { rateLimited: true; delaySeconds: number | null; message: string };

const RATE_LIMIT_NOTICE = /^Rate limiting NEWNYM request: (?:delaying by (\d+) second)?/;

export class TorControlClient {
  private readonly commandTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly backoff: { initialDelayMs: number; maxDelayMs: number } | undefined;
  private readonly log: (line: string) => void;
  private readonly eventListeners = new Set<(event: TorEvent) => void>();
  private readonly stateListeners = new Set<(state: ControlClientState) => void>();
  private readonly closing = new AbortController();
  private connection: ControlConnection | undefined;
  private currentState: ControlClientState = 'idle';
  private subscribed: TorEventName[] = [];
  private info: ProtocolInfo | undefined;

  constructor(private readonly options: TorControlClientOptions) {
    this.commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.backoff = options.reconnect === false
      ? undefined
      : { initialDelayMs: options.reconnect?.initialDelayMs ?? 250, maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000 };
    this.log = options.log ?? (() => {});
  }

  /** The connection state; listen with onStateChange(). */
  get state(): ControlClientState {
    return this.currentState;
  }

  /** PROTOCOLINFO of the current (or last) connection. */
  get protocolInfo(): ProtocolInfo | undefined {
    return this.info;
  }

  /**
   * Connects and authenticates. With `retry`, keeps trying with backoff until
   * it succeeds, `signal` aborts or close() is called (use this while the VM
   * boots). A refused password is final and is never retried.
   */
  async connect(options: { signal?: AbortSignal; retry?: boolean } = {}): Promise<ProtocolInfo> {
    if (this.currentState === 'closed') throw controlError('the control client is closed');
    if (this.currentState !== 'idle') throw controlError(`connect() called while ${this.currentState}`);
    this.setState('connecting');
    const signal = anySignal(this.closing.signal, options.signal);
    let backoffMs = this.backoff?.initialDelayMs ?? 250;
    for (;;) {
      try {
        return await this.establish(signal);
      } catch (err) {
        const final = !options.retry || signal.aborted || isAuthFailure(err);
        if (final) {
          if (this.isState('connecting')) this.setState(isAuthFailure(err) ? 'closed' : 'idle');
          throw err;
        }
        this.log(`tor-control: connect failed (${errorText(err)}); retrying in ${backoffMs} ms`);
      }
      if (!(await sleep(backoffMs, signal))) {
        if (this.isState('connecting')) this.setState('idle');
        throw new TorvmError('ERR_CANCELLED', 'connecting to the Tor control port was cancelled');
      }
      backoffMs = Math.min(backoffMs * 2, this.backoff?.maxDelayMs ?? 10_000);
    }
  }

  /** `GETINFO k1 k2 ...` -> key -> value (data blocks keep their `\n` line breaks). */
  async getInfo(keys: readonly string[], options: CallOptions = {}): Promise<Map<string, string>> {
    const reply = await this.command(renderGetInfo(keys), 'GETINFO', options);
    return parseGetInfoReply(reply);
  }

  /** `GETCONF K1 K2 ...` -> key -> values (`[]` when unset or default). */
  async getConf(keys: readonly string[], options: CallOptions = {}): Promise<Map<string, string[]>> {
    return parseGetConfReply(await this.command(renderGetConf(keys), 'GETCONF', options));
  }

  /** `SETCONF`: values are always quoted; CR, LF and NUL are refused before anything is sent. */
  async setConf(entries: ConfEntries, options: CallOptions = {}): Promise<void> {
    await this.command(renderSetConf(entries), 'SETCONF', options);
  }

  /** `RESETCONF`: keys given without a value return to Tor's defaults. */
  async resetConf(entries: ConfEntries | readonly string[], options: CallOptions = {}): Promise<void> {
    await this.command(renderResetConf(entries), 'RESETCONF', options);
  }

  /**
   * Replaces the event subscription; it is re-issued after every reconnect.
   * When several components share the client, use enableEvents() instead.
   */
  async setEvents(events: readonly TorEventName[], options: CallOptions = {}): Promise<void> {
    const line = renderSetEvents(events);
    this.subscribed = [...new Set(events)];
    await this.command(line, 'SETEVENTS', options);
  }

  /** Adds events to the subscription (see setEvents). */
  async enableEvents(events: readonly TorEventName[], options: CallOptions = {}): Promise<void> {
    await this.setEvents([...this.subscribed, ...events], options);
  }

  /** The events currently subscribed. */
  get subscribedEvents(): readonly TorEventName[] {
    return this.subscribed;
  }

  /** `SIGNAL NAME`. SHUTDOWN and HALT make Tor close the connection after its 250. */
  async signal(signal: TorSignal, options: CallOptions = {}): Promise<void> {
    await this.command(renderSignal(signal), 'SIGNAL', options);
  }

  /**
   * SIGNAL NEWNYM, reporting whether Tor applied it now or rate-limited it
   * (Tor says so only as a NOTICE log event, so NOTICE and SIGNAL are
   * subscribed for the duration of the call). Tor ignores NEWNYM entirely
   * when it has no client port; that surfaces as ERR_TOR_CONTROL on timeout.
   */
  async newIdentity(options: CallOptions = {}): Promise<NewIdentityResult> {
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    const extra = (['NOTICE', 'SIGNAL'] as const).filter((e) => !this.subscribed.includes(e));
    const remembered = this.subscribed;
    let stopListening = (): void => {};
    const outcome = new Promise<NewIdentityResult>((resolve) => {
      stopListening = this.onEvent((event) => {
        if (event.type === 'SIGNAL' && event.signal === 'NEWNYM') resolve({ rateLimited: false });
        if (event.type === 'LOG' && event.severity === 'NOTICE') {
          const match = RATE_LIMIT_NOTICE.exec(event.message);
          if (match) resolve({ rateLimited: true, delaySeconds: match[1] === undefined ? null : Number(match[1]), message: event.message });
        }
      });
    });
    try {
      if (extra.length > 0) await this.command(renderSetEvents([...remembered, ...extra]), 'SETEVENTS', options);
      await this.signal('NEWNYM', options);
      return await withTimeout(outcome, timeoutMs, options.signal, () => controlError(
        `Tor acknowledged NEWNYM but reported no result within ${timeoutMs} ms`,
        undefined,
        'Tor ignores NEWNYM when it has no client port (SocksPort, TransPort, DNSPort).',
      ));
    } finally {
      stopListening();
      if (extra.length > 0 && this.currentState === 'ready') {
        await this.command(renderSetEvents(this.subscribed), 'SETEVENTS', {}).catch((err: unknown) => {
          this.log(`tor-control: restoring SETEVENTS failed: ${errorText(err)}`);
        });
      }
    }
  }

  /** Calls `listener` for every event; returns the unsubscribe function. Listener errors are logged, not thrown. */
  onEvent(listener: (event: TorEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Calls `listener` on every state change; returns the unsubscribe function. */
  onStateChange(listener: (state: ControlClientState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Closes the connection for good: no reconnect, pending commands fail. Safe to call twice. */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.setState('closed');
    this.closing.abort();
    const connection = this.connection;
    this.connection = undefined;
    connection?.close();
  }

  /** Resolves once the client is `ready` (at once if it is), bounded by the timeout. */
  async waitUntilReady(options: CallOptions = {}): Promise<void> {
    await this.readyConnection(Date.now() + (options.timeoutMs ?? this.commandTimeoutMs), options.signal, 'waiting for the control connection');
  }

  // ---------------------------------------------------------------------------

  private async establish(signal: AbortSignal): Promise<ProtocolInfo> {
    const timeoutMs = this.connectTimeoutMs;
    const connection = await ControlConnection.open(this.options, {
      onEvent: (message) => this.dispatch(message),
      onClose: (reason) => this.handleDrop(connection, reason),
    }, { timeoutMs, signal });
    try {
      const send = async (line: string, keyword: string): Promise<ControlMessage> => {
        const reply = await connection.send(line, keyword, { timeoutMs, signal });
        if (!isSuccess(reply)) throw replyError(keyword, reply);
        return reply;
      };
      const info = parseProtocolInfo(await send('PROTOCOLINFO 1', 'PROTOCOLINFO'));
      if (info.authMethods.includes('HASHEDPASSWORD')) {
        await send(renderAuthenticate(this.options.password), 'AUTHENTICATE');
      } else if (info.authMethods.includes('NULL')) {
        await send('AUTHENTICATE', 'AUTHENTICATE');
      } else {
        throw new TorvmError('ERR_TOR_CONTROL', `Tor offers no password authentication (methods: ${info.authMethods.join(',') || 'none'})`, {
          hint: 'Start Tor with HashedControlPassword set to the hash of the control password.',
        });
      }
      if (this.subscribed.length > 0) await send(renderSetEvents(this.subscribed), 'SETEVENTS');
      if (this.currentState === 'closed') throw controlError('the control client was closed');
      this.info = info;
      this.connection = connection;
      this.log(`tor-control: authenticated to Tor ${info.torVersion ?? '(unknown version)'} at ${describeEndpoint(this.options)}`);
      this.setState('ready');
      return info;
    } catch (err) {
      connection.close();
      throw err;
    }
  }

  private handleDrop(connection: ControlConnection, reason: Error | undefined): void {
    if (this.connection !== connection) return; // a handshake that failed, or an old connection
    this.connection = undefined;
    if (this.currentState === 'closed') return;
    this.log(`tor-control: connection lost (${reason?.message ?? 'closed'})`);
    if (!this.backoff) {
      this.setState('closed');
      return;
    }
    this.setState('reconnecting');
    void this.reconnectLoop(this.backoff);
  }

  private async reconnectLoop(backoff: { initialDelayMs: number; maxDelayMs: number }): Promise<void> {
    let delayMs = backoff.initialDelayMs;
    const signal = this.closing.signal;
    while (!signal.aborted) {
      if (!(await sleep(delayMs, signal))) return;
      try {
        await this.establish(signal);
        return;
      } catch (err) {
        if (isAuthFailure(err)) {
          this.log(`tor-control: reconnect refused: ${errorText(err)}; giving up`);
          this.setState('closed');
          return;
        }
        this.log(`tor-control: reconnect failed (${errorText(err)}); next try in ${Math.min(delayMs * 2, backoff.maxDelayMs)} ms`);
      }
      delayMs = Math.min(delayMs * 2, backoff.maxDelayMs);
    }
  }

  /**
   * Waits (bounded by the timeout) for a ready connection, then sends with the
   * full timeout again: a send that times out drops the connection, so it must
   * never inherit a nearly spent deadline.
   */
  private async command(line: string, keyword: string, options: CallOptions): Promise<ControlMessage> {
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    const connection = await this.readyConnection(Date.now() + timeoutMs, options.signal, keyword);
    const reply = await connection.send(line, keyword, { timeoutMs, signal: options.signal });
    if (!isSuccess(reply)) throw replyError(keyword, reply);
    return reply;
  }

  /** The ready connection; while connecting/reconnecting, waits for it until `deadline`. */
  private async readyConnection(deadline: number, signal: AbortSignal | undefined, what: string): Promise<ControlConnection> {
    for (;;) {
      if (signal?.aborted) throw new TorvmError('ERR_CANCELLED', `${what}: cancelled`);
      if (this.currentState === 'ready' && this.connection?.isOpen) return this.connection;
      if (this.currentState === 'closed') throw controlError(`${what}: the control client is closed`);
      if (this.currentState === 'idle') throw controlError(`${what}: not connected (call connect() first)`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw controlError(`${what}: the control connection is not ready (${this.currentState})`);
      await this.nextStateChange(remaining, signal);
    }
  }

  private nextStateChange(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      const unsubscribe = this.onStateChange(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private dispatch(message: ControlMessage): void {
    const event = parseEvent(message);
    for (const listener of [...this.eventListeners]) {
      try {
        listener(event);
      } catch (err) {
        this.log(`tor-control: an event listener threw: ${errorText(err)}`);
      }
    }
  }

  /** Reads the state without TypeScript's narrowing (it changes across awaits). */
  private isState(state: ControlClientState): boolean {
    return this.currentState === state;
  }

  private setState(state: ControlClientState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    for (const listener of [...this.stateListeners]) {
      try {
        listener(state);
      } catch (err) {
        this.log(`tor-control: a state listener threw: ${errorText(err)}`);
      }
    }
  }
}

function controlError(message: string, cause?: unknown, hint?: string): TorvmError {
  return new TorvmError('ERR_TOR_CONTROL', message, { ...(cause === undefined ? {} : { cause }), ...(hint ? { hint } : {}) });
}

/** 515 from AUTHENTICATE: the password is wrong; retrying cannot help. */
function isAuthFailure(err: unknown): boolean {
  return isTorvmError(err, 'ERR_TOR_CONTROL') && err.details?.command === 'AUTHENTICATE' && err.details.status === 515;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Sleeps `ms`; resolves false instead if `signal` aborts first. */
async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function anySignal(a: AbortSignal, b: AbortSignal | undefined): AbortSignal {
  return b ? AbortSignal.any([a, b]) : a;
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, signal: AbortSignal | undefined, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const finish = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      finish();
      reject(new TorvmError('ERR_CANCELLED', 'cancelled'));
    };
    const timer = setTimeout(() => {
      finish();
      reject(onTimeout());
    }, timeoutMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then((value) => {
      finish();
      resolve(value);
    }, (err: unknown) => {
      finish();
      reject(err instanceof Error ? err : controlError(String(err)));
    });
  });
}
