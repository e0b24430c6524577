/**
 * A SOCKS5 CONNECT client over node:net, one proxy connection per flow. This
 * file and the TUN adapter are the only ones in the package that touch the OS.
 */
import { connect, type Socket } from 'node:net';
import {
  decodeAuthReply,
  decodeConnectReply,
  decodeMethod,
  encodeAuth,
  encodeConnect,
  encodeGreeting,
  isTorExtendedReply,
  type SocksAuth,
  type Step,
} from './socks5-protocol.ts';
import type { DialRequest, Dialer, Upstream } from './upstream.ts';

/** A failed SOCKS handshake. `replyCode` is the proxy's reply (0x01-0x08, or Tor's 0xF0-0xF7). */
export class SocksError extends Error {
  readonly replyCode: number | undefined;
  constructor(message: string, replyCode?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SocksError';
    this.replyCode = replyCode;
  }
  /** True when Tor reported an onion-service failure (extended reply codes). */
  get isOnionServiceError(): boolean {
    return this.replyCode !== undefined && isTorExtendedReply(this.replyCode);
  }
}

export interface Socks5DialerOptions {
  proxyHost: string;
  proxyPort: number;
  /** Bound on the TCP connect plus the whole handshake. */
  timeoutMs?: number;
  /**
   * Credentials per flow, for stream isolation (Tor's IsolateSOCKSAuth):
   * flows with different usernames never share a circuit. Undefined = no auth.
   */
  authFor?: (request: DialRequest) => SocksAuth | undefined;
}

/** A {@link Dialer} that makes one SOCKS5 CONNECT per flow, sending the hostname when fake DNS knows it. */
export function createSocks5Dialer(options: Socks5DialerOptions): Dialer {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return {
    dial(request, signal) {
      return socks5Connect(options, request, timeoutMs, signal);
    },
  };
}

function socks5Connect(options: Socks5DialerOptions, request: DialRequest, timeoutMs: number, signal: AbortSignal): Promise<Upstream> {
  return new Promise<Upstream>((resolve, reject) => {
    const auth = options.authFor?.(request);
    let connectRequest: Uint8Array;
    let authRequest: Uint8Array | undefined;
    try {
      connectRequest = encodeConnect({ host: request.host, port: request.port });
      authRequest = auth ? encodeAuth(auth) : undefined;
    } catch (error) {
      reject(new SocksError(`bad SOCKS request: ${(error as Error).message}`));
      return;
    }
    const socket = connect({ host: options.proxyHost, port: options.proxyPort, allowHalfOpen: true, noDelay: true });
    let buffered: Uint8Array = new Uint8Array(0);
    let stage: 'method' | 'auth' | 'reply' = 'method';
    let settled = false;

    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(new SocksError('SOCKS connect aborted'));
    const timer = setTimeout(() => fail(new SocksError(`SOCKS connect timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    const cleanup = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onError = (error: Error): void => fail(new SocksError(`SOCKS proxy connection failed: ${error.message}`, undefined, { cause: error }));
    const onClose = (): void => fail(new SocksError('SOCKS proxy closed the connection during the handshake'));

    const handle = <T>(step: Step<T>): T | undefined => {
      if ('need' in step) return undefined;
      if ('error' in step) {
        fail(new SocksError(step.error, step.code));
        return undefined;
      }
      buffered = buffered.subarray(step.used);
      return step.value;
    };

    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (;;) {
        if (settled) return;
        if (stage === 'method') {
          if (handle(decodeMethod(buffered, auth)) === undefined) return;
          if (authRequest) {
            socket.write(authRequest);
            stage = 'auth';
          } else {
            socket.write(connectRequest);
            stage = 'reply';
          }
        } else if (stage === 'auth') {
          if (handle(decodeAuthReply(buffered)) === undefined) return;
          socket.write(connectRequest);
          stage = 'reply';
        } else {
          if (handle(decodeConnectReply(buffered)) === undefined) return;
          settled = true;
          cleanup();
          socket.pause();
          if (buffered.length > 0) socket.unshift(buffered);
          resolve(socketUpstream(socket));
          return;
        }
      }
    };

    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('data', onData);
    socket.once('connect', () => {
      socket.write(encodeGreeting(auth));
    });
  });
}

/** Wraps a connected net.Socket (allowHalfOpen) as an {@link Upstream}. */
export function socketUpstream(socket: Socket): Upstream {
  return {
    write: (data) => void socket.write(data),
    get writableLength() {
      return socket.writableLength;
    },
    end: () => void socket.end(),
    destroy: () => void socket.destroy(),
    pause: () => void socket.pause(),
    resume: () => void socket.resume(),
    cork: () => socket.cork(),
    uncork: () => socket.uncork(),
    attach(handlers) {
      let failure: Error | undefined;
      socket.on('data', (chunk: Buffer) => handlers.data(chunk));
      socket.on('end', () => handlers.end());
      socket.on('drain', () => handlers.drain());
      socket.on('error', (error) => void (failure = error));
      socket.on('close', () => handlers.close(failure));
      socket.resume();
    },
  };
}
