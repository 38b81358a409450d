#!/usr/bin/python3
"""An HTTP server on 127.0.0.1 that answers like VirusTotal's v3 file look-up
(GET /api/v3/files/{sha256}, header x-apikey) for the tests. In OUTDIR:

  requests.jsonl  every request: {"n", "method", "path", "status", "key_ok",
                  "body_bytes", "content_length"}

  vt_server.py OUTDIR [--port N] [--port-file FILE] [--key KEY] [--known FILE]
               [--status-at N:CODE]... [--huge SHA256] [--garbage SHA256]

--known FILE: one known hash a line, "SHA256 MALICIOUS SUSPICIOUS UNDETECTED HARMLESS
[LABEL]"; each gets 200 with those stats (and the label as
popular_threat_classification.suggested_threat_label, meaningful_name "sample.php").
Any other well-formed hash gets 404 NotFoundError. A wrong or missing x-apikey gets 401
WrongCredentialsError. --status-at 3:429 answers the 3rd request 429 QuotaExceededError
(or CODE with an error body). --huge answers that hash with 2 MiB of JSON, --garbage with
text that is not JSON. Anything but GET gets 405. --port 0 (the default) takes a free
port, printed as the first line of stdout and, with --port-file, written to FILE.
SIGTERM or SIGINT stops it with exit 0.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH_RE = re.compile(r"^/api/v3/files/([0-9a-f]{64})$")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--key", default="test-key")
    p.add_argument("--known")
    p.add_argument("--status-at", action="append", default=[])
    p.add_argument("--huge", default="")
    p.add_argument("--garbage", default="")
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    known = {}
    if a.known:
        with open(a.known) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5:
                    known[parts[0]] = (list(map(int, parts[1:5])), " ".join(parts[5:]))
    status_at = {}
    for s in a.status_at:
        n, code = s.split(":")
        status_at[int(n)] = int(code)
    lock = threading.Lock()
    count = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return status

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            with lock:
                count[0] += 1
                n = count[0]
            key_ok = self.headers.get("x-apikey") == a.key
            m = PATH_RE.match(self.path)
            if self.command != "GET":
                status = self.reply(405, {"error": {"code": "MethodNotAllowed"}})
            elif n in status_at:
                code = {429: "QuotaExceededError"}.get(status_at[n], "TransientError")
                status = self.reply(status_at[n], {"error": {"code": code, "message": "x"}})
            elif not key_ok:
                status = self.reply(401, {"error": {"code": "WrongCredentialsError"}})
            elif not m:
                status = self.reply(400, {"error": {"code": "BadRequestError"}})
            elif m.group(1) == a.huge:
                status = self.reply(200, b'{"data": {"pad": "' + b"x" * (2 << 20) + b'"}}')
            elif m.group(1) == a.garbage:
                status = self.reply(200, b"<html>not json</html>")
            elif m.group(1) in known:
                (mal, sus, und, harm), label = known[m.group(1)]
                attrs = {
                    "last_analysis_stats": {
                        "malicious": mal,
                        "suspicious": sus,
                        "undetected": und,
                        "harmless": harm,
                        "timeout": 0,
                    },
                    "meaningful_name": "sample.php",
                }
                if label:
                    attrs["popular_threat_classification"] = {"suggested_threat_label": label}
                status = self.reply(200, {"data": {"type": "file", "id": m.group(1),
                                                   "attributes": attrs}})
            else:
                status = self.reply(404, {"error": {"code": "NotFoundError",
                                                    "message": "not found"}})
            record = {"n": n, "method": self.command, "path": self.path, "status": status,
                      "key_ok": key_ok, "body_bytes": len(body),
                      "content_length": self.headers.get("Content-Length")}
            with lock:
                with open(os.path.join(a.outdir, "requests.jsonl"), "a") as f:
                    f.write(json.dumps(record) + "\n")

        do_GET = do_POST = do_PUT = do_HEAD = handle_any

    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, a.port_file)
    print(port, flush=True)
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
