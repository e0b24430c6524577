// A small SOCKS5 server for tests: CONNECT only, optional username/password
// (recorded, like Tor's IsolateSOCKSAuth would use it), and a routing hook that
// sends every request to a local test server or answers an error code.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface SocksRequestRecord {
  host: string;
  port: number;
  atyp: number;
  username: string | undefined;
}

export interface TestSocksServer {
  port: number;
  requests: SocksRequestRecord[];
  close(): Promise<void>;
}

/** route() returns where to connect, or a SOCKS reply code to refuse with. */
export async function startTestSocksServer(
  route: (request: SocksRequestRecord) => { host: string; port: number } | number,
  options: { requireAuth?: boolean; host?: string } = {},
): Promise<TestSocksServer> {
  const requests: SocksRequestRecord[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    let buffer = Buffer.alloc(0);
    let stage: 'greeting' | 'auth' | 'request' = 'greeting';
    let username: string | undefined;
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (stage === 'greeting') {
          if (buffer.length < 2 || buffer.length < 2 + buffer[1]!) return;
          const methods = [...buffer.subarray(2, 2 + buffer[1]!)];
          buffer = buffer.subarray(2 + buffer[1]!);
          const method = options.requireAuth ? (methods.includes(2) ? 2 : 0xff) : methods.includes(0) ? 0 : methods.includes(2) ? 2 : 0xff;
          client.write(Buffer.from([5, method]));
          if (method === 0xff) return void client.end();
          stage = method === 2 ? 'auth' : 'request';
        } else if (stage === 'auth') {
          if (buffer.length < 2) return;
          const ulen = buffer[1]!;
          if (buffer.length < 3 + ulen || buffer.length < 3 + ulen + buffer[2 + ulen]!) return;
          const plen = buffer[2 + ulen]!;
          username = buffer.subarray(2, 2 + ulen).toString();
          buffer = buffer.subarray(3 + ulen + plen);
          client.write(Buffer.from([1, 0]));
          stage = 'request';
        } else {
          if (buffer.length < 5) return;
          const atyp = buffer[3]!;
          const addressLength = atyp === 1 ? 4 : atyp === 3 ? 1 + buffer[4]! : 16;
          if (buffer.length < 4 + addressLength + 2) return;
          const host = atyp === 1 ? [...buffer.subarray(4, 8)].join('.') : atyp === 3 ? buffer.subarray(5, 5 + buffer[4]!).toString() : 'ipv6';
          const port = buffer.readUInt16BE(4 + addressLength);
          const rest = buffer.subarray(4 + addressLength + 2);
          client.off('data', onData);
          client.pause();
          const record = { host, port, atyp, username };
          requests.push(record);
          const target = route(record);
          if (typeof target === 'number') {
            client.end(Buffer.from([5, target, 0, 1, 0, 0, 0, 0, 0, 0]));
            return;
          }
          const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
          sockets.add(upstream);
          upstream.on('close', () => sockets.delete(upstream));
          upstream.once('connect', () => {
            client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
            if (rest.length > 0) upstream.write(rest);
            client.pipe(upstream);
            upstream.pipe(client);
            client.resume();
          });
          upstream.on('error', () => {
            if (!upstream.readyState || upstream.connecting) client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
            else client.destroy();
          });
          client.on('error', () => upstream.destroy());
          return;
        }
      }
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    port: address.port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
