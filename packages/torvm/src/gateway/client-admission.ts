/**
 * Who may use the LAN gateway: an allowlist of IPv4 subnets and a per-address
 * token bucket. PURE (the clock is injected), so both are unit tested exactly.
 */

/** An IPv4 address as an unsigned 32-bit number, or null if it is not one. Accepts `::ffff:a.b.c.d`. */
export function parseIPv4(address: string): number | null {
  const bare = address.startsWith('::ffff:') ? address.slice(7) : address;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(bare);
  if (!m) return null;
  let n = 0;
  for (const part of m.slice(1)) {
    const octet = Number(part);
    if (octet > 255 || (part.length > 1 && part.startsWith('0'))) return null;
    n = n * 256 + octet;
  }
  return n >>> 0;
}

interface Subnet {
  readonly network: number;
  readonly mask: number;
}

/** Answers "is this client address inside one of the allowed subnets?". Anything that is not IPv4 is outside. */
export class SubnetAllowlist {
  readonly #subnets: readonly Subnet[];

  /** Throws RangeError on a malformed CIDR (the config validated them already; this is defence in depth). */
  constructor(cidrs: readonly string[]) {
    this.#subnets = cidrs.map((cidr) => {
      const [address, bits] = cidr.split('/');
      const base = parseIPv4(address ?? '');
      const prefix = Number(bits);
      if (base === null || bits === undefined || !/^\d{1,2}$/.test(bits) || prefix > 32) throw new RangeError(`not an IPv4 CIDR: ${JSON.stringify(cidr)}`);
      const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
      return { network: (base & mask) >>> 0, mask };
    });
  }

  allows(address: string | undefined): boolean {
    const ip = address === undefined ? null : parseIPv4(address);
    if (ip === null) return false;
    return this.#subnets.some((s) => ((ip & s.mask) >>> 0) === s.network);
  }
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export interface RateLimiterOptions {
  /** Admissions per key per minute (the sustained rate and the burst). */
  perMinute: number;
  /** Milliseconds, monotonic. */
  now: () => number;
  /** Keys tracked at once; the least recently seen are forgotten beyond this (they start full again). */
  maxKeys?: number;
}

/**
 * A token bucket per key (client address): holds up to `perMinute` tokens,
 * refills at `perMinute` per 60 s, each admission takes one.
 */
export class RateLimiter {
  readonly #perMinute: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: RateLimiterOptions) {
    if (!(options.perMinute >= 1)) throw new RangeError('perMinute must be at least 1');
    this.#perMinute = options.perMinute;
    this.#now = options.now;
    this.#maxKeys = options.maxKeys ?? 4096;
  }

  /** Takes a token for `key`; false when its bucket is empty. */
  tryTake(key: string): boolean {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket) {
      this.#buckets.delete(key); // re-inserted below: Map order = recency
      bucket.tokens = Math.min(this.#perMinute, bucket.tokens + ((now - bucket.updatedAt) * this.#perMinute) / 60_000);
      bucket.updatedAt = now;
    } else {
      bucket = { tokens: this.#perMinute, updatedAt: now };
      if (this.#buckets.size >= this.#maxKeys) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
    }
    this.#buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}
