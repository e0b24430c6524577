/**
 * One passive-open TCP connection, from the client's SYN to the last ACK: the state
 * machine, the checks every segment goes through, and the upstream it relays to.
 *
 * The stack answers a SYN to ANY address. The flow first dials the upstream
 * (SOCKS CONNECT) and only then sends the SYN-ACK; a failed dial answers RST,
 * so the client's connect() fails the way a refused connection does.
 *
 * The rest lives beside it (see README.md for the design):
 *   - tcp-negotiation.ts: window scaling (RFC 7323) and SACK-permitted (RFC 2018), from the SYN;
 *   - tcp-sender.ts: the send side, retransmission (RFC 6298 RTO, fast retransmit,
 *     NewReno-style or SACK-based recovery) and zero-window probes;
 *   - tcp-receiver.ts: the receive side, acceptability, the advertised window and the
 *     out-of-order segments with their SACK blocks.
 * Here: RST/SYN/ACK checks per RFC 5961, ACK coalescing (in-order data is ACKed once
 * per input batch, piggybacked on data when there is any; anything else at once),
 * upstream backpressure, and the close sequence with its timers.
 */
import type { Clock, TimerHandle } from './clock.ts';
import type { TcpConfig } from './tcp-config.ts';
import { negotiateOptions, type NegotiatedOptions } from './tcp-negotiation.ts';
import { TcpReceiver } from './tcp-receiver.ts';
import { ACK, FIN, RST, SYN, buildTcpPacket, type TcpSegment } from './tcp-segment.ts';
import { TcpSender } from './tcp-sender.ts';
import type { Upstream } from './upstream.ts';

export { DEFAULT_TCP_CONFIG, type TcpConfig } from './tcp-config.ts';
export { scaledWindowField, windowShiftFor } from './tcp-negotiation.ts';

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

/** One connection; the stack feeds it segments and calls output() after each input batch. */
export class TcpFlow {
  readonly key: FlowKey;
  state: FlowState = 'connecting';
  /** Set when the flow ended with a reset (either side) or a timeout. */
  resetReason: string | undefined;

  readonly #host: FlowHost;
  readonly #config: TcpConfig;
  readonly #options: NegotiatedOptions;
  readonly #send: TcpSender;
  readonly #receive: TcpReceiver;
  readonly #dialAbort = new AbortController();
  #ackNeeded = false;
  #stateTimer: TimerHandle | undefined; // connect timeout, FIN-WAIT-2 timeout, TIME-WAIT

  #upstream: Upstream | undefined;
  #upstreamPaused = false;
  #upstreamClosed = false;
  #upstreamCorked = false; // data of this input batch is being coalesced into one upstream write

