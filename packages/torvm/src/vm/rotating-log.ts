/**
 * A size-capped log file: when `path` would exceed `maxBytes`, it becomes
 * `path.1` (older ones shift up to `path.<keep>`, the oldest is dropped).
 * Synchronous appends of whole lines: small, ordered, and safe to call from
 * a stream's data handler.
 */
import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

export interface RotatingLogOptions {
  maxBytes: number;
  /** How many rotated files to keep. Default 2. */
  keep?: number;
  /** File mode of new files. Default 0600 (the console may show addresses). */
  mode?: number;
}

export class RotatingLog {
  readonly path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #mode: number;
  #fd: number | null = null;
  #size = 0;

  constructor(path: string, options: RotatingLogOptions) {
    this.path = path;
    this.#maxBytes = Math.max(1024, options.maxBytes);
    this.#keep = Math.max(1, options.keep ?? 2);
    this.#mode = options.mode ?? 0o600;
  }

  /** Appends one line (a newline is added). Lines longer than the cap are cut. */
  writeLine(line: string): void {
    const data = Buffer.from(`${line}\n`, 'utf8').subarray(0, this.#maxBytes);
    if (this.#fd === null) this.#open();
    if (this.#size + data.length > this.#maxBytes) this.#rotate();
    writeSync(this.#fd as number, data);
    this.#size += data.length;
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  #open(): void {
    this.#fd = openSync(this.path, 'a', this.#mode);
    this.#size = fstatSync(this.#fd).size;
  }

  #rotate(): void {
    this.close();
    rmSync(`${this.path}.${this.#keep}`, { force: true });
    for (let i = this.#keep - 1; i >= 1; i--) {
      try { renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`); } catch { /* missing */ }
    }
    try { renameSync(this.path, `${this.path}.1`); } catch { /* missing */ }
    this.#open();
  }
}
