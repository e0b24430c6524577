/**
 * Out-of-order segments held by a TCP receiver until the hole before them is
 * filled, and the SACK blocks (RFC 2018) that describe them.
 *
 * Memory is bounded by the window the receiver advertised (the caller trims each
 * segment to it) and by a count, against runts. Pure: no timers, no I/O.
 */
import { seq } from './tcp-segment.ts';

interface HeldSegment {
  seq: number;
  data: Uint8Array;
  fin: boolean;
}

export class ReassemblyQueue {
  readonly #maxSegments: number;
  #held: HeldSegment[] = []; // sorted by seq
  #latest = 0; // start of the segment held last: the first SACK block covers it

  constructor(maxSegments: number) {
    this.#maxSegments = maxSegments;
  }

  get isEmpty(): boolean {
    return this.#held.length === 0;
  }

  /**
   * Holds a segment that arrived beyond a hole, in seq order. A segment already held
   * in full (a duplicate) is not kept twice; beyond the count bound it is dropped
   * (the client retransmits it). The data is copied: it is a view into a whole TUN
   * batch, which must not stay pinned.
   */
  hold(start: number, data: Uint8Array, fin: boolean): void {
    const held = this.#held;
    const end = seq.add(start, data.length);
    let at = held.length;
    while (at > 0 && seq.gt(held[at - 1]!.seq, start)) at--;
    const before = held[at - 1];
    if (before && seq.ge(seq.add(before.seq, before.data.length), end) && (before.fin || !fin)) return;
    const after = held[at];
    if (after && after.seq === start && after.data.length >= data.length && (after.fin || !fin)) return;
    if (held.length >= this.#maxSegments) return;
    held.splice(at, 0, { seq: start, data: data.slice(), fin });
    this.#latest = start;
  }

  /**
   * Takes the held segments that now start at or before `rcvNxt()` and passes each
   * one's new part to `deliver` (which advances RCV.NXT). Stops at the next hole,
   * or when `deliver` returns false (the flow can take no more).
   */
  drain(rcvNxt: () => number, deliver: (data: Uint8Array, fin: boolean) => boolean): void {
    const held = this.#held;
    let used = 0;
    while (used < held.length) {
      const entry = held[used]!;
      const old = seq.diff(entry.seq, rcvNxt());
      if (old < 0) break; // still beyond a hole
      used++;
      if (old < entry.data.length || (old === entry.data.length && entry.fin)) {
        if (!deliver(entry.data.subarray(old), entry.fin)) break;
      }
    }
    if (used > 0 && this.#held === held) held.splice(0, used);
  }

  /** Forgets everything held (the FIN arrived, or the flow ended). */
  clear(): void {
    this.#held = [];
  }

  /**
   * The held data as at most `max` SACK blocks, [left, right) (RFC 2018 §4): contiguous
   * segments merged, the block holding the segment held last first, then the others
   * in seq order. Undefined when nothing is held.
   */
  sackBlocks(max: number): [number, number][] | undefined {
    const blocks: [number, number][] = [];
    for (const entry of this.#held) {
      if (entry.data.length === 0) continue; // a bare FIN: nothing to report
      const end = seq.add(entry.seq, entry.data.length);
      const last = blocks.at(-1);
      if (last && seq.le(entry.seq, last[1])) {
        if (seq.gt(end, last[1])) last[1] = end;
      } else blocks.push([entry.seq, end]);
    }
    const latest = blocks.findIndex(([left, right]) => seq.ge(this.#latest, left) && seq.lt(this.#latest, right));
    if (latest > 0) blocks.unshift(...blocks.splice(latest, 1));
    return blocks.length > 0 ? blocks.slice(0, max) : undefined;
  }
}
