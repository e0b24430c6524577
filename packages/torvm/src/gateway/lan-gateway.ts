/**
 * The LAN gateway (off by default): lets other devices on the LAN use this
 * TorVM through SOCKS5 (username/password required) and DNS, on one LAN
 * address, only from the allowed subnets. The daemon starts it once Tor is
 * connected and the kill switch is in `connected` (which opens exactly these
 * ports from exactly these subnets), and stops it first on shutdown.
 */
import type { TorvmConfig } from '../core/config.ts';
import { TorvmError } from '../core/errors.ts';
import { createUdpDnsTransport } from '@torvm/netstack/dns-udp-transport.ts';
import { RateLimiter, SubnetAllowlist } from './client-admission.ts';
import { createCredentialChecker } from './credentials.ts';
import { startDnsGateway, type DnsGateway } from './dns-gateway.ts';
import { startSocksGateway, type GatewayLog, type SocksGateway } from './socks-gateway.ts';

export interface LanGateway {
  readonly socks: SocksGateway;
  readonly dns: DnsGateway;
  stop(): Promise<void>;
}

/** The parts of the config the gateway reads. */
export type LanGatewayConfig = Pick<TorvmConfig, 'lanGateway' | 'network' | 'tor'>;

/**
 * Starts the SOCKS5 server and the DNS forwarder on `lanGateway.listenAddress`.
 * Throws ERR_CONFIG_INVALID when the section is not usable (the schema already
 * refuses that when `enabled`), ERR_NETWORK when a port cannot be bound.
 */
export async function startLanGateway(config: LanGatewayConfig, log: GatewayLog): Promise<LanGateway> {
  const g = config.lanGateway;
  if (g.listenAddress === undefined || g.allowedSubnets.length === 0 || g.users.length === 0) {
    throw new TorvmError('ERR_CONFIG_INVALID', 'the LAN gateway needs listenAddress, allowedSubnets and at least one user');
  }
  const allowlist = new SubnetAllowlist(g.allowedSubnets);
  const now = () => performance.now();
  const credentials = createCredentialChecker(g.users);
  let socks: SocksGateway | null = null;
  try {
    socks = await startSocksGateway({
      listenAddress: g.listenAddress, port: g.socksPort,
      upstream: { host: config.network.vmAddress, port: config.tor.socksPort },
      allowlist, credentials, log,
      limiter: new RateLimiter({ perMinute: g.rateLimitPerMinute, now }),
    });
    const transport = await createUdpDnsTransport(config.network.vmAddress, config.tor.dnsPort);
    const dns = await startDnsGateway({
      listenAddress: g.listenAddress, port: g.dnsPort, transport, allowlist, log,
      limiter: new RateLimiter({ perMinute: g.rateLimitPerMinute, now }),
    }).catch((err: unknown) => { transport.close(); throw err; });
    log.info(`LAN gateway: SOCKS5 on ${g.listenAddress}:${socks.port} and DNS on ${g.listenAddress}:${dns.port} for ${g.allowedSubnets.join(', ')} (${g.users.length} user(s))`);
    const started = socks;
    return {
      socks: started, dns,
      async stop() {
        await Promise.allSettled([started.stop(), dns.stop()]);
        log.info('LAN gateway stopped');
      },
    };
  } catch (err) {
    await socks?.stop();
    if (err instanceof TorvmError) throw err;
    throw new TorvmError('ERR_NETWORK', `the LAN gateway could not start on ${g.listenAddress}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
