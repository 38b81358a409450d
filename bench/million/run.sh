#!/usr/bin/env bash
# bench/million/run.sh - the agent on a million files (issue 17, "A million files").
#
# Usage: bench/million/run.sh [--keep]
#
# On the corpus of bench/million/make_corpus.sh (1,000,000 files in ~30 sites; site001
# is identical to the template, which serves as its backup), one run measures:
#   1. `mamori init`: wall, user+sys CPU, peak RSS; the state directory's size (catalog
#      + store) against the corpus's bytes
#   2. the agent (restore mode, nice 0, backend auto = fanotify here): time from exec to
#      "ready: guarding" (the start-up verify of every file), VmHWM and VmRSS at ready
#   3. a verify of every root through the control socket (`verify`, what the hourly
#      verify runs): wall time and the agent's user+sys CPU for it
#   4. restore latency under that load: restore_latency (bench/tools/fim-peers) tampers
#      N files of site001 one at a time and times each restore
#   5. the storm: bench/restore/storm.c overwrites STORM_FILES files of site001
#      STORM_WRITES times; misses among the written files and in site001 (diff -rq
#      against the template); the agent's VmHWM afterwards
#   6. (INOTIFY=1) the same agent with backend = "inotify": ready time, watches needed
#      against fs.inotify.max_user_watches, VmHWM, restore latency (N_INOTIFY tampers)
#   7. `mamori check` after all of it: 0 changes expected
# Every agent row also counts the watch-overflow events it wrote (each one is a rescan of
# the whole root: a verify of every file, on the guard's thread) and the load average.
# Prints a Markdown report on stdout (progress on stderr) and keeps a copy in $WORK.
# The corpus is kept for the next run (remove it with `rm -rf $WORK`: about 11 GB);
# --keep keeps the state directory too.
#
# Environment:
#   WORK=/var/tmp/mamori-million   corpus, state, logs (outside the repository)
#   MAMORI=<repo>/build/release/bin/mamori
#   N=1000 GAP_MS=20 TIMEOUT_MS=5000 SEED=1   restore_latency
#   STORM_FILES=10000 STORM_WRITES=100000 STORM_TIMEOUT_S=300
#   INOTIFY=1 N_INOTIFY=300
#   WARM=1                           read every file once first (warm page cache)
# Needs root. A program, not a test. Figures: docs/performance.md, "A million files".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
keep=0
for a in "$@"; do
    case $a in
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/million/run.sh [--keep]" >&2; exit 2 ;;
    esac
done

WORK=${WORK:-/var/tmp/mamori-million}
MAMORI=${MAMORI:-$repo/build/release/bin/mamori}
N=${N:-1000} GAP_MS=${GAP_MS:-20} TIMEOUT_MS=${TIMEOUT_MS:-5000} SEED=${SEED:-1}
STORM_FILES=${STORM_FILES:-10000} STORM_WRITES=${STORM_WRITES:-100000} STORM_TIMEOUT_S=${STORM_TIMEOUT_S:-300}
INOTIFY=${INOTIFY:-1} N_INOTIFY=${N_INOTIFY:-300} WARM=${WARM:-1}

