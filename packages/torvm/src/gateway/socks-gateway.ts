/**
 * The LAN gateway's SOCKS5 server. For each client connection, in order:
 *
 *   1. source address inside allowedSubnets? ........ else reset at once
 *   2. a token left in its rate-limit bucket? ........ else reset at once
 *   3. greeting offers username/password? ............ else "no acceptable method", close
 *   4. username/password match a configured user? .... else auth failure, close
 *   5. a CONNECT request? ............................. else "command not supported", close
 *   6. SOCKS5 to the VM's SocksPort, authenticated as that user name (Tor's
 *      IsolateSOCKSAuth keeps each user on its own circuits), the request
 *      forwarded byte for byte; Tor's reply and all data then flow both ways.
 *
 * The client's password is never forwarded and never logged; destinations are
 * never logged either.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { decodeAuthReply, decodeMethod, encodeAuth, encodeGreeting } from '@torvm/netstack/socks5-protocol.ts';
import type { SubnetAllowlist, RateLimiter } from './client-admission.ts';
import type { CredentialChecker } from './credentials.ts';
import {
  CMD_CONNECT, METHOD_NONE_ACCEPTABLE, METHOD_USERNAME_PASSWORD, REPLY,
  decodeAuthRequest, decodeGreeting, decodeRequest, encodeAuthStatus, encodeFailureReply, encodeMethodChoice,
  type SocksRequest, type Step,
} from './socks5-server-protocol.ts';

/**
 * The password sent to Tor with the user name. Tor does not check it, but
 * isolates streams on the (username, password) pair; a constant keeps the
 * isolation per user and keeps the client's real password on the host.
 */
export const UPSTREAM_PASSWORD = 'torvm-lan-gateway';

export interface GatewayLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface SocksGatewayOptions {
  listenAddress: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** The VM's SocksPort. */
  upstream: { host: string; port: number };
  allowlist: SubnetAllowlist;
  limiter: RateLimiter;
  credentials: CredentialChecker;
  log: GatewayLog;
  /** Bound on the client's handshake and on the upstream handshake. Default 30 s. */
  handshakeTimeoutMs?: number;
}

/** Counters for logs, status and tests. */
export interface SocksGatewayStats {
  accepted: number;
  refusedSubnet: number;
  refusedRate: number;
  refusedNoAuth: number;
  refusedCredentials: number;
  refusedCommand: number;
  upstreamFailures: number;
  active: number;
}

export interface SocksGateway {
  readonly address: string;
  readonly port: number;
  readonly stats: Readonly<SocksGatewayStats>;
  stop(): Promise<void>;
}

/** Resets a connection (RST, not FIN) where Node supports it. */
function reset(socket: Socket): void {
  if (typeof socket.resetAndDestroy === 'function' && !socket.destroyed) socket.resetAndDestroy();
  else socket.destroy();
}

