#!/usr/bin/env python3
"""The egress proxy's cost (issue: network per phase).

Measured in one run, against baselines from the same run:
  startup:    `otk sandbox run --net none -- /bin/true` against `--net proxy` (otk starts the
              proxy, the sandbox's init starts the relay), and bare /bin/true;
  throughput: one plain-HTTP download of --size MiB from a server on the host's loopback:
              bare `curl` straight to it, against `curl` in a strict sandbox whose only way
              out is the proxy (relay in the sandbox -> unix socket -> otk's proxy -> server).
Prints medians and ratios.
"""
import argparse, http.server, os, socketserver, statistics, subprocess, sys, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def serve(size):
    payload = os.urandom(1 << 20) * size
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        def log_message(self, *a): pass
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

def timed(argv, rounds):
    times = []
    for _ in range(rounds):
        t0 = time.monotonic()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.monotonic() - t0)
        if r.returncode != 0:
            sys.exit(f"failed ({r.returncode}): {' '.join(argv)}\n{r.stderr[-2000:]}")
    return statistics.median(times)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--otk", default=os.path.join(REPO, ".build/release/otk"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--size", type=int, default=256, help="MiB downloaded (default 256)")
    a = ap.parse_args()
    if not os.access(a.otk, os.X_OK):
        print(f"no otk at {a.otk}: build it with `swift build -c release --static-swift-stdlib`, or pass --otk", file=sys.stderr)
        return 2
    server = serve(a.size)
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/blob"
    run = [a.otk, "sandbox", "run", "--profile", "strict"]
    bare = timed(["/bin/true"], a.rounds)
    none = timed(run + ["--net", "none", "--", "/bin/true"], a.rounds)
    proxy = timed(run + ["--net", "proxy", "--", "/bin/true"], a.rounds)
    print(f"startup, median of {a.rounds}")
    print(f"  bare /bin/true        {bare * 1000:8.2f} ms")
    print(f"  otk --net none        {none * 1000:8.2f} ms")
    print(f"  otk --net proxy       {proxy * 1000:8.2f} ms   proxy/none x{proxy / none:.2f}  (+{(proxy - none) * 1000:.2f} ms)")
    rounds = max(3, a.rounds // 4)
    curl = ["/usr/bin/curl", "-sS", "-o", "/dev/null", url]
    direct = timed(curl, rounds)
    via = timed(run + ["--net", "proxy", "--allow-host", f"127.0.0.1:{port}", "--"] + curl, rounds)
    print(f"download of {a.size} MiB, median of {rounds}")
    print(f"  bare curl             {direct:8.3f} s   {a.size / direct:8.1f} MiB/s")
    print(f"  curl through the proxy {via:7.3f} s   {a.size / via:8.1f} MiB/s   x{via / direct:.2f} of bare")
    server.shutdown()
    return 0

if __name__ == "__main__":
    sys.exit(main())