die() { echo "run.sh: $*" >&2; exit 1; }
say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ -x $MAMORI ]] || die "no mamori at $MAMORI: cmake --preset release && cmake --build --preset release --target mamori"
case $WORK/ in "$repo"/*) die "WORK must be outside the repository" ;; esac
for t in cc jq python3 /usr/bin/time; do command -v "$t" >/dev/null || die "needs $t"; done

mkdir -p "$WORK/bin"
cc -O2 -Wall -o "$WORK/bin/restore_latency" "$repo/bench/tools/fim-peers/restore_latency.c"
cc -O2 -Wall -o "$WORK/bin/storm" "$repo/bench/restore/storm.c"
MAMORI_BUILT=$(date -u -r "$MAMORI" '+%Y-%m-%d %H:%M UTC')
MAMORI_REV=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
cp -- "$MAMORI" "$WORK/bin/mamori.new" && mv -f -- "$WORK/bin/mamori.new" "$WORK/bin/mamori"
MAMORI=$WORK/bin/mamori

corpus=$WORK/corpus template=$WORK/corpus.template
say "corpus: bench/million/make_corpus.sh (idempotent)"
"$here/make_corpus.sh" "$corpus" >&2
files=$(sed -n 's/^files=//p' "$corpus.stamp")
bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
dirs=$(find "$corpus" -type d | wc -l)
if ((WARM)); then
    say "warming the page cache ($bytes bytes)"
    find "$corpus" "$template" -type f -print0 | xargs -0 -P2 cat >/dev/null
fi

AGENT_PID=""
cleanup() { set +e; [[ -n $AGENT_PID ]] && stop_agent; }
trap cleanup EXIT
trap 'exit 130' INT TERM

vm() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
per_file() { awk -v k="$1" -v f="$files" 'BEGIN {printf "%.0f", (k * 1024 - 40 * 1048576) / f}'; }

start_agent() { # CONFIG LOG
    local t0=$EPOCHREALTIME
    : >"$2"
    "$MAMORI" --config "$1" agent >>"$2" 2>&1 &
    AGENT_PID=$!
    until grep -q 'ready: guarding' "$2"; do
        kill -0 "$AGENT_PID" 2>/dev/null || { cat "$2" >&2; AGENT_PID=""; die "the agent exited before it was ready"; }
        sleep 0.01
    done
    READY_S=$(elapsed "$t0" "$EPOCHREALTIME")
    BACKEND=$(sed -n 's/.*ready: guarding [0-9]* root(s) with \([a-z]*\).*/\1/p' "$2" | head -n1)
}
stop_agent() {
    local pid=$AGENT_PID i
    AGENT_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 6000; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.01
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}
# control SOCKET JSON: one request, the answer on stdout
control() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(900)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
PY
}
write_config() { # FILE BACKEND EVENTS
    cat >"$1" <<EOF
# written by bench/million/run.sh
state_dir = "$state"

[[root]]
path = "$corpus"
mode = "restore"

[agent]
socket = "$sock"
event_log = "$3"
backend = "$2"
verify_interval = 0
EOF
}
latency() { # OUT N: restore_latency on site001 -> "p50 p99 max timeouts torn"
    RESTORE_LATENCY_CSV=$1.csv "$WORK/bin/restore_latency" "$corpus/site001" "$template" "$2" "$SEED" "$GAP_MS" "$TIMEOUT_MS" >"$1" || true
    sed 's/^/  /' "$1" >&2
    local k out=""
    for k in p50 p99 max; do
        out+="$(awk -v k="$k" '/^latency_ms/ {for (i = 2; i < NF; i += 2) if ($i == k) print $(i + 1)}' "$1") "
    done
    out+="$(awk '/^samples [0-9]+ restored/ {print $6}' "$1") $(awk '/^samples with partial reads/ {print $NF}' "$1")"
    echo "$out"
}

declare -A I
state=$WORK/state sock=$WORK/agent.sock cfg=$WORK/mamori.toml
rm -rf -- "$state" "$WORK"/events-*.jsonl
write_config "$cfg" auto "$WORK/events-fanotify.jsonl"
start_uptime=$(uptime)

# ------------------------------------------------------------------ init
say "mamori init on $files files"
I[init_load]=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$EPOCHREALTIME
/usr/bin/time -f '%U %S %M' -o "$WORK/init.time" "$MAMORI" --config "$cfg" init >"$WORK/init.out" 2>&1 ||
    { cat "$WORK/init.out" >&2; die "mamori init failed"; }
I[init_s]=$(elapsed "$t0" "$EPOCHREALTIME")
read -r u s m <"$WORK/init.time"
I[init_cpu]=$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.1f", u + s}') I[init_rss]=$(mib "$m")
I[state_bytes]=$(du -sb "$state" | cut -f1)
I[store_bytes]=$(du -sb "$state/store" | cut -f1)
I[catalog_bytes]=$((I[state_bytes] - I[store_bytes]))
say "init ${I[init_s]} s (${I[init_cpu]} s CPU, ${I[init_rss]} MiB); state ${I[state_bytes]} bytes"

# ------------------------------------------------------------------ agent (fanotify)
I[agent_load]=$(cut -d' ' -f1-3 /proc/loadavg)
start_agent "$cfg" "$WORK/agent-fanotify.log"
I[ready_s]=$READY_S I[backend]=$BACKEND
I[ready_cpu]=$(cpu_s "$AGENT_PID")
I[ready_hwm]=$(vm "$AGENT_PID" VmHWM) I[ready_rss]=$(vm "$AGENT_PID" VmRSS)
say "agent ($BACKEND) ready in $READY_S s (${I[ready_cpu]} s CPU); VmHWM $(mib "${I[ready_hwm]}") MiB, VmRSS $(mib "${I[ready_rss]}") MiB"

