#!/usr/bin/env python3
"""bench-resp-buffers.py PORT PID - what a RESP server keeps after large requests.

Opens 50 connections to 127.0.0.1:PORT; on each, SETs a 4 MiB value and GETs it back, then
leaves the connection open and idle. Prints the growth of the server's RSS (PID, read from
/proc) after the requests and after 3 s of idle time. The values themselves are 200 MiB; what
is above that is buffers and allocator overhead. Run it against streamcache and redis-server
(see docs/benchmarks-log.md, "Buffers after large requests")."""
import socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
def read_reply(s):
    buf = b""
    while b"\r\n" not in buf: buf += s.recv(65536)
    if buf[:1] in b"+-:": return buf
    n = int(buf[1:buf.index(b"\r\n")])
    need = buf.index(b"\r\n") + 2 + n + 2
    while len(buf) < need: buf += s.recv(1 << 20)
    return buf
base = rss()
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
value = b"v" * (4 << 20)
for i, s in enumerate(conns):
    s.sendall(cmd(b"SET", b"big:%d" % i, value)); read_reply(s)
for i, s in enumerate(conns):
    s.sendall(cmd(b"GET", b"big:%d" % i)); assert len(read_reply(s)) > (4 << 20)
for s in conns:
    s.sendall(cmd(b"PING")); read_reply(s)
after = rss()
time.sleep(3)
for s in conns:
    s.sendall(cmd(b"PING")); read_reply(s)
idle = rss()
print(f"port {port}: RSS growth {after - base:.0f} MiB after 50 x (SET+GET 4 MiB), {idle - base:.0f} MiB after 3 s idle (values stored: 200 MiB)")
