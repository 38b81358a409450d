#!/usr/bin/python3
"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the tests: stores every message it
accepts as MAILDIR/NNNN.eml, the envelope prepended as X-Test-* headers:

  X-Test-Mail-From: sender     X-Test-Rcpt-To: a@x, b@y
  X-Test-Auth-User: user (when AUTH was used)   X-Test-TLS: none | starttls | implicit

Each file appears whole (written aside, then renamed), so a test may watch MAILDIR.

  smtp_server.py MAILDIR [--port N] [--port-file FILE] [--auth USER PASS]
                 [--tls CERT KEY] [--smtps]

--port 0 (the default) takes a free port. Once listening, the port is printed as the
first line of stdout and, with --port-file, written to FILE (atomically): wait on
either, never on a timer. --auth requires AUTH PLAIN or LOGIN with USER and PASS (allowed
without TLS: the tests run on loopback). --tls offers STARTTLS (or, with --smtps, speaks
TLS from the first byte) with CERT and KEY; when both are missing they are made first, a
self-signed pair for 127.0.0.1 and localhost, so CERT is the CA file the client trusts.
SIGTERM or SIGINT stops it with exit 0. Needs Debian's python3-aiosmtpd.
"""

import argparse
import asyncio
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Maildir:
    def __init__(self, path, tls_kind):
        self.path = path
        self.tls_kind = tls_kind
        os.makedirs(path, exist_ok=True)
        numbers = [int(n[:-4]) for n in os.listdir(path) if n.endswith(".eml") and n[:-4].isdigit()]
        self.count = max(numbers, default=0)

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = os.path.join(self.path, "%04d.eml" % self.count)
        tls = self.tls_kind if self.tls_kind == "implicit" else ("starttls" if session.ssl else "none")
        head = "X-Test-Mail-From: %s\r\nX-Test-Rcpt-To: %s\r\n" % (
            envelope.mail_from, ", ".join(envelope.rcpt_tos))
        if session.authenticated:
            head += "X-Test-Auth-User: %s\r\n" % session.auth_data.login.decode("utf-8", "replace")
        head += "X-Test-TLS: %s\r\n" % tls
        with open(name + ".tmp", "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(name + ".tmp", name)
        return "250 2.0.0 stored as %04d.eml" % self.count


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and
              auth_data.login == user.encode() and auth_data.password == password.encode())
        # handled=False: aiosmtpd then answers 535 itself (the default leaves it silent).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticate


def tls_context(cert, key):
    if not (os.path.exists(cert) and os.path.exists(key)):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", key, "-out", cert],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("maildir")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASS"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--smtps", action="store_true", help="TLS from the first byte (needs --tls)")
    a = p.parse_args()
    if a.smtps and not a.tls:
        p.error("--smtps needs --tls CERT KEY")

    # Plain AUTH on loopback is what the tests want: no warnings about it on stderr.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    ctx = tls_context(*a.tls) if a.tls else None
    handler = Maildir(a.maildir, "implicit" if a.smtps else "none")
    kwargs = dict(hostname="mamori-test-smtp", auth_require_tls=False)
    if a.auth:
        kwargs.update(authenticator=make_authenticator(*a.auth), auth_required=True)
    if ctx and not a.smtps:
        kwargs.update(tls_context=ctx)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", a.port))
    port = sock.getsockname()[1]

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, **kwargs), sock=sock, ssl=ctx if a.smtps else None))
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(a.port_file + ".tmp", a.port_file)
    print(port, flush=True)

    loop.run_until_complete(stop)
    server.close()
    loop.run_until_complete(server.wait_closed())
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
