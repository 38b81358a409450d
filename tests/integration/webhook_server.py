#!/usr/bin/python3
"""An HTTP server (python3 http.server) on 127.0.0.1 that takes webhook POSTs for the
tests. In OUTDIR:

  bodies.jsonl    each accepted body (2xx), one per line, in arrival order
  requests.jsonl  every request: {"n", "method", "path", "status", "headers": {...}, "body"}
                  with the headers a test checks (Content-Type, User-Agent,
                  X-Mamori-Event-Id, Authorization, and any X-*)

  webhook_server.py OUTDIR [--port N] [--port-file FILE] [--fail-first N]
                    [--status CODE] [--reply TEXT]

--fail-first N answers 500 to the first N requests (a receiver that is down for a
while); --status answers CODE to every request after those (default 200), with --reply
as the body. --port 0 (the default) takes a free port; once listening the port is
printed as the first line of stdout and, with --port-file, written to FILE (atomically).
Bodies over 1 MiB get 413. SIGTERM or SIGINT stops it with exit 0.
"""

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20
KEPT_HEADERS = ("content-type", "user-agent", "x-mamori-event-id", "authorization")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--reply", default="ok")
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    lock = threading.Lock()
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.answer(413, "too large")
                self.close_connection = True
                return
            body = self.rfile.read(length).decode("utf-8", "replace")
            with lock:
                count[0] += 1
                n = count[0]
                status = 500 if n <= a.fail_first else a.status
                headers = {k.lower(): v for k, v in self.headers.items()
                           if k.lower() in KEPT_HEADERS or k.lower().startswith("x-")}
                record = dict(n=n, method="POST", path=self.path, status=status,
                              headers=headers, body=body)
                with open(os.path.join(a.outdir, "requests.jsonl"), "a") as f:
                    f.write(json.dumps(record, sort_keys=True) + "\n")
                if 200 <= status < 300:
                    with open(os.path.join(a.outdir, "bodies.jsonl"), "a") as f:
                        f.write(body.replace("\n", " ") + "\n")
            self.answer(status, a.reply if status != 500 else "down for a test")

        def answer(self, status, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]

    def stop(*_):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(a.port_file + ".tmp", a.port_file)
    print(port, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
