/**
 * Streams the guest's serial console (a QEMU unix server socket) into a line
 * callback, a size-capped log file and typed guest events.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { TorvmError } from '../core/errors.ts';
import { parseGuestLine, type GuestEvent } from './guest-markers.ts';
import type { RotatingLog } from './rotating-log.ts';

/** Longer lines are split: a guest must not make us buffer without bound. */
const MAX_LINE = 4096;

type SerialConsoleEvents = { line: [string]; guest: [GuestEvent]; close: [] };

/**
 * One connection to the serial socket. Emits `line` for every console line,
 * `guest` for every recognised marker, and `close` once when the socket ends
 * (QEMU died, or {@link SerialConsole.close} was called).
 */
export class SerialConsole extends EventEmitter<SerialConsoleEvents> {
  readonly #socket: Socket;
  readonly #log: RotatingLog | undefined;
  readonly #tail: string[] = [];
  #partial = '';
  #closed = false;

  private constructor(socket: Socket, log: RotatingLog | undefined) {
    super();
    this.#socket = socket;
    this.#log = log;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('error', () => {}); // surfaces as close
    socket.on('close', () => this.#onClose());
  }

  /** Connects to the serial socket (bounded); rejects with ERR_VM. */
  static connect(path: string, log?: RotatingLog, timeoutMs = 5000): Promise<SerialConsole> {
    return new Promise((resolve, reject) => {
      const socket = connect({ path });
      const timer = setTimeout(() => { socket.destroy(); reject(new TorvmError('ERR_VM', `serial console ${path}: no connection within ${timeoutMs} ms`)); }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new SerialConsole(socket, log));
      });
      socket.once('error', (err) => { clearTimeout(timer); reject(new TorvmError('ERR_VM', `serial console ${path}: ${err.message}`, { cause: err })); });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The last lines seen (for crash reports). */
  tail(): string[] {
    return [...this.#tail];
  }

  close(): void {
    this.#socket.destroy();
    this.#onClose();
  }

  #onData(chunk: string): void {
    this.#partial += chunk;
    let nl: number;
    while ((nl = this.#partial.indexOf('\n')) >= 0) {
      this.#emitCapped(this.#partial.slice(0, nl));
      this.#partial = this.#partial.slice(nl + 1);
    }
    while (this.#partial.length > MAX_LINE) {
      this.#emitLine(this.#partial.slice(0, MAX_LINE));
      this.#partial = this.#partial.slice(MAX_LINE);
    }
  }

  #emitCapped(line: string): void {
    for (let i = 0; i < line.length; i += MAX_LINE) this.#emitLine(line.slice(i, i + MAX_LINE));
    if (line.length === 0) this.#emitLine('');
  }

  #emitLine(raw: string): void {
    const line = raw.replace(/\r$/, '');
    this.#tail.push(line);
    if (this.#tail.length > 50) this.#tail.shift();
    try {
      this.#log?.writeLine(line);
    } catch {
      // A full disk must not stop the console stream; the line callback still gets it.
    }
    this.emit('line', line);
    const event = parseGuestLine(line);
    if (event) this.emit('guest', event);
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#partial) this.#emitLine(this.#partial);
    this.#partial = '';
    this.#log?.close();
    this.emit('close');
  }
}
