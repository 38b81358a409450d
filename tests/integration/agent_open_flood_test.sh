#!/usr/bin/env bash
# An open flood by the web server's user: www-data opens the site's files (readable by
# design) from four processes, faster than the agent reads its queue of opens (16,384),
# so the agent learns that opens were lost and asks each of the site's 20,000 baselined
# files whether a writer holds it. Asking opens each file, which queues opens of the
# agent's own: before asking in slices, a root larger than the queue overflowed it
# again and again, the agent spun at 100% CPU for ever and its restores came 0.6-0.9 s
# late. Now: once the flood stops the agent asks each file once more and is idle (no
# new overflow, under 0.2 s of CPU in 2 s), and a tamper is still restored at once.
# shellcheck disable=SC2016  # Python in single quotes is meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$SCRATCH/site
FILES=20000
python3 - "$R" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 200))
    if i % 200 == 0:
        os.makedirs(d)
    with open(os.path.join(d, "f%05d.php" % i), "w") as f:
        f.write("<?php // page %d\n" % i)
PY
chmod -R a+rX "$SCRATCH"
write_config "$R"
agent_config
expect_exit 0 mamori -q init
start_agent

overflows() { mamori status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent"]["counters"]["overflows"])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }

step "www-data opens the site's files from 4 processes until opens are lost"
before=$(overflows)
FLOOD=$SCRATCH/flood.py
cat >"$FLOOD" <<'PY'
import os, sys
paths = [os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs]
stop = sys.argv[2]
n = 0
while not os.path.exists(stop):
    for p in paths:
        os.close(os.open(p, os.O_RDONLY | os.O_NONBLOCK))
    n += len(paths)
print("www-data opened %d files" % n)
PY
pids=()
for _ in 1 2 3 4; do
  runuser -u www-data -- python3 "$FLOOD" "$R" "$SCRATCH/stop" &
  pids+=($!)
done
on_exit "touch $SCRATCH/stop; wait ${pids[*]}"
lost() { (($(overflows) > before)); }
WAIT_SECONDS=60 wait_for "the agent to learn that opens were lost" lost
touch "$SCRATCH/stop"
wait "${pids[@]}"

step "the asking ends: no new overflow, the agent idle"
quiet() {  # the overflow counter still, and under 0.2 s of CPU, over 2 s
  local o t
  o=$(overflows)
  t=$(cpu_ticks)
  sleep 2
  [[ $(overflows) == "$o" ]] && (($(cpu_ticks) - t < 20))
}
WAIT_SECONDS=30 wait_for "the agent to go quiet after the flood" quiet
after=$(overflows)
echo "overflows during the flood: $((after - before)) (each one the attacker's)"

step "a tamper is restored at once"
python3 - "$R/d007/f01400.php" <<'PY' || fail "the tampered file was not restored within 1 s"
import sys, time
p = sys.argv[1]
orig = open(p, "rb").read()
start = time.monotonic()
with open(p, "ab") as f:
    f.write(b"<iframe src=//evil.example>\n")
while open(p, "rb").read() != orig:
    if time.monotonic() - start > 1:
        sys.exit(1)
print("restored in %.1f ms" % ((time.monotonic() - start) * 1000))
PY
