#!/usr/bin/env python3
"""A PEP 503 package index on loopback, for otk's end-to-end tests.

Builds a tiny pure-Python wheel (greetlib 0.1) with the standard library alone, lays out
ROOT/simple/greetlib/index.html, serves ROOT on 127.0.0.1 at a free port, prints the port
on a line of its own, and serves until its stdin closes. Each request is logged to stderr.
"""
import base64, hashlib, http.server, os, socketserver, sys, tempfile, threading, zipfile

def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"

def build_wheel(directory):
    name = "greetlib-0.1-py3-none-any.whl"
    files = {
        "greetlib/__init__.py": b'def greet(who):\n    return f"greetings, {who}, from greetlib 0.1"\n',
        "greetlib-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: greetlib\nVersion: 0.1\n",
        "greetlib-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: otk-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    lines = [record_line(n, d) for n, d in files.items()] + ["greetlib-0.1.dist-info/RECORD,,"]
    files["greetlib-0.1.dist-info/RECORD"] = ("\n".join(lines) + "\n").encode()
    path = os.path.join(directory, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(n, d)
    return name, hashlib.sha256(open(path, "rb").read()).hexdigest()

def main():
    root = tempfile.mkdtemp(prefix="otk-it-index-")
    os.makedirs(os.path.join(root, "simple", "greetlib"))
    packages = os.path.join(root, "packages")
    os.makedirs(packages)
    wheel, sha = build_wheel(packages)
    with open(os.path.join(root, "simple", "index.html"), "w") as f:
        f.write('<html><body><a href="greetlib/">greetlib</a></body></html>\n')
    with open(os.path.join(root, "simple", "greetlib", "index.html"), "w") as f:
        f.write(f'<html><body><a href="../../packages/{wheel}#sha256={sha}">{wheel}</a></body></html>\n')

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=root, **k)
        def log_message(self, fmt, *args):
            sys.stderr.write("index: " + (fmt % args) + "\n")

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames: os.unlink(os.path.join(dirpath, n))
        for n in dirnames: os.rmdir(os.path.join(dirpath, n))
    os.rmdir(root)

if __name__ == "__main__":
    main()
