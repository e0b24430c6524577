#!/usr/bin/env python3
"""Leak-test traffic, stdlib only.

  peer.py serve                 echo servers (TCP 80/53, UDP 53/9999, IPv4+IPv6); prints READY
  peer.py probe JSON            every kind of probe an app could send; prints a JSON result per probe
  peer.py torvm HOST PORT SPORT the QEMU stand-in: one TCP echo exchange from a fixed source port
  peer.py hold HOST PORT SPORT  the QEMU stand-in holding one connection until killed

Every socket operation has a short timeout, so a probe never hangs.
"""
import json, socket, struct, sys, threading

def serve():
    def tcp_echo(family, port):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(('::' if family == socket.AF_INET6 else '0.0.0.0', port)); s.listen(64)
        def handle(c):
            c.settimeout(3)
            try:
                data = c.recv(4096)
                if data: c.sendall(data)
            except OSError: pass
            finally: c.close()
        while True:
            c, _ = s.accept(); threading.Thread(target=handle, args=(c,), daemon=True).start()
    def udp_echo(family, port):
        s = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(('::' if family == socket.AF_INET6 else '0.0.0.0', port))
        while True:
            data, peer = s.recvfrom(4096); s.sendto(data, peer)
    for fam in (socket.AF_INET, socket.AF_INET6):
        for port in (80, 53, 853): threading.Thread(target=tcp_echo, args=(fam, port), daemon=True).start()
        for port in (53, 853, 9999): threading.Thread(target=udp_echo, args=(fam, port), daemon=True).start()
    print('READY', flush=True)
    threading.Event().wait()

def dns_query(name='leak.example'):
    q = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.split('.'): q += bytes([len(label)]) + label.encode()
    return q + b'\x00' + struct.pack('>HH', 1, 1)

def csum(data):
    if len(data) % 2: data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff

def attempt(fn):
    try: return fn()
    except OSError as e: return 'error: %s' % (e.strerror or e)

def probe(cfg):
    T = 0.7
    out = {}
    def fam(h): return socket.AF_INET6 if ':' in h else socket.AF_INET
    def tcp(h, port, payload=b'probe'):
        s = socket.socket(fam(h), socket.SOCK_STREAM); s.settimeout(T)
        try: s.connect((h, port)); s.sendall(payload); return 'ok: %r' % s.recv(64)
        finally: s.close()
    def udp(h, port, payload=b'probe'):
        s = socket.socket(fam(h), socket.SOCK_DGRAM); s.settimeout(T)
        try: s.sendto(payload, (h, port)); return 'ok: %d bytes' % len(s.recvfrom(4096)[0])
        finally: s.close()
    def ping(h):
        v6 = ':' in h
        s = socket.socket(fam(h), socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP); s.settimeout(T)
        try:
            if v6: pkt = struct.pack('!BBHHH', 128, 0, 0, 0x77, 1) + b'probe'  # the kernel fills the ICMPv6 checksum
            else:
                body = struct.pack('!BBHHH', 8, 0, 0, 0x77, 1) + b'probe'
                pkt = body[:2] + struct.pack('!H', csum(body)) + body[4:]
            s.sendto(pkt, (h, 0)); s.recvfrom(4096); return 'ok'
        finally: s.close()
    def raw_tcp(src, dst, flags):
        # A hand-made FIN or RST with no connection behind it (the transparent-proxy leak).
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        try:
            tcp_hdr = struct.pack('!HHIIBBHHH', 45678, 80, 1000, 0, 5 << 4, flags, 1024, 0, 0)
            pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp_hdr))
            tcp_hdr = tcp_hdr[:16] + struct.pack('!H', csum(pseudo + tcp_hdr)) + tcp_hdr[18:]
            ip_hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp_hdr), 0x4242, 0, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
            s.sendto(ip_hdr + tcp_hdr, (dst, 0)); return 'sent'
        finally: s.close()
    for h in cfg['hosts']:
        out['tcp %s:80' % h] = attempt(lambda: tcp(h, 80))
        out['udp %s:9999' % h] = attempt(lambda: udp(h, 9999))
        out['icmp %s' % h] = attempt(lambda: ping(h))
        out['dns-udp %s:53' % h] = attempt(lambda: udp(h, 53, dns_query()))
        out['dns-tcp %s:53' % h] = attempt(lambda: tcp(h, 53, struct.pack('!H', len(dns_query())) + dns_query()))
    for h in cfg.get('rawTargets', []):
        out['raw-fin %s' % h] = attempt(lambda: raw_tcp(cfg['source'], h, 0x11))
        out['raw-rst %s' % h] = attempt(lambda: raw_tcp(cfg['source'], h, 0x04))
    # The system resolver (resolv.conf), as an app would use it.
    out['getaddrinfo'] = attempt(lambda: str(socket.getaddrinfo('leak-probe.example', 80, socket.AF_INET, socket.SOCK_STREAM)[0][4]))
    print(json.dumps(out))

def torvm(host, port, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', int(sport))); s.connect((host, int(port))); s.sendall(b'qemu-slirp')
    data = s.recv(64); s.close()
    print(data.decode()); sys.exit(0 if data == b'qemu-slirp' else 1)

if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'serve': serve()
    elif cmd == 'probe': probe(json.loads(sys.argv[2]))
    elif cmd == 'torvm': torvm(*sys.argv[2:5])
    elif cmd == 'hold':  # a long-lived QEMU stand-in: one open connection until killed
        c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=3, source_address=('0.0.0.0', int(sys.argv[4])))
        print('HOLDING', flush=True); threading.Event().wait()
    else: sys.exit('unknown command')