sleep 2
c0=$(cpu_s "$AGENT_PID") t0=$EPOCHREALTIME
control "$sock" '{"v":2,"cmd":"verify"}' >"$WORK/verify.out"
I[verify_s]=$(elapsed "$t0" "$EPOCHREALTIME")
I[verify_cpu]=$(awk -v a="$c0" -v b="$(cpu_s "$AGENT_PID")" 'BEGIN {printf "%.2f", b - a}')
I[verify_hwm]=$(vm "$AGENT_PID" VmHWM)
say "verify ${I[verify_s]} s, ${I[verify_cpu]} s CPU; VmHWM $(mib "${I[verify_hwm]}") MiB"

say "restore latency: $N tampers in site001"
I[lat_load]=$(cut -d' ' -f1-3 /proc/loadavg)
read -r 'I[p50]' 'I[p99]' 'I[max]' 'I[timeouts]' 'I[torn]' < <(latency "$WORK/latency-fanotify.out" "$N")
I[lat_hwm]=$(vm "$AGENT_PID" VmHWM)

say "storm: $STORM_WRITES writes over $STORM_FILES files of site001"
c0=$(cpu_s "$AGENT_PID")
set +e
"$WORK/bin/storm" "$corpus/site001" "$template" "$STORM_FILES" "$STORM_WRITES" "$SEED" "$STORM_TIMEOUT_S" >"$WORK/storm.out" 2>"$WORK/storm.err"
set -e
sed 's/^/  /' "$WORK/storm.out" "$WORK/storm.err" >&2
for k in writes write_errors write_s writes_per_s quiescence_s misses; do
    I[storm_$k]=$(awk -F= -v k="$k" '$1 == k {print $2}' "$WORK/storm.out")
done
I[storm_tree]=$(diff -rq "$template" "$corpus/site001" 2>&1 | wc -l)
I[storm_cpu]=$(awk -v a="$c0" -v b="$(cpu_s "$AGENT_PID")" 'BEGIN {printf "%.2f", b - a}')
I[end_hwm]=$(vm "$AGENT_PID" VmHWM) I[end_rss]=$(vm "$AGENT_PID" VmRSS)
I[counters]=$(control "$sock" '{"cmd":"status"}' | jq -c .counters 2>/dev/null || echo '{}')
t0=$EPOCHREALTIME
stop_agent
I[stop_s]=$(elapsed "$t0" "$EPOCHREALTIME")
I[overflows]=$(grep -c '"action":"watch-overflow"' "$WORK/events-fanotify.jsonl" || true)
say "storm: misses ${I[storm_misses]} (written), ${I[storm_tree]} (site001); VmHWM $(mib "${I[end_hwm]}") MiB"

# ------------------------------------------------------------------ agent (inotify)
if ((INOTIFY)); then
    write_config "$cfg" inotify "$WORK/events-inotify.jsonl"
    I[watch_limit_before]=$(cat /proc/sys/fs/inotify/max_user_watches)
    start_agent "$cfg" "$WORK/agent-inotify.log"
    I[in_ready_s]=$READY_S I[in_backend]=$BACKEND
    I[in_hwm]=$(vm "$AGENT_PID" VmHWM)
    I[watch_limit_after]=$(cat /proc/sys/fs/inotify/max_user_watches)
    I[in_watches]=$(find /proc/"$AGENT_PID"/fdinfo -type f -exec grep -c '^inotify wd' {} + 2>/dev/null |
        awk -F: '{s += $NF} END {print s + 0}')
    say "inotify agent ready in $READY_S s, ${I[in_watches]} watches (limit ${I[watch_limit_before]} -> ${I[watch_limit_after]})"
    read -r 'I[in_p50]' 'I[in_p99]' 'I[in_max]' 'I[in_timeouts]' 'I[in_torn]' < <(latency "$WORK/latency-inotify.out" "$N_INOTIFY")
    I[in_end_hwm]=$(vm "$AGENT_PID" VmHWM)
    stop_agent
    I[in_overflows]=$(grep -c '"action":"watch-overflow"' "$WORK/events-inotify.jsonl" || true)
fi

