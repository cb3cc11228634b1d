#!/usr/bin/env python3
"""bench-ws-connections.py PORT PID [N] - what N Pusher WebSocket subscribers cost a server.

Opens N (default 1000) WebSocket connections to 127.0.0.1:PORT/app/streamcache-key, subscribes
each to `orders`, and prints the growth of the server's RSS (PID, read from /proc) per
connection. Then publishes 200 events of ~350 bytes one at a time with `POST /realtime/orders`,
waits until every connection has had the last one, and prints the server's CPU time (user +
system, from /proc) per publish. (The wall time is not printed: this single-threaded reader of
N sockets is slower than the server.) Run it against a server started with `--ephemeral --http 127.0.0.1:PORT` (see
docs/benchmarks.md, "WebSocket read buffer")."""
import base64, json, os, selectors, socket, sys, time, http.client

port, pid = int(sys.argv[1]), int(sys.argv[2])
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
PUBLISHES = 200


def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])


def cpu_s():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def masked_text(text):
    data, mask = text.encode(), os.urandom(4)
    assert len(data) < 126
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def read_exact(s, k):
    out = b""
    while len(out) < k:
        chunk = s.recv(k - len(out))
        assert chunk, "connection closed"
        out += chunk
    return out


def read_frame(s):
    head = read_exact(s, 2)
    k = head[1] & 0x7F
    if k == 126:
        k = int.from_bytes(read_exact(s, 2), "big")
    return read_exact(s, k)


def connect():
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (f"GET /app/streamcache-key?protocol=7&client=js&version=8.6.0 HTTP/1.1\r\nHost: x\r\n"
         f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
         f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += read_exact(s, 1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    assert b"connection_established" in read_frame(s)
    s.sendall(masked_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": "orders"}})))
    assert b"subscription_succeeded" in read_frame(s)
    return s


base = rss_kib()
conns = [connect() for _ in range(n)]
grown = rss_kib() - base
print(f"{n} subscribed connections: RSS +{grown / 1024:.1f} MiB, {grown * 1024 / n:.0f} bytes per connection")

sel = selectors.DefaultSelector()
for s in conns:
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
marker = b'"seq\\":%d' % (PUBLISHES - 1)
tail = {s: b"" for s in conns}
left = set(conns)
http = http.client.HTTPConnection("127.0.0.1", port)
cpu0 = cpu_s()
for i in range(PUBLISHES):
    body = json.dumps({"event": "NewOrder", "data": {"seq": i, "pad": "x" * 300}})
    http.request("POST", "/realtime/orders", body=body, headers={"content-type": "application/json"})
    reply = http.getresponse()
    reply.read()
    assert reply.status == 200, reply.status
    # Drain what has arrived so no socket buffer fills.
    for key, _ in sel.select(timeout=0):
        tail[key.fileobj] = (tail[key.fileobj] + key.fileobj.recv(1 << 20))[-4096:]
        if marker in tail[key.fileobj]:
            left.discard(key.fileobj)
while left:
    for key, _ in sel.select(timeout=10):
        tail[key.fileobj] = (tail[key.fileobj] + key.fileobj.recv(1 << 20))[-4096:]
        if marker in tail[key.fileobj]:
            left.discard(key.fileobj)
used = cpu_s() - cpu0
print(f"{PUBLISHES} publishes to {n} subscribers, the last one received on every connection: "
      f"server CPU {used * 1000 / PUBLISHES:.2f} ms per publish ({used * 1e6 / PUBLISHES / n:.1f} us per delivery)")
