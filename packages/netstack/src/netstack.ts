/**
 * The tun2socks engine: IP packets in from a {@link PacketIO}, one upstream
 * stream per TCP flow through an injected {@link Dialer}, DNS relayed or
 * answered from a fake pool, and everything else dropped:
 *
 *   IPv4 TCP      -> a passive-open flow per 4-tuple, to ANY destination
 *   IPv4 UDP/53   -> fake DNS (A/AAAA) or the DNS relay; NOTIMP if neither can answer
 *   IPv4 other    -> dropped (other UDP, ICMP including echo, fragments)
 *   IPv6          -> black-holed with fast failure (see ipv6-blackhole.ts)
 *
 * Pure: no fs/net/process access here; time comes from the injected clock.
 */
import { systemClock, type Clock } from './clock.ts';
import { DnsRelay, type DnsEndpoint, type DnsTransport } from './dns-relay.ts';
import { answerFromFakeDns, dnsErrorResponse, type FakeDnsPool } from './fake-dns.ts';
import { answerIpv6 } from './ipv6-blackhole.ts';
import { IPPROTO_TCP, IPPROTO_UDP, ipv4ToString, parseIpv4 } from './ipv4.ts';
import type { PacketIO } from './packet-io.ts';
import { DEFAULT_TCP_CONFIG, TcpFlow, type FlowHost, type FlowKey, type TcpConfig } from './tcp-flow.ts';
import { ACK, FIN, RST, SYN, buildTcpPacket, parseTcp, seq, type TcpSegment } from './tcp-segment.ts';
import { buildUdpPacket, parseUdp } from './udp.ts';
import type { Dialer } from './upstream.ts';

const DNS_NOTIMP = 4;

export interface NetstackOptions {
  io: PacketIO;
  dialer: Dialer;
  clock?: Clock;
  /** Interface MTU; the MSS is MTU - 40. Default 1500. */
  mtu?: number;
  tcp?: Partial<Omit<TcpConfig, 'mss'>>;
  /** Open flows (including connecting ones) beyond this are refused with RST. */
  maxFlows?: number;
  dns?: {
    /** Upstream resolver for relayed queries (Tor's DNSPort). */
    transport?: DnsTransport;
    /** Fake-IP mode: A/AAAA answered locally, TCP to pool addresses dialed by hostname. */
    fakePool?: FakeDnsPool;
    fakeTtlSeconds?: number;
    timeoutMs?: number;
    maxPending?: number;
  };
  /** Called for flow-level events (opened, refused, closed); for logs. Must not throw. */
  onEvent?: (event: NetstackEvent) => void;
}

export type NetstackEvent =
  | { type: 'flow-open'; src: string; dst: string; host: string }
  | { type: 'flow-refused'; src: string; dst: string; reason: string }
  | { type: 'flow-closed'; src: string; dst: string; reason: string | undefined };

export interface NetstackStats {
  packetsIn: number;
  packetsOut: number;
  flowsOpened: number;
  flowsRefused: number;
  /** Dropped input packets by reason. */
  drops: Record<string, number>;
}

