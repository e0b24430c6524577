/**
 * Pure parts of the Tor network harness: the pcap reader and flow grouping
 * (on hand-built captures), the DNS answerer, torrc rendering's safety
 * properties, and the stale-name parser. No root, no network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from 'dns-packet';
import { readPcap, pcapFlows, isFlowAllowed, ipv6String, LINKTYPE } from '../harness/pcap.ts';
import { answerQuery } from '../harness/dns-server.ts';
import { renderTorrc, votingStartOffset, dirAuthorityLine, FAST_TIMING, type NetworkContext, type TorRole } from '../harness/tor-config.ts';
import { ownerPid } from '../harness/netns.ts';
import { parseNetworkStatus } from '../harness/tor-control.ts';

// ---- building captures

function globalHeader(linkType: number, { bigEndian = false, nano = false } = {}): Buffer {
  const b = Buffer.alloc(24);
  const magic = nano ? 0xa1b23c4d : 0xa1b2c3d4;
  if (bigEndian) {
    b.writeUInt32BE(magic, 0); b.writeUInt16BE(2, 4); b.writeUInt16BE(4, 6); b.writeUInt32BE(65535, 16); b.writeUInt32BE(linkType, 20);
  } else {
    b.writeUInt32LE(magic, 0); b.writeUInt16LE(2, 4); b.writeUInt16LE(4, 6); b.writeUInt32LE(65535, 16); b.writeUInt32LE(linkType, 20);
  }
  return b;
}

function record(frame: Buffer, seconds: number, { bigEndian = false, captured = frame.length } = {}): Buffer {
  const h = Buffer.alloc(16);
  const w = (v: number, o: number): number => (bigEndian ? h.writeUInt32BE(v, o) : h.writeUInt32LE(v, o));
  w(seconds, 0); w(500_000, 4); w(captured, 8); w(frame.length, 12);
  return Buffer.concat([h, frame.subarray(0, captured)]);
}

const ip4 = (s: string): Buffer => Buffer.from(s.split('.').map(Number));

function ipv4(src: string, dst: string, protocol: number, l4: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45; h.writeUInt16BE(20 + l4.length, 2); h[8] = 64; h[9] = protocol;
  ip4(src).copy(h, 12); ip4(dst).copy(h, 16);
  return Buffer.concat([h, l4]);
}

function tcp(sport: number, dport: number, flags: number): Buffer {
  const t = Buffer.alloc(20);
  t.writeUInt16BE(sport, 0); t.writeUInt16BE(dport, 2); t[12] = 0x50; t[13] = flags;
  return t;
}

function udp(sport: number, dport: number, payload = Buffer.alloc(4)): Buffer {
  const u = Buffer.alloc(8);
  u.writeUInt16BE(sport, 0); u.writeUInt16BE(dport, 2); u.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([u, payload]);
}

function ethernet(etherType: number, payload: Buffer, vlan = false): Buffer {
  const head = Buffer.alloc(vlan ? 18 : 14);
  if (vlan) { head.writeUInt16BE(0x8100, 12); head.writeUInt16BE(7, 14); head.writeUInt16BE(etherType, 16); } else head.writeUInt16BE(etherType, 12);
  return Buffer.concat([head, payload]);
}

function ipv6(src: Buffer, dst: Buffer, next: number, l4: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60; h.writeUInt16BE(l4.length, 4); h[6] = next; h[7] = 64;
  src.copy(h, 8); dst.copy(h, 24);
  return Buffer.concat([h, l4]);
}

const SYN = 0x02, ACK = 0x10;

test('pcap: Ethernet IPv4 TCP handshake, UDP, ICMP and ARP', () => {
  const file = Buffer.concat([
    globalHeader(LINKTYPE.ETHERNET),
    record(ethernet(0x0800, ipv4('10.98.0.2', '10.99.0.11', 6, tcp(40000, 5000, SYN))), 100),
    record(ethernet(0x0800, ipv4('10.99.0.11', '10.98.0.2', 6, tcp(5000, 40000, SYN | ACK))), 101),
    record(ethernet(0x0800, ipv4('10.98.0.2', '10.99.0.11', 6, tcp(40000, 5000, ACK)), true), 102),
    record(ethernet(0x0800, ipv4('10.98.0.2', '10.99.0.53', 17, udp(5353, 53))), 103),
    record(ethernet(0x0800, ipv4('10.98.0.2', '10.99.0.80', 1, Buffer.from([8, 0, 0, 0, 0, 1, 0, 1]))), 104),
    record(ethernet(0x0806, Buffer.alloc(28)), 105),
  ]);
  const decoded = readPcap(file);
  assert.equal(decoded.linkType, LINKTYPE.ETHERNET);
  assert.equal(decoded.packets.length, 5);
  assert.equal(decoded.nonIp.get(0x0806), 1);
  assert.equal(decoded.packets[0]?.time, 100.5);
  assert.deepEqual(decoded.packets[3], { time: 103.5, ipVersion: 4, src: '10.98.0.2', dst: '10.99.0.53', protocol: 'udp', srcPort: 5353, dstPort: 53, length: 32 });
  assert.equal(decoded.packets[4]?.icmpType, 8);
  const flows = pcapFlows(decoded.packets);
  assert.equal(flows.length, 3);
  const tcpFlow = flows.find((f) => f.protocol === 'tcp');
  assert.deepEqual(tcpFlow?.client, { address: '10.98.0.2', port: 40000 });
  assert.deepEqual(tcpFlow?.server, { address: '10.99.0.11', port: 5000 });
  assert.equal(tcpFlow?.packets, 3);
  assert.equal(tcpFlow?.sawSyn, true);
  const allow = [{ address: '10.99.0.11', port: 5000 }];
  assert.deepEqual(flows.map((f) => isFlowAllowed(f, allow)), [true, false, false]);
});

test('pcap: a flow whose SYN was missed still gets the ephemeral side as client', () => {
  const file = Buffer.concat([
    globalHeader(LINKTYPE.ETHERNET),
    record(ethernet(0x0800, ipv4('10.99.0.21', '10.98.0.2', 6, tcp(5000, 51000, ACK))), 1),
  ]);
  const [flow] = pcapFlows(readPcap(file).packets);
  assert.deepEqual(flow?.server, { address: '10.99.0.21', port: 5000 });
  assert.equal(flow?.sawSyn, false);
  assert.equal(isFlowAllowed(flow!, [{ address: '10.99.0.21', port: 5000 }]), true);
});

test('pcap: big-endian nanosecond files, Linux cooked captures, IPv6 with an extension header', () => {
  const v6src = Buffer.from('fd000000000000000000000000000002', 'hex');
  const v6dst = Buffer.from('20010db8000000000001000000000001', 'hex');
  const hopByHop = Buffer.concat([Buffer.from([17, 0, 0, 0, 0, 0, 0, 0]), udp(1000, 53)]);
  const sll = Buffer.alloc(16);
  sll.writeUInt16BE(0x86dd, 14);
  const file = Buffer.concat([
    globalHeader(LINKTYPE.LINUX_SLL, { bigEndian: true, nano: true }),
    record(Buffer.concat([sll, ipv6(v6src, v6dst, 0, hopByHop)]), 7, { bigEndian: true }),
  ]);
  const [packet] = readPcap(file).packets;
  assert.equal(packet?.ipVersion, 6);
  assert.equal(packet?.src, 'fd00::2');
  assert.equal(packet?.dst, '2001:db8::1:0:0:1'); // equal runs of zeros: the first is compressed
  assert.equal(packet?.protocol, 'udp');
  assert.equal(packet?.dstPort, 53);
  assert.equal(packet?.time, 7.0005);
});

test('pcap: truncated final record is ignored; bad magic and pcapng are rejected', () => {
  const frame = ethernet(0x0800, ipv4('1.2.3.4', '5.6.7.8', 17, udp(1, 2)));
  const whole = Buffer.concat([globalHeader(LINKTYPE.ETHERNET), record(frame, 1), record(frame, 2)]);
  assert.equal(readPcap(whole.subarray(0, whole.length - 5)).packets.length, 1);
  assert.throws(() => readPcap(Buffer.alloc(24)), /bad magic/);
  assert.throws(() => readPcap(Buffer.from([0x0a, 0x0d, 0x0d, 0x0a, ...Buffer.alloc(20)])), /pcapng/);
  assert.throws(() => readPcap(Buffer.alloc(3)), /shorter/);
});

test('ipv6String follows RFC 5952', () => {
  assert.equal(ipv6String(Buffer.alloc(16)), '::');
  assert.equal(ipv6String(Buffer.from('00000000000000000000000000000001', 'hex')), '::1');
  assert.equal(ipv6String(Buffer.from('20010db8000000010000000000000001', 'hex')), '2001:db8:0:1::1');
  assert.equal(ipv6String(Buffer.from('20010db8000100010001000100010001', 'hex')), '2001:db8:1:1:1:1:1:1');
});

test('DNS answerer: known names get A records, unknown names NXDOMAIN', () => {
  const records = { 'web.torvm.test': ['10.99.0.80'] };
  const ask = (name: string, type: 'A' | 'AAAA' = 'A'): Buffer => encode({ id: 42, type: 'query', flags: 0x0100, questions: [{ name, type, class: 'IN' }] });
  const known = answerQuery(ask('Web.Torvm.Test.'), records);
  const reply = decode(known.response);
  assert.equal(reply.id, 42);
  assert.equal((reply.flags ?? -1) & 0x0f, 0, 'rcode NOERROR');
  assert.deepEqual(reply.answers?.map((a) => ('data' in a ? a.data : undefined)), ['10.99.0.80']);
  assert.deepEqual(known.log, { name: 'web.torvm.test', type: 'A', answers: ['10.99.0.80'] });
  assert.equal((decode(answerQuery(ask('elsewhere.example'), records).response).flags ?? -1) & 0x0f, 3, 'rcode NXDOMAIN');
  assert.equal(decode(answerQuery(ask('web.torvm.test', 'AAAA'), records).response).answers?.length, 0);
});

test('every rendered torrc is pinned to the private network', () => {
  const context: NetworkContext = {
    dirAuthorityLines: [dirAuthorityLine({ nickname: 'auth1', address: '10.99.0.11', orPort: 5000, dirPort: 7000, v3ident: 'A'.repeat(40), fingerprint: 'B'.repeat(40) })],
    exitFingerprints: ['C'.repeat(40)],
    timing: { ...FAST_TIMING, startOffset: 3 },
    exitResolvConf: '/etc/netns/x/resolv.conf',
  };
  const roles: TorRole[] = ['authority', 'relay', 'exit', 'onion', 'client'];
  for (const role of roles) {
    const torrc = renderTorrc(
      { nickname: `n${role}`, role, dataDir: '/tmp/x/n', address: '10.99.0.50', orPort: 5000, dirPort: 7000, onion: { virtualPort: 80, target: '10.99.0.80:80' } },
      context,
    );
    assert.match(torrc, /^TestingTorNetwork 1$/m, role);
    assert.match(torrc, /^DirAuthority auth1 orport=5000 no-v2 v3ident=A{40} 10\.99\.0\.11:7000 B{40}$/m, role);
    assert.doesNotMatch(torrc, /^(UseBridges|Bridge|FallbackDir) /m, role);
  }
  const exit = renderTorrc({ nickname: 'e', role: 'exit', dataDir: '/d', address: '10.99.0.31', orPort: 5000, dirPort: 7000 }, context);
  assert.match(exit, /^ExitPolicy accept \*:\*$/m);
  assert.match(exit, /^ServerDNSResolvConfFile \/etc\/netns\/x\/resolv\.conf$/m);
  const relay = renderTorrc({ nickname: 'r', role: 'relay', dataDir: '/d', address: '10.99.0.21', orPort: 5000 }, context);
  assert.match(relay, /^ExitPolicy reject \*:\*$/m);
  assert.match(renderTorrc({ nickname: 'a', role: 'authority', dataDir: '/d', address: '10.99.0.11', orPort: 5000, dirPort: 7000 }, context), /^TestingDirAuthVoteExit C{40}$/m);
});

test('votingStartOffset puts the first vote lead seconds out', () => {
  for (const now of [1000, 1003, 1009.5]) {
    const offset = votingStartOffset(now, 4, FAST_TIMING);
    assert.ok(offset >= 0 && offset < FAST_TIMING.initialInterval);
    // The next valid-after time (interval boundary + offset) minus the vote+dist delays.
    let validAfter = Math.floor(now / 10) * 10 + offset;
    while (validAfter - 4 < now + 4) validAfter += 10;
    assert.ok(validAfter - 4 - now < 4 + 10, `vote within one interval of the lead (now=${now})`);
  }
});

test('stale-name parser and ns/all parser', () => {
  assert.equal(ownerPid('tvh1234-1-inet', 'tvh'), 1234);
  assert.equal(ownerPid('tvhx-1', 'tvh'), undefined);
  assert.equal(ownerPid('other1234-1', 'tvh'), undefined);
  const ns = 'r relay1 AAAAAAAAAAAAAAAAAAAAAAAAAAA BBBBBBBBBBBBBBBBBBBBBBBBBBB 2026-11-25 15:00:00 10.99.0.21 5000 7000\ns Fast Running Valid\n'
    + 'r exit1 AAAAAAAAAAAAAAAAAAAAAAAAAAA 2026-11-25 15:00:00 10.99.0.31 5000 0\ns Exit Running\n';
  const entries = parseNetworkStatus(ns);
  assert.deepEqual(entries.map((e) => [e.nickname, e.address, e.orPort, e.dirPort, e.flags.join(',')]), [
    ['relay1', '10.99.0.21', 5000, 7000, 'Fast,Running,Valid'],
    ['exit1', '10.99.0.31', 5000, 0, 'Exit,Running'],
  ]);
});
