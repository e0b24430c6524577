// Test harness: a Netstack wired to a fake PacketIO, a manual clock and a dialer
// whose dials the test resolves or rejects by hand.
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.ts';
import { ipv4FromString, parseIpv4, IPPROTO_TCP } from '../../src/ipv4.ts';
import { Netstack, type NetstackOptions } from '../../src/netstack.ts';
import type { PacketIO } from '../../src/packet-io.ts';
import { ACK, buildTcpPacket, parseTcp, SYN, type TcpSegment } from '../../src/tcp-segment.ts';
import type { DialRequest, Dialer, Upstream, UpstreamHandlers } from '../../src/upstream.ts';

export const CLIENT = ipv4FromString('10.0.0.2');
export const SERVER = ipv4FromString('93.184.216.34');

export class FakeUpstream implements Upstream {
  written: Uint8Array[] = [];
  writableLength = 0;
  ended = false;
  destroyed = false;
  paused = false;
  handlers: UpstreamHandlers | undefined;
  write(data: Uint8Array): void {
    this.written.push(Uint8Array.from(data));
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  attach(handlers: UpstreamHandlers): void {
    this.handlers = handlers;
  }
  get received(): string {
    return Buffer.concat(this.written).toString();
  }
}

export interface PendingDial {
  request: DialRequest;
  signal: AbortSignal;
  resolve(upstream: Upstream): void;
  reject(error: Error): void;
}

export class FakeDialer implements Dialer {
  dials: PendingDial[] = [];
  dial(request: DialRequest, signal: AbortSignal): Promise<Upstream> {
    return new Promise((resolve, reject) => this.dials.push({ request, signal, resolve, reject }));
  }
}

export class FakeIO implements PacketIO {
  sent: Uint8Array[] = [];
  closed = false;
  onPackets(): void {}
  write(packet: Uint8Array): void {
    this.sent.push(packet);
  }
  close(): void {
    this.closed = true;
  }
  /** Takes and parses the TCP segments sent so far. */
  takeTcp(): (TcpSegment & { dst: number; src: number })[] {
    const out = [];
    for (const p of this.sent.splice(0)) {
      const ip = parseIpv4(p);
      if (!ip.ok || ip.value.protocol !== IPPROTO_TCP) throw new Error('expected an IPv4 TCP packet');
      const tcp = parseTcp(ip.value.payload, ip.value.src, ip.value.dst);
      if (!tcp.ok) throw new Error(`bad TCP from the stack: ${tcp.reason}`);
      out.push({ ...tcp.value, src: ip.value.src, dst: ip.value.dst });
    }
    return out;
  }
}

/** Lets queued microtasks and promise callbacks run. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export function makeStack(options: Partial<NetstackOptions> = {}) {
  const io = new FakeIO();
  const clock = new ManualClock();
  const dialer = new FakeDialer();
  const stack = new Netstack({ io, dialer, clock, ...options });
  return { io, clock, dialer, stack };
}

/** A client-side endpoint that builds segments toward SERVER:port. */
export class Client {
  seq: number;
  ack = 0;
  constructor(
    readonly stack: Netstack,
    readonly port: number,
    readonly serverPort = 80,
    isn = 1000,
    readonly server = SERVER,
  ) {
    this.seq = isn;
  }
  send(flags: number, payload?: Uint8Array, overrides: SegmentOverrides = {}): void {
    this.stack.input([this.packet(flags, payload, overrides)]);
  }
  /** Builds (without sending) one segment; for batches passed to stack.input() at once. */
  packet(flags: number, payload?: Uint8Array, overrides: SegmentOverrides = {}): Uint8Array {
    return buildTcpPacket({
      src: CLIENT,
      dst: this.server,
      srcPort: this.port,
      dstPort: this.serverPort,
      seq: overrides.seq ?? this.seq,
      ack: overrides.ack ?? this.ack,
      flags,
      window: overrides.window ?? 65535,
      mss: overrides.mss ?? (flags & SYN ? 1460 : undefined),
      wscale: flags & SYN ? overrides.wscale : undefined,
      sackPermitted: flags & SYN ? overrides.sackPermitted : undefined,
      sack: overrides.sack,
      payload,
    });
  }
}

export type SegmentOverrides = Partial<{ seq: number; ack: number; window: number; mss: number; wscale: number; sackPermitted: boolean; sack: [number, number][] }>;

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** SYN (with the given options) -> dial ok (to `upstream`) -> SYN-ACK -> ACK. */
export async function establishFlow<U extends FakeUpstream = FakeUpstream>(options: Parameters<typeof makeStack>[0] = {}, syn: SegmentOverrides = {}, ackWindow = syn.window ?? 65535, upstream: U = new FakeUpstream() as U) {
  const env = makeStack(options);
  const client = new Client(env.stack, 40000);
  client.send(SYN, undefined, syn);
  client.seq += 1;
  env.dialer.dials[0]!.resolve(upstream);
  await tick();
  const [synAck] = env.io.takeTcp();
  assert.ok(synAck && synAck.flags === (SYN | ACK));
  client.ack = (synAck.seq + 1) >>> 0;
  client.send(ACK, undefined, { window: ackWindow });
  await tick();
  return { ...env, client, upstream, synAck };
}
