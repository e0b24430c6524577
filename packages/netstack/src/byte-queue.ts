/** A FIFO of bytes kept as a list of chunks: cheap to append, to drop from the front, and to copy a range from. */
export class ByteQueue {
  #chunks: Uint8Array[] = [];
  #head = 0; // bytes of #chunks[0] already consumed
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Drops n bytes (at most length) from the front. */
  consume(n: number): void {
    n = Math.min(n, this.#length);
    this.#length -= n;
    while (n > 0) {
      const first = this.#chunks[0]!;
      const available = first.length - this.#head;
      if (n < available) {
        this.#head += n;
        return;
      }
      n -= available;
      this.#chunks.shift(); // O(chunks), but the queue holds few (64 KiB socket reads)
      this.#head = 0;
    }
  }

  /** Copies n bytes starting `offset` bytes after the front. The range must lie within length. */
  copy(offset: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.copyInto(out, 0, offset, n);
    return out;
  }

  /** Copies n bytes starting `offset` bytes after the front into target[targetOffset..]. The range must lie within length. */
  copyInto(target: Uint8Array, targetOffset: number, offset: number, n: number): void {
    if (offset < 0 || n < 0 || offset + n > this.#length) throw new RangeError('ByteQueue.copy out of range');
    let skip = offset + this.#head;
    let written = 0;
    for (const chunk of this.#chunks) {
      if (written === n) break;
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      const take = Math.min(chunk.length - skip, n - written);
      target.set(take === chunk.length ? chunk : chunk.subarray(skip, skip + take), targetOffset + written);
      written += take;
      skip = 0;
    }
  }
}