export async function startSocksGateway(options: SocksGatewayOptions): Promise<SocksGateway> {
  const timeoutMs = options.handshakeTimeoutMs ?? 30_000;
  const stats: SocksGatewayStats = { accepted: 0, refusedSubnet: 0, refusedRate: 0, refusedNoAuth: 0, refusedCredentials: 0, refusedCommand: 0, upstreamFailures: 0, active: 0 };
  const sockets = new Set<Socket>();
  const { log } = options;

  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    track(client);
    client.on('error', () => {}); // a client's reset is routine; 'close' cleans up
    const peer = client.remoteAddress;
    if (!options.allowlist.allows(peer)) {
      stats.refusedSubnet++;
      log.warn(`LAN gateway: refused a connection from ${peer ?? 'an unknown address'} (not in allowedSubnets)`);
      reset(client);
      return;
    }
    if (!options.limiter.tryTake(peer ?? '')) {
      stats.refusedRate++;
      log.warn(`LAN gateway: refused a connection from ${peer ?? ''} (rate limit)`);
      reset(client);
      return;
    }
    handleClient(client, peer ?? '');
  });

  function handleClient(client: Socket, peer: string): void {
    let buffered: Uint8Array = new Uint8Array(0);
    let stage: 'greeting' | 'auth' | 'request' = 'greeting';
    let user = '';
    const timer = setTimeout(() => client.destroy(), timeoutMs);
    timer.unref();
    client.once('close', () => clearTimeout(timer));

    const refuse = (reply: Uint8Array | null): void => {
      clearTimeout(timer);
      client.removeListener('data', onData);
      if (reply) client.end(reply);
      else client.destroy();
    };
    const take = <T>(step: Step<T>): T | undefined => {
      if ('need' in step) return undefined;
      if ('error' in step) {
        refuse(stage === 'request' ? encodeFailureReply(step.code ?? REPLY.generalFailure) : null);
        return undefined;
      }
      buffered = buffered.subarray(step.used);
      return step.value;
    };

    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (;;) {
        if (stage === 'greeting') {
          const greeting = take(decodeGreeting(buffered));
          if (!greeting) return;
          if (!greeting.methods.includes(METHOD_USERNAME_PASSWORD)) {
            stats.refusedNoAuth++;
            log.warn(`LAN gateway: refused ${peer}: it did not offer username/password authentication`);
            refuse(encodeMethodChoice(METHOD_NONE_ACCEPTABLE));
            return;
          }
          client.write(encodeMethodChoice(METHOD_USERNAME_PASSWORD));
          stage = 'auth';
        } else if (stage === 'auth') {
          const auth = take(decodeAuthRequest(buffered));
          if (!auth) return;
          const matched = options.credentials.verify(auth.username, auth.password);
          if (matched === null) {
            stats.refusedCredentials++;
            log.warn(`LAN gateway: refused ${peer}: wrong username or password`);
            refuse(encodeAuthStatus(false));
            return;
          }
          user = matched;
          client.write(encodeAuthStatus(true));
          stage = 'request';
        } else {
          const request = take(decodeRequest(buffered));
          if (!request) return;
          if (request.command !== CMD_CONNECT) {
            stats.refusedCommand++;
            refuse(encodeFailureReply(REPLY.commandNotSupported));
            return;
          }
          clearTimeout(timer);
          client.removeListener('data', onData);
          client.pause();
          const early = buffered;
          buffered = new Uint8Array(0);
          forward(client, user, request, early);
          return;
        }
      }
    };
    client.on('data', onData);
  }

  /** Step 6: the upstream handshake as `user`, then the request as is, then a plain splice. */
  function forward(client: Socket, user: string, request: SocksRequest, early: Uint8Array): void {
    const upstream = connect({ host: options.upstream.host, port: options.upstream.port, allowHalfOpen: true, noDelay: true });
    track(upstream);
    const auth = { username: user, password: UPSTREAM_PASSWORD };
    let buffered: Uint8Array = new Uint8Array(0);
    let stage: 'method' | 'auth' = 'method';
    let done = false;
    const timer = setTimeout(() => fail('timed out'), timeoutMs);
    timer.unref();

    function fail(why: string): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stats.upstreamFailures++;
      log.warn(`LAN gateway: the VM's SocksPort failed (${why})`);
      upstream.destroy();
      if (!client.destroyed) client.end(encodeFailureReply(REPLY.generalFailure));
    }
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (stage === 'method') {
        const step = decodeMethod(buffered, auth);
        if ('need' in step) return;
        if ('error' in step) return fail(step.error);
        buffered = buffered.subarray(step.used);
        upstream.write(encodeAuth(auth));
        stage = 'auth';
      }
      const step = decodeAuthReply(buffered);
      if ('need' in step) return;
      if ('error' in step) return fail(step.error);
      buffered = buffered.subarray(step.used);
      splice();
    };
    const splice = (): void => {
      done = true;
      clearTimeout(timer);
      upstream.off('data', onData);
      upstream.off('close', onEarlyClose);
      upstream.write(request.raw);
      if (early.length > 0) upstream.write(early);
      if (buffered.length > 0) client.write(buffered);
      stats.accepted++;
      stats.active++;
      let closed = 0;
      const onClosed = (): void => { if (++closed === 2) stats.active--; };
      // A clean close lets queued bytes drain (pipe already ended the other side); a failure cuts both.
      upstream.once('close', (hadError) => { onClosed(); if (hadError) client.destroy(); else client.end(); });
      client.once('close', (hadError) => { onClosed(); if (hadError) upstream.destroy(); else upstream.end(); });
      upstream.pipe(client);
      client.pipe(upstream);
      client.resume();
    };
    const onEarlyClose = (): void => fail('closed during the handshake');
    upstream.on('error', (e) => fail(e.message));
    upstream.on('close', onEarlyClose);
    upstream.on('data', onData);
    upstream.once('connect', () => upstream.write(encodeGreeting(auth)));
    client.once('close', () => { if (!done) { done = true; clearTimeout(timer); upstream.destroy(); } });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.listenAddress, port: options.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : options.port;
  return {
    address: options.listenAddress,
    port,
    stats,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
