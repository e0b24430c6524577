/**
 * Entry point run inside the "internet" namespace (`ip netns exec NS node
 * --import tsx services-main.ts CONFIG_JSON`): starts the DNS and HTTP
 * servers, then prints one line "READY" on stdout. Stops on SIGTERM.
 */
import { startDnsServer, type DnsServerOptions } from './dns-server.ts';
import { startHttpServer, type HttpServerOptions } from './http-server.ts';

/** The JSON argument. */
export interface ServicesConfig {
  dns: DnsServerOptions;
  http: HttpServerOptions;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ServicesConfig;
const dns = await startDnsServer(config.dns);
const http = await startHttpServer(config.http);
process.on('SIGTERM', () => {
  dns.close();
  void http.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
process.stdout.write('READY\n');
