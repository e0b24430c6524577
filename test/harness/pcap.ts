/**
 * Packet capture for leak tests: run tcpdump inside a namespace (stopped by
 * pid), and a hand-written classic-pcap reader (Ethernet, Linux cooked v1/v2,
 * raw IP; IPv4/IPv6; TCP/UDP/ICMP/ICMPv6) that groups packets into flows.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { killPid } from './netns.ts';
import { waitFor } from './wait.ts';

// ---------------------------------------------------------------- capture

export interface CaptureOptions {
  netns: string;
  iface: string;
  /** Output file; tcpdump writes it packet by packet (-U). */
  file: string;
  /** Optional BPF filter words, e.g. ['not', 'arp']. */
  filter?: readonly string[];
  /** Bound on waiting for tcpdump to start listening. Default 10 s. */
  timeoutMs?: number;
}

export interface Capture {
  readonly file: string;
  readonly pid: number;
  /** Stops tcpdump by pid (it flushes on SIGTERM) and returns the decoded capture. */
  stop(): Promise<PcapFile>;
}

/** Starts tcpdump; resolves once it reports that it is listening. */
export async function startCapture(opts: CaptureOptions): Promise<Capture> {
  const args = ['netns', 'exec', opts.netns, 'tcpdump', '-i', opts.iface, '-w', opts.file, '-U', '--immediate-mode', '-n', '-s', '0', '-Z', 'root', ...(opts.filter ?? [])];
  const child = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('error', (e) => (stderr += String(e)));
  const pid = child.pid ?? -1;
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`tcpdump exited: ${stderr.trim()}`);
        return stderr.includes('listening on');
      },
      { timeoutMs: opts.timeoutMs ?? 10_000, what: `tcpdump on ${opts.netns}/${opts.iface}`, intervalMs: 20, diagnose: () => stderr },
    );
  } catch (error) {
    if (pid > 0) await killPid(pid);
    throw error;
  }
  return {
    file: opts.file,
    pid,
    async stop() {
      if (child.exitCode === null && pid > 0) await killPid(pid);
      await exited;
      return readPcapFile(opts.file);
    },
  };
}

// ---------------------------------------------------------------- reader

export type Protocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | `ip-proto-${number}`;

/** One IP packet. Ports are set for TCP/UDP; icmpType/icmpCode for ICMP(v6). */
export interface IpPacket {
  /** Seconds since the epoch (fractional). */
  time: number;
  ipVersion: 4 | 6;
  src: string;
  dst: string;
  protocol: Protocol;
  srcPort?: number;
  dstPort?: number;
  /** TCP flag byte (FIN=1, SYN=2, RST=4, PSH=8, ACK=16). */
  tcpFlags?: number;
  icmpType?: number;
  icmpCode?: number;
  /** Original length on the wire. */
  length: number;
}

export interface PcapFile {
  linkType: number;
  packets: IpPacket[];
  /** Frames that are not IP (ARP, LLDP, ...), counted by EtherType. */
  nonIp: Map<number, number>;
}

export const LINKTYPE = { NULL: 0, ETHERNET: 1, RAW: 101, LINUX_SLL: 113, LINUX_SLL2: 276 } as const;

export function readPcapFile(path: string): PcapFile {
  return readPcap(readFileSync(path));
}

