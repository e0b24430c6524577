/**
 * One passive-open TCP connection, from the client's SYN to the last ACK.
 *
 * The stack answers a SYN to ANY address. The flow first dials the upstream
 * (SOCKS CONNECT) and only then sends the SYN-ACK; a failed dial answers RST,
 * so the client's connect() fails the way a refused connection does.
 *
 * Design choices for a lossless-ish local TUN link (see README.md):
 *   - window scaling (RFC 7323 §2) when the client's SYN offers it, so that the
 *     receive window can exceed 64 KiB; no congestion control (the far side is Tor);
 *   - SACK (RFC 2018) as a receiver when the client's SYN permits it: pure ACKs
 *     carry up to four blocks of the out-of-order data held, so the client's
 *     loss recovery (SACK/RACK) fixes several holes per round trip instead of
 *     waiting for RTOs. As a sender the stack ignores the client's SACK blocks;
 *   - ACKs for in-order data are coalesced: one per flow per input batch (the
 *     stack flushes after each batch), piggybacked on data when there is any;
 *   - out-of-order segments inside the window are buffered (bounded count) and
 *     answered with an immediate duplicate ACK;
 *   - retransmission: RFC 6298 RTO with Karn's rule, fast retransmit after 3
 *     duplicate ACKs, and NewReno-style "retransmit the next hole on a partial
 *     ACK" until everything sent before the loss is acknowledged;
 *   - zero-window persist probes are Linux-style (seq = SND.UNA - 1, no data);
 *   - sequence checks per RFC 9293, RST/SYN/ACK checks per RFC 5961;
 *   - the receive window is what the upstream socket can take: configured
 *     buffer minus bytes still queued in it, and the right edge never retracts.
 */
import type { Clock, TimerHandle } from './clock.ts';
import { ByteQueue } from './byte-queue.ts';
import { ACK, FIN, MAX_SACK_BLOCKS, MAX_WSCALE, PSH, RST, SYN, buildTcpPacket, seq, type TcpSegment } from './tcp-segment.ts';
import type { Upstream } from './upstream.ts';
import { ReassemblyQueue } from './reassembly.ts';

/** Tunables. Defaults in {@link DEFAULT_TCP_CONFIG}. */
export interface TcpConfig {
  /** Largest payload per segment we advertise and send (MTU - 40). */
  mss: number;
  /**
   * Largest receive window in bytes: the most client data that may sit unsent in the
   * upstream socket. Above 65535 only with window scaling; else capped at 65535.
   */
  receiveWindow: number;
  /** Offer window scaling when the client's SYN does (RFC 7323). */
  windowScaling: boolean;
  /** Permit SACK when the client's SYN does, and report out-of-order data in SACK blocks (RFC 2018). */
  sack: boolean;
  /** Upstream bytes buffered toward the client before the upstream is paused. */
  sendBufferBytes: number;
  rtoInitialMs: number;
  rtoMinMs: number;
  rtoMaxMs: number;
  /** Consecutive unanswered retransmissions (or window probes) before the flow is reset. */
  maxRetransmits: number;
  timeWaitMs: number;
  finWait2TimeoutMs: number;
  /** Bound on the upstream dial; the SYN is answered with RST after it. */
  connectTimeoutMs: number;
  maxOutOfOrderSegments: number;
}

export const DEFAULT_TCP_CONFIG: TcpConfig = {
  mss: 1460,
  // 256 KiB each way: past the point of diminishing returns on a local TUN (bench), and
  // the most a flow buffers per direction when Tor is slower than the client.
  receiveWindow: 256 * 1024,
  windowScaling: true,
  sack: true,
  sendBufferBytes: 256 * 1024,
  rtoInitialMs: 1000,
  rtoMinMs: 200,
  rtoMaxMs: 60_000,
  maxRetransmits: 12,
  timeWaitMs: 2000,
  finWait2TimeoutMs: 60_000,
  connectTimeoutMs: 60_000,
  // A whole 256 KiB window of MTU-1500 segments fits; the bound is for runts.
  maxOutOfOrderSegments: 1024,
};

/** The 4-tuple, from the client's point of view. Addresses are uint32. */
export interface FlowKey {
  readonly clientIp: number;
  readonly clientPort: number;
  readonly serverIp: number;
  readonly serverPort: number;
}

