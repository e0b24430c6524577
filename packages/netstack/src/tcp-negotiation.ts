/**
 * What a client's SYN and our SYN-ACK agree on: window scaling (RFC 7323 §2), SACK
 * (RFC 2018) and the segment size. Decided once per flow, from the SYN alone.
 */
import type { TcpConfig } from './tcp-config.ts';
import { MAX_WSCALE, type TcpSegment } from './tcp-segment.ts';

/** The options in effect for one flow. */
export interface NegotiatedOptions {
  /** The SYN-ACK carries our window-scale option (so scaling is in effect both ways). */
  readonly offerWscale: boolean;
  /** Our window-scale shift; 0 without scaling. */
  readonly rcvShift: number;
  /** The client's shift, applied to every window it sends but the SYN's. */
  readonly sndShift: number;
  /** `receiveWindow`, capped at what our window field can express. */
  readonly maxRcvWnd: number;
  /** Both SYNs carry SACK-permitted. */
  readonly sackOk: boolean;
  /** Largest payload we send: the client's MSS (536 when absent) capped by ours. */
  readonly peerMss: number;
}

/** Answers the options of a client's SYN in kind, as far as `config` allows. */
export function negotiateOptions(config: TcpConfig, syn: TcpSegment): NegotiatedOptions {
  // RFC 7323 §2.2: scaling is in effect only when both SYNs carry the option.
  const offerWscale = config.windowScaling && syn.wscale !== undefined;
  const rcvShift = offerWscale ? windowShiftFor(config.receiveWindow) : 0;
  return {
    offerWscale,
    rcvShift,
    sndShift: offerWscale ? (syn.wscale ?? 0) : 0,
    maxRcvWnd: Math.min(config.receiveWindow, 65535 * 2 ** rcvShift),
    sackOk: config.sack && syn.sackPermitted,
    peerMss: Math.max(64, Math.min(syn.mss ?? 536, config.mss)),
  };
}

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
