/**
 * A Linux TUN device (IFF_TUN | IFF_NO_PI) for Node: raw IP packets in and out.
 *
 * A reader thread in the addon delivers packets in batches; writes go straight
 * to the fd from the JS thread. The device lives in the network namespace of
 * the process that opens it, and it is configured (addresses, routes, up) by
 * the caller, never here.
 */
import { createRequire } from 'node:module';

interface NativeBinding {
  open(name: string, mtu: number): { handle: object; name: string; fd: number };
  start(handle: object, cb: (data: Buffer, lengths: Buffer) => void): void;
  write(handle: object, packet: Uint8Array): number;
  close(handle: object): void;
}

let binding: NativeBinding | undefined;
function loadBinding(): NativeBinding {
  if (!binding) {
    const require = createRequire(import.meta.url);
    binding = require('../build/Release/tun_native.node') as NativeBinding;
  }
  return binding;
}

/** Options for {@link openTun}. */
export interface OpenTunOptions {
  /** Interface name; may contain `%d` for the kernel to pick a number. At most 15 bytes. */
  name: string;
  /** MTU to set on the interface; omitted or 0 leaves the kernel default (1500). */
  mtu?: number;
}

/** An open TUN device. */
export interface TunDevice {
  /** The interface name the kernel gave the device. */
  readonly name: string;
  /**
   * Writes one IP packet. Returns false when the kernel dropped it (queue full,
   * interface down), as a wire would; throws only on a closed or broken device.
   */
  write(packet: Uint8Array): boolean;
  /**
   * Starts delivery: cb receives each batch of packets read from the device.
   * The packets are views into one buffer per batch and stay valid after cb
   * returns. Call once.
   */
  onPackets(cb: (packets: Uint8Array[]) => void): void;
  /** Stops the reader and closes the fd. Idempotent. */
  close(): void;
}

/** Opens (creating if needed) the TUN device `name` in this process's network namespace. */
export function openTun(options: OpenTunOptions): TunDevice {
  const native = loadBinding();
  const opened = native.open(options.name, options.mtu ?? 0);
  const { handle } = opened;
  let closed = false;
  return {
    name: opened.name,
    write(packet: Uint8Array): boolean {
      if (closed) throw new Error(`TUN ${opened.name} is closed`);
      return native.write(handle, packet) >= 0;
    },
    onPackets(cb: (packets: Uint8Array[]) => void): void {
      native.start(handle, (data: Buffer, lengths: Buffer) => {
        const packets: Uint8Array[] = [];
        let offset = 0;
        for (let i = 0; i + 4 <= lengths.length; i += 4) {
          const length = lengths.readUInt32LE(i);
          packets.push(data.subarray(offset, offset + length));
          offset += length;
        }
        cb(packets);
      });
    },
    close(): void {
      if (closed) return;
      closed = true;
      native.close(handle);
    },
  };
}
