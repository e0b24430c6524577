/**
 * The boundary between the stack and a packet device. The stack reads whole IP
 * packets and writes whole IP packets; it does not care whether they come from
 * a TUN, a test harness or a fault injector.
 */
export interface PacketIO {
  /** Registers the one consumer of incoming packets (batches, in arrival order). */
  onPackets(cb: (packets: readonly Uint8Array[]) => void): void;
  /** Sends one packet. Loss is allowed (as on a wire); throwing is not. */
  write(packet: Uint8Array): void;
  /** Stops delivery and releases the device. Idempotent. */
  close(): void;
}

/** The part of a TUN device (e.g. `@torvm/tun-native`'s `openTun`) that {@link tunPacketIO} needs. */
export interface TunLike {
  write(packet: Uint8Array): boolean;
  onPackets(cb: (packets: Uint8Array[]) => void): void;
  close(): void;
}

/** Adapts a TUN device to {@link PacketIO}. Write failures count as loss. */
export function tunPacketIO(tun: TunLike): PacketIO & { readonly writeDrops: number } {
  let writeDrops = 0;
  return {
    get writeDrops() {
      return writeDrops;
    },
    onPackets(cb) {
      tun.onPackets(cb);
    },
    write(packet) {
      if (!tun.write(packet)) writeDrops++;
    },
    close() {
      tun.close();
    },
  };
}