out=$("$MAMORI" --config "$cfg" check --json 2>/dev/null) || true
I[check_after]=$(jq '.changes | length' <<<"$out" 2>/dev/null || echo error)
end_uptime=$(uptime)
((keep)) || rm -rf -- "$state"
# site001 is the only site the run writes to: put it back from the template and stamp
# the corpus again, so the next run reuses it instead of deleting and rebuilding a
# million files (over 25 minutes on a loaded disk). A run stopped before this point
# leaves the corpus to be rebuilt.
rm -rf -- "$corpus/site001" && cp -a "$template" "$corpus/site001" && touch "$corpus.stamp"

# ------------------------------------------------------------------ report
goal=$(awk -v f="$files" 'BEGIN {printf "%.1f", (300 * f + 40 * 1048576) / 1048576}')
report=$WORK/report-$(date +%Y%m%d-%H%M%S).md
{
    echo "## mamori on a million files ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- command: bench/million/run.sh (N=$N, GAP_MS=$GAP_MS, storm $STORM_WRITES writes over $STORM_FILES files)"
    echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo), kernel $(uname -r), $(findmnt -no FSTYPE -T "$WORK")"
    echo "- mamori: copy of the release build made $MAMORI_BUILT (HEAD $MAMORI_REV at the start)"
    echo "- corpus: $files files, $bytes bytes, $dirs directories ($(sed -n 's/.*sites=\([0-9]*\).*/\1/p' "$corpus.stamp") sites)"
    echo "- uptime at start: $start_uptime"
    echo "- uptime at end:   $end_uptime"
    echo
    echo "| step | figure |"
    echo "|---|---|"
    echo "| \`mamori init\` | ${I[init_s]} s wall, ${I[init_cpu]} s user+sys, peak RSS ${I[init_rss]} MiB (load at start ${I[init_load]}) |"
    echo "| state directory | $(awk -v b="${I[state_bytes]}" -v t="$bytes" 'BEGIN {printf "%.0f bytes, %.2f %% of the corpus", b, 100 * b / t}') (store ${I[store_bytes]}, catalog ${I[catalog_bytes]}) |"
    echo "| agent ready (start-up verify, ${I[backend]}) | ${I[ready_s]} s wall, ${I[ready_cpu]} s CPU (load at start ${I[agent_load]}) |"
    echo "| VmHWM / VmRSS at ready | $(mib "${I[ready_hwm]}") / $(mib "${I[ready_rss]}") MiB ($(per_file "${I[ready_hwm]}") B/file over 40 MiB) |"
    echo "| verify of every file (the hourly verify, by the control command) | ${I[verify_s]} s wall, ${I[verify_cpu]} s CPU; VmHWM after $(mib "${I[verify_hwm]}") MiB |"
    echo "| restore latency, $N tampers | p50 ${I[p50]} / p99 ${I[p99]} / max ${I[max]} ms, ${I[timeouts]} time-outs, ${I[torn]} torn (load at start ${I[lat_load]}) |"
    echo "| storm | ${I[storm_writes]} writes (${I[storm_write_errors]} errors) in ${I[storm_write_s]} s (${I[storm_writes_per_s]}/s); identical again ${I[storm_quiescence_s]} s after the last; misses ${I[storm_misses]} written, ${I[storm_tree]} in site001; agent ${I[storm_cpu]} s CPU |"
    echo "| VmHWM / VmRSS at the end | $(mib "${I[end_hwm]}") / $(mib "${I[end_rss]}") MiB ($(per_file "${I[end_hwm]}") B/file over 40 MiB; goal ≤ $goal MiB) |"
    if ((INOTIFY)); then
        echo "| inotify: ready | ${I[in_ready_s]} s, ${I[in_watches]} watches (max_user_watches ${I[watch_limit_before]} → ${I[watch_limit_after]}) |"
        echo "| inotify: VmHWM at ready / end | $(mib "${I[in_hwm]}") / $(mib "${I[in_end_hwm]}") MiB |"
        echo "| inotify: restore latency, $N_INOTIFY tampers | p50 ${I[in_p50]} / p99 ${I[in_p99]} / max ${I[in_max]} ms, ${I[in_timeouts]} time-outs, ${I[in_torn]} torn |"
    fi
    echo "| watch-overflow events (each a rescan of the root) | ${I[overflows]} (fanotify run)$( ((INOTIFY)) && echo ", ${I[in_overflows]} (inotify run)") |"
    echo "| agent stop (SIGTERM to exit) | ${I[stop_s]} s |"
    echo "| \`mamori check\` afterwards | ${I[check_after]} changes |"
    echo
    echo "Agent counters (fanotify run): ${I[counters]}"
} | tee "$report"
