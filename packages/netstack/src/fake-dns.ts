/**
 * Fake-IP DNS ("MapDNS"): A queries are answered at once with an address from
 * a private pool (198.18.0.0/15 by default, RFC 2544 benchmarking space); a
 * later TCP connection to that address is dialed by hostname, so the name is
 * resolved by Tor's exit and never on this machine. AAAA gets NOERROR with no
 * answers (IPv6 is black-holed), so clients fall back to IPv4 at once.
 */
import dnsPacket from 'dns-packet';
import { ipv4FromString } from './ipv4.ts';

export interface FakeDnsPoolOptions {
  /** Pool network, e.g. "198.18.0.0". */
  network?: string;
  prefixLength?: number;
}

/** A bidirectional hostname <-> address map over a fixed pool; the least recently used entry is reused when full. */
export class FakeDnsPool {
  readonly #base: number;
  readonly #size: number;
  #nextOffset = 1; // skip the network address
  readonly #byName = new Map<string, number>(); // insertion order = recency
  readonly #byAddress = new Map<number, string>();

  constructor(options: FakeDnsPoolOptions = {}) {
    const prefixLength = options.prefixLength ?? 15;
    if (prefixLength < 8 || prefixLength > 30) throw new RangeError('fake DNS pool prefix must be /8-/30');
    this.#size = 2 ** (32 - prefixLength);
    const mask = (0xffffffff << (32 - prefixLength)) >>> 0;
    this.#base = (ipv4FromString(options.network ?? '198.18.0.0') & mask) >>> 0;
  }

  /** True when the address lies in the pool. */
  contains(address: number): boolean {
    return address >>> 0 >= this.#base && address >>> 0 < this.#base + this.#size;
  }

  /** The address for a hostname, allocating (or reusing the least recently used) one. */
  addressFor(hostname: string): number {
    const name = normalize(hostname);
    const existing = this.#byName.get(name);
    if (existing !== undefined) {
      this.#byName.delete(name);
      this.#byName.set(name, existing);
      return existing;
    }
    let address: number;
    if (this.#nextOffset < this.#size - 1) {
      address = (this.#base + this.#nextOffset++) >>> 0;
    } else {
      const [oldName, oldAddress] = this.#byName.entries().next().value as [string, number];
      this.#byName.delete(oldName);
      address = oldAddress;
    }
    this.#byName.set(name, address);
    this.#byAddress.set(address, name);
    return address;
  }

  /** The hostname an address was handed out for, if it is still mapped. */
  hostnameFor(address: number): string | undefined {
    const name = this.#byAddress.get(address >>> 0);
    return name !== undefined && this.#byName.get(name) === address >>> 0 ? name : undefined;
  }

  /** Mapped names. */
  get size(): number {
    return this.#byName.size;
  }
}

function normalize(hostname: string): string {
  return hostname.toLowerCase().replace(/\.$/, '');
}

/**
 * Answers a query from the pool when it can: A -> a fake address, AAAA ->
 * NOERROR/empty. Returns undefined for anything else (relay it), and for
 * malformed input. Never throws.
 */
export function answerFromFakeDns(query: Uint8Array, pool: FakeDnsPool, ttlSeconds = 60): Uint8Array | undefined {
  let decoded: dnsPacket.Packet;
  try {
    decoded = dnsPacket.decode(Buffer.from(query.buffer, query.byteOffset, query.length));
  } catch {
    return undefined;
  }
  const question = decoded.questions?.[0];
  if (decoded.type !== 'query' || decoded.questions?.length !== 1 || !question || question.class !== 'IN') return undefined;
  if (question.type !== 'A' && question.type !== 'AAAA') return undefined;
  const name = question.name;
  if (name.length === 0 || name.length > 253) return undefined;
  const answers: dnsPacket.Answer[] = [];
  if (question.type === 'A') {
    const address = pool.addressFor(name);
    const text = `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
    answers.push({ type: 'A', class: 'IN', name, ttl: ttlSeconds, data: text });
  }
  const recursionDesired = (decoded.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
  return dnsPacket.encode({
    type: 'response',
    id: decoded.id ?? 0,
    flags: recursionDesired | dnsPacket.RECURSION_AVAILABLE,
    questions: [question],
    answers,
  });
}

/** A minimal error response (e.g. NOTIMP when nothing can relay the query). Undefined for malformed input. */
export function dnsErrorResponse(query: Uint8Array, rcode: number): Uint8Array | undefined {
  if (query.length < 12) return undefined;
  const out = Uint8Array.from(query.subarray(0, 12));
  out[2] = 0x80 | (query[2]! & 0x79); // QR, keep opcode and RD
  out[3] = 0x80 | (rcode & 0x0f); // RA
  // No sections: the question is dropped rather than parsed (it may be malformed).
  out.fill(0, 4, 12);
  return out;
}
