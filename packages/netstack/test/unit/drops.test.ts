// What the stack must not answer: ICMP (echo too), UDP other than DNS, fragments.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { internetChecksum } from '../../src/checksum.ts';
import { IPPROTO_ICMP, buildIpv4 } from '../../src/ipv4.ts';
import { SYN, buildTcpPacket } from '../../src/tcp-segment.ts';
import { buildUdpPacket } from '../../src/udp.ts';
import { CLIENT, SERVER, makeStack } from './harness.ts';

it('drops ICMP echo, non-DNS UDP and fragments without answering or dialing', () => {
  const { io, stack, dialer } = makeStack();
  const echo = Uint8Array.of(8, 0, 0, 0, 0, 1, 0, 1, 0x61, 0x62);
  const sum = internetChecksum(echo);
  echo[2] = sum >> 8;
  echo[3] = sum & 0xff;
  const fragment = buildTcpPacket({ src: CLIENT, dst: SERVER, srcPort: 40000, dstPort: 80, seq: 1, ack: 0, flags: SYN, window: 65535 });
  fragment[6] = 0x20; // MF
  fragment[10] = fragment[11] = 0;
  const headerSum = internetChecksum(fragment, 0, 20);
  fragment[10] = headerSum >> 8;
  fragment[11] = headerSum & 0xff;
  stack.input([buildIpv4(IPPROTO_ICMP, CLIENT, SERVER, echo), buildUdpPacket(CLIENT, SERVER, 5000, 123, Uint8Array.of(1, 2, 3)), fragment]);
  assert.equal(io.sent.length, 0);
  assert.equal(dialer.dials.length, 0);
  assert.deepEqual(stack.stats.drops, { 'ipv4: protocol 1': 1, 'udp: not DNS': 1, 'ipv4: fragment': 1 });
});
