/** The last N log lines, for the GUI's Logs tab and `torvm logs`. */
export interface LogLine {
  time: number;
  level: string;
  component: string;
  msg: string;
  /** The full JSON line, already scrubbed. */
  raw: string;
}

export class LogRingBuffer {
  readonly #capacity: number;
  readonly #lines: LogLine[] = [];
  readonly #listeners = new Set<(line: LogLine) => void>();

  constructor(capacity = 2000) {
    this.#capacity = capacity;
  }

  push(line: LogLine): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#capacity) this.#lines.splice(0, this.#lines.length - this.#capacity);
    for (const l of this.#listeners) l(line);
  }

  snapshot(): LogLine[] {
    return [...this.#lines];
  }

  /** Returns an unsubscribe function. */
  subscribe(listener: (line: LogLine) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
