"""A steady stream of probes, as an app would send them, until a stop file appears.

  probe-stream.py STOPFILE HOST4... -- HOST6...

Every ~5 ms: UDP (9999 and 53 with a DNS query), a TCP SYN (non-blocking
connect to 80) and an ICMP echo, to every IPv4 and IPv6 target. Errors (the
kill switch refusing) are ignored, never fatal. Prints FLOWING after three
rounds, and one JSON line at the end: {"rounds": N, "start": epoch_ms, "end": epoch_ms}.
"""
import json, os, socket, struct, sys, time

stop, rest = sys.argv[1], sys.argv[2:]
cut = rest.index('--') if '--' in rest else len(rest)
v4, v6 = rest[:cut], rest[cut + 1:]
DNS = struct.pack('>HHHHHH', 0x4242, 0x0100, 1, 0, 0, 0) + b'\x05flush\x07example\x00' + struct.pack('>HH', 1, 1)

def quietly(fn):
    try: fn()
    except OSError: pass

def icmp(family, host, seq):
    if family == socket.AF_INET:
        body = struct.pack('!BBHHH', 8, 0, 0, 0x88, seq & 0xffff) + b'stream'
        total = sum(struct.unpack('!%dH' % (len(body) // 2), body))
        total = (total >> 16) + (total & 0xffff); total += total >> 16
        body = body[:2] + struct.pack('!H', ~total & 0xffff) + body[4:]
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    else:
        body = struct.pack('!BBHHH', 128, 0, 0, 0x88, seq & 0xffff) + b'stream'
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try: quietly(lambda: s.sendto(body, (host, 0)))
    finally: s.close()

def tcp_syn(family, host):
    s = socket.socket(family, socket.SOCK_STREAM); s.setblocking(False)
    try: s.connect_ex((host, 80))
    finally: s.close()

def udp(family, host, port, data):
    s = socket.socket(family, socket.SOCK_DGRAM)
    try: quietly(lambda: s.sendto(data, (host, port)))
    finally: s.close()

start = int(time.time() * 1000); rounds = 0
while not os.path.exists(stop):
    for family, hosts in ((socket.AF_INET, v4), (socket.AF_INET6, v6)):
        for h in hosts:
            udp(family, h, 9999, b'stream %d' % rounds)
            udp(family, h, 53, DNS)
            quietly(lambda: tcp_syn(family, h))
            icmp(family, h, rounds)
    rounds += 1
    if rounds == 3: print('FLOWING', flush=True)
    time.sleep(0.005)
print(json.dumps({'rounds': rounds, 'start': start, 'end': int(time.time() * 1000)}), flush=True)
