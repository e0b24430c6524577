/**
 * What a TCP sender has learnt from the client's SACK blocks (RFC 2018): the ranges
 * beyond SND.UNA the client holds, so that loss recovery retransmits only the holes
 * between them (RFC 6675 style).
 *
 * Bounded: past `maxRanges` the ranges farthest from SND.UNA are forgotten, which
 * only costs retransmissions the client did not need. Pure: no timers, no I/O.
 */
import { seq } from './tcp-segment.ts';

/** The SACKed ranges of one flow's send sequence space. */
export class SackScoreboard {
  readonly #maxRanges: number;
  #ranges: [number, number][] = []; // [left, right), in seq order, disjoint and not touching

  constructor(maxRanges = 32) {
    this.#maxRanges = maxRanges;
  }

  get isEmpty(): boolean {
    return this.#ranges.length === 0;
  }

  /**
   * Records SACK blocks. A block counts only within [SND.UNA, SND.NXT): one reaching
   * below SND.UNA is old (a D-SACK, RFC 2883) or bogus, one beyond SND.NXT is bogus.
   */
  add(blocks: readonly (readonly [number, number])[], sndUna: number, sndNxt: number): void {
    let changed = false;
    for (const [left, right] of blocks) {
      if (!seq.lt(left, right) || seq.lt(left, sndUna) || seq.gt(right, sndNxt)) continue;
      this.#ranges.push([left, right]);
      changed = true;
    }
    if (changed) this.#normalize(sndUna);
  }

  /** Forgets what a cumulative ACK up to `sndUna` covers. */
  advance(sndUna: number): void {
    if (this.#ranges.length === 0) return;
    this.#ranges = this.#ranges.filter(([, right]) => seq.gt(right, sndUna));
    const first = this.#ranges[0];
    if (first && seq.lt(first[0], sndUna)) first[0] = sndUna;
  }

  /** Forgets everything (after a retransmission timeout the client may have dropped what it SACKed). */
  clear(): void {
    this.#ranges = [];
  }

  /** The first hole at or after `from` that lies below a SACKed range, as [start, end); undefined if none. */
  nextHole(from: number): [number, number] | undefined {
    let start = from;
    for (const [left, right] of this.#ranges) {
      if (seq.le(right, start)) continue;
      if (seq.lt(start, left)) return [start, left];
      start = right;
    }
    return undefined;
  }

  /** Sorts and merges the ranges, and enforces the bound. */
  #normalize(sndUna: number): void {
    const sorted = this.#ranges.sort((a, b) => seq.diff(sndUna, a[0]) - seq.diff(sndUna, b[0]));
    const merged: [number, number][] = [];
    for (const range of sorted) {
      const last = merged.at(-1);
      if (last && seq.le(range[0], last[1])) {
        if (seq.gt(range[1], last[1])) last[1] = range[1];
      } else merged.push(range);
    }
    this.#ranges = merged.slice(0, this.#maxRanges);
  }
}
