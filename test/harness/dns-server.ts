/**
 * A tiny authoritative DNS server (UDP) for the test "internet": it answers A
 * queries from a fixed table, NXDOMAIN otherwise, and logs every query with
 * the asker's address, so a test can tell the exit's lookups from a leak by
 * the user's computer.
 */
import { createSocket } from 'node:dgram';
import { appendFileSync } from 'node:fs';
import { decode, encode, type Answer } from 'dns-packet';

export interface DnsServerOptions {
  address: string;
  port: number;
  /** Lower-case name -> IPv4 addresses. */
  records: Readonly<Record<string, readonly string[]>>;
  /** One JSON line (DnsQueryLog) per query is appended here. */
  logFile: string;
}

/** One logged query. */
export interface DnsQueryLog {
  time: string;
  peer: string;
  peerPort: number;
  name: string;
  type: string;
  answers: string[];
}

/** Builds the response to one query packet (pure, unit-testable). */
export function answerQuery(query: Buffer, records: DnsServerOptions['records']): { response: Buffer; log: Omit<DnsQueryLog, 'time' | 'peer' | 'peerPort'> } {
  const packet = decode(query);
  const question = packet.questions?.[0];
  const name = (question?.name ?? '').toLowerCase().replace(/\.$/, '');
  const known = records[name];
  const addresses = question?.type === 'A' && known ? known : [];
  const answers: Answer[] = addresses.map((data) => ({ name: question?.name ?? name, type: 'A', class: 'IN', ttl: 60, data }));
  const response = encode({
    id: packet.id ?? 0,
    type: 'response',
    flags: (known ? 0 : 3) | 0x0400 | ((packet.flags ?? 0) & 0x0100), // rcode NXDOMAIN when unknown; AA; copy RD
    questions: packet.questions ?? [],
    answers,
  });
  return { response, log: { name, type: question?.type ?? '?', answers: [...addresses] } };
}

/** Starts the server; resolves once it is bound. */
export function startDnsServer(opts: DnsServerOptions): Promise<{ close: () => void }> {
  const socket = createSocket('udp4');
  socket.on('message', (message, peer) => {
    try {
      const { response, log } = answerQuery(message, opts.records);
      const entry: DnsQueryLog = { time: new Date().toISOString(), peer: peer.address, peerPort: peer.port, ...log };
      appendFileSync(opts.logFile, `${JSON.stringify(entry)}\n`);
      socket.send(response, peer.port, peer.address);
    } catch {
      // Malformed packets are dropped, as a real server would.
    }
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(opts.port, opts.address, () => resolve({ close: () => socket.close() }));
  });
}
