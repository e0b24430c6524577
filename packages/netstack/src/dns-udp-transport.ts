/** A {@link DnsTransport} over a connected UDP socket (node:dgram): replies are accepted from the upstream only. */
import { createSocket } from 'node:dgram';
import type { DnsTransport } from './dns-relay.ts';

/** Opens a UDP socket connected to host:port. Resolves once it can send. */
export async function createUdpDnsTransport(host: string, port: number): Promise<DnsTransport> {
  const socket = createSocket({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.unref();
  // A transient error (e.g. ECONNREFUSED from an ICMP) must not crash the process; queries just time out.
  socket.on('error', () => {});
  return {
    send: (message) => socket.send(message),
    onMessage: (cb) => void socket.on('message', (message) => cb(message)),
    close: () => {
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  };
}
