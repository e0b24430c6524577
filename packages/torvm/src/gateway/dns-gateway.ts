/**
 * The LAN gateway's DNS forwarder: UDP on the listen address, relayed to the
 * VM's DNSPort. Each query gets a fresh transaction id unique among those in
 * flight and a reply must echo the question exactly (netstack's DnsRelay), so
 * two clients that pick the same id never receive each other's answers.
 * Queries from outside allowedSubnets, or over the rate limit, are dropped.
 */
import { createSocket, type Socket } from 'node:dgram';
import { DnsRelay, type DnsTransport } from '@torvm/netstack/dns-relay.ts';
import { systemClock, type Clock } from '@torvm/netstack/clock.ts';
import { parseIPv4, type RateLimiter, type SubnetAllowlist } from './client-admission.ts';
import type { GatewayLog } from './socks-gateway.ts';

export interface DnsGatewayOptions {
  listenAddress: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** The channel to the VM's DNSPort. */
  transport: DnsTransport;
  allowlist: SubnetAllowlist;
  limiter: RateLimiter;
  log: GatewayLog;
  clock?: Clock;
  timeoutMs?: number;
}

export interface DnsGatewayStats {
  refusedSubnet: number;
  refusedRate: number;
}

export interface DnsGateway {
  readonly address: string;
  readonly port: number;
  readonly stats: Readonly<DnsGatewayStats>;
  readonly relay: DnsRelay;
  stop(): Promise<void>;
}

const ipString = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

export async function startDnsGateway(options: DnsGatewayOptions): Promise<DnsGateway> {
  const socket: Socket = createSocket({ type: 'udp4' });
  const stats: DnsGatewayStats = { refusedSubnet: 0, refusedRate: 0 };
  let warnedSubnet = false;
  const relay = new DnsRelay({
    transport: options.transport,
    clock: options.clock ?? systemClock,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    reply: (message, to) => socket.send(message, to.clientPort, ipString(to.clientIp)),
  });
  socket.on('message', (message, rinfo) => {
    if (!options.allowlist.allows(rinfo.address)) {
      stats.refusedSubnet++;
      if (!warnedSubnet) options.log.warn(`LAN gateway: dropped DNS from ${rinfo.address} (not in allowedSubnets); further drops are only counted`);
      warnedSubnet = true;
      return;
    }
    if (!options.limiter.tryTake(rinfo.address)) {
      stats.refusedRate++;
      return;
    }
    const clientIp = parseIPv4(rinfo.address);
    if (clientIp === null) return;
    relay.query(message, { clientIp, clientPort: rinfo.port, serverIp: 0, serverPort: 0 });
  });
  socket.on('error', (e) => options.log.warn(`LAN gateway DNS socket: ${e.message}`));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: options.listenAddress, port: options.port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    address: options.listenAddress,
    port: socket.address().port,
    stats,
    relay,
    async stop() {
      relay.close();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}
