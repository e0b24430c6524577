/**
 * One TCP connection to a Tor control port: a socket, a reply parser and a
 * FIFO of commands in flight. Tor answers commands strictly in order, so the
 * oldest pending command owns the next reply. No auth or reconnect logic
 * here; TorControlClient builds those on top.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { TorvmError } from '../core/errors.ts';
import { ControlReplyParser, type ControlMessage } from './reply-parser.ts';

interface PendingCommand {
  keyword: string;
  resolve: (message: ControlMessage) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  /** The caller gave up (abort); the reply is still consumed to keep the queue in step. */
  abandoned: boolean;
  cleanup: () => void;
}

/** Where Tor's control port listens: TCP (the VM) or a unix socket (`ControlPort unix:PATH`). */
export type ControlEndpoint = { host: string; port: number } | { path: string };

/** `127.0.0.1:9051` or `unix:/run/x/control`, for messages. */
export function describeEndpoint(endpoint: ControlEndpoint): string {
  return 'path' in endpoint ? `unix:${endpoint.path}` : `${endpoint.host}:${endpoint.port}`;
}

export interface SendOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface ConnectionHandlers {
  /** Called for every asynchronous event message (status 650), in wire order. */
  onEvent: (message: ControlMessage) => void;
  /** Called once when the connection ends, with the reason unless close() was asked for. */
  onClose: (reason: Error | undefined) => void;
}

// Defense in depth: renderers already refuse these, but nothing with a line
// break may ever reach the socket.
const LINE_BREAK_OR_NUL = /[\r\n\x00]/;

export class ControlConnection {
  private readonly parser = new ControlReplyParser();
  private readonly pending: PendingCommand[] = [];
  private ended = false;

  private constructor(
    private readonly socket: Socket,
    private readonly handlers: ConnectionHandlers,
  ) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', (err) => this.end(controlError(`connection error: ${err.message}`, err)));
    socket.on('close', () => this.end(controlError('Tor closed the control connection')));
  }

  /** Opens the connection; rejects on refusal, timeout or abort. */
  static open(endpoint: ControlEndpoint, handlers: ConnectionHandlers, options: SendOptions): Promise<ControlConnection> {
    const where = describeEndpoint(endpoint);
    return new Promise((resolve, reject) => {
      if (options.signal?.aborted) return reject(cancelled('connect'));
      const socket = 'path' in endpoint ? netConnect({ path: endpoint.path }) : netConnect({ host: endpoint.host, port: endpoint.port });
      const fail = (err: Error): void => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const onError = (err: Error): void => fail(controlError(`cannot connect to ${where}: ${err.message}`, err));
      const onAbort = (): void => fail(cancelled('connect'));
      const timer = setTimeout(() => fail(controlError(`connecting to ${where} timed out after ${options.timeoutMs} ms`)), options.timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        socket.off('error', onError);
        options.signal?.removeEventListener('abort', onAbort);
      };
      socket.once('error', onError);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        cleanup();
        resolve(new ControlConnection(socket, handlers));
      });
    });
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  /**
   * Writes one command line and resolves with Tor's reply, whatever its status
   * (the caller decides what a 5xx means). A timeout drops the connection:
   * once one reply is missing, later replies can no longer be matched.
   */
  send(line: string, keyword: string, options: SendOptions): Promise<ControlMessage> {
    if (LINE_BREAK_OR_NUL.test(line)) {
      return Promise.reject(new TorvmError('ERR_UNSAFE_VALUE', `${keyword}: refusing to send a command with a line break or NUL`));
    }
    if (this.ended) return Promise.reject(controlError(`${keyword}: the control connection is closed`));
    if (options.signal?.aborted) return Promise.reject(cancelled(keyword));

    return new Promise<ControlMessage>((resolve, reject) => {
      const onAbort = (): void => {
        entry.abandoned = true;
        entry.cleanup();
        reject(cancelled(keyword));
      };
      const entry: PendingCommand = {
        keyword,
        resolve,
        reject,
        abandoned: false,
        timer: setTimeout(() => {
          entry.abandoned = true;
          entry.cleanup();
          reject(controlError(`${keyword}: no reply from Tor within ${options.timeoutMs} ms`));
          this.end(controlError(`${keyword} timed out; dropping the connection to resynchronize`));
        }, options.timeoutMs),
        cleanup: () => {
          clearTimeout(entry.timer);
          options.signal?.removeEventListener('abort', onAbort);
        },
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.push(entry);
      this.socket.write(`${line}\r\n`);
    });
  }

  /** Closes the connection; pending commands fail with ERR_TOR_CONTROL. */
  close(): void {
    this.end(undefined);
  }

  private receive(chunk: string): void {
    let messages: ControlMessage[];
    try {
      messages = this.parser.push(chunk);
    } catch (err) {
      this.end(err instanceof Error ? err : controlError(String(err)));
      return;
    }
    for (const message of messages) {
      if (this.ended) return;
      if (message.isEvent) {
        this.handlers.onEvent(message);
        continue;
      }
      const head = this.pending.shift();
      if (!head) {
        // Tor sends one unsolicited reply before it closes (e.g. "514 Authentication required").
        this.end(controlError(`unexpected reply from Tor: ${message.status} ${message.lines.at(-1)?.text ?? ''}`));
        return;
      }
      head.cleanup();
      if (!head.abandoned) head.resolve(message);
    }
  }

  private end(reason: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.destroy();
    const failure = reason ?? controlError('the control connection was closed');
    for (const entry of this.pending.splice(0)) {
      entry.cleanup();
      if (!entry.abandoned) entry.reject(controlError(`${entry.keyword}: ${failure.message}`, failure));
    }
    this.handlers.onClose(reason);
  }
}

function controlError(message: string, cause?: unknown): TorvmError {
  return new TorvmError('ERR_TOR_CONTROL', message, cause === undefined ? {} : { cause });
}

function cancelled(what: string): TorvmError {
  return new TorvmError('ERR_CANCELLED', `${what}: cancelled`);
}
