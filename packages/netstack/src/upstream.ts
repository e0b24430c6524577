/**
 * What the TCP flows talk to on the far side: a byte stream per flow, opened
 * by an injected {@link Dialer} (SOCKS5 to Tor in production, a fake in tests).
 */

/** Callbacks an {@link Upstream} reports to. Each is called on the event loop, never re-entrantly from a method. */
export interface UpstreamHandlers {
  data(chunk: Uint8Array): void;
  /** The far side finished sending (half-close). */
  end(): void;
  /** The stream is gone; error is set when it failed rather than closed cleanly. */
  close(error: Error | undefined): void;
  /** Bytes queued by write() have been handed to the OS: the receive window can open. */
  drain(): void;
}

/** A connected byte stream (e.g. a net.Socket after the SOCKS handshake). */
export interface Upstream {
  /** Queues bytes for the far side. Backpressure is read from writableLength, not from a return value. */
  write(data: Uint8Array): void;
  /** Bytes queued and not yet handed to the OS. */
  readonly writableLength: number;
  /** Half-closes: no more writes. */
  end(): void;
  /** Closes at once, both ways. */
  destroy(): void;
  /** Stops/starts data callbacks (send-buffer backpressure). */
  pause(): void;
  resume(): void;
  /**
   * Optional write coalescing: writes between cork() and uncork() go out together
   * (net.Socket: one writev), so a batch of small segments costs one syscall.
   */
  cork?(): void;
  uncork?(): void;
  attach(handlers: UpstreamHandlers): void;
}

/** One flow's destination, as the stack knows it. */
export interface DialRequest {
  /** Where to connect: the hostname from fake DNS when known, else the destination IP. */
  host: string;
  port: number;
  /** The IPv4 destination the client used (a fake-pool address when `hostname` is set). */
  dstIp: string;
  /** The hostname from fake DNS, if the destination was a fake-pool address. */
  hostname: string | undefined;
  srcIp: string;
  srcPort: number;
}

/** Opens upstream streams. Rejects (with a reason) when the destination can not be reached. */
export interface Dialer {
  dial(request: DialRequest, signal: AbortSignal): Promise<Upstream>;
}