/** What a flow needs from the stack that owns it. */
export interface FlowHost {
  readonly clock: Clock;
  readonly config: TcpConfig;
  send(packet: Uint8Array): void;
  /** Asks for output() soon (coalesced: once per batch of input). */
  scheduleOutput(flow: TcpFlow): void;
  /** The flow is finished; forget it. */
  closed(flow: TcpFlow): void;
  randomIss(): number;
}

export type FlowState =
  | 'connecting' // SYN seen, upstream dial in progress, nothing sent yet
  | 'syn-received'
  | 'established'
  | 'close-wait'
  | 'last-ack'
  | 'fin-wait-1'
  | 'fin-wait-2'
  | 'closing'
  | 'time-wait'
  | 'closed';

/** The smallest shift that lets a 16-bit window field express `window` bytes (RFC 7323 §2.3). */
export function windowShiftFor(window: number): number {
  let shift = 0;
  while (shift < MAX_WSCALE && 65535 * 2 ** shift < window) shift++;
  return shift;
}

/**
 * The 16-bit window field that advertises at least `bytes` with `shift`: rounded UP,
 * so that scaling never retracts the right edge already offered (the extra is < 2^shift bytes).
 */
export function scaledWindowField(bytes: number, shift: number): number {
  return Math.min(65535, Math.ceil(Math.max(0, bytes) / 2 ** shift));
}

export class TcpFlow {
  readonly key: FlowKey;
  state: FlowState = 'connecting';
  /** Set when the flow ended with a reset (either side) or a timeout. */
  resetReason: string | undefined;

  readonly #host: FlowHost;
  readonly #config: TcpConfig;
  readonly #dialAbort = new AbortController();

  // Send side (toward the client).
  #iss = 0;
  #sndUna = 0;
  #sndNxt = 0;
  #sndWnd: number; // in bytes (scaled)
  #maxSndWnd: number; // largest window the client offered, for the RFC 5961 ACK check
  #sndShift = 0; // the client's window-scale shift (applied to every window but the SYN's)
  #sndWl1: number;
  #sndWl2 = 0;
  readonly #peerMss: number;
  readonly #sendQueue = new ByteQueue(); // bytes from SND.UNA on (FIN excluded)
  #finQueued = false;
  #finSent = false;
  #finSeq = 0;

  // Receive side (from the client).
  readonly #irs: number;
  #rcvNxt: number;
  #rcvEdge: number; // RCV.NXT + the window we last advertised
  readonly #rcvShift: number; // our window-scale shift; 0 without scaling
  readonly #offerWscale: boolean; // the SYN-ACK carries our window-scale option
  readonly #maxRcvWnd: number; // receiveWindow, capped at what the window field can express
  readonly #sackOk: boolean; // both SYNs carry SACK-permitted
  readonly #reassembly: ReassemblyQueue; // segments beyond RCV.NXT, each within the window we advertised
  #ackNeeded = false;

  // Upstream.
  #upstream: Upstream | undefined;
  #upstreamPaused = false;
  #upstreamClosed = false;
  #upstreamCorked = false; // data of this input batch is being coalesced into one upstream write

  // Timers and retransmission.
  #rto: number;
  #srtt: number | undefined;
  #rttvar = 0;
  #rttSeq: number | undefined;
  #rttStart = 0;
  #retransmits = 0;
  #dupAcks = 0;
  #recovery = false;
  #recover = 0;
  #persistProbes = 0;
  #rtoTimer: TimerHandle | undefined;
  #rtoDeadline = 0; // the timer may fire earlier: it is restarted lazily (one timer per flight, not per ACK)
  #persistTimer: TimerHandle | undefined;
  #stateTimer: TimerHandle | undefined; // connect timeout, FIN-WAIT-2 timeout, TIME-WAIT

