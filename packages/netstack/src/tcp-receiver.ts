/**
 * The receive side of one TCP flow (client bytes toward the upstream): RCV.NXT, the
 * right edge we advertised, segment acceptability (RFC 9293 §3.10.7.4), the window we
 * advertise, and the out-of-order segments held with their SACK blocks (RFC 2018).
 *
 * The window is backpressure: what the upstream socket can still take. Its right edge
 * never retracts, and it opens only by a useful amount (receiver SWS avoidance).
 */
import { ReassemblyQueue } from './reassembly.ts';
import type { NegotiatedOptions } from './tcp-negotiation.ts';
import { scaledWindowField } from './tcp-negotiation.ts';
import { FIN, MAX_SACK_BLOCKS, RST, SYN, seq, type TcpSegment } from './tcp-segment.ts';

/**
 * Where a segment's data falls: the in-order part to deliver now (the caller ACKs it
 * with the batch), or nothing new (the caller ACKs at once, so the client learns of the hole).
 */
export type Placement = { readonly data: Uint8Array; readonly fin: boolean } | 'duplicate' | 'out-of-order';

/** The receive sequence space of one flow. Pure: the flow does the delivering. */
export class TcpReceiver {
  /** The client's initial sequence number. */
  readonly irs: number;
  #rcvNxt: number;
  #rcvEdge: number; // RCV.NXT + the window we last advertised
  readonly #options: NegotiatedOptions;
  readonly #held: ReassemblyQueue; // segments beyond RCV.NXT, each within the window we advertised

  constructor(syn: TcpSegment, options: NegotiatedOptions, maxOutOfOrderSegments: number) {
    this.irs = syn.seq;
    this.#rcvNxt = seq.add(syn.seq, 1);
    this.#rcvEdge = this.#rcvNxt; // nothing advertised yet: the SYN-ACK sets the edge
    this.#options = options;
    this.#held = new ReassemblyQueue(maxOutOfOrderSegments);
  }

  /** The next sequence number expected from the client (what we acknowledge). */
  get rcvNxt(): number {
    return this.#rcvNxt;
  }

  /** RFC 9293 §3.10.7.4 segment acceptability against the window we advertised. */
  acceptable(segSeq: number, segLen: number): boolean {
    const wnd = seq.diff(this.#rcvNxt, this.#rcvEdge);
    const inWindow = (s: number): boolean => seq.ge(s, this.#rcvNxt) && seq.lt(s, this.#rcvEdge);
    if (segLen === 0) return wnd === 0 ? segSeq === this.#rcvNxt : inWindow(segSeq);
    if (wnd === 0) return false;
    return inWindow(segSeq) || inWindow(seq.add(segSeq, segLen - 1));
  }

  /**
   * Trims an acceptable segment's data to what is new and inside the window. Data
   * beyond a hole is held until the hole is filled; the in-order part is returned.
   */
  place(seg: TcpSegment): Placement {
    let start = seg.seq;
    let data = seg.payload;
    let fin = (seg.flags & FIN) !== 0;
    const old = seq.diff(start, this.#rcvNxt);
    if (old > 0) {
      if (old > data.length || (old === data.length && !fin)) return 'duplicate';
      data = data.subarray(old);
      start = this.#rcvNxt;
    }
    const room = seq.diff(start, this.#rcvEdge);
    if (data.length > room) {
      data = data.subarray(0, Math.max(0, room));
      fin = false;
    }
    if (start !== this.#rcvNxt) {
      if (data.length > 0 || fin) this.#held.hold(start, data, fin);
      return 'out-of-order';
    }
    return { data, fin };
  }

  /** `bytes` of in-order data went upstream. */
  advance(bytes: number): void {
    this.#rcvNxt = seq.add(this.#rcvNxt, bytes);
  }

  /** The client's FIN was delivered: it takes one sequence number and nothing can follow it. */
  finReceived(): void {
    this.#rcvNxt = seq.add(this.#rcvNxt, 1);
    this.#held.clear();
  }

  /**
   * Passes held segments that in-order data made contiguous to `deliver` (which calls
   * advance()/finReceived()), until the next hole or until `deliver` returns false.
   */
  drainHeld(deliver: (data: Uint8Array, fin: boolean) => boolean): void {
    if (this.#held.isEmpty) return;
    this.#held.drain(() => this.#rcvNxt, deliver);
  }

  /** Forgets the held segments (the flow ended). */
  forgetHeld(): void {
    this.#held.clear();
  }

  /**
   * The window field for an outgoing segment with `flags`, given the bytes still queued
   * in the upstream socket; records the right edge it advertises.
   */
  windowField(flags: number, upstreamQueued: number): number {
    if (flags & RST) return 0;
    const window = this.#window(upstreamQueued);
    if (flags & SYN) {
      // A SYN-ACK's window is never scaled (RFC 7323 §2.2).
      const field = Math.min(65535, window);
      this.#rcvEdge = seq.add(this.#rcvNxt, field);
      return field;
    }
    const { rcvShift } = this.#options;
    const field = scaledWindowField(window, rcvShift);
    this.#rcvEdge = seq.add(this.#rcvNxt, field * 2 ** rcvShift);
    return field;
  }

  /** True when less than half the window is open: worth a window update once the upstream drains. */
  get windowBelowHalf(): boolean {
    return seq.diff(this.#rcvNxt, this.#rcvEdge) < this.#options.maxRcvWnd / 2;
  }

  /** SACK blocks for a pure ACK, when SACK is in effect and data is held. */
  sackBlocks(): [number, number][] | undefined {
    return this.#options.sackOk ? this.#held.sackBlocks(MAX_SACK_BLOCKS) : undefined;
  }

  /** The window to advertise now, in bytes: what the upstream can take, never retracting the right edge. */
  #window(upstreamQueued: number): number {
    const { maxRcvWnd, peerMss } = this.#options;
    const wanted = Math.max(0, maxRcvWnd - upstreamQueued);
    const current = Math.max(0, seq.diff(this.#rcvNxt, this.#rcvEdge));
    // Receiver-side silly-window avoidance (RFC 1122 §4.2.3.3): open only by a useful amount.
    const step = Math.min(peerMss, maxRcvWnd / 2);
    return wanted - current >= step ? wanted : current;
  }
}
