/**
 * The send side of one TCP flow (upstream bytes toward the client): SND.UNA/SND.NXT,
 * the client's window, the send queue and our FIN; RTT estimation and the RFC 6298
 * retransmission timer (Karn's rule, doubling backoff); fast retransmit after three
 * duplicate ACKs, then NewReno-style recovery (each partial ACK retransmits the next hole)
 * or, when the client sends SACK blocks (RFC 2018), every hole they reveal, once per
 * recovery (RFC 6675 style); and zero-window persist probes, Linux-style (SEQ = SND.UNA - 1, no data).
 *
 * There is no congestion control: the link is a local TUN and the far side is Tor.
 * The flow owns the state machine; this side reports what each ACK acknowledged.
 */
import { ByteQueue } from './byte-queue.ts';
import { SackScoreboard } from './sack-scoreboard.ts';
import type { Clock, TimerHandle } from './clock.ts';
import type { TcpConfig } from './tcp-config.ts';
import type { NegotiatedOptions } from './tcp-negotiation.ts';
import { ACK, FIN, PSH, SYN, seq, type TcpSegment } from './tcp-segment.ts';

/** What the send side needs from its flow. */
export interface SenderPort {
  readonly clock: Clock;
  readonly config: TcpConfig;
  /** Sends a segment; its payload, if any, is `length` bytes of the send queue from `queueOffset`. */
  emit(seqNum: number, flags: number, queueOffset?: number, length?: number): void;
  /** Our SYN-ACK is not acknowledged yet, so a retransmission resends it. */
  synPending(): boolean;
  isClosed(): boolean;
  /** Resets the flow: retransmissions or window probes went unanswered. */
  abort(reason: string): void;
}

/** What an acceptable ACK did: nothing new, acknowledged new data, or acknowledged our FIN too. */
export type AckProgress = 'none' | 'advanced' | 'fin-acked';

/** The send sequence space of one flow. */
export class TcpSender {
  /** Upstream bytes from SND.UNA on, sent or not (the FIN excluded). */
  readonly queue = new ByteQueue();
  readonly #port: SenderPort;
  readonly #config: TcpConfig;
  readonly #mss: number;
  readonly #shift: number; // the client's window-scale shift
  readonly #sackOk: boolean;
  readonly #sacked = new SackScoreboard();
  #iss = 0;
  #sndUna = 0;
  #sndNxt = 0;
  #sndWnd: number; // in bytes (scaled)
  #maxSndWnd: number; // largest window the client offered, for the RFC 5961 ACK check
  #sndWl1: number;
  #sndWl2 = 0;
  #finQueued = false;
  #finSent = false;
  #finSeq = 0;

  #rto: number;
  #srtt: number | undefined;
  #rttvar = 0;
  #rttSeq: number | undefined;
  #rttStart = 0;
  #retransmits = 0;
  #dupAcks = 0;
  #recovery = false;
  #recover = 0;
  #highRxt = 0; // in SACK recovery, holes below this were retransmitted already
  #persistProbes = 0;
  #rtoTimer: TimerHandle | undefined;
  #rtoDeadline = 0; // the timer may fire earlier: it is restarted lazily (one timer per flight, not per ACK)
  #persistTimer: TimerHandle | undefined;

  constructor(port: SenderPort, syn: TcpSegment, options: NegotiatedOptions) {
    this.#port = port;
    this.#config = port.config;
    this.#mss = options.peerMss;
    this.#shift = options.sndShift;
    this.#sackOk = options.sackOk;
    this.#sndWnd = syn.window; // a SYN's window is never scaled
    this.#maxSndWnd = syn.window;
    this.#sndWl1 = syn.seq;
    this.#rto = this.#config.rtoInitialMs;
  }

  /** The next sequence number we send. */
  get sndNxt(): number {
    return this.#sndNxt;
  }

  /** The upstream ended: a FIN follows the queued data. */
  get finQueued(): boolean {
    return this.#finQueued;
  }

  queueFin(): void {
    this.#finQueued = true;
  }

  /** Starts the sequence space at `iss` and sends the SYN-ACK (the dial succeeded). */
  open(iss: number): void {
    this.#iss = iss;
    this.#sndUna = iss;
    this.#sndNxt = seq.add(iss, 1);
    this.#sndWl2 = iss;
    this.sendSynAck();
    this.#armRto();
  }

  sendSynAck(): void {
    this.#port.emit(this.#iss, SYN | ACK);
  }

