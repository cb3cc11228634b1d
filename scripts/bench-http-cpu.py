#!/usr/bin/env python3
"""Server CPU per HTTP request: pipelined keep-alive GETs against a running server, and the
server's user + system CPU time from /proc over them.

Usage: scripts/bench-http-cpu.py PORT PID [PATH] [REQUESTS]
(PATH defaults to /healthz, REQUESTS to 200000; 4 connections, 64 requests in flight on each.)
"""
import os
import socket
import sys
import threading
import time

CONNECTIONS, DEPTH = 4, 64


def server_cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(port, request, count):
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done = 0
    while done < count:
        batch = min(DEPTH, count - done)
        conn.sendall(request * batch)
        received = b""
        while received.count(b"HTTP/1.1 ") < batch:
            chunk = conn.recv(1 << 16)
            if not chunk:
                raise SystemExit("the server closed the connection")
            received += chunk
        done += batch
    conn.close()


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "/healthz"
    total = int(sys.argv[4]) if len(sys.argv) > 4 else 200_000
    request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
    run(port, request, 2_000)  # warm-up
    cpu0, t0 = server_cpu_seconds(pid), time.monotonic()
    workers = [
        threading.Thread(target=run, args=(port, request, total // CONNECTIONS))
        for _ in range(CONNECTIONS)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    cpu1, t1 = server_cpu_seconds(pid), time.monotonic()
    print(
        f"{path}: {total} requests in {t1 - t0:.2f} s = {total / (t1 - t0):.0f}/s, "
        f"server CPU {cpu1 - cpu0:.2f} s = {1e6 * (cpu1 - cpu0) / total:.2f} us/request"
    )


if __name__ == "__main__":
    main()
