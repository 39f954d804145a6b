#!/usr/bin/env python3
"""Upstream servers on the host's loopback for the egress proxy tests.

Opens on 127.0.0.1, each on a free port:
  echo  a TCP server that sends back whatever it receives (a CONNECT tunnel's far end);
  http  an HTTP/1.1 server answering every request with 200 and "hello from upstream",
        and remembering each request's head;
  dns   a UDP DNS responder answering every A query with 127.0.0.1.
Prints one JSON line {"echo": PORT, "http": PORT, "dns": PORT}, then serves. Each line read
on stdin is a command: "stats" prints {"echo_connections": N, "http_requests": [HEAD, ...],
"dns_queries": N} on one line. EOF on stdin ends it. Nothing reaches another host.
"""
import json
import selectors
import socket
import struct
import sys

sel = selectors.DefaultSelector()
stats = {"echo_connections": 0, "http_requests": [], "dns_queries": 0}
buffers = {}


def listener(kind):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "dns" else socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    if kind != "dns":
        s.listen(64)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, ("listen", kind))
    return s.getsockname()[1]


def dns_answer(query):
    (qid, _flags, qdcount) = struct.unpack("!HHH", query[:6])
    end = 12
    while end < len(query) and query[end] != 0:
        end += query[end] + 1
    question = query[12:end + 5]
    header = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    return header + question + answer


def main():
    ports = {kind: listener(kind) for kind in ("echo", "http", "dns")}
    print(json.dumps(ports), flush=True)
    sel.register(sys.stdin, selectors.EVENT_READ, ("stdin", None))
    while True:
        for key, _ in sel.select():
            role, kind = key.data
            sock = key.fileobj
            if role == "stdin":
                line = sys.stdin.readline()
                if not line:
                    return
                if line.strip() == "stats":
                    print(json.dumps(stats), flush=True)
            elif role == "listen" and kind == "dns":
                data, peer = sock.recvfrom(512)
                stats["dns_queries"] += 1
                if len(data) >= 12:
                    sock.sendto(dns_answer(data), peer)
            elif role == "listen":
                conn, _ = sock.accept()
                conn.setblocking(False)
                if kind == "echo":
                    stats["echo_connections"] += 1
                buffers[conn] = b""
                sel.register(conn, selectors.EVENT_READ, ("conn", kind))
            else:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(sock)
                    buffers.pop(sock, None)
                    sock.close()
                    continue
                if kind == "echo":
                    sock.sendall(data)
                    continue
                buffers[sock] += data
                if b"\r\n\r\n" in buffers[sock]:
                    head = buffers[sock].split(b"\r\n\r\n", 1)[0].decode("latin-1")
                    stats["http_requests"].append(head)
                    body = b"hello from upstream\n"
                    sock.setblocking(True)
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                                 % (len(body), body))
                    sel.unregister(sock)
                    buffers.pop(sock, None)
                    sock.close()


if __name__ == "__main__":
    main()
