/**
 * A small QMP (QEMU Machine Protocol) client. Hand-written: no maintained npm
 * client exists (research/ecosystem.md §1).
 *
 * Protocol: newline-delimited JSON. QEMU greets with `{"QMP": {...}}`; the
 * client sends `qmp_capabilities`; then `{"execute", "arguments", "id"}` gets
 * `{"return", "id"}` or `{"error": {"class", "desc"}, "id"}`, and events
 * `{"event", "data", "timestamp"}` arrive at any time.
 *
 * Contract: every command has a timeout; when the connection closes (QEMU
 * died or quit), every pending command rejects at once with ERR_QMP.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { TorvmError } from '../core/errors.ts';

/** Where QMP listens: a unix socket (Linux, macOS) or loopback TCP (Windows). */
export type QmpTarget = { path: string } | { host: '127.0.0.1'; port: number };

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

export interface QmpConnectOptions {
  /** Keep retrying a refused/missing socket (QEMU still starting) this long. Default 10 s. */
  connectTimeoutMs?: number;
  /** Default timeout of each command. Default 10 s. */
  commandTimeoutMs?: number;
  signal?: AbortSignal;
}

/** A QMP `error` reply. `errorClass` is QEMU's class: GenericError, CommandNotFound, DeviceNotFound, … */
export class QmpCommandError extends TorvmError {
  readonly errorClass: string;
  constructor(command: string, errorClass: string, desc: string) {
    super('ERR_QMP', `QMP ${command} failed: ${errorClass}: ${desc}`, { details: { command, errorClass, desc } });
    this.errorClass = errorClass;
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

type QmpClientEvents = { event: [QmpEvent]; close: [] };

/** Longest line accepted from QEMU; a larger one means something is badly wrong. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeTarget(target: QmpTarget): string {
  return 'path' in target ? target.path : `${target.host}:${target.port}`;
}

function openSocket(target: QmpTarget): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in target ? netConnect({ path: target.path }) : netConnect({ host: target.host, port: target.port });
    socket.once('connect', () => { socket.removeListener('error', reject); resolve(socket); });
    socket.once('error', reject);
  });
}

/**
 * One QMP session. Create with {@link QmpClient.connect}; events arrive as
 * `client.on('event', ...)`; `close` is emitted once when the connection ends.
 */
export class QmpClient extends EventEmitter<QmpClientEvents> {
  readonly greeting: QmpGreeting;
  readonly #socket: Socket;
  readonly #pending = new Map<number, Pending>();
  readonly #commandTimeoutMs: number;
  #nextId = 1;
  #buffer = '';
  #closed = false;
  #closeReason = 'the QMP connection closed';

  private constructor(socket: Socket, greeting: QmpGreeting, buffered: string, commandTimeoutMs: number) {
    super();
    this.#socket = socket;
    this.greeting = greeting;
    this.#commandTimeoutMs = commandTimeoutMs;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('error', (err) => { this.#closeReason = `the QMP connection failed: ${err.message}`; });
    socket.on('close', () => this.#onClose());
    if (buffered) this.#onData(buffered);
  }

  /**
   * Connects (retrying while the socket is missing or refused, bounded by
   * `connectTimeoutMs`), reads the greeting and negotiates capabilities.
   * Throws TorvmError ERR_QMP on failure or timeout, ERR_CANCELLED on abort.
   */
  static async connect(target: QmpTarget, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    const deadline = Date.now() + connectTimeoutMs;
    let lastError: unknown;
    for (;;) {
      if (options.signal?.aborted) throw new TorvmError('ERR_CANCELLED', `QMP connect to ${describeTarget(target)} cancelled`);
      try {
        const socket = await openSocket(target);
        const client = await QmpClient.#handshake(socket, Math.max(deadline - Date.now(), 1000), options.commandTimeoutMs ?? 10_000);
        return client;
      } catch (err) {
        lastError = err;
        const code = isRecord(err) ? err.code : undefined;
        if (typeof code !== 'string' || !RETRYABLE.has(code) || Date.now() >= deadline) break;
      }
      await delay(50);
    }
    if (lastError instanceof TorvmError) throw lastError;
    throw new TorvmError('ERR_QMP', `cannot connect to QMP at ${describeTarget(target)} within ${connectTimeoutMs} ms`, { cause: lastError });
  }

  static async #handshake(socket: Socket, timeoutMs: number, commandTimeoutMs: number): Promise<QmpClient> {
    socket.setEncoding('utf8');
    const { greeting, rest } = await new Promise<{ greeting: QmpGreeting; rest: string }>((resolve, reject) => {
      let buffer = '';
      const fail = (err: Error) => { cleanup(); socket.destroy(); reject(err); };
      const timer = setTimeout(() => fail(new TorvmError('ERR_QMP', `no QMP greeting within ${timeoutMs} ms`)), timeoutMs);
      const onData = (chunk: string) => {
        buffer += chunk;
        const nl = buffer.indexOf('\n');
        if (nl < 0) return;
        cleanup();
        try {
          const parsed: unknown = JSON.parse(buffer.slice(0, nl));
          if (!isRecord(parsed) || !isRecord(parsed.QMP)) throw new Error('the first message is not a QMP greeting');
          resolve({ greeting: parsed.QMP as unknown as QmpGreeting, rest: buffer.slice(nl + 1) });
        } catch (err) {
          socket.destroy();
          reject(new TorvmError('ERR_QMP', 'bad QMP greeting', { cause: err }));
        }
      };
      const onClose = () => fail(new TorvmError('ERR_QMP', 'QMP closed before its greeting'));
      const onError = (err: Error) => fail(new TorvmError('ERR_QMP', `QMP failed before its greeting: ${err.message}`, { cause: err }));
      const cleanup = () => {
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.removeListener('close', onClose);
        socket.removeListener('error', onError);
      };
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.once('error', onError);
    });
    const client = new QmpClient(socket, greeting, rest, commandTimeoutMs);
    try {
      await client.execute('qmp_capabilities');
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** True once the connection has ended; every later command rejects at once. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs one command. Resolves with its `return` value; rejects with
   * QmpCommandError for a QMP error reply, or TorvmError ERR_QMP on timeout
   * or when the connection closes first.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new TorvmError('ERR_QMP', `QMP ${command}: ${this.#closeReason}`, { details: { command, reason: 'closed' } }));
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TorvmError('ERR_QMP', `QMP ${command} got no reply within ${timeoutMs} ms`, { details: { command, timeoutMs, reason: 'timeout' } }));
      }, timeoutMs);
      this.#pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.#socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  /**
   * Resolves with the next event named `name` (and matching `predicate`).
   * Rejects with ERR_QMP on timeout or when the connection closes first.
   */
  waitForEvent(name: string, timeoutMs: number, predicate: (e: QmpEvent) => boolean = () => true): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new TorvmError('ERR_QMP', `waiting for ${name}: ${this.#closeReason}`));
      const onEvent = (e: QmpEvent) => {
        if (e.event === name && predicate(e)) { cleanup(); resolve(e); }
      };
      const onClose = () => { cleanup(); reject(new TorvmError('ERR_QMP', `waiting for ${name}: ${this.#closeReason}`)); };
      const timer = setTimeout(() => { cleanup(); reject(new TorvmError('ERR_QMP', `no ${name} event within ${timeoutMs} ms`)); }, timeoutMs);
      const cleanup = () => { clearTimeout(timer); this.off('event', onEvent); this.off('close', onClose); };
      this.on('event', onEvent);
      this.once('close', onClose);
    });
  }

  /** Closes the connection (idempotent). Pending commands reject. QEMU keeps running. */
  close(): void {
    this.#closeReason = 'the QMP client was closed';
    this.#socket.destroy();
    this.#onClose();
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    if (this.#buffer.length > MAX_LINE_BYTES) {
      this.#closeReason = 'QEMU sent an over-long QMP line';
      this.#socket.destroy();
      return;
    }
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line) this.#onMessage(line);
    }
  }

  #onMessage(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return; // not JSON: ignore, a reply we cannot match will time out
    }
    if (!isRecord(message)) return;
    if (typeof message.event === 'string') {
      const ts = isRecord(message.timestamp) ? message.timestamp : {};
      this.emit('event', {
        event: message.event,
        data: isRecord(message.data) ? message.data : {},
        timestamp: { seconds: Number(ts.seconds ?? 0), microseconds: Number(ts.microseconds ?? 0) },
      });
      return;
    }
    if (typeof message.id !== 'number') return;
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    if (isRecord(message.error)) {
      pending.reject(new QmpCommandError(pending.command, String(message.error.class ?? 'Unknown'), String(message.error.desc ?? '')));
    } else {
      pending.resolve(message.return);
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      this.#pending.delete(id);
      pending.reject(new TorvmError('ERR_QMP', `QMP ${pending.command}: ${this.#closeReason}`, { details: { command: pending.command, reason: 'closed' } }));
    }
    this.emit('close');
  }
}