  /** Creates the flow for a client SYN (the stack checked SYN set, ACK/RST clear). */
  constructor(host: FlowHost, key: FlowKey, syn: TcpSegment) {
    this.#host = host;
    this.#config = host.config;
    this.key = key;
    this.#options = negotiateOptions(this.#config, syn);
    this.#receive = new TcpReceiver(syn, this.#options, this.#config.maxOutOfOrderSegments);
    this.#send = new TcpSender(
      {
        clock: host.clock,
        config: this.#config,
        emit: (seqNum, flags, queueOffset, length) => this.#emit(seqNum, flags, queueOffset, length),
        synPending: () => this.state === 'syn-received',
        isClosed: () => this.state === 'closed',
        abort: (reason) => this.abort(reason),
      },
      syn,
      this.#options,
    );
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
    const iss = this.#host.randomIss() >>> 0;
    this.state = 'syn-received';
    upstream.attach({
      data: (chunk) => this.#onUpstreamData(chunk),
      end: () => this.#onUpstreamEnd(),
      close: (error) => this.#onUpstreamClose(error),
      drain: () => this.#onUpstreamDrain(),
    });
    this.#send.open(iss);
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
    if (this.state !== 'time-wait') this.#emit(this.#send.sndNxt, RST | ACK);
    this.resetReason = reason;
    this.#teardown();
  }

  /** Handles one segment from the client for this 4-tuple. */
  input(seg: TcpSegment): void {
    const flags = seg.flags;
    if (this.state === 'closed') return;
    if (this.state === 'connecting') {
      // Nothing was sent yet; SYN retransmissions wait for the dial. A RST means the client gave up.
      if (flags & RST && seg.seq === this.#receive.irs) this.#quietClose('client reset during connect');
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
      if (seg.seq === this.#receive.irs) this.#send.sendSynAck(); // our SYN-ACK was lost
      return;
    }
    const segLen = seg.payload.length + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0);
    if (!this.#receive.acceptable(seg.seq, segLen)) {
      if (!(flags & RST)) this.#sendAck();
      return;
    }
    if (flags & RST) {
      // RFC 5961 §3.2: only an exact match resets; anything else in the window gets a challenge ACK.
      if (seg.seq === this.#receive.rcvNxt) this.#quietClose('client reset');
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
    if ((this.state === 'established' || this.state === 'close-wait') && this.#send.sendNew()) {
      this.state = this.state === 'established' ? 'fin-wait-1' : 'last-ack';
    }
    if (this.#ackNeeded && this.state !== 'closed' && this.state !== 'connecting') this.#sendAck();
  }

  /** Returns false when the segment must be dropped. */
  #processAck(seg: TcpSegment): boolean {
    if (this.state === 'syn-received') {
      if (seg.ack !== this.#send.sndNxt) {
        this.#emit(seg.ack, RST); // not for our SYN-ACK (RFC 9293: <SEQ=SEG.ACK><CTL=RST>)
        return false;
      }
      this.state = 'established';
    }
    if (!this.#send.acceptsAck(seg.ack)) {
      this.#sendAck();
      return false;
    }
    const progress = this.#send.onAck(seg);
    if (progress !== 'none' && this.#upstreamPaused && this.#send.queue.length <= this.#config.sendBufferBytes / 2) {
      this.#upstreamPaused = false;
      this.#upstream?.resume();
    }
    if (progress === 'fin-acked') {
      if (this.state === 'fin-wait-1') this.#enterFinWait2();
      else if (this.state === 'closing') this.#enterTimeWait();
      else if (this.state === 'last-ack') {
        this.#teardown();
        return false;
      }
    }
    this.#send.updateWindow(seg);
    return true;
  }

  #processData(seg: TcpSegment): void {
    if (!this.#acceptsData()) {
      this.#ackNeeded = true; // the client already sent FIN: nothing more can be new
      return;
    }
    const placed = this.#receive.place(seg);
    if (typeof placed === 'string') {
      this.#sendAck(); // a duplicate, or a hole: tell the client at once where we are
      return;
    }
    this.#deliver(placed.data, placed.fin);
    this.#receive.drainHeld((data, fin) => {
      if (this.#acceptsData()) this.#deliver(data, fin);
      return this.state !== 'closed';
    });
    this.#ackNeeded = true;
  }

  #acceptsData(): boolean {
    return this.state === 'established' || this.state === 'fin-wait-1' || this.state === 'fin-wait-2';
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
      this.#receive.advance(data.length);
    }
    if (fin) {
      this.#receive.finReceived();
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
    if (this.state === 'closed' || this.#send.finQueued) return;
    this.#send.queue.push(chunk);
    if (!this.#upstreamPaused && this.#send.queue.length >= this.#config.sendBufferBytes) {
      this.#upstreamPaused = true;
      this.#upstream?.pause();
    }
    this.#host.scheduleOutput(this);
  }

  #onUpstreamEnd(): void {
    this.#send.queueFin();
    this.#host.scheduleOutput(this);
  }

  #onUpstreamClose(error: Error | undefined): void {
    this.#upstreamClosed = true;
    if (this.state === 'closed') return;
    if (error) {
      this.abort(`upstream failed: ${error.message}`);
      return;
    }
    this.#send.queueFin();
    this.#host.scheduleOutput(this);
  }

  #onUpstreamDrain(): void {
    if (this.#receive.windowBelowHalf) {
      this.#ackNeeded = true; // window update
      this.#host.scheduleOutput(this);
    }
  }

  // --- output --------------------------------------------------------------

  /** Sends a segment; its payload, if any, is `length` bytes of the send queue from `queueOffset`. */
  #emit(seqNum: number, flags: number, queueOffset = 0, length = 0): void {
    const window = this.#receive.windowField(flags, this.#upstream?.writableLength ?? 0);
    const { clientIp, clientPort, serverIp, serverPort } = this.key;
    const syn = (flags & SYN) !== 0;
    this.#host.send(
      buildTcpPacket({
        src: serverIp,
        dst: clientIp,
        srcPort: serverPort,
        dstPort: clientPort,
        seq: seqNum,
        ack: flags & ACK ? this.#receive.rcvNxt : 0,
        flags,
        window,
        mss: syn ? this.#config.mss : undefined,
        wscale: syn && this.#options.offerWscale ? this.#options.rcvShift : undefined,
        sackPermitted: syn ? this.#options.sackOk : undefined,
        // Only on pure ACKs, so that data segments keep their full MSS.
        sack: length === 0 && flags === ACK ? this.#receive.sackBlocks() : undefined,
        payloadSource: length > 0 ? this.#send.queue : undefined,
        payloadOffset: queueOffset,
        payloadLength: length,
      }),
    );
    if (flags & ACK) this.#ackNeeded = false;
  }

  #sendAck(): void {
    this.#emit(this.#send.sndNxt, ACK);
  }

  // --- close ---------------------------------------------------------------

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
    this.#send.stopTimers();
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
    this.#send.stopTimers();
    this.#stateTimer?.cancel();
    this.#stateTimer = undefined;
    this.#dialAbort.abort();
    if (this.#upstream && !this.#upstreamClosed) {
      this.#upstreamClosed = true;
      this.#upstream.destroy();
    }
    this.#receive.forgetHeld();
    this.#host.closed(this);
  }
}
