/**
 * A {@link PacketIO} wrapper that damages traffic in both directions, for tests
 * and benchmarks: drops, duplicates and reorders a fraction of the packets.
 * A reordered packet is held back and sent after the next one (or after 1 ms
 * if no next one comes).
 */
import type { PacketIO } from './packet-io.ts';

export interface FaultOptions {
  /** Fractions in [0, 1], applied independently per packet and direction. */
  drop: number;
  duplicate: number;
  reorder: number;
  /** Random source in [0, 1); Math.random by default. */
  random?: () => number;
}

export interface FaultStats {
  dropped: number;
  duplicated: number;
  reordered: number;
}

class Damager {
  readonly stats: FaultStats = { dropped: 0, duplicated: 0, reordered: 0 };
  #held: Uint8Array | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  constructor(
    private readonly options: FaultOptions,
    private readonly random: () => number,
    private readonly emit: (packets: Uint8Array[]) => void,
  ) {}

  pass(packets: readonly Uint8Array[]): void {
    const out: Uint8Array[] = [];
    for (const packet of packets) {
      if (this.random() < this.options.drop) {
        this.stats.dropped++;
        continue;
      }
      if (!this.#held && this.random() < this.options.reorder) {
        this.stats.reordered++;
        this.#held = packet;
        this.#timer = setTimeout(() => this.#release(), 1);
        continue;
      }
      out.push(packet);
      if (this.random() < this.options.duplicate) {
        this.stats.duplicated++;
        out.push(packet);
      }
      if (this.#held) {
        clearTimeout(this.#timer);
        out.push(this.#held);
        this.#held = undefined;
      }
    }
    if (out.length > 0) this.emit(out);
  }

  #release(): void {
    const held = this.#held;
    this.#held = undefined;
    if (held) this.emit([held]);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#held = undefined;
  }
}

/** Wraps io so that both directions suffer the configured faults. */
export function faultyPacketIO(io: PacketIO, options: FaultOptions): PacketIO & { readonly stats: { in: FaultStats; out: FaultStats } } {
  const random = options.random ?? Math.random;
  let consumer: ((packets: readonly Uint8Array[]) => void) | undefined;
  const inbound = new Damager(options, random, (packets) => consumer?.(packets));
  const outbound = new Damager(options, random, (packets) => {
    for (const p of packets) io.write(p);
  });
  return {
    stats: { in: inbound.stats, out: outbound.stats },
    onPackets(cb) {
      consumer = cb;
      io.onPackets((packets) => inbound.pass(packets));
    },
    write(packet) {
      outbound.pass([packet]);
    },
    close() {
      inbound.stop();
      outbound.stop();
      io.close();
    },
  };
}
