#!/usr/bin/env python3
"""How fast the console's events page answers a filter change, on a big store.

The page asks GET /api/v1/events?order=newest&limit=100 and GET /api/v1/events/histogram
(its chart) with the filters of its form (web/src/pages/events.ts); its own drawing of
100 rows and a hundred bars is a few ms, so the manager's answers are the cost (timed
one after the other: the browser may ask both at once). This fills a manager's SQLite store (its own schema: the real
`mamori manager` creates it) with EVENTS events of AGENTS agents spread over the last
24 hours, starts the manager on loopback, signs in as the console does and times each
shape of query REPEAT times over one keep-alive TLS connection: p50, p95, worst.
There is no peer to run beside it: no open tool serves this page.

  bench/console/events_page.py MAMORI [EVENTS] [AGENTS] [REPEAT]
      (defaults 1000000 1000 20; ~0.8 GB in $MAMORI_BENCH_DIR, default /var/tmp, removed after)
"""
import http.client
import json
import os
import random
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

mamori = os.path.abspath(sys.argv[1])
events = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
agents = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 20
work = tempfile.mkdtemp(prefix="mamori-console-bench.", dir=os.environ.get("MAMORI_BENCH_DIR", "/var/tmp"))
manager = None
try:
    port = 20000 + os.getpid() % 20000
    config = os.path.join(work, "mamori.toml")
    with open(config, "w") as f:
        f.write(f'state_dir = "{work}/state"\n[manager]\nlisten = "127.0.0.1:{port}"\n'
                f'public_url = "https://127.0.0.1:{port}"\nstate_dir = "{work}/manager"\n'
                f'database = "sqlite://{work}/manager.db"\nconsole_dir = ""\nretention_days = 0\n'
                f'max_events_per_agent = 0\n')
    subprocess.run([mamori, "--config", config, "manager", "user", "add", "bench", "--role", "viewer"],
                   input=b"bench password 1\n", check=True, stdout=subprocess.DEVNULL)

    now_ns = time.time_ns()
    actions = [("file-restored", 5, 40), ("file-changed", 3, 15), ("file-quarantined", 5, 10),
               ("tamper-attributed", 5, 10), ("ip-banned", 5, 10), ("log-attack", 3, 10),
               ("agent-started", 1, 5)]
    weights = [w for _, _, w in actions]
    rng = random.Random(1)
    keys = ["agent-%05d" % i for i in range(agents)]
    started = time.monotonic()
    db = sqlite3.connect(os.path.join(work, "manager.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    seq = [0] * agents

    def rows():
        for n in range(events):
            t = now_ns - 86400 * 10**9 + n * (86400 * 10**9 // events)
            a = rng.randrange(agents)
            seq[a] += 1
            action, severity, _ = rng.choices(actions, weights)[0]
            path = "/var/www/site%d/wp-content/plugins/p%d/f%d.php" % (a % 50, rng.randrange(300), rng.randrange(50))
            ip = "203.0.%d.%d" % (rng.randrange(256), rng.randrange(256)) if action in (
                "tamper-attributed", "ip-banned", "log-attack") else ""
            eid = "%012x%020x" % (t // 10**6, rng.getrandbits(80))
            body = {"@timestamp": "2026-12-06T00:00:00.000000Z", "event": {
                "id": eid, "action": action, "severity": severity, "sequence": seq[a],
                "module": "mamori", "kind": "alert" if severity >= 5 else "event"},
                "message": "%s '%s'" % (action, path), "file": {"path": path},
                "host": {"name": keys[a]}, "process": {"pid": 1234, "executable": "/usr/sbin/php-fpm8.2"},
                "user": {"name": "www-data"}}
            if ip:
                body["source"] = {"ip": ip}
            yield (keys[a], eid, seq[a], t, action, path, ip, severity, t, json.dumps(body))

    db.executemany("INSERT INTO events (agent_key, event_id, sequence, time_ns, action, path, "
                   "source_ip, severity, received_at_ns, json) VALUES (?,?,?,?,?,?,?,?,?,?)", rows())
    # The chart's per-minute rollup, as the manager's own writes keep it (and as its
    # schema migration fills it from events already stored).
    db.execute("INSERT INTO event_minutes SELECT time_ns / 60000000000, action, severity, COUNT(*) "
               "FROM events GROUP BY 1, 2, 3")
    db.commit()
    db.close()
    print("filled %d events of %d agents in %.0f s (%.0f MB)" % (
        events, agents, time.monotonic() - started, os.path.getsize(os.path.join(work, "manager.db")) / 1e6))

    log = open(os.path.join(work, "manager.log"), "w")
    manager = subprocess.Popen([mamori, "--config", config, "manager"], stderr=log)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for _ in range(300):
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
            conn.connect()
            break
        except OSError:
            time.sleep(0.1)
    conn.request("POST", "/api/v1/login", json.dumps({"name": "bench", "password": "bench password 1"}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    cookie = r.getheader("Set-Cookie").split(";")[0]

    def since(seconds):
        return "since=%d" % (time.time_ns() - seconds * 10**9)

    # Each filter change asks for the newest 100 rows and for the chart's counts (as the
    # events page does: 96 bars for 24 h, 60 for an hour, 84 for 7 days, 100 for all).
    shapes = [
        ("the default view (last 24 h)", lambda: since(86400), 96),
        ("last hour", lambda: since(3600), 60),
        ("all time", lambda: "", 100),
        ("one agent, 24 h", lambda: since(86400) + "&agent=" + keys[rng.randrange(agents)], 96),
        ("action file-quarantined, 24 h", lambda: since(86400) + "&action=file-quarantined", 96),
        ("rare action agent-started, 7 d", lambda: since(7 * 86400) + "&action=agent-started", 84),
        ("path prefix (one site), 24 h", lambda: since(86400) + "&path_prefix=/var/www/site%d/" % rng.randrange(50), 96),
        ("one address, 24 h", lambda: since(86400) + "&source_ip=203.0.%d.%d" % (rng.randrange(256), rng.randrange(256)), 96),
        ("severity >= 5, 24 h", lambda: since(86400) + "&min_severity=5", 96),
        ("one agent + action, 24 h", lambda: since(86400) + "&agent=%s&action=file-restored" % keys[rng.randrange(agents)], 96),
    ]

    def get(path):
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit("%s: %d %s" % (path, r.status, body[:200]))
        return (time.perf_counter() - t0) * 1000, json.loads(body)

    def p95(values):
        return sorted(values)[int(len(values) * 0.95) - 1]

    print("%-34s %8s %8s %8s %6s %9s %9s" % (
        "filter (newest 100 + chart)", "p50 ms", "p95 ms", "worst", "rows", "list p95", "chart p95"))
    every = []
    for name, query, buckets in shapes:
        took, lists, charts = [], [], []
        for _ in range(repeat):
            q = query()
            listed, page = get("/api/v1/events?order=newest&limit=100" + ("&" + q if q else ""))
            charted, chart = get("/api/v1/events/histogram?buckets=%d" % buckets + ("&" + q if q else ""))
            if name == "all time" and sum(chart["counts"]) != events:
                sys.exit("the chart of all time counts %d events, not %d" % (sum(chart["counts"]), events))
            lists.append(listed)
            charts.append(charted)
            took.append(listed + charted)
        took.sort()
        every += took
        print("%-34s %8.1f %8.1f %8.1f %6d %9.1f %9.1f" % (
            name, took[len(took) // 2], p95(took), took[-1], len(page["events"]), p95(lists), p95(charts)))
    print("all filter changes (list then chart, one connection): p95 %.1f ms (target 300 ms), worst %.1f ms" % (
        p95(every), max(every)))
finally:
    if manager:
        manager.terminate()
        manager.wait()
    shutil.rmtree(work, ignore_errors=True)
