#!/usr/bin/env python3
"""Event ids that grow with time vs random ones, in the manager's SQLite events table.

The table and its indexes are the manager's (schema 6, manager/db/sqlite_store.cc), the
cache is its 32 MiB; 10,000 agents, each event ~1.2 KB as the agents send them. The table
is filled with PREFILL events, then 600,000 more are inserted in transactions of 40,000
(about what the event writer commits at once under load) and timed. Both kinds of id are
run ROUNDS times, alternating, in the same run; the ratio is printed. Python's own cost per
row is in both figures alike, so the ratio understates SQLite's difference.

  bench/manager/id_locality.py [PREFILL] [ROUNDS] [MODES]   (defaults 2000000 2
                                                   random,ordered; ~3 GB per db)
MODES, comma-separated: random (random ids), ordered (time-ordered ids), ordered-id-first
(time-ordered ids, the duplicate key UNIQUE (event_id, agent_key) instead of
(agent_key, event_id)). BATCH (environment, default 1): rows per agent in a row, as an
agent's batch arrives. Databases go to $MAMORI_BENCH_DIR (default /var/tmp) and are
removed after each run.
"""
import os
import random
import sqlite3
import sys
import time

SCHEMA = """
CREATE TABLE events (row INTEGER PRIMARY KEY AUTOINCREMENT, agent_key TEXT NOT NULL,
 event_id TEXT NOT NULL, sequence INTEGER NOT NULL, time_ns INTEGER NOT NULL,
 action TEXT NOT NULL, path TEXT NOT NULL, source_ip TEXT NOT NULL, severity INTEGER NOT NULL,
 received_at_ns INTEGER NOT NULL, json TEXT NOT NULL, UNIQUE (agent_key, event_id));
CREATE INDEX events_time ON events (time_ns);
CREATE INDEX events_agent_seq ON events (agent_key, sequence);
CREATE INDEX events_action ON events (action);
CREATE INDEX events_path ON events (path);
CREATE INDEX events_source_ip ON events (source_ip);
CREATE INDEX events_received ON events (received_at_ns);
"""
AGENTS, TX, TIMED_TX = 10_000, 40_000, 15


MODES = ("random", "ordered", "ordered-id-first")


def run(mode: str, prefill: int) -> float:
    ordered = mode != "random"
    schema = SCHEMA
    if mode == "ordered-id-first":
        schema = SCHEMA.replace("UNIQUE (agent_key, event_id)", "UNIQUE (event_id, agent_key)")
    batch = int(os.environ.get("BATCH", "1"))
    path = os.path.join(os.environ.get("MAMORI_BENCH_DIR", "/var/tmp"),
                        f"mamori-id-locality-{os.getpid()}.db")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA cache_size=-32768")
        db.executescript(schema)
        rng = random.Random(1)
        agents = [rng.randbytes(16).hex() for _ in range(AGENTS)]
        seq = [0] * AGENTS
        clock_us = [1_700_000_000_000_000]
        body = "x" * 1100

        def tx():
            rows = []
            a = 0
            for i in range(TX):
                if i % batch == 0:
                    a = rng.randrange(AGENTS)
                seq[a] += 1
                clock_us[0] += 50  # 20,000 events/s
                ms = clock_us[0] // 1000
                eid = f"{ms:012x}{rng.randbytes(10).hex()}" if ordered else rng.randbytes(16).hex()
                rows.append((agents[a], eid, seq[a], clock_us[0] * 1000, "file-restored",
                             f"wp/f{i % 15}.php", f"198.51.100.{i % 200}", 5,
                             clock_us[0] * 1000, body))
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO events (agent_key, event_id, sequence, time_ns, action, path, "
                "source_ip, severity, received_at_ns, json) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            db.execute("COMMIT")

        for _ in range(prefill // TX):
            tx()
        start = time.monotonic()
        for _ in range(TIMED_TX):
            tx()
        return TIMED_TX * TX / (time.monotonic() - start)
    finally:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass


def main() -> None:
    prefill = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    modes = sys.argv[3].split(",") if len(sys.argv) > 3 else ["random", "ordered"]
    for m in modes:
        if m not in MODES:
            sys.exit(f"id_locality.py: unknown mode {m!r} (one of {', '.join(MODES)})")
    got = {m: [] for m in modes}
    for r in range(rounds):
        for m in modes:
            rate = run(m, prefill)
            got[m].append(rate)
            print(f"round {r + 1}: {m}: {rate:,.0f} events/s", flush=True)
    mean = {m: sum(v) / len(v) for m, v in got.items()}
    print(f"| mode | events/s (mean of {rounds}) | vs {modes[0]} |\n|---|---:|---:|")
    for m in modes:
        print(f"| {m} | {mean[m]:,.0f} | {mean[m] / mean[modes[0]]:.2f} |")


if __name__ == "__main__":
    main()