  /**
   * Sends what the client's window allows, in MSS-sized segments, then the FIN once all
   * data is out. Returns true when the FIN went out now.
   */
  sendNew(): boolean {
    for (;;) {
      const inFlight = seq.diff(this.#sndUna, this.#sndNxt);
      const unsent = this.queue.length - inFlight;
      const usable = this.#sndWnd - inFlight;
      if (unsent <= 0 || usable <= 0) break;
      const n = Math.min(this.#mss, unsent, usable);
      // Sender-side silly-window avoidance: no runt segments while data is in flight.
      if (n < this.#mss && n < unsent && inFlight > 0) break;
      this.#port.emit(this.#sndNxt, ACK | (n === unsent ? PSH : 0), inFlight, n);
      if (this.#rttSeq === undefined) {
        this.#rttSeq = seq.add(this.#sndNxt, n);
        this.#rttStart = this.#port.clock.now();
      }
      this.#sndNxt = seq.add(this.#sndNxt, n);
      this.#armRto();
    }
    let finSentNow = false;
    if (this.#finQueued && !this.#finSent && this.#unsent() === 0) {
      this.#finSeq = this.#sndNxt;
      this.#finSent = true;
      this.#port.emit(this.#finSeq, FIN | ACK);
      this.#sndNxt = seq.add(this.#sndNxt, 1);
      finSentNow = true;
      this.#armRto();
    }
    if (this.#sndWnd === 0 && this.#unsent() > 0 && this.#sndNxt === this.#sndUna) this.#armPersist();
    return finSentNow;
  }

  /** RFC 5961 §5.2: an ACK is acceptable iff SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT. */
  acceptsAck(ack: number): boolean {
    return !seq.gt(ack, this.#sndNxt) && !seq.lt(ack, seq.add(this.#sndUna, -Math.max(65535, this.#maxSndWnd)));
  }

  /** Takes an acceptable ACK: frees what it acknowledges, samples the RTT, and detects and repairs loss. */
  onAck(seg: TcpSegment): AckProgress {
    const ack = seg.ack;
    this.#persistProbes = 0;
    if (seq.gt(ack, this.#sndUna)) {
      let acked = seq.diff(this.#sndUna, ack);
      if (this.#sndUna === this.#iss) acked -= 1; // our SYN
      const finAcked = this.#finSent && seq.gt(ack, this.#finSeq);
      if (finAcked) acked -= 1;
      this.queue.consume(acked);
      this.#sndUna = ack;
      this.#sacked.advance(ack);
      this.#noteSack(seg);
      if (this.#rttSeq !== undefined && seq.ge(ack, this.#rttSeq)) {
        this.#sampleRtt(this.#port.clock.now() - this.#rttStart);
        this.#rttSeq = undefined;
      }
      this.#retransmits = 0;
      this.#dupAcks = 0;
      // RFC 6298 (5.2, 5.3): stop the timer when all is acknowledged, else restart it.
      if (this.#sndUna !== this.#sndNxt) this.#restartRto();
      else this.#stopRto();
      if (this.#recovery) {
        if (seq.ge(ack, this.#recover)) this.#recovery = false;
        else this.#repair(); // partial ACK
      }
      return finAcked ? 'fin-acked' : 'advanced';
    }
    const isDuplicate =
      ack === this.#sndUna &&
      seg.payload.length === 0 &&
      !(seg.flags & FIN) &&
      this.#windowOf(seg) === this.#sndWnd &&
      this.#sndNxt !== this.#sndUna;
    const revealed = this.#noteSack(seg);
    if (isDuplicate && ++this.#dupAcks === 3 && !this.#recovery) {
      this.#recovery = true;
      this.#recover = this.#sndNxt;
      this.#rttSeq = undefined;
      this.#highRxt = this.#sndUna;
      this.#repair();
    } else if (revealed && this.#recovery) this.#repair();
    return 'none';
  }

  /** Takes the client's window from an acceptable segment unless an older one (RFC 9293 SND.WL1/SND.WL2). */
  updateWindow(seg: TcpSegment): void {
    if (!(seq.lt(this.#sndWl1, seg.seq) || (this.#sndWl1 === seg.seq && seq.le(this.#sndWl2, seg.ack)))) return;
    const segWnd = this.#windowOf(seg);
    this.#sndWnd = segWnd;
    if (segWnd > this.#maxSndWnd) this.#maxSndWnd = segWnd;
    this.#sndWl1 = seg.seq;
    this.#sndWl2 = seg.ack;
    if (this.#sndWnd > 0 && this.#persistTimer) {
      this.#persistTimer.cancel();
      this.#persistTimer = undefined;
    }
  }

  /** Stops retransmissions and probes (TIME-WAIT, or the flow ended). */
  stopTimers(): void {
    this.#stopRto();
    this.#persistTimer?.cancel();
    this.#persistTimer = undefined;
  }

  #windowOf(seg: TcpSegment): number {
    return seg.window * 2 ** this.#shift;
  }

  #unsent(): number {
    return this.queue.length - seq.diff(this.#sndUna, this.#sndNxt);
  }

  /** Records the segment's SACK blocks, if SACK is in effect; true when it had any. */
  #noteSack(seg: TcpSegment): boolean {
    if (!this.#sackOk || seg.sack === undefined) return false;
    this.#sacked.add(seg.sack, this.#sndUna, this.#sndNxt);
    return true;
  }

  /**
   * Loss recovery: without SACK information, retransmits the first unacknowledged segment;
   * with it, every hole below the highest SACKed byte not yet retransmitted in this recovery.
   */
  #repair(): void {
    if (this.#sacked.isEmpty) {
      this.#retransmitFirst();
      return;
    }
    if (seq.lt(this.#highRxt, this.#sndUna)) this.#highRxt = this.#sndUna;
    for (let hole = this.#sacked.nextHole(this.#highRxt); hole; hole = this.#sacked.nextHole(this.#highRxt)) {
      const offset = seq.diff(this.#sndUna, hole[0]);
      const n = Math.min(this.#mss, seq.diff(hole[0], hole[1]), this.queue.length - offset);
      if (n <= 0) break; // only the FIN is left there
      this.#port.emit(hole[0], ACK, offset, n);
      this.#highRxt = seq.add(hole[0], n);
    }
  }

  #retransmitFirst(): void {
    if (this.#port.synPending()) {
      this.sendSynAck();
      return;
    }
    const inFlightData = Math.min(seq.diff(this.#sndUna, this.#sndNxt), this.queue.length);
    if (inFlightData > 0) {
      const n = Math.min(this.#mss, inFlightData);
      this.#port.emit(this.#sndUna, ACK, 0, n);
      this.#highRxt = seq.add(this.#sndUna, n);
    } else if (this.#finSent && this.#sndUna === this.#finSeq) {
      this.#port.emit(this.#finSeq, FIN | ACK);
    }
  }

  /** Starts the retransmission timer unless it runs. */
  #armRto(): void {
    if (this.#rtoTimer) return;
    this.#rtoDeadline = this.#port.clock.now() + this.#rto;
    this.#setRtoTimer(this.#rto);
  }

  /** Restarts the timer at a full RTO from now; a running timer is moved only when it fires. */
  #restartRto(): void {
    this.#rtoDeadline = this.#port.clock.now() + this.#rto;
    if (!this.#rtoTimer) this.#setRtoTimer(this.#rto);
  }

  #stopRto(): void {
    this.#rtoTimer?.cancel();
    this.#rtoTimer = undefined;
  }

  #setRtoTimer(ms: number): void {
    this.#rtoTimer = this.#port.clock.setTimer(ms, () => {
      this.#rtoTimer = undefined;
      const early = this.#rtoDeadline - this.#port.clock.now();
      if (early > 0) this.#setRtoTimer(early);
      else this.#onRto();
    });
  }

  #onRto(): void {
    if (this.#port.isClosed()) return;
    if (!this.#port.synPending() && this.#sndUna === this.#sndNxt) return;
    if (++this.#retransmits > this.#config.maxRetransmits) {
      this.#port.abort('retransmission timeout');
      return;
    }
    this.#rto = Math.min(this.#rto * 2, this.#config.rtoMaxMs);
    this.#rttSeq = undefined; // Karn: never time a retransmitted segment
    this.#sacked.clear(); // RFC 2018 §8: the client may have dropped what it SACKed
    this.#highRxt = this.#sndUna;
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
    const { rtoMinMs, rtoMaxMs } = this.#config;
    const delay = Math.min(rtoMaxMs, Math.max(rtoMinMs, this.#rto) * 2 ** Math.min(this.#persistProbes, 16));
    this.#persistTimer = this.#port.clock.setTimer(delay, () => {
      this.#persistTimer = undefined;
      if (this.#port.isClosed() || this.#sndWnd > 0 || this.#unsent() <= 0) return;
      if (++this.#persistProbes > this.#config.maxRetransmits) {
        this.#port.abort('zero window probes unanswered');
        return;
      }
      // An old sequence number makes the client answer with its current window.
      this.#port.emit(seq.add(this.#sndUna, -1), ACK);
      this.#armPersist();
    });
  }
}
