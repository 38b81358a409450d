#!/usr/bin/env bash
# The segment outbox (docs/formats/outbox.md) with the real agent: a webhook receiver that
# refuses connections while thousands of events are written gets every one of them, in
# sequence order and contiguous, once it is back (also across an agent restart); the
# agent killed with SIGKILL in the middle of a flood loses no event that was written
# before the kill and writes none twice (checked on the segments themselves, parsed here
# from the documented format, and on events.jsonl). `mamori status` shows the outbox.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/webhook_lib.sh"

mkdir -p "$SCRATCH/www"
echo index >"$SCRATCH/www/index.html"
write_config "$SCRATCH/www"
HOOK_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MODE=alert agent_config "storm_changes_per_second = 1000000" "path_restores_per_second = 1000000" \
  "outbox_quota_mb = 64"
cat >>"$CONFIG" <<EOF
[[sink]]
type = "webhook"
name = "late"
url = "http://127.0.0.1:$HOOK_PORT/hook"
timeout = 2
EOF

# segments: every record in $STATE/outbox as "SEQ ID" lines, read per the format doc
# (magic, CRC-32C, length, type, sequence); a damaged record stops the segment, reported.
segments() {
  python3 - "$STATE/outbox" <<'PY'
import json, os, struct, sys
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
    T.append(c)
def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc = (crc >> 8) ^ T[(crc ^ b) & 0xff]
    return crc ^ 0xffffffff
d = sys.argv[1]
for name in sorted(n for n in os.listdir(d) if n.endswith(".seg")):
    b = open(os.path.join(d, name), "rb").read()
    assert b[:8] == b"mamoriOB", name
    ver, flags, first = struct.unpack_from("<IIQ", b, 8)
    assert ver == 1 and first == int(name[:16]), name
    at = 24
    while at + 24 <= len(b):
        magic, crc, length, typ, sev, _, seq = struct.unpack_from("<IIIBBHQ", b, at)
        payload = b[at + 24: at + 24 + length]
        if magic != 0x7e0b5e9a or len(payload) != length or crc32c(b[at + 8: at + 24] + payload) != crc:
            print("DAMAGED", name, at, file=sys.stderr)
            break
        at += 24 + length
        if typ == 1:
            e = json.loads(payload)
            assert e["event"]["sequence"] == seq
            print(seq, e["event"]["id"])
PY
}

step "thousands of events while the webhook refuses connections"
mamori -q init
start_agent
for i in $(seq 1 1000); do echo "x$i" >"$SCRATCH/www/new$i.html"; done
enough() { (($(events 'e["event"]["action"] == "file-created"' | wc -l) >= 1000)); }
WAIT_SECONDS=60 wait_for "1000 file-created events" enough
mamori status --json >"$SCRATCH/status.json" || true
json 'j["agent"]["outbox"]["next_sequence"] > 1000' "$(cat "$SCRATCH/status.json")" >/dev/null ||
  fail "mamori status has no outbox figures: $(cat "$SCRATCH/status.json")"

step "an agent restart while the receiver is still down"
stop_agent
start_agent
echo "after restart" >"$SCRATCH/www/restart.html"
wait_for "the event after the restart" grep -q restart.html "$EVENTS"

step "the receiver comes back: every event, in order, contiguous sequences"
start_webhook "$SCRATCH/hook" --port "$HOOK_PORT"
total=$(events | wc -l)
WAIT_SECONDS=180 WAIT_EXPLAIN='echo "$(webhook_bodies) of $total"; tail -3 "$AGENT_LOG"' webhook_wait_bodies "$total"
python3 - "$WEBHOOK_OUT" "$EVENTS" <<'PY' || fail "the webhook did not get every event exactly once in order"
import json, sys
got = [json.loads(l)["event"]["sequence"] for l in open(sys.argv[1])]
want = [json.loads(l)["event"]["sequence"] for l in open(sys.argv[2])]
assert got == sorted(got), "out of order"
assert len(set(got)) == len(got), "a sequence twice"
assert got == list(range(got[0], got[0] + len(got))), "a gap"
assert got[0] == 1 and set(want) <= set(got), "an event of the log never reached the sink"
print(len(got), "events at the webhook, sequences", got[0], "to", got[-1])
PY
check_events "$WEBHOOK_OUT" "$EVENTS"
stop_agent
stop_webhook || fail "the webhook server did not stop"

step "SIGKILL during a flood: every event written before the kill is kept exactly once"
start_agent
(for i in $(seq 1 4000); do echo "y$i" >"$SCRATCH/www/flood$i.html"; done) &
FLOOD=$!
on_exit "kill $FLOOD 2>/dev/null || true"
some() { (($(events 'e["event"]["action"] == "file-created" and "flood" in e["file"]["path"]' | wc -l) >= 500)); }
WAIT_SECONDS=60 wait_for "the flood to be under way" some
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=""
segments | sort -n >"$SCRATCH/segments-before"
cp "$EVENTS" "$SCRATCH/exported-before-kill"
wait "$FLOOD" || true
start_agent
echo after >"$SCRATCH/www/after-kill.html"
wait_for "an event after the restart" grep -q after-kill.html "$EVENTS"
stop_agent
segments | sort -n >"$SCRATCH/segments-after"
python3 - "$SCRATCH/segments-before" "$SCRATCH/segments-after" "$SCRATCH/exported-before-kill" "$EVENTS" <<'PY' || fail "events lost or doubled across the SIGKILL"
import json, sys
before = [l.split() for l in open(sys.argv[1]) if l.strip()]
after = [l.split() for l in open(sys.argv[2]) if l.strip()]
seqs = [int(s) for s, _ in after]
assert len(set(seqs)) == len(seqs), "a sequence number twice in the segments"
assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap in the segments"
a = {int(s): i for s, i in after}
for s, i in before:
    assert a.get(int(s)) == i, f"record {s} changed or vanished"
ids = [i for _, i in after]
assert len(set(ids)) == len(ids), "an event id twice"
exported = [json.loads(l) for l in open(sys.argv[4]) if l.endswith("\n")]
es = [e["event"]["sequence"] for e in exported]
assert len(set(es)) == len(es), "a line exported twice"
pre = {json.loads(l)["event"]["id"] for l in open(sys.argv[3]) if l.endswith("\n")}
assert pre <= {e["event"]["id"] for e in exported}, "an exported event vanished"
assert set(es) >= set(a), "the export lacks a record"
print(len(before), "records before the kill,", len(after), "after; export", len(es))
PY