  /** Creates the flow for a client SYN (the stack checked SYN set, ACK/RST clear). */
  constructor(host: FlowHost, key: FlowKey, syn: TcpSegment) {
    this.#host = host;
    this.#config = host.config;
    this.key = key;
    this.#irs = syn.seq;
    this.#rcvNxt = seq.add(syn.seq, 1);
    // RFC 7323 §2.2: scaling is in effect only when both SYNs carry the option; we answer in kind.
    this.#offerWscale = this.#config.windowScaling && syn.wscale !== undefined;
    this.#rcvShift = this.#offerWscale ? windowShiftFor(this.#config.receiveWindow) : 0;
    this.#sndShift = this.#offerWscale ? syn.wscale! : 0;
    this.#maxRcvWnd = Math.min(this.#config.receiveWindow, 65535 * 2 ** this.#rcvShift);
    this.#sackOk = this.#config.sack && syn.sackPermitted;
    this.#reassembly = new ReassemblyQueue(this.#config.maxOutOfOrderSegments);
    // Nothing advertised yet: the SYN-ACK sets the edge.
    this.#rcvEdge = this.#rcvNxt;
    this.#sndWnd = syn.window; // a SYN's window is never scaled
    this.#maxSndWnd = syn.window;
    this.#sndWl1 = syn.seq;
    this.#peerMss = Math.max(64, Math.min(syn.mss ?? 536, this.#config.mss));
    this.#rto = this.#config.rtoInitialMs;
    this.#stateTimer = host.clock.setTimer(this.#config.connectTimeoutMs, () => {
      this.#stateTimer = undefined;
      this.#dialAbort.abort();
    });
  }

  /** True once the flow is finished (a getter, so narrowing never hides a state change made by a call). */
  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Aborted when the flow ends before the dial finished; pass it to the dialer. */
  get dialSignal(): AbortSignal {
    return this.#dialAbort.signal;
  }

  /** The dial succeeded: answer the SYN. */
  connected(upstream: Upstream): void {
    if (this.state !== 'connecting') {
      upstream.destroy();
      return;
    }
    this.#stateTimer?.cancel();
    this.#stateTimer = undefined;
    this.#upstream = upstream;
    this.#iss = this.#host.randomIss() >>> 0;
    this.#sndUna = this.#iss;
    this.#sndNxt = seq.add(this.#iss, 1);
    this.#sndWl2 = this.#iss;
    this.state = 'syn-received';
    upstream.attach({
      data: (chunk) => this.#onUpstreamData(chunk),
      end: () => this.#onUpstreamEnd(),
      close: (error) => this.#onUpstreamClose(error),
      drain: () => this.#onUpstreamDrain(),
    });
    this.#sendSynAck();
    this.#armRto();
  }

  /** The dial failed: refuse the connection with RST (as a closed port would). */
  connectFailed(reason: string): void {
    if (this.state !== 'connecting') return;
    this.#emit(0, RST | ACK);
    this.resetReason = reason;
    this.#teardown();
  }

  /** Resets the connection (stack shutdown, table pressure). */
  abort(reason: string): void {
    if (this.state === 'closed') return;
    if (this.state === 'connecting') {
      this.connectFailed(reason);
      return;
    }
    if (this.state !== 'time-wait') this.#emit(this.#sndNxt, RST | ACK);
    this.resetReason = reason;
    this.#teardown();
  }

  /** Handles one segment from the client for this 4-tuple. */
  input(seg: TcpSegment): void {
    const flags = seg.flags;
    if (this.state === 'closed') return;
    if (this.state === 'connecting') {
      // Nothing was sent yet; SYN retransmissions wait for the dial. A RST means the client gave up.
      if (flags & RST && seg.seq === this.#irs) this.#quietClose('client reset during connect');
      return;
    }
    if (this.state === 'time-wait') {
      if (flags & RST) this.#teardown();
      else if (flags & FIN) {
        this.#sendAck();
        this.#enterTimeWait();
      }
      return;
    }
    if (this.state === 'syn-received' && flags & SYN && !(flags & ACK)) {
      if (seg.seq === this.#irs) this.#sendSynAck(); // our SYN-ACK was lost
      return;
    }
    const segLen = seg.payload.length + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0);
    if (!this.#acceptable(seg.seq, segLen)) {
      if (!(flags & RST)) this.#sendAck();
      return;
    }
    if (flags & RST) {
      // RFC 5961 §3.2: only an exact match resets; anything else in the window gets a challenge ACK.
      if (seg.seq === this.#rcvNxt) this.#quietClose('client reset');
      else this.#sendAck();
      return;
    }
    if (flags & SYN) {
      this.#sendAck(); // RFC 5961 §4.2 challenge ACK
      return;
    }
    if (!(flags & ACK)) return;
    if (!this.#processAck(seg) || this.isClosed) return;
    if (seg.payload.length > 0 || flags & FIN) this.#processData(seg);
    this.#host.scheduleOutput(this);
  }

  /** Sends what the windows allow, the FIN when due, and any pending ACK. */
  output(): void {
    if (this.#upstreamCorked) {
      // The batch is over: hand its data to the upstream in one write, before the window is computed.
      this.#upstreamCorked = false;
      if (!this.#upstreamClosed) this.#upstream?.uncork?.();
    }
    if (this.state === 'established' || this.state === 'close-wait') {
      for (;;) {
        const inFlight = seq.diff(this.#sndUna, this.#sndNxt);
        const unsent = this.#sendQueue.length - inFlight;
        const usable = this.#sndWnd - inFlight;
        if (unsent <= 0 || usable <= 0) break;
        const n = Math.min(this.#peerMss, unsent, usable);
        // Sender-side silly-window avoidance: no runt segments while data is in flight.
        if (n < this.#peerMss && n < unsent && inFlight > 0) break;
        this.#emit(this.#sndNxt, ACK | (n === unsent ? PSH : 0), inFlight, n);
        if (this.#rttSeq === undefined) {
          this.#rttSeq = seq.add(this.#sndNxt, n);
          this.#rttStart = this.#host.clock.now();
        }
        this.#sndNxt = seq.add(this.#sndNxt, n);
        this.#armRto();
      }
      const allSent = seq.diff(this.#sndUna, this.#sndNxt) === this.#sendQueue.length;
      if (this.#finQueued && !this.#finSent && allSent) {
        this.#finSeq = this.#sndNxt;
        this.#finSent = true;
        this.#emit(this.#finSeq, FIN | ACK);
        this.#sndNxt = seq.add(this.#sndNxt, 1);
        this.state = this.state === 'established' ? 'fin-wait-1' : 'last-ack';
        this.#armRto();
      }
      const unsent = this.#sendQueue.length - seq.diff(this.#sndUna, this.#sndNxt);
      if (this.#sndWnd === 0 && unsent > 0 && this.#sndNxt === this.#sndUna) this.#armPersist();
    }
    if (this.#ackNeeded && this.state !== 'closed' && this.state !== 'connecting') this.#sendAck();
  }

  // --- input helpers -------------------------------------------------------

  /** RFC 9293 §3.10.7.4 segment acceptability against the window we advertised. */
  #acceptable(segSeq: number, segLen: number): boolean {
    const wnd = seq.diff(this.#rcvNxt, this.#rcvEdge);
    const inWindow = (s: number): boolean => seq.ge(s, this.#rcvNxt) && seq.lt(s, this.#rcvEdge);
    if (segLen === 0) return wnd === 0 ? segSeq === this.#rcvNxt : inWindow(segSeq);
    if (wnd === 0) return false;
    return inWindow(segSeq) || inWindow(seq.add(segSeq, segLen - 1));
  }

  /** Returns false when the segment must be dropped. */
  #processAck(seg: TcpSegment): boolean {
    const ack = seg.ack;
    if (this.state === 'syn-received') {
      if (ack !== this.#sndNxt) {
        this.#emit(ack, RST); // not for our SYN-ACK (RFC 9293: <SEQ=SEG.ACK><CTL=RST>)
        return false;
      }
      this.state = 'established';
    }
    const segWnd = seg.window * 2 ** this.#sndShift;
    // RFC 5961 §5.2: acceptable iff SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
    if (seq.gt(ack, this.#sndNxt) || seq.lt(ack, seq.add(this.#sndUna, -Math.max(65535, this.#maxSndWnd)))) {
      this.#sendAck();
      return false;
    }
    this.#persistProbes = 0;
    if (seq.gt(ack, this.#sndUna)) {
      let acked = seq.diff(this.#sndUna, ack);
      if (this.#sndUna === this.#iss) acked -= 1; // our SYN
      const finAcked = this.#finSent && seq.gt(ack, this.#finSeq);
      if (finAcked) acked -= 1;
      this.#sendQueue.consume(acked);
      this.#sndUna = ack;
      if (this.#rttSeq !== undefined && seq.ge(ack, this.#rttSeq)) {
        this.#sampleRtt(this.#host.clock.now() - this.#rttStart);
        this.#rttSeq = undefined;
      }
      this.#retransmits = 0;
      this.#dupAcks = 0;
      // RFC 6298 (5.2, 5.3): stop the timer when all is acknowledged, else restart it.
      if (this.#sndUna !== this.#sndNxt) this.#restartRto();
      else {
        this.#rtoTimer?.cancel();
        this.#rtoTimer = undefined;
      }
      if (this.#recovery) {
        if (seq.ge(ack, this.#recover)) this.#recovery = false;
        else this.#retransmitFirst(); // partial ACK: the next hole
      }
      if (this.#upstreamPaused && this.#sendQueue.length <= this.#config.sendBufferBytes / 2) {
        this.#upstreamPaused = false;
        this.#upstream?.resume();
      }
      if (finAcked) {
        if (this.state === 'fin-wait-1') this.#enterFinWait2();
        else if (this.state === 'closing') this.#enterTimeWait();
        else if (this.state === 'last-ack') {
          this.#teardown();
          return false;
        }
      }
    } else if (
      ack === this.#sndUna &&
      seg.payload.length === 0 &&
      !(seg.flags & FIN) &&
      segWnd === this.#sndWnd &&
      this.#sndNxt !== this.#sndUna
    ) {
      this.#dupAcks++;
      if (this.#dupAcks === 3 && !this.#recovery) {
        this.#recovery = true;
        this.#recover = this.#sndNxt;
        this.#rttSeq = undefined;
        this.#retransmitFirst();
      }
    }
    if (seq.lt(this.#sndWl1, seg.seq) || (this.#sndWl1 === seg.seq && seq.le(this.#sndWl2, ack))) {
      this.#sndWnd = segWnd;
      if (segWnd > this.#maxSndWnd) this.#maxSndWnd = segWnd;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = ack;
      if (this.#sndWnd > 0 && this.#persistTimer) {
        this.#persistTimer.cancel();
        this.#persistTimer = undefined;
      }
    }
    return true;
  }

  #processData(seg: TcpSegment): void {
    if (this.state !== 'established' && this.state !== 'fin-wait-1' && this.state !== 'fin-wait-2') {
      this.#ackNeeded = true; // the client already sent FIN: nothing more can be new
      return;
    }
    let start = seg.seq;
    let data = seg.payload;
    let fin = (seg.flags & FIN) !== 0;
    const old = seq.diff(start, this.#rcvNxt);
    if (old > 0) {
      if (old > data.length || (old === data.length && !fin)) {
        this.#sendAck(); // a pure duplicate: re-ACK at once
        return;
      }
      data = data.subarray(old);
      start = this.#rcvNxt;
    }
    const room = seq.diff(start, this.#rcvEdge);
    if (data.length > room) {
      data = data.subarray(0, Math.max(0, room));
      fin = false;
    }
    if (start !== this.#rcvNxt) {
      if (data.length > 0 || fin) this.#reassembly.hold(start, data, fin);
      this.#sendAck(); // duplicate ACK tells the client where the hole is
      return;
    }
    this.#deliver(data, fin);
    this.#drainOutOfOrder();
    this.#ackNeeded = true;
  }

  /** Delivers held segments that the data just delivered made contiguous. */
  #drainOutOfOrder(): void {
    if (this.#reassembly.isEmpty) return;
    this.#reassembly.drain(
      () => this.#rcvNxt,
      (data, fin) => {
        const acceptsData = this.state === 'established' || this.state === 'fin-wait-1' || this.state === 'fin-wait-2';
        if (acceptsData) this.#deliver(data, fin);
        return this.state !== 'closed';
      },
    );
  }

  #deliver(data: Uint8Array, fin: boolean): void {
    if (data.length > 0) {
      if (this.#upstreamClosed || !this.#upstream) {
        this.abort('data for a closed upstream');
        return;
      }
      if (!this.#upstreamCorked && this.#upstream.cork) {
        this.#upstreamCorked = true;
        this.#upstream.cork();
        this.#host.scheduleOutput(this); // output() uncorks, even if nothing else is due
      }
      this.#upstream.write(data);
      this.#rcvNxt = seq.add(this.#rcvNxt, data.length);
    }
    if (fin) {
      this.#rcvNxt = seq.add(this.#rcvNxt, 1);
      this.#reassembly.clear();
      if (this.#upstreamCorked) {
        this.#upstreamCorked = false;
        if (!this.#upstreamClosed) this.#upstream?.uncork?.();
      }
      if (!this.#upstreamClosed) this.#upstream?.end();
      if (this.state === 'established' || this.state === 'syn-received') this.state = 'close-wait';
      else if (this.state === 'fin-wait-1') this.state = 'closing';
      else if (this.state === 'fin-wait-2') {
        this.#sendAck();
        this.#enterTimeWait();
        return;
      }
      this.#sendAck();
    }
  }

  // --- upstream events -----------------------------------------------------

  #onUpstreamData(chunk: Uint8Array): void {
    if (this.state === 'closed' || this.#finQueued) return;
    this.#sendQueue.push(chunk);
    if (!this.#upstreamPaused && this.#sendQueue.length >= this.#config.sendBufferBytes) {
      this.#upstreamPaused = true;
      this.#upstream?.pause();
    }
    this.#host.scheduleOutput(this);
  }

  #onUpstreamEnd(): void {
    this.#finQueued = true;
    this.#host.scheduleOutput(this);
  }

  #onUpstreamClose(error: Error | undefined): void {
    this.#upstreamClosed = true;
    if (this.state === 'closed') return;
    if (error) {
      this.abort(`upstream failed: ${error.message}`);
      return;
    }
    this.#finQueued = true;
    this.#host.scheduleOutput(this);
  }

  #onUpstreamDrain(): void {
    if (seq.diff(this.#rcvNxt, this.#rcvEdge) < this.#maxRcvWnd / 2) {
      this.#ackNeeded = true; // window update
      this.#host.scheduleOutput(this);
    }
  }

  // --- output helpers ------------------------------------------------------

  /** The window to advertise now, in bytes: what the upstream can take, never retracting the right edge. */
  #window(): number {
    const queued = this.#upstream?.writableLength ?? 0;
    const wanted = Math.max(0, this.#maxRcvWnd - queued);
    const current = Math.max(0, seq.diff(this.#rcvNxt, this.#rcvEdge));
    // Receiver-side silly-window avoidance (RFC 1122 §4.2.3.3): open only by a useful amount.
    const step = Math.min(this.#peerMss, this.#maxRcvWnd / 2);
    return wanted - current >= step ? wanted : current;
  }

  /** The window field for an outgoing segment, and the right edge it advertises. */
  #windowField(flags: number): number {
    if (flags & RST) return 0;
    if (flags & SYN) {
      // A SYN-ACK's window is never scaled (RFC 7323 §2.2).
      const field = Math.min(65535, this.#window());
      this.#rcvEdge = seq.add(this.#rcvNxt, field);
      return field;
    }
    const field = scaledWindowField(this.#window(), this.#rcvShift);
    this.#rcvEdge = seq.add(this.#rcvNxt, field * 2 ** this.#rcvShift);
    return field;
  }

  /** Sends a segment; its payload, if any, is `length` bytes of the send queue from `queueOffset`. */
  #emit(seqNum: number, flags: number, queueOffset = 0, length = 0): void {
    const window = this.#windowField(flags);
    const { clientIp, clientPort, serverIp, serverPort } = this.key;
    this.#host.send(
      buildTcpPacket({
        src: serverIp,
        dst: clientIp,
        srcPort: serverPort,
        dstPort: clientPort,
        seq: seqNum,
        ack: flags & ACK ? this.#rcvNxt : 0,
        flags,
        window,
        mss: flags & SYN ? this.#config.mss : undefined,
        wscale: flags & SYN && this.#offerWscale ? this.#rcvShift : undefined,
        sackPermitted: flags & SYN ? this.#sackOk : undefined,
        // Only on pure ACKs, so that data segments keep their full MSS.
        sack: length === 0 && flags === ACK && this.#sackOk ? this.#reassembly.sackBlocks(MAX_SACK_BLOCKS) : undefined,
        payloadSource: length > 0 ? this.#sendQueue : undefined,
        payloadOffset: queueOffset,
        payloadLength: length,
      }),
    );
    if (flags & ACK) this.#ackNeeded = false;
  }

  #sendAck(): void {
    this.#emit(this.#sndNxt, ACK);
  }

  #sendSynAck(): void {
    this.#emit(this.#iss, SYN | ACK);
  }

  #retransmitFirst(): void {
    if (this.state === 'syn-received') {
      this.#sendSynAck();
      return;
    }
    const inFlightData = Math.min(seq.diff(this.#sndUna, this.#sndNxt), this.#sendQueue.length);
    if (inFlightData > 0) {
      const n = Math.min(this.#peerMss, inFlightData);
      this.#emit(this.#sndUna, ACK, 0, n);
    } else if (this.#finSent && this.#sndUna === this.#finSeq) {
      this.#emit(this.#finSeq, FIN | ACK);
    }
  }

  /** Starts the retransmission timer unless it runs. */
  #armRto(): void {
    if (this.#rtoTimer) return;
    this.#rtoDeadline = this.#host.clock.now() + this.#rto;
    this.#setRtoTimer(this.#rto);
  }

  /** Restarts the timer at a full RTO from now; a running timer is moved only when it fires. */
  #restartRto(): void {
    this.#rtoDeadline = this.#host.clock.now() + this.#rto;
    if (!this.#rtoTimer) this.#setRtoTimer(this.#rto);
  }

  #setRtoTimer(ms: number): void {
    this.#rtoTimer = this.#host.clock.setTimer(ms, () => {
      this.#rtoTimer = undefined;
      const early = this.#rtoDeadline - this.#host.clock.now();
      if (early > 0) this.#setRtoTimer(early);
      else this.#onRto();
    });
  }

  #onRto(): void {
    if (this.state === 'closed') return;
    if (this.state !== 'syn-received' && this.#sndUna === this.#sndNxt) return;
    if (++this.#retransmits > this.#config.maxRetransmits) {
      this.abort('retransmission timeout');
      return;
    }
    this.#rto = Math.min(this.#rto * 2, this.#config.rtoMaxMs);
    this.#rttSeq = undefined; // Karn: never time a retransmitted segment
    this.#recovery = true;
    this.#recover = this.#sndNxt;
    this.#retransmitFirst();
    this.#armRto();
  }

  #sampleRtt(sample: number): void {
    // RFC 6298 §2.
    if (this.#srtt === undefined) {
      this.#srtt = sample;
      this.#rttvar = sample / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - sample);
      this.#srtt = 0.875 * this.#srtt + 0.125 * sample;
    }
    const rto = this.#srtt + Math.max(1, 4 * this.#rttvar);
    this.#rto = Math.min(this.#config.rtoMaxMs, Math.max(this.#config.rtoMinMs, rto));
  }

  #armPersist(): void {
    if (this.#persistTimer) return;
    const delay = Math.min(this.#config.rtoMaxMs, Math.max(this.#config.rtoMinMs, this.#rto) * 2 ** Math.min(this.#persistProbes, 16));
    this.#persistTimer = this.#host.clock.setTimer(delay, () => {
      this.#persistTimer = undefined;
      const unsent = this.#sendQueue.length - seq.diff(this.#sndUna, this.#sndNxt);
      if (this.state === 'closed' || this.#sndWnd > 0 || unsent <= 0) return;
      if (++this.#persistProbes > this.#config.maxRetransmits) {
        this.abort('zero window probes unanswered');
        return;
      }
      // Linux-style probe: an old sequence number makes the client answer with its current window.
      this.#emit(seq.add(this.#sndUna, -1), ACK);
      this.#armPersist();
    });
  }

  #enterFinWait2(): void {
    this.state = 'fin-wait-2';
    this.#stateTimer?.cancel();
    this.#stateTimer = this.#host.clock.setTimer(this.#config.finWait2TimeoutMs, () => {
      this.#stateTimer = undefined;
      this.abort('FIN-WAIT-2 timeout');
    });
  }

  #enterTimeWait(): void {
    this.state = 'time-wait';
    this.#rtoTimer?.cancel();
    this.#rtoTimer = undefined;
    this.#persistTimer?.cancel();
    this.#persistTimer = undefined;
    this.#stateTimer?.cancel();
    this.#stateTimer = this.#host.clock.setTimer(this.#config.timeWaitMs, () => {
      this.#stateTimer = undefined;
      this.#teardown();
    });
  }

  /** Ends the flow without sending anything (the client reset it). */
  #quietClose(reason: string): void {
    this.resetReason = reason;
    this.#teardown();
  }

  #teardown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#rtoTimer?.cancel();
    this.#persistTimer?.cancel();
    this.#stateTimer?.cancel();
    this.#rtoTimer = this.#persistTimer = this.#stateTimer = undefined;
    this.#dialAbort.abort();
    if (this.#upstream && !this.#upstreamClosed) {
      this.#upstreamClosed = true;
      this.#upstream.destroy();
    }
    this.#reassembly.clear();
    this.#host.closed(this);
  }
}