function randomIss(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

export class Netstack {
  readonly stats: NetstackStats = { packetsIn: 0, packetsOut: 0, flowsOpened: 0, flowsRefused: 0, drops: {} };
  readonly #io: PacketIO;
  readonly #dialer: Dialer;
  readonly #flows = new Map<string, TcpFlow>();
  readonly #maxFlows: number;
  readonly #fakePool: FakeDnsPool | undefined;
  readonly #fakeTtl: number;
  readonly #relay: DnsRelay | undefined;
  readonly #onEvent: (event: NetstackEvent) => void;
  readonly #host: FlowHost;
  #dirty = new Set<TcpFlow>();
  #flushQueued = false;
  #closed = false;

  constructor(options: NetstackOptions) {
    this.#io = options.io;
    this.#dialer = options.dialer;
    this.#maxFlows = options.maxFlows ?? 16_384;
    this.#fakePool = options.dns?.fakePool;
    this.#fakeTtl = options.dns?.fakeTtlSeconds ?? 60;
    this.#onEvent = options.onEvent ?? (() => {});
    const clock = options.clock ?? systemClock;
    const mtu = options.mtu ?? 1500;
    const config: TcpConfig = { ...DEFAULT_TCP_CONFIG, ...options.tcp, mss: Math.max(536, mtu - 40) };
    this.#host = {
      clock,
      config,
      send: (packet) => this.#send(packet),
      scheduleOutput: (flow) => this.#schedule(flow),
      closed: (flow) => this.#forget(flow),
      randomIss,
    };
    const transport = options.dns?.transport;
    if (transport) {
      this.#relay = new DnsRelay({
        transport,
        clock,
        timeoutMs: options.dns?.timeoutMs,
        maxPending: options.dns?.maxPending,
        reply: (message, to) => this.#sendDns(message, to),
      });
    }
  }

  /** Starts reading packets from the PacketIO. */
  start(): void {
    this.#io.onPackets((packets) => this.input(packets));
  }

  /** Open flows, in any state. */
  get flowCount(): number {
    return this.#flows.size;
  }

  /** DNS queries waiting for the upstream. */
  get dnsPending(): number {
    return this.#relay?.pending ?? 0;
  }

  /** Handles a batch of packets from the device; output is flushed once after the batch. */
  input(packets: readonly Uint8Array[]): void {
    if (this.#closed) return;
    for (const packet of packets) {
      this.stats.packetsIn++;
      this.#inputOne(packet);
    }
  }

  /** Resets every flow, stops DNS and closes the device. */
  close(): void {
    if (this.#closed) return;
    for (const flow of [...this.#flows.values()]) flow.abort('stack closed');
    this.#closed = true;
    this.#relay?.close();
    this.#io.close();
  }

  #drop(reason: string): void {
    this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + 1;
  }

  #send(packet: Uint8Array): void {
    if (this.#closed) return;
    this.stats.packetsOut++;
    this.#io.write(packet);
  }

  #inputOne(packet: Uint8Array): void {
    const version = packet.length > 0 ? packet[0]! >> 4 : 0;
    if (version === 6) {
      const answer = answerIpv6(packet);
      if (answer) this.#send(answer);
      this.#drop('ipv6');
      return;
    }
    const ip = parseIpv4(packet);
    if (!ip.ok) return this.#drop(ip.reason);
    if (ip.value.isFragment) return this.#drop('ipv4: fragment');
    const { src, dst, payload, protocol } = ip.value;
    if (protocol === IPPROTO_TCP) {
      const tcp = parseTcp(payload, src, dst);
      if (!tcp.ok) return this.#drop(tcp.reason);
      this.#inputTcp(src, dst, tcp.value);
    } else if (protocol === IPPROTO_UDP) {
      const udp = parseUdp(payload, src, dst);
      if (!udp.ok) return this.#drop(udp.reason);
      if (udp.value.dstPort !== 53) return this.#drop('udp: not DNS');
      this.#inputDns(udp.value.payload, { clientIp: src, clientPort: udp.value.srcPort, serverIp: dst, serverPort: 53 });
    } else {
      this.#drop(`ipv4: protocol ${protocol}`);
    }
  }

  #inputTcp(src: number, dst: number, segment: TcpSegment): void {
    const id = `${src}:${segment.srcPort}>${dst}:${segment.dstPort}`;
    const existing = this.#flows.get(id);
    const isSyn = (segment.flags & (SYN | ACK | RST | FIN)) === SYN;
    if (existing && !(isSyn && existing.state === 'time-wait')) {
      existing.input(segment);
      return;
    }
    existing?.abort('4-tuple reused after TIME-WAIT');
    if (!isSyn) {
      if (!(segment.flags & RST)) this.#sendResetFor(src, dst, segment);
      return this.#drop('tcp: no flow');
    }
    const key: FlowKey = { clientIp: src, clientPort: segment.srcPort, serverIp: dst, serverPort: segment.dstPort };
    const srcText = `${ipv4ToString(src)}:${segment.srcPort}`;
    const dstText = `${ipv4ToString(dst)}:${segment.dstPort}`;
    const refuse = (reason: string): void => {
      this.stats.flowsRefused++;
      this.#sendResetFor(src, dst, segment);
      this.#onEvent({ type: 'flow-refused', src: srcText, dst: dstText, reason });
    };
    if (dst >>> 28 >= 14 || dst === 0 || segment.dstPort === 0) return this.#drop('tcp: bad destination');
    if (this.#flows.size >= this.#maxFlows) return refuse('too many flows');
    let hostname: string | undefined;
    if (this.#fakePool?.contains(dst)) {
      hostname = this.#fakePool.hostnameFor(dst);
      if (hostname === undefined) return refuse('fake address with no mapping');
    }
    const flow = new TcpFlow(this.#host, key, segment);
    this.#flows.set(id, flow);
    this.stats.flowsOpened++;
    const host = hostname ?? ipv4ToString(dst);
    this.#onEvent({ type: 'flow-open', src: srcText, dst: dstText, host });
    this.#dialer
      .dial({ host, port: segment.dstPort, dstIp: ipv4ToString(dst), hostname, srcIp: ipv4ToString(src), srcPort: segment.srcPort }, flow.dialSignal)
      .then(
        (upstream) => {
          if (this.#closed) upstream.destroy();
          else flow.connected(upstream);
        },
        (error: unknown) => {
          if (flow.state !== 'connecting') return;
          this.stats.flowsRefused++;
          const reason = error instanceof Error ? error.message : String(error);
          this.#onEvent({ type: 'flow-refused', src: srcText, dst: dstText, reason });
          flow.connectFailed(reason);
        },
      );
  }

  /** RST for a segment that belongs to no flow (RFC 9293 §3.10.7.1). */
  #sendResetFor(src: number, dst: number, segment: TcpSegment): void {
    const hasAck = (segment.flags & ACK) !== 0;
    const segLen = segment.payload.length + (segment.flags & SYN ? 1 : 0) + (segment.flags & FIN ? 1 : 0);
    this.#send(
      buildTcpPacket({
        src: dst,
        dst: src,
        srcPort: segment.dstPort,
        dstPort: segment.srcPort,
        seq: hasAck ? segment.ack : 0,
        ack: hasAck ? 0 : seq.add(segment.seq, segLen),
        flags: hasAck ? RST : RST | ACK,
        window: 0,
      }),
    );
  }

  #inputDns(message: Uint8Array, from: DnsEndpoint): void {
    if (this.#fakePool) {
      const answer = answerFromFakeDns(message, this.#fakePool, this.#fakeTtl);
      if (answer) return this.#sendDns(answer, from);
    }
    if (this.#relay) {
      if (!this.#relay.query(message, from)) this.#drop('dns: not relayed');
      return;
    }
    const refusal = dnsErrorResponse(message, DNS_NOTIMP);
    if (refusal) this.#sendDns(refusal, from);
  }

  #sendDns(message: Uint8Array, to: DnsEndpoint): void {
    this.#send(buildUdpPacket(to.serverIp, to.clientIp, to.serverPort, to.clientPort, message));
  }

  #schedule(flow: TcpFlow): void {
    this.#dirty.add(flow);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      const dirty = this.#dirty;
      this.#dirty = new Set();
      for (const f of dirty) if (!f.isClosed) f.output();
    });
  }

  #forget(flow: TcpFlow): void {
    const { clientIp, clientPort, serverIp, serverPort } = flow.key;
    const id = `${clientIp}:${clientPort}>${serverIp}:${serverPort}`;
    if (this.#flows.get(id) === flow) this.#flows.delete(id);
    this.#dirty.delete(flow);
    this.#onEvent({
      type: 'flow-closed',
      src: `${ipv4ToString(clientIp)}:${clientPort}`,
      dst: `${ipv4ToString(serverIp)}:${serverPort}`,
      reason: flow.resetReason,
    });
  }
}
