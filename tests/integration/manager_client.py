#!/usr/bin/python3
"""A real client of the manager (docs/formats/manager-channel.md) for
manager_server_test.sh: TLS with the certificate pinned by the token's fingerprint
(SHA-256 of the DER; no CA, no host name check), enrollment over HTTPS, the channel
over WebSocket (Debian's python3-websocket). Each subcommand is one scenario; it prints
what the shell checks and exits non-zero, saying why, when the manager misbehaves.

  manager_client.py enroll TOKEN [SECRET]      -> HTTP status and body (JSON)
  manager_client.py SCENARIO MANAGER_JSON ...  -> see the functions below
"""

import base64
import hashlib
import http.client
import json
import os
import queue
import socket
import ssl
import sys
import threading
import time
import uuid

import websocket


SCHEMA = None  # docs/formats/protocol.schema.json, when $MANAGER_SCHEMA names it


def validate(def_name, message):
    """Every message the manager sends must match the committed schema."""
    global SCHEMA
    path = os.environ.get("MANAGER_SCHEMA")
    if not path:
        return
    if SCHEMA is None:
        import jsonschema
        with open(path, encoding="utf-8") as f:
            SCHEMA = json.load(f)
    import jsonschema
    one = {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": "#/$defs/" + def_name}
    errors = list(jsonschema.Draft202012Validator(one).iter_errors(message))
    if errors:
        die("%s does not match the schema (%s): %r" % (def_name, errors[0].message, message))


def die(msg):
    sys.exit("manager_client: " + msg)


def decode_token(text):
    text = text.strip()
    prefix = "mamori-token-v1."
    if not text.startswith(prefix):
        die("not a token: %r" % text[:40])
    body = text[len(prefix):]
    body += "=" * (-len(body) % 4)
    return json.loads(base64.urlsafe_b64decode(body))


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # trust is the fingerprint, checked below
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def check_fp(sslsock, fp):
    der = sslsock.getpeercert(binary_form=True)
    got = hashlib.sha256(der).hexdigest()
    if got != fp:
        die("certificate fingerprint %s is not the token's %s" % (got, fp))


def host_port(url):
    hp = url[len("https://"):].split("/")[0]
    host, port = hp.rsplit(":", 1)
    return host, int(port)


def enroll(url, fp, secret, name="web1", body=None):
    host, port = host_port(url)
    conn = http.client.HTTPSConnection(host, port, context=tls_context(), timeout=10)
    conn.connect()
    check_fp(conn.sock, fp)
    if body is None:
        body = json.dumps({
            "v": 1, "token_secret": secret,
            "host": {"hostname": name + ".example", "machine_id": "m-" + name},
            "agent": {"id": str(uuid.uuid4()), "name": name, "version": "0.12.0"},
            "roots": [{"path": "/var/www/html", "mode": "restore"}],
            "baseline_root_hash": "aa" * 32,
        })
    conn.request("POST", "/api/v1/enroll", body=body,
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    text = r.read().decode()
    validate("EnrollAnswer" if r.status == 200 else "EnrollError", json.loads(text))
    return r.status, text


def connect(m, auth=True, credential=None, timeout=15):
    host, port = host_port(m["url"])
    headers = []
    if auth:
        headers.append("Authorization: Bearer %s:%s" %
                       (m["agent_key"], credential or m["credential"]))
    ws = websocket.create_connection(
        "wss://%s:%d/api/v1/channel" % (host, port), header=headers, timeout=timeout,
        sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": False,
                "ssl_version": ssl.PROTOCOL_TLS_CLIENT})
    check_fp(ws.sock, m["fp"])
    return ws


def send(ws, msg):
    ws.send(json.dumps(msg))


def recv(ws):
    text = ws.recv()
    if not text:
        die("the manager closed the channel")
    m = json.loads(text)
    validate("ManagerMessage", m)
    return m


def recv_ack(ws):
    """The next ack, past any command (a lost agent's hello brings a verify)."""
    while True:
        a = recv(ws)
        if a.get("type") != "command":
            return a


def hello(ws, m, next_sequence=1, root_hash="aa" * 32):
    send(ws, {"v": 1, "type": "hello",
              "agent": {"id": m.get("agent_id", str(uuid.uuid4())), "name": m.get("name", "web1"),
                        "version": "0.12.0"},
              "host": {"hostname": "web1.example"},
              "roots": [{"path": "/var/www/html", "mode": "restore"}],
              "baseline_root_hash": root_hash, "next_sequence": next_sequence})
    w = recv(ws)
    if w.get("type") != "welcome" or w.get("v") != 1 or "heartbeat_s" not in w:
        die("expected welcome, got %r" % w)
    return w


def event(seq, eid=None, action="file-restored"):
    return {"@timestamp": "2026-01-01T00:00:00.000000Z",
            "event": {"id": eid or "ev-%d" % seq, "sequence": seq, "action": action,
                      "dataset": "mamori.guard", "severity": 5},
            "message": "event %d" % seq}


def closed(ws, within):
    """True when the manager ends the channel within `within` s (an error message, a
    close frame, or the connection cut); the messages it sent on the way."""
    ws.settimeout(within)
    seen = []
    try:
        while True:
            text = ws.recv()
            if not text:
                return True, seen
            seen.append(json.loads(text))
            validate("ManagerMessage", seen[-1])
    except websocket.WebSocketTimeoutException:
        return False, seen
    except (websocket.WebSocketConnectionClosedException, ConnectionError, ssl.SSLError, OSError):
        return True, seen


# ---- scenarios ------------------------------------------------------------------------

def s_enroll(args):
    t = decode_token(args[0])
    secret = args[1] if len(args) > 1 and args[1] else t["secret"]
    status, body = enroll(t["url"], t["fp"], secret, name=args[2] if len(args) > 2 else "web1")
    out = {"status": status, "body": json.loads(body) if body else None}
    if status == 200:
        out["manager"] = {"url": t["url"], "fp": t["fp"], "agent_key": out["body"]["agent_key"],
                          "credential": out["body"]["credential"]}
    print(json.dumps(out))


def s_unauthorized(m):
    """The channel without a credential, with a wrong one, with an unknown key: 401."""
    for auth, cred, key in ((False, None, None), (True, "A" * 43, None),
                            (True, None, str(uuid.uuid4()))):
        mm = dict(m)
        if key:
            mm["agent_key"] = key
        try:
            ws = connect(mm, auth=auth, credential=cred)
        except websocket.WebSocketBadStatusException as e:
            if e.status_code != 401:
                die("expected 401, got %d" % e.status_code)
            continue
        ws.close()
        die("the channel was opened with auth=%s credential=%s key=%s" % (auth, cred, key))
    print("401 x3")


def s_events(m):
    """hello, a batch, the same batch again (an ack lost), a later batch: acks right."""
    ws = connect(m)
    hello(ws, m)
    batch = [event(1), event(2), event(3)]
    for _ in range(2):
        send(ws, {"v": 1, "type": "events", "events": batch})
        a = recv(ws)
        if a != {"v": 1, "type": "ack", "through_sequence": 3}:
            die("expected ack through 3, got %r" % a)
    send(ws, {"v": 1, "type": "events", "events": [event(5), event(4)]})
    a = recv(ws)
    if a.get("through_sequence") != 5:
        die("expected ack through 5, got %r" % a)
    send(ws, {"v": 1, "type": "heartbeat", "time_ns": time.time_ns(), "healthy": True})
    send(ws, {"v": 1, "type": "bye", "reason": "stopping"})
    ok, seen = closed(ws, 5)
    print(json.dumps({"acks": [3, 3, 5], "after_bye": seen}))


def s_bad_first(m):
    """A first message that is not hello: error bad-message, closed."""
    ws = connect(m)
    send(ws, {"v": 1, "type": "heartbeat", "time_ns": 1, "healthy": True})
    ok, seen = closed(ws, 5)
    if not ok or not seen or seen[0].get("code") != "bad-message":
        die("expected bad-message then close, got %r (closed %s)" % (seen, ok))
    print(seen[0]["message"])


def s_silent(m):
    """hello, then nothing: the manager closes the channel after lost_after s."""
    ws = connect(m)
    w = hello(ws, m)
    start = time.monotonic()
    ok, seen = closed(ws, w["lost_after_s"] + 5)
    took = time.monotonic() - start
    if not ok:
        die("a silent channel stayed open for %.1f s" % took)
    print(json.dumps({"closed_after_s": round(took, 2), "lost_after_s": w["lost_after_s"],
                      "messages": seen}))


def cut(ws):
    """The TCP connection cut without a close frame or bye."""
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.sock.close()


def s_drop(m):
    """hello, then the TCP connection cut without a close frame or bye."""
    ws = connect(m)
    hello(ws, m)
    cut(ws)
    print("dropped")


def s_recover(m):
    """hello of a lost agent: welcome, then a verify command; answer it."""
    ws = connect(m)
    hello(ws, m)
    c = recv(ws)
    if c.get("type") != "command" or c.get("request", {}).get("cmd") != "verify":
        die("expected a verify command, got %r" % c)
    send(ws, {"v": 1, "type": "result", "command_id": c["command_id"],
              "answer": {"v": 2, "ok": True}})
    send(ws, {"v": 1, "type": "bye", "reason": "stopping"})
    closed(ws, 5)
    print(json.dumps(c))


def s_rebaseline(m):
    """The baseline root hash changes between two hellos: without a deploy reported in
    between (one event expected), then after a deploy-ended event (none)."""
    for root_hash, events in (("bb" * 32, [event(20, "deploy-1", "deploy-ended")]),
                              ("cc" * 32, [])):
        ws = connect(m)
        hello(ws, m, root_hash=root_hash)
        if events:
            send(ws, {"v": 1, "type": "events", "events": events})
            if recv_ack(ws).get("through_sequence") != 20:
                die("no ack for the deploy event")
        send(ws, {"v": 1, "type": "bye", "reason": "stopping"})
        closed(ws, 5)
    print("rebaselined twice")


def s_limits(args):
    """max_agents connections at once (the next is closed at accept, before TLS), and 10 s
    to finish the TLS handshake: a connection that sends nothing is closed then."""
    t = decode_token(args[0])
    limit = int(args[1])
    host, port = host_port(t["url"])
    idle = []
    opened = time.monotonic()
    for _ in range(limit):
        idle.append(socket.create_connection((host, port), timeout=20))
    extra = socket.create_connection((host, port), timeout=5)
    start = time.monotonic()
    try:
        data = extra.recv(1)
    except ConnectionResetError:
        data = b""
    if data != b"" or time.monotonic() - start > 2:
        die("connection %d was not refused at once" % (limit + 1))
    for i, s in enumerate(idle):  # each of the first `limit` is still open
        s.setblocking(False)
        try:
            s.recv(1)
            die("connection %d of %d was closed: connections leaked earlier?" % (i + 1, limit))
        except BlockingIOError:
            pass
        s.settimeout(20)
    try:
        data = idle[0].recv(1)  # silent since it opened
    except ConnectionResetError:
        data = b""
    took = time.monotonic() - opened
    if data != b"" or not 9 <= took <= 12:
        die("a connection that never began TLS was closed after %.1f s, not 10" % took)
    for s in idle:
        s.close()
    status, _ = enroll(t["url"], t["fp"], t["secret"], name="after-limits")
    print(json.dumps({"handshake_closed_after_s": round(took, 2), "enroll_after": status}))


def s_hold(m):
    """hello, then answer pings until the manager closes the channel; prints what it
    said last (a stopping manager says shutting-down)."""
    ws = connect(m)
    hello(ws, m)
    print("connected", flush=True)
    ok, seen = closed(ws, 60)
    print(json.dumps(seen[-1] if seen else None), flush=True)


def big_batch(first, n=400):
    """An events message of ~1.2 MB: past a 1 MiB event_queue_mb."""
    evs = [event(s) for s in range(first, first + n)]
    for e in evs:
        e["message"] += " " + "x" * 3000
    return {"v": 1, "type": "events", "events": evs}


def s_backpressure_drop(m):
    """hello, a batch past the manager's event_queue_mb, then the connection cut."""
    ws = connect(m)
    hello(ws, m)
    send(ws, big_batch(1))
    time.sleep(0.5)
    cut(ws)
    print("dropped")


def s_backpressure_silent(m):
    """hello, a batch past the manager's event_queue_mb, then frozen: the socket open,
    nothing sent or read for lost_after + 4 s. Prints when the batch went (ms since the
    epoch)."""
    ws = connect(m)
    w = hello(ws, m)
    send(ws, big_batch(1))
    print(json.dumps({"sent_ms": time.time_ns() // 1_000_000}), flush=True)
    time.sleep(w["lost_after_s"] + 4)


def s_welcome_time(m):
    """How long a TLS connection, the upgrade and hello take to bring the welcome."""
    start = time.monotonic()
    ws = connect(m)
    hello(ws, m)
    took = time.monotonic() - start
    send(ws, {"v": 1, "type": "bye", "reason": "stopping"})
    closed(ws, 5)
    print(json.dumps({"welcome_s": round(took, 3)}))


def s_backpressure(m):
    """A batch larger than the manager's event_queue_mb while its store is held by
    another session, then a small batch (held for the channel while it waits) and a large
    one (past what may be held: dropped), heartbeats every heartbeat_s and a ping every
    second. The acks must come in order, 400 then 410, then a resend for the dropped
    batch, which is sent again marked resent and acked through 810; every ping answered
    meanwhile. Prints when the first ack came, the slowest pong, the resends."""
    ws = connect(m)
    w = hello(ws, m)
    hb = w["heartbeat_s"]
    start = time.monotonic()
    send(ws, big_batch(1))
    send(ws, {"v": 1, "type": "events", "events": [event(s) for s in range(401, 411)]})
    send(ws, big_batch(411))
    next_hb = next_ping = start
    ping_sent, slowest_pong, pongs = None, 0.0, 0
    expected = ["ack 400", "ack 410", "resend", "ack 810"]
    got, first_ack = [], None
    ws.settimeout(0.1)
    while len(got) < len(expected) and time.monotonic() - start < 60:
        now = time.monotonic()
        if now >= next_hb:
            send(ws, {"v": 1, "type": "heartbeat", "time_ns": time.time_ns(), "healthy": True})
            next_hb += hb
        if ping_sent is None and now >= next_ping:
            ws.ping()
            ping_sent, next_ping = now, now + 1
        try:
            op, frame = ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketTimeoutException:
            if ping_sent is not None and time.monotonic() - ping_sent > 5:
                die("no pong within 5 s")
            continue
        now = time.monotonic()
        if op == websocket.ABNF.OPCODE_PONG and ping_sent is not None:
            slowest_pong, ping_sent, pongs = max(slowest_pong, now - ping_sent), None, pongs + 1
        elif op == websocket.ABNF.OPCODE_TEXT:
            a = json.loads(frame.data)
            validate("ManagerMessage", a)
            got.append(a["type"] + (" %d" % a["through_sequence"] if a["type"] == "ack" else ""))
            if got != expected[:len(got)]:
                die("expected %s, got %s" % (expected, got))
            if first_ack is None:
                first_ack = now - start
            if a["type"] == "resend":  # everything not acknowledged, again
                msg = big_batch(411)
                msg["resent"] = True
                send(ws, msg)
        elif op == websocket.ABNF.OPCODE_CLOSE:
            die("the manager closed the channel after %.1f s" % (now - start))
    if got != expected:
        die("within 60 s: %s of %s" % (got, expected))
    ws.settimeout(15)
    send(ws, {"v": 1, "type": "bye", "reason": "stopping"})
    closed(ws, 5)
    print(json.dumps({"first_ack_s": round(first_ack, 2), "slowest_pong_s": round(slowest_pong, 3),
                      "pongs": pongs, "resends": got.count("resend"), "heartbeat_s": hb,
                      "lost_after_s": w["lost_after_s"]}))


def reader(ws):
    """Reads `ws` on a thread (so its pings are answered, as a live agent's are) into a
    queue of messages; None when the channel ends."""
    q = queue.Queue()

    def run():
        try:
            while True:
                text = ws.recv()
                if not text:
                    break
                q.put(json.loads(text))
        except Exception:  # the channel ended, however
            pass
        q.put(None)

    threading.Thread(target=run, daemon=True).start()
    return q


def heartbeats(ws, every):
    """Sends a heartbeat on `ws` every `every` s from a thread, as a live agent does (a
    silent connection is lost after lost_after s however slowly the rest goes); stopped
    by setting the returned event."""
    stop = threading.Event()

    def run():
        while not stop.wait(every):
            try:
                send(ws, {"v": 1, "type": "heartbeat", "time_ns": time.time_ns(), "healthy": True})
            except Exception:  # the channel ended: the reader reports it
                return

    threading.Thread(target=run, daemon=True).start()
    return stop


def s_duplicate(m):
    """A second connection with the same key while the first is live (it answers pings
    and heartbeats): refused with duplicate-identity; the first keeps working."""
    first = connect(m)
    w = hello(first, m)
    q = reader(first)
    beating = heartbeats(first, w["heartbeat_s"])
    second = connect(m)
    ok, seen = closed(second, 8)
    if not ok or not seen or seen[0].get("code") != "duplicate-identity":
        die("expected duplicate-identity then close, got %r (closed %s)" % (seen, ok))
    send(first, {"v": 1, "type": "events", "events": [event(10, "dup-ev")]})
    while True:
        a = q.get(timeout=5)
        if a is None:
            die("the first connection was closed")
        if a.get("type") == "ack":
            break
    if a.get("through_sequence") != 10:
        die("the first connection stopped working: %r" % a)
    beating.set()
    send(first, {"v": 1, "type": "bye", "reason": "stopping"})
    print("duplicate refused; the first connection still acks")


def s_replace(m):
    """The agent's old connection is dead without the manager knowing (it answers no
    ping); the agent's new connection is let in and the old one closed."""
    old = connect(m)
    hello(old, m)
    start = time.monotonic()
    new = connect(m)
    hello(new, m)  # a welcome, not duplicate-identity
    took = time.monotonic() - start
    ok, seen = closed(old, 5)
    if not ok:
        die("the dead connection was not closed")
    send(new, {"v": 1, "type": "bye", "reason": "stopping"})
    closed(new, 5)
    print(json.dumps({"welcome_after_s": round(took, 2)}))


def s_oversize(m):
    """A message over 4 MiB, a batch over 1000 events, a message nested too deep: each
    closes the channel; a new one works."""
    ws = connect(m)
    hello(ws, m)
    try:
        ws.send("x" * (4 * 1024 * 1024 + 10))
    except (websocket.WebSocketConnectionClosedException, OSError, ssl.SSLError):
        pass
    ok, seen = closed(ws, 10)
    if not ok:
        die("a 4 MiB + 10 message did not close the channel")
    # A batch of 1001 events is refused as a message (bad-message), not stored.
    ws = connect(m)
    hello(ws, m)
    send(ws, {"v": 1, "type": "events", "events": [event(100 + i) for i in range(1001)]})
    ok, seen = closed(ws, 10)
    if not ok or not seen or seen[-1].get("code") != "bad-message":
        die("a batch of 1001 events: expected bad-message, got %r" % seen)
    # A result nested a million levels deep (2 MB): parsed, it would overflow the stack of
    # whatever copied or printed it; refused as a message before it is parsed.
    ws = connect(m)
    hello(ws, m)
    levels = 1_000_000
    ws.send('{"v":1,"type":"result","command_id":"c","answer":' + "[" * levels + "]" * levels + "}")
    ok, seen = closed(ws, 10)
    if not ok or not seen or seen[-1].get("code") != "bad-message" \
            or "nests deeper" not in seen[-1].get("message", ""):
        die("a result nested %d levels deep: expected bad-message, got %r" % (levels, seen))
    ws = connect(m)
    hello(ws, m)
    send(ws, {"v": 1, "type": "bye", "reason": "stopping"})
    closed(ws, 5)
    print("closed; the manager still serves")


def raw_request(url, fp, method, path):
    host, port = host_port(url)
    conn = http.client.HTTPSConnection(host, port, context=tls_context(), timeout=10)
    conn.connect()
    check_fp(conn.sock, fp)
    conn.request(method, path)
    return conn.getresponse().status


def s_garbage_enroll(args):
    t = decode_token(args[0])
    out = [{"status": raw_request(t["url"], t["fp"], m, p)}
           for m, p in (("GET", "/api/v1/enroll"), ("GET", "/nope"), ("GET", "/api/v1/channel"))]
    for body in ("{not json", json.dumps({"v": 1}), json.dumps({"v": 7, "token_secret": "x"})):
        status, text = enroll(t["url"], t["fp"], None, body=body)
        out.append({"status": status, "body": json.loads(text)})
    print(json.dumps(out))


def s_take_turns(ms):
    """Two agents, each a batch past the manager's event_queue_mb while its store is held:
    the writer takes the first alone, the second queues behind it, so once the first is
    stored the queue is still full and that channel waits its turn to read again. Both
    heartbeat as agents do; both must stay connected through their acks and a second
    batch each, then say bye."""
    chans = []
    for m in ms:
        ws = connect(m)
        w = hello(ws, m)
        chans.append((ws, reader(ws), heartbeats(ws, w["heartbeat_s"])))
    for ws, _, _ in chans:
        send(ws, big_batch(1))
        time.sleep(0.5)

    def acked(through, within=60):
        got, start = set(), time.monotonic()
        while len(got) < len(chans):
            if time.monotonic() - start > within:
                die("acks through %d: only channel(s) %s within %d s" % (through, got, within))
            for i, (_, q, _) in enumerate(chans):
                try:
                    msg = q.get(timeout=0.05)
                except queue.Empty:
                    continue
                if msg is None:
                    die("the manager ended channel %d waiting for its ack through %d" % (i, through))
                if msg.get("type") == "ack" and msg["through_sequence"] == through:
                    got.add(i)
        return round(time.monotonic() - start, 2)

    first = acked(400)
    for i, (ws, _, _) in enumerate(chans):
        try:
            send(ws, big_batch(401))
        except Exception as e:  # the channel was closed, however
            die("channel %d ended after its first ack: %s" % (i, e))
    second = acked(800)
    for ws, _, stop in chans:
        stop.set()
        send(ws, {"v": 1, "type": "bye", "reason": "stopping"})
    print(json.dumps({"first_acks_s": first, "second_acks_s": second}))


SCENARIOS = {"unauthorized": s_unauthorized, "events": s_events, "bad-first": s_bad_first,
             "silent": s_silent, "drop": s_drop, "recover": s_recover,
             "duplicate": s_duplicate, "replace": s_replace, "rebaseline": s_rebaseline, "hold": s_hold, "oversize": s_oversize,
             "backpressure": s_backpressure, "backpressure-drop": s_backpressure_drop,
             "backpressure-silent": s_backpressure_silent,
             "welcome-time": s_welcome_time}
MULTI_SCENARIOS = {"take-turns": s_take_turns}

if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "enroll":
        s_enroll(rest)
    elif cmd == "limits":
        s_limits(rest)
    elif cmd == "garbage-enroll":
        s_garbage_enroll(rest)
    elif cmd in MULTI_SCENARIOS:
        MULTI_SCENARIOS[cmd]([json.loads(r) for r in rest])
    else:
        SCENARIOS[cmd](json.loads(rest[0]))