/** Parses a classic pcap file (either byte order, micro- or nanosecond timestamps). Throws on a bad header. */
export function readPcap(buf: Buffer): PcapFile {
  if (buf.length < 24) throw new Error('pcap: file shorter than its global header');
  const magicLE = buf.readUInt32LE(0);
  let little: boolean;
  let nano: boolean;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) [little, nano] = [true, magicLE === 0xa1b23c4d];
  else if (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d) [little, nano] = [false, buf.readUInt32BE(0) === 0xa1b23c4d];
  else throw new Error(`pcap: bad magic 0x${magicLE.toString(16)} (pcapng is not supported)`);
  const u32 = (o: number): number => (little ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20) & 0x0fffffff;
  const result: PcapFile = { linkType, packets: [], nonIp: new Map() };
  let offset = 24;
  while (offset + 16 <= buf.length) {
    const seconds = u32(offset);
    const fraction = u32(offset + 4);
    const captured = u32(offset + 8);
    const original = u32(offset + 12);
    const start = offset + 16;
    if (start + captured > buf.length) break; // truncated last record (capture stopped mid-write)
    const frame = buf.subarray(start, start + captured);
    offset = start + captured;
    const time = seconds + fraction / (nano ? 1e9 : 1e6);
    const l3 = linkPayload(frame, linkType);
    if (!l3) continue;
    if (l3.etherType !== 0x0800 && l3.etherType !== 0x86dd) {
      result.nonIp.set(l3.etherType, (result.nonIp.get(l3.etherType) ?? 0) + 1);
      continue;
    }
    const packet = parseIp(l3.payload, time, original - (captured - l3.payload.length));
    if (packet) result.packets.push(packet);
  }
  return result;
}

/** Strips the link-layer header; returns the EtherType and the network-layer bytes. */
function linkPayload(frame: Buffer, linkType: number): { etherType: number; payload: Buffer } | undefined {
  switch (linkType) {
    case LINKTYPE.ETHERNET: {
      if (frame.length < 14) return undefined;
      let etherType = frame.readUInt16BE(12);
      let at = 14;
      while ((etherType === 0x8100 || etherType === 0x88a8) && frame.length >= at + 4) {
        etherType = frame.readUInt16BE(at + 2);
        at += 4;
      }
      return { etherType, payload: frame.subarray(at) };
    }
    case LINKTYPE.LINUX_SLL:
      return frame.length < 16 ? undefined : { etherType: frame.readUInt16BE(14), payload: frame.subarray(16) };
    case LINKTYPE.LINUX_SLL2:
      return frame.length < 20 ? undefined : { etherType: frame.readUInt16BE(0), payload: frame.subarray(20) };
    case LINKTYPE.RAW:
    case LINKTYPE.NULL: {
      const ip = linkType === LINKTYPE.NULL ? frame.subarray(4) : frame;
      const version = (ip[0] ?? 0) >> 4;
      return { etherType: version === 6 ? 0x86dd : version === 4 ? 0x0800 : 0, payload: ip };
    }
    default:
      throw new Error(`pcap: unsupported link type ${linkType}`);
  }
}

const IPV6_EXTENSION_HEADERS = new Set([0, 43, 60]);

function parseIp(ip: Buffer, time: number, length: number): IpPacket | undefined {
  const version = (ip[0] ?? 0) >> 4;
  let protocolNumber: number;
  let l4: Buffer;
  let src: string;
  let dst: string;
  let firstFragment = true;
  if (version === 4) {
    if (ip.length < 20) return undefined;
    const headerLength = (ip[0]! & 0x0f) * 4;
    const totalLength = ip.readUInt16BE(2);
    protocolNumber = ip[9]!;
    firstFragment = (ip.readUInt16BE(6) & 0x1fff) === 0;
    src = ipv4String(ip.subarray(12, 16));
    dst = ipv4String(ip.subarray(16, 20));
    l4 = ip.subarray(headerLength, Math.max(headerLength, Math.min(ip.length, totalLength)));
  } else if (version === 6) {
    if (ip.length < 40) return undefined;
    src = ipv6String(ip.subarray(8, 24));
    dst = ipv6String(ip.subarray(24, 40));
    protocolNumber = ip[6]!;
    let at = 40;
    for (;;) {
      if (IPV6_EXTENSION_HEADERS.has(protocolNumber) && ip.length >= at + 8) {
        protocolNumber = ip[at]!;
        at += (ip[at + 1]! + 1) * 8;
      } else if (protocolNumber === 44 && ip.length >= at + 8) {
        firstFragment = (ip.readUInt16BE(at + 2) & 0xfff8) === 0;
        protocolNumber = ip[at]!;
        at += 8;
      } else break;
    }
    l4 = ip.subarray(Math.min(at, ip.length));
  } else return undefined;
  const packet: IpPacket = { time, ipVersion: version, src, dst, protocol: protocolName(protocolNumber, version), length };
  if (!firstFragment) return packet;
  if ((protocolNumber === 6 || protocolNumber === 17) && l4.length >= 4) {
    packet.srcPort = l4.readUInt16BE(0);
    packet.dstPort = l4.readUInt16BE(2);
    if (protocolNumber === 6 && l4.length >= 14) packet.tcpFlags = l4[13]!;
  } else if ((protocolNumber === 1 || protocolNumber === 58) && l4.length >= 2) {
    packet.icmpType = l4[0]!;
    packet.icmpCode = l4[1]!;
  }
  return packet;
}

