/**
 * Relays DNS queries seen on the TUN (UDP/53 to any address) to one upstream
 * resolver (Tor's DNSPort), and the replies back to whoever asked.
 *
 * Replies are never crossed: every relayed query gets a fresh transaction id
 * that is unique among those in flight, and a reply is accepted only if its id
 * is pending AND its question section is byte-for-byte the one sent. Entries
 * that get no reply expire after a timeout; the table is bounded.
 */
import type { Clock, TimerHandle } from './clock.ts';

/** Who asked: the client's address/port and the address/port it sent the query to. */
export interface DnsEndpoint {
  readonly clientIp: number;
  readonly clientPort: number;
  readonly serverIp: number;
  readonly serverPort: number;
}

/** A datagram channel to the upstream resolver. */
export interface DnsTransport {
  send(message: Uint8Array): void;
  onMessage(cb: (message: Uint8Array) => void): void;
  close(): void;
}

export interface DnsRelayOptions {
  transport: DnsTransport;
  clock: Clock;
  /** Sends a reply back to the client. */
  reply(message: Uint8Array, to: DnsEndpoint): void;
  timeoutMs?: number;
  /** In-flight queries beyond this are dropped (the client retries). */
  maxPending?: number;
  /** Source of 16-bit ids; random by default. */
  randomId?: () => number;
}

interface PendingQuery {
  originalId: number;
  endpoint: DnsEndpoint;
  question: Uint8Array;
  timer: TimerHandle;
}

/** Where the question section of a DNS message ends, or -1 if it is malformed. Never throws. */
export function questionSectionEnd(message: Uint8Array): number {
  if (message.length < 12) return -1;
  const count = (message[4]! << 8) | message[5]!;
  let offset = 12;
  for (let q = 0; q < count; q++) {
    for (let labels = 0; ; labels++) {
      if (labels > 128 || offset >= message.length) return -1;
      const length = message[offset]!;
      if (length === 0) {
        offset += 1;
        break;
      }
      if ((length & 0xc0) === 0xc0) {
        offset += 2;
        break;
      }
      if (length & 0xc0) return -1;
      offset += 1 + length;
    }
    offset += 4; // QTYPE, QCLASS
    if (offset > message.length) return -1;
  }
  return offset;
}

function randomId(): number {
  return crypto.getRandomValues(new Uint16Array(1))[0]!;
}

export class DnsRelay {
  readonly #options: DnsRelayOptions;
  readonly #pending = new Map<number, PendingQuery>();
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  readonly #randomId: () => number;
  /** Counters, for logs and tests. */
  readonly stats = { relayed: 0, answered: 0, dropped: 0, expired: 0, mismatched: 0 };

  constructor(options: DnsRelayOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#maxPending = Math.min(options.maxPending ?? 4096, 32_768);
    this.#randomId = options.randomId ?? randomId;
    options.transport.onMessage((message) => this.#onReply(message));
  }

  /** Queries in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Relays one query. Returns false when it was dropped (malformed, not a query, table full). */
  query(message: Uint8Array, from: DnsEndpoint): boolean {
    const end = questionSectionEnd(message);
    const isQuery = message.length >= 12 && (message[2]! & 0x80) === 0;
    if (end < 0 || !isQuery || this.#pending.size >= this.#maxPending) {
      this.stats.dropped++;
      return false;
    }
    let id = this.#randomId() & 0xffff;
    while (this.#pending.has(id)) id = (id + 1) & 0xffff;
    const relayed = Uint8Array.from(message);
    relayed[0] = id >>> 8;
    relayed[1] = id & 0xff;
    const timer = this.#options.clock.setTimer(this.#timeoutMs, () => {
      if (this.#pending.get(id)?.timer === timer) {
        this.#pending.delete(id);
        this.stats.expired++;
      }
    });
    this.#pending.set(id, {
      originalId: (message[0]! << 8) | message[1]!,
      endpoint: from,
      question: questionOf(message, end),
      timer,
    });
    this.stats.relayed++;
    this.#options.transport.send(relayed);
    return true;
  }

  #onReply(message: Uint8Array): void {
    if (message.length < 12 || (message[2]! & 0x80) === 0) {
      this.stats.mismatched++;
      return;
    }
    const id = (message[0]! << 8) | message[1]!;
    const pending = this.#pending.get(id);
    const end = questionSectionEnd(message);
    if (!pending || end < 0 || !sameBytes(questionOf(message, end), pending.question)) {
      this.stats.mismatched++;
      return;
    }
    this.#pending.delete(id);
    pending.timer.cancel();
    const reply = Uint8Array.from(message);
    reply[0] = pending.originalId >>> 8;
    reply[1] = pending.originalId & 0xff;
    this.stats.answered++;
    this.#options.reply(reply, pending.endpoint);
  }

  /** Forgets every pending query and closes the transport. */
  close(): void {
    for (const pending of this.#pending.values()) pending.timer.cancel();
    this.#pending.clear();
    this.#options.transport.close();
  }
}

/** QDCOUNT and the question section: what a reply must echo exactly. */
function questionOf(message: Uint8Array, end: number): Uint8Array {
  const out = new Uint8Array(2 + end - 12);
  out[0] = message[4]!;
  out[1] = message[5]!;
  out.set(message.subarray(12, end), 2);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
