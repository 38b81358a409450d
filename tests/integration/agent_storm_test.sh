#!/usr/bin/env bash
# A tamper storm: 100,000 writes over 10,000 files (10 rounds over every file, as fast
# as python3 can open/write/close). Once quiet, every file is byte-identical to its
# baseline (check --full, and cmp against a pristine copy), the storm was reported, and
# the events account for every one of the 10,000 files: per-file events plus the paths
# the summaries list. Prints the time from the end of the burst to quiescence.
# shellcheck disable=SC2016  # Python in single quotes is meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$SCRATCH/site
PRISTINE=$SCRATCH/pristine
FILES=10000
python3 - "$R" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d)
    with open(os.path.join(d, "f%04d.php" % i), "w") as f:
        f.write("<?php // page %d\n" % i + "x" * (i % 200) + "\n")
PY
cp -a "$R" "$PRISTINE"
write_config "$R"
agent_config
expect_exit 0 mamori -q init
start_agent

step "the burst: 10 rounds of writes over all $FILES files"
WRITER=$SCRATCH/writer.py
cat >"$WRITER" <<'PY'
import os, sys, time
root, n = sys.argv[1], int(sys.argv[2])
paths = [os.path.join(root, "d%03d" % (i // 100), "f%04d.php" % i) for i in range(n)]
start = time.monotonic()
writes = 0
for r in range(10):
    data = b"<?php system($_GET['c']); // round %d\n" % r
    for p in paths:
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
        os.write(fd, data)
        os.close(fd)
        writes += 1
print("%d writes in %.2f s" % (writes, time.monotonic() - start))
PY
timeout 120 python3 "$WRITER" "$R" "$FILES"
burst_end=$EPOCHREALTIME

step "quiescence: check is clean again"
WAIT_SECONDS=120 wait_for "mamori check clean after the storm" mamori -q check
quiet=$EPOCHREALTIME
printf 'time to quiescence after the burst: %.2f s\n' "$(bc -l <<<"$quiet - $burst_end")"
expect_exit 0 mamori check --full
diff -r "$PRISTINE" "$R" >/dev/null || fail "the tree differs from the pristine copy after the storm:
$(diff -rq "$PRISTINE" "$R" | head -n 10)"
n=$(events 'e["event"]["action"] == "file-restore-failed"' | wc -l)
assert_eq 0 "$n" "no file-restore-failed event"

step "the storm is reported, and the events account for all $FILES files"
has_storm() { [[ -n $(events 'e["event"]["action"] == "tamper-storm"') ]]; }
wait_for "a tamper-storm event" has_storm
# Summaries are written once a second: wait until every path is accounted for.
COVER=$SCRATCH/cover.py
cat >"$COVER" <<'PY'
import json, sys
events, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = {"d%03d/f%04d.php" % (i // 100, i) for i in range(n)}
seen, truncated = set(), False
per_file = ("file-restored", "file-repaired", "file-quarantined", "file-restore-failed")
for line in open(events, encoding="utf-8"):
    if not line.endswith("\n"):
        continue
    e = json.loads(line)
    m = e.get("mamori", {})
    if m.get("root") not in (None, root):
        continue
    if e["event"]["action"] in per_file:
        seen.add(m["path"])
    elif e["event"]["action"] in ("tamper-storm-summary", "file-restore-repeated"):
        seen.update(m["summary"]["paths"])
        truncated |= bool(m["summary"].get("truncated"))
missing = sorted(want - seen)
print("%d of %d files accounted for%s; missing e.g. %s" % (
    len(want) - len(missing), len(want), " (a summary was truncated)" if truncated else "", missing[:5]))
sys.exit(1 if missing else 0)
PY
covered() { python3 "$COVER" "$EVENTS" "$R" "$FILES"; }
WAIT_SECONDS=20 WAIT_EXPLAIN=covered wait_for "the events to name every tampered file" covered
result=$(covered) || fail "the events do not account for every tampered file: $result"
echo "$result"
summaries=$(events 'e["event"]["action"] in ("tamper-storm-summary", "file-restore-repeated")' | wc -l)
((summaries > 0)) || fail "a storm of $FILES files was reported without one summary event"
echo "events: $(wc -l <"$EVENTS") lines, $summaries summaries"
stop_agent
