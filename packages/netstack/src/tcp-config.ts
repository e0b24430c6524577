/** The tunables of every TCP flow, and their defaults (the reasons are in README.md). */

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

/** The defaults: sized for a local TUN link with Tor on the far side. */
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