function protocolName(n: number, version: 4 | 6): Protocol {
  if (n === 6) return 'tcp';
  if (n === 17) return 'udp';
  if (n === 1 && version === 4) return 'icmp';
  if (n === 58 && version === 6) return 'icmpv6';
  return `ip-proto-${n}`;
}

function ipv4String(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 text form: lower case, longest run (>= 2) of zero groups as "::". */
export function ipv6String(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

// ---------------------------------------------------------------- flows

export interface Endpoint {
  address: string;
  /** Absent for ICMP. */
  port?: number;
}

/**
 * A bidirectional conversation. `client` started it: the sender of a TCP SYN
 * (without ACK); when the capture missed the SYN, the side with the higher
 * port (an ephemeral port) is taken as the client.
 */
export interface Flow {
  protocol: Protocol;
  client: Endpoint;
  server: Endpoint;
  packets: number;
  bytes: number;
  firstTime: number;
  lastTime: number;
  /** The capture saw the TCP handshake's SYN, so client/server are certain. */
  sawSyn: boolean;
}

function endpointKey(e: Endpoint): string {
  return e.port === undefined ? e.address : `${e.address}|${e.port}`;
}

/** Groups packets into bidirectional flows (ICMP: one flow per address pair). */
export function pcapFlows(packets: readonly IpPacket[]): Flow[] {
  const flows = new Map<string, Flow>();
  for (const p of packets) {
    const a: Endpoint = p.srcPort === undefined ? { address: p.src } : { address: p.src, port: p.srcPort };
    const b: Endpoint = p.dstPort === undefined ? { address: p.dst } : { address: p.dst, port: p.dstPort };
    const [k1, k2] = [endpointKey(a), endpointKey(b)].sort();
    const key = `${p.protocol}/${k1}/${k2}`;
    let flow = flows.get(key);
    if (!flow) {
      flow = { protocol: p.protocol, client: a, server: b, packets: 0, bytes: 0, firstTime: p.time, lastTime: p.time, sawSyn: false };
      flows.set(key, flow);
    }
    const isSyn = p.tcpFlags !== undefined && (p.tcpFlags & 0x12) === 0x02;
    if (isSyn) {
      [flow.client, flow.server] = [a, b];
      flow.sawSyn = true;
    } else if (flow.packets === 0 && a.port !== undefined && b.port !== undefined && a.port < b.port) {
      [flow.client, flow.server] = [b, a];
    }
    flow.packets++;
    flow.bytes += p.length;
    flow.firstTime = Math.min(flow.firstTime, p.time);
    flow.lastTime = Math.max(flow.lastTime, p.time);
  }
  return [...flows.values()];
}

/**
 * True when one end of the flow is in `allowlist` (an entry without a port
 * allows every port of that address). Either end counts, so a flow whose SYN
 * the capture missed is judged correctly too. Leak tests: every flow on the
 * user's uplink must satisfy this with the relay allowlist.
 */
export function isFlowAllowed(flow: Flow, allowlist: readonly Endpoint[]): boolean {
  const matches = (x: Endpoint): boolean => allowlist.some((e) => e.address === x.address && (e.port === undefined || e.port === x.port));
  return matches(flow.server) || matches(flow.client);
}

/** One line per flow, for assertion messages. */
export function describeFlow(f: Flow): string {
  const ep = (e: Endpoint): string => (e.port === undefined ? e.address : `${e.address}:${e.port}`);
  return `${f.protocol} ${ep(f.client)} -> ${ep(f.server)} (${f.packets} pkts, ${f.bytes} B)`;
}
