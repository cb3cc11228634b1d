#!/usr/bin/env python3
"""bench-connections.py PORT PID MODE [N] - what connections cost the server.

Run it against a server started with `--ephemeral --http 127.0.0.1:PORT` (PID is its process;
RSS and CPU time are read from /proc), a fresh server per mode, since memory freed by one mode
is reused by the next. MODE:

  http   N (default 1000) keep-alive connections, each after one `GET /healthz`, left open:
         RSS growth per connection.
  sse    N SSE streams on `/realtime/orders`, left open: RSS growth per stream.
  ws     N Pusher WebSockets on /app/streamcache-key, each subscribed to `orders`: RSS growth
         per connection. Then 200 events of ~350 bytes are published one at a time with
         `POST /realtime/orders`; once every connection has had the last one, prints the
         server's CPU time (user + system) per publish. (Wall time is not printed: this
         single-threaded reader of N sockets is slower than the server.)
  churn  N connections one after another, one `GET /healthz` each with `Connection: close`:
         server CPU time per connection.

See docs/benchmarks-log.md, "WebSocket read buffer", and docs/benchmarks.md, "Memory per HTTP connection"."""
import base64, json, os, selectors, socket, sys, http.client

port, pid, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
PUBLISHES = 200


def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])


def cpu_s():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_exact(s, k):
    out = b""
    while len(out) < k:
        chunk = s.recv(k - len(out))
        assert chunk, "connection closed"
        out += chunk
    return out


def read_head(s):
    head = b""
    while b"\r\n\r\n" not in head:
        head += read_exact(s, 1)
    return head


def get(path, extra=""):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
    return s


def masked_text(text):
    data, mask = text.encode(), os.urandom(4)
    assert len(data) < 126
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def read_frame(s):
    head = read_exact(s, 2)
    k = head[1] & 0x7F
    if k == 126:
        k = int.from_bytes(read_exact(s, 2), "big")
    return read_exact(s, k)


def http_conn():
    s = get("/healthz")
    head = read_head(s)
    assert b" 200 " in head.split(b"\r\n")[0], head
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    read_exact(s, length)
    return s


def sse_stream():
    s = get("/realtime/orders", "Accept: text/event-stream\r\n")
    head = read_head(s)
    assert b" 200 " in head.split(b"\r\n")[0], head
    return s


def ws_subscriber():
    key = base64.b64encode(os.urandom(16)).decode()
    s = get("/app/streamcache-key?protocol=7&client=js&version=8.6.0",
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n")
    head = read_head(s)
    assert b" 101 " in head.split(b"\r\n")[0], head
    assert b"connection_established" in read_frame(s)
    s.sendall(masked_text(json.dumps({"event": "pusher:subscribe", "data": {"channel": "orders"}})))
    assert b"subscription_succeeded" in read_frame(s)
    return s


def held(open_one, what):
    base = rss_kib()
    conns = [open_one() for _ in range(n)]
    grown = rss_kib() - base
    print(f"{n} {what}: RSS +{grown / 1024:.1f} MiB, {grown * 1024 / n:.0f} bytes each")
    return conns


def fan_out(conns):
    sel = selectors.DefaultSelector()
    for s in conns:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    marker = b'"seq\\":%d' % (PUBLISHES - 1)
    tail = {s: b"" for s in conns}
    left = set(conns)

    def drain(timeout):
        for key, _ in sel.select(timeout=timeout):
            s = key.fileobj
            tail[s] = (tail[s] + s.recv(1 << 20))[-4096:]
            if marker in tail[s]:
                left.discard(s)

    client = http.client.HTTPConnection("127.0.0.1", port)
    cpu0 = cpu_s()
    for i in range(PUBLISHES):
        body = json.dumps({"event": "NewOrder", "data": {"seq": i, "pad": "x" * 300}})
        client.request("POST", "/realtime/orders", body=body, headers={"content-type": "application/json"})
        reply = client.getresponse()
        reply.read()
        assert reply.status == 200, reply.status
        drain(0)  # so no socket buffer fills
    while left:
        drain(10)
    used = cpu_s() - cpu0
    print(f"{PUBLISHES} publishes to {n} subscribers, the last one received on every connection: "
          f"server CPU {used * 1000 / PUBLISHES:.2f} ms per publish ({used * 1e6 / PUBLISHES / n:.1f} us per delivery)")


def churn():
    cpu0 = cpu_s()
    for _ in range(n):
        s = get("/healthz", "Connection: close\r\n")
        while s.recv(4096):
            pass
        s.close()
    print(f"{n} connections of one request each: server CPU {(cpu_s() - cpu0) * 1e6 / n:.0f} us per connection")


if mode == "http":
    held(http_conn, "idle keep-alive connections after one GET")
elif mode == "sse":
    held(sse_stream, "SSE streams on /realtime/orders")
elif mode == "ws":
    fan_out(held(ws_subscriber, "subscribed Pusher WebSockets"))
elif mode == "churn":
    churn()
else:
    sys.exit(__doc__)
