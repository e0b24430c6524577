/**
 * The leak oracle: every packet the host put on its uplink must belong to the
 * torvm user's (QEMU's) flows, recognised by their fixed source ports. IPv6
 * neighbour discovery and MLD from link-local or unspecified addresses are
 * link-layer chatter of the kernel (they carry no application data and the
 * LAN sees the MAC anyway) and are not counted.
 */
import type { IpPacket, PcapFile } from '../harness/pcap.ts';
import { ADDR, TORVM_PORT_RANGE } from './topology.ts';

const HOST_ADDRESSES = new Set<string>([ADDR.host4, ADDR.host6]);
const ROUTER_ADDRESSES = new Set<string>([ADDR.router4, ADDR.router6, ADDR.internet4, ADDR.internet6]);
const LINK_CHATTER_ICMP6 = new Set([130, 131, 132, 133, 134, 135, 136, 137, 143]);

const inTorvmRange = (port: number | undefined) => port !== undefined && port >= TORVM_PORT_RANGE.min && port <= TORVM_PORT_RANGE.max;

export function isTorvmFlow(p: IpPacket): boolean {
  return (p.protocol === 'tcp' || p.protocol === 'udp') && ((HOST_ADDRESSES.has(p.src) && inTorvmRange(p.srcPort)) || (HOST_ADDRESSES.has(p.dst) && inTorvmRange(p.dstPort)));
}

function fromHost(p: IpPacket): boolean {
  if (HOST_ADDRESSES.has(p.src)) return true;
  if (ROUTER_ADDRESSES.has(p.src)) return false;
  // Link-local or unspecified source: the host's unless it is link chatter (which either side sends).
  return !(p.protocol === 'icmpv6' && p.icmpType !== undefined && LINK_CHATTER_ICMP6.has(p.icmpType));
}

export interface LeakReport {
  leaks: IpPacket[];
  allowed: IpPacket[];
}

export function findLeaks(pcap: PcapFile): LeakReport {
  const leaks: IpPacket[] = [];
  const allowed: IpPacket[] = [];
  for (const p of pcap.packets) {
    if (isTorvmFlow(p)) allowed.push(p);
    else if (fromHost(p)) leaks.push(p);
  }
  return { leaks, allowed };
}

export function describePacket(p: IpPacket): string {
  const port = (a: string, n: number | undefined) => (n === undefined ? a : `${a}:${n}`);
  const extra = p.protocol.startsWith('icmp') ? ` type ${String(p.icmpType)}` : p.tcpFlags !== undefined ? ` flags 0x${p.tcpFlags.toString(16)}` : '';
  return `${p.protocol} ${port(p.src, p.srcPort)} -> ${port(p.dst, p.dstPort)}${extra}`;
}
