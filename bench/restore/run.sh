#!/usr/bin/env bash
# bench/restore/run.sh - real-time restore benchmark: `mamori agent` against the
# inotifywait + cp script, on the corpora of bench/tools/make_corpus.sh.
#
# Usage: bench/restore/run.sh [--quick]
#
# One run measures, in order:
#   1. restore latency on the small corpus: restore_latency (from
#      bench/tools/fim-peers) overwrites N random files one at a time
#      (fixed seed, so every row tampers the same files) and times how long until
#      the original bytes are back, counting time-outs and torn reads, against
#        - mamori agent, mode = "restore" (nice 0, SCHED_OTHER)
#        - (NICE_ROW=1) mamori agent, restore, under `nice -n -10`: the priority
#          packaging/systemd/mamori-agent.service gives it (Nice=-10)
#        - (MINIMAL_ROW=1) minimal_restorer.c: the physical limit on this machine, a
#          fanotify event -> renameat() of a copy prepared in advance, nothing else
#        - mamori agent, mode = "preserve" (tampered content kept as evidence; nice 0)
#        - (diagnostic, RT_ROW=1) mamori agent, restore, under `chrt -f 50`: the
#          agent's own path without waiting for a CPU
#        - inotify_restore.sh guarded (inotifywait + cmp + cp -a)
#      The guarded site is a copy of the corpus; the corpus itself is the backup.
#      After each agent row, `mamori check --full` lists what it left different
#      (with how many of those are hard links) and `mamori restore --all` repairs it.
#   2. the storm: the agent (restore mode, nice 0) guards the small corpus while storm.c
#      overwrites STORM_FILES files STORM_WRITES times as fast as it can; then the
#      time from the last write until every written file is identical to the corpus
#      again, the files of the whole tree still different (diff -rq: misses), and the
#      time until `mamori check` reports nothing.
#   3. (not with --quick) the large corpus (make_corpus.sh large, ~200k files):
#      `mamori init`, agent (nice 0) start-up until "ready" (the start-up verify), RSS_TAMPERS
#      tampers in its first site, then the agent's peak RSS (VmHWM) per file.
# Every agent row records the scheduling the agent really ran with (policy, nice) and
# the report prints it. Prints a Markdown report on stdout (progress on stderr) and keeps a copy in
# $WORK/restore/report-<date>.md.
#
# Options:
#   --quick   smoke run: N=100, a storm of 10,000 writes over 1,000 files, no large corpus
#
# Environment:
#   WORK=/var/tmp/mamori-bench   work dir; this benchmark uses $WORK/restore (never the repo)
#   MAMORI=<repo>/build/release/bin/mamori   (cmake --preset release && cmake --build --preset release)
#   BENCH_TOOLS=bench/tools                 make_corpus.sh and fim-peers/ (read only)
#   N=1000 SEED=1 GAP_MS=50 TIMEOUT_MS=5000 restore_latency samples and pacing
#   STORM_FILES=10000 STORM_WRITES=100000 STORM_TIMEOUT_S=120
#   RSS_TAMPERS=300              tampers on the large corpus before reading VmHWM
#   LARGE=1                      0 skips the large corpus
#   NICE_ROW=1                   0 skips the Nice=-10 row
#   RT_ROW=1                     0 skips the chrt diagnostic row
#   MINIMAL_ROW=1                0 skips the minimal C restorer
#   OPEN_GATE=off                [agent] open_gate of every agent row: "off" measures the
#                                restore path alone (with the gate, the driver's reads of a
#                                tampered file are refused: counted as torn, and each read
#                                is a permission event the agent answers); "auto" to
#                                measure with it
# Needs root (the agent, make_corpus.sh); installs inotify-tools, gcc and jq if missing.
# A program, not a test: not registered with CTest. Figures: docs/performance.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
readonly here repo

quick=0
for a in "$@"; do
    case $a in
    --quick) quick=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/restore/run.sh [--quick]" >&2; exit 2 ;;
    esac
done

WORK=${WORK:-/var/tmp/mamori-bench}
MAMORI=${MAMORI:-$repo/build/release/bin/mamori}
BENCH_TOOLS=${BENCH_TOOLS:-$here/../tools}
if ((quick)); then
    N=${N:-100} STORM_FILES=${STORM_FILES:-1000} STORM_WRITES=${STORM_WRITES:-10000} LARGE=${LARGE:-0}
else
    N=${N:-1000} STORM_FILES=${STORM_FILES:-10000} STORM_WRITES=${STORM_WRITES:-100000} LARGE=${LARGE:-1}
fi
SEED=${SEED:-1} GAP_MS=${GAP_MS:-50} TIMEOUT_MS=${TIMEOUT_MS:-5000}
STORM_TIMEOUT_S=${STORM_TIMEOUT_S:-120} RSS_TAMPERS=${RSS_TAMPERS:-300}
MAKE_CORPUS=$BENCH_TOOLS/make_corpus.sh
PEERS=$BENCH_TOOLS/fim-peers

die() { echo "run.sh: $*" >&2; exit 1; }
say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }

[[ $(id -u) -eq 0 ]] || die "must run as root (the agent restores any owner's files; make_corpus.sh)"
[[ -x $MAMORI ]] || die "no mamori at $MAMORI: cmake --preset release && cmake --build --preset release"
[[ -x $MAKE_CORPUS && -f $PEERS/restore_latency.c && -f $PEERS/inotify_restore.sh ]] ||
    die "no $MAKE_CORPUS or $PEERS/{restore_latency.c,inotify_restore.sh}"
case $WORK/ in "$repo"/*) die "WORK must be outside the repository" ;; esac

# The peer's packages and the compiler for the probes.
need=()
command -v inotifywait >/dev/null || need+=(inotify-tools)
command -v cc >/dev/null || need+=(gcc)
command -v jq >/dev/null || need+=(jq)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; }
fi

mkdir -p "$WORK/restore"
R=$(cd "$WORK/restore" && pwd)
BIN=$R/bin
mkdir -p "$BIN"
cc -O2 -Wall -o "$BIN/restore_latency" "$PEERS/restore_latency.c"
cc -O2 -Wall -o "$BIN/storm" "$here/storm.c"
cc -O2 -Wall -o "$BIN/minimal_restorer" "$here/minimal_restorer.c"
# Benchmark a snapshot: the build tree may be relinked while this runs.
MAMORI_BUILT=$(date -u -r "$MAMORI" '+%Y-%m-%d %H:%M UTC')
MAMORI_REV=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
cp -- "$MAMORI" "$BIN/mamori.new" && mv -f -- "$BIN/mamori.new" "$BIN/mamori"
MAMORI_SRC=$MAMORI MAMORI=$BIN/mamori

# ---------------------------------------------------------------- processes
AGENT_PID="" WATCHER_PGID="" MINIMAL_PID=""
cleanup() {
    set +e
    [[ -n $AGENT_PID ]] && stop_agent
    if [[ -n $MINIMAL_PID ]]; then
        kill -TERM "$MINIMAL_PID" 2>/dev/null
        MINIMAL_PID=""
    fi
    if [[ -n $WATCHER_PGID ]]; then
        kill -TERM -- "-$WATCHER_PGID" 2>/dev/null
        WATCHER_PGID=""
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_agent CONFIG LOG [PREFIX...]: starts `[PREFIX...] mamori agent` (PREFIX must
# exec, e.g. chrt), waits for "ready: guarding"; sets AGENT_PID and READY_S (seconds
# from exec to ready).
start_agent() {
    local cfg=$1 log=$2 t0
    shift 2
    : >"$log"
    t0=$EPOCHREALTIME
    "$@" "$MAMORI" --config "$cfg" agent >>"$log" 2>&1 &
    AGENT_PID=$!
    until grep -q 'ready: guarding' "$log"; do
        kill -0 "$AGENT_PID" 2>/dev/null || { cat "$log" >&2; AGENT_PID=""; die "the agent exited before it was ready"; }
        (($(elapsed "$t0" "$EPOCHREALTIME" | cut -d. -f1) < 900)) || die "the agent was not ready within 900 s"
        sleep 0.005
    done
    READY_S=$(elapsed "$t0" "$EPOCHREALTIME")
    BACKEND=$(sed -n 's/.*ready: guarding [0-9]* root(s) with \([a-z]*\).*/\1/p' "$log" | head -n1)
}

stop_agent() {
    local pid=$AGENT_PID i
    AGENT_PID=""
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 3000; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.01
    done
    echo "run.sh: the agent did not stop within 30 s of SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

# VmHWM / VmRSS of a process in KiB
vm() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# user+sys CPU seconds of a process so far
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
# sched PID: the scheduling a process runs with, e.g. "nice 0", "nice -10", "SCHED_FIFO 50"
# (/proc/PID/stat after the command name: nice is field 19, rt_priority 40, policy 41)
sched() {
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat") || { echo '?'; return; }
    awk '{ if ($39 == 1) print "SCHED_FIFO " $38; else if ($39 == 2) print "SCHED_RR " $38;
           else if ($39 == 0) print "nice " $17; else print "policy " $39 ", nice " $17 }' <<<"$st"
}

# agent_counters SOCKET: the "counters" object of the agent's status, one line of JSON
agent_counters() {
    python3 - "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"status"}\n')
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(json.dumps(json.loads(data)["counters"]))
PY
}

# write_config FILE STATE ROOT MODE SOCKET EVENTS
write_config() {
    cat >"$1" <<EOF
# written by bench/restore/run.sh
state_dir = "$2"

[[root]]
path = "$3"
mode = "$4"

[agent]
socket = "$5"
event_log = "$6"
open_gate = "${OPEN_GATE:-off}"
EOF
}

declare -A I # results: "row:key" -> value

# parse_latency OUT ROW: restore_latency's summary -> I[ROW:...]
parse_latency() {
    local out=$1 row=$2
    I[$row:samples]=$(awk '/^samples [0-9]+ restored/ {print $2}' "$out")
    I[$row:restored]=$(awk '/^samples [0-9]+ restored/ {print $4}' "$out")
    I[$row:timeouts]=$(awk '/^samples [0-9]+ restored/ {print $6}' "$out")
    I[$row:torn]=$(awk '/^samples with partial reads/ {print $NF}' "$out")
    local k
    for k in min p50 p90 p99 max mean; do
        I[$row:$k]=$(awk -v k="$k" '/^latency_ms/ {for (i = 2; i < NF; i += 2) if ($i == k) print $(i + 1)}' "$out")
    done
}

# check_changes CONFIG [--full]: number of changes `mamori check` reports (or "error")
check_changes() {
    local cfg=$1 out
    shift
    out=$("$MAMORI" --config "$cfg" check "$@" --json 2>/dev/null) || true
    jq '.changes | length' <<<"$out" 2>/dev/null || echo error
}

# ---------------------------------------------------------------- small corpus
start_uptime=$(uptime)
say "work dir $R; mamori $MAMORI; N=$N seed $SEED gap ${GAP_MS} ms; storm $STORM_WRITES writes over $STORM_FILES files; large: $LARGE"
corpus=$R/corpus-small
say "small corpus: make_corpus.sh (idempotent)"
"$MAKE_CORPUS" small "$corpus" >&2
S=$R/small
site=$S/site
mkdir -p "$S"
say "fresh guarded copy of the corpus at $site"
rm -rf -- "$site"
cp -a "$corpus" "$site"
I[small:files]=$(find "$site" -type f | wc -l)
I[small:dirs]=$(find "$site" -type d | wc -l)
find "$corpus" "$site" -type f -print0 | xargs -0 cat >/dev/null # warm cache

cfg=$S/mamori.toml state=$S/state sock=$S/agent.sock
rm -rf -- "$state" "$S"/events-*.jsonl
write_config "$cfg" "$state" "$site" restore "$sock" "$S/events-restore.jsonl"
say "mamori init"
t0=$EPOCHREALTIME
"$MAMORI" --config "$cfg" init >"$S/init.out" 2>&1 || { cat "$S/init.out" >&2; die "mamori init failed"; }
I[small:init_s]=$(elapsed "$t0" "$EPOCHREALTIME")

# repair_site ROW: records what the agent left different from the baseline (`mamori
# check --full`, agent stopped; how many of those paths are hard-linked in the corpus)
# and puts it back with `mamori restore --all`, so the next row starts clean.
repair_site() {
    local row=$1 out p
    out=$("$MAMORI" --config "$cfg" check --full --json 2>/dev/null) || true
    I[$row:left]=$(jq '.changes | length' <<<"$out" 2>/dev/null || echo error)
    jq -r '.changes[].path' <<<"$out" 2>/dev/null | sed "s|^$site/||" >"$S/left-$row.list" || true
    I[$row:left_paths]=$(head -n 4 "$S/left-$row.list" | paste -sd' ' -)
    local hard=0
    while IFS= read -r p; do
        if [[ -n $p && $(stat -c %h "$corpus/$p" 2>/dev/null || echo 1) -gt 1 ]]; then hard=$((hard + 1)); fi
    done <"$S/left-$row.list"
    I[$row:left_hardlinked]=$hard
    if [[ ${I[$row:left]} != 0 ]]; then
        "$MAMORI" --config "$cfg" restore --all >"$S/repair-$row.out" 2>&1 || true
        say "$row: ${I[$row:left]} path(s) left different (${I[$row:left_hardlinked]} hard-linked): ${I[$row:left_paths]}; put back with mamori restore --all"
    fi
}

# latency_row ROW MODE [PREFIX...]: the agent in MODE, restore_latency N times
latency_row() {
    local row=$1 mode=$2 before
    shift 2
    write_config "$cfg" "$state" "$site" "$mode" "$sock" "$S/events-$row.jsonl"
    I[$row:load]=$(load)
    start_agent "$cfg" "$S/agent-$row.log" "$@"
    I[$row:ready_s]=$READY_S
    I[$row:backend]=$BACKEND
    I[$row:sched]=$(sched "$AGENT_PID")
    say "$row: agent ($BACKEND, mode $mode, ${I[$row:sched]}) ready in ${READY_S} s; $N tampers"
    before=$(cpu_s "$AGENT_PID")
    RESTORE_LATENCY_CSV=$S/samples-$row.csv \
        "$BIN/restore_latency" "$site" "$corpus" "$N" "$SEED" "$GAP_MS" "$TIMEOUT_MS" >"$S/latency-$row.out" || true
    sed 's/^/  /' "$S/latency-$row.out" >&2
    parse_latency "$S/latency-$row.out" "$row"
    sleep 0.5
    I[$row:cpu_s]=$(awk -v a="$before" -v b="$(cpu_s "$AGENT_PID")" 'BEGIN {printf "%.2f", b - a}')
    I[$row:hwm_kib]=$(vm "$AGENT_PID" VmHWM)
    I[$row:counters]=$(agent_counters "$sock" 2>/dev/null || echo '{}')
    stop_agent
    say "$row: counters ${I[$row:counters]}"
    repair_site "$row"
}

latency_row mamori-restore restore
# The priority the systemd unit gives the agent (Nice=-10), right after the nice-0 row.
if [[ ${NICE_ROW:-1} == 1 ]]; then
    latency_row mamori-restore-nice restore nice -n -10
fi
# minimal_row ROW [PREFIX...]: the physical limit, minimal_restorer.c (an event, a rename
# of a prepared copy), the same driver on the same files.
minimal_row() {
    local row=$1 t0 before
    shift
    rm -rf -- "$S/prepared"
    mkdir -p "$S/prepared"
    I[$row:load]=$(load)
    t0=$EPOCHREALTIME
    "$@" "$BIN/minimal_restorer" "$site" "$corpus" "$S/prepared" >"$S/$row.out" 2>"$S/$row.err" &
    MINIMAL_PID=$!
    until grep -q '^ready' "$S/$row.out"; do
        kill -0 "$MINIMAL_PID" 2>/dev/null || { cat "$S/$row.err" >&2; MINIMAL_PID=""; die "minimal_restorer exited"; }
        sleep 0.01
    done
    I[$row:ready_s]=$(elapsed "$t0" "$EPOCHREALTIME")
    I[$row:sched]=$(sched "$MINIMAL_PID")
    say "$row: minimal_restorer (${I[$row:sched]}) ready in ${I[$row:ready_s]} s; $N tampers"
    before=$(cpu_s "$MINIMAL_PID")
    RESTORE_LATENCY_CSV=$S/samples-$row.csv \
        "$BIN/restore_latency" "$site" "$corpus" "$N" "$SEED" "$GAP_MS" "$TIMEOUT_MS" >"$S/latency-$row.out" || true
    sed 's/^/  /' "$S/latency-$row.out" >&2
    parse_latency "$S/latency-$row.out" "$row"
    sleep 0.5
    I[$row:cpu_s]=$(awk -v a="$before" -v b="$(cpu_s "$MINIMAL_PID")" 'BEGIN {printf "%.2f", b - a}')
    I[$row:hwm_kib]=$(vm "$MINIMAL_PID" VmHWM)
    kill -TERM "$MINIMAL_PID" 2>/dev/null || true
    wait "$MINIMAL_PID" 2>/dev/null || true
    MINIMAL_PID=""
    rm -rf -- "$S/prepared"
    # It restores only the name written to (hard links stay tampered) and leaves new
    # inodes with new ctimes: the check puts back what it left.
    repair_site "$row"
}
if [[ ${MINIMAL_ROW:-1} == 1 ]]; then
    minimal_row minimal
    # Beside the chrt diagnostic row of the agent: the limit with a CPU to itself too.
    if [[ ${RT_ROW:-1} == 1 ]] && command -v chrt >/dev/null; then
        minimal_row minimal-fifo chrt -f 50
    fi
fi
latency_row mamori-preserve preserve
# Diagnostic: the same agent with the CPU to itself (SCHED_FIFO), to separate the
# agent's own path from waiting for a CPU on a loaded machine.
if [[ ${RT_ROW:-1} == 1 ]] && command -v chrt >/dev/null; then
    latency_row mamori-restore-fifo restore chrt -f 50
fi

# ---------------------------------------------------------------- the storm
row=storm
write_config "$cfg" "$state" "$site" restore "$sock" "$S/events-storm.jsonl"
I[storm:load]=$(load)
start_agent "$cfg" "$S/agent-storm.log"
I[storm:sched]=$(sched "$AGENT_PID")
say "storm: agent (${I[storm:sched]}) ready in ${READY_S} s; $STORM_WRITES writes over $STORM_FILES files"
before=$(cpu_s "$AGENT_PID")
set +e
"$BIN/storm" "$site" "$corpus" "$STORM_FILES" "$STORM_WRITES" "$SEED" "$STORM_TIMEOUT_S" >"$S/storm.out" 2>"$S/storm.err"
set -e
sed 's/^/  /' "$S/storm.out" "$S/storm.err" >&2
for k in writes write_errors write_s writes_per_s quiescence_s misses last_write_epoch; do
    I[storm:$k]=$(awk -F= -v k="$k" '$1 == k {print $2}' "$S/storm.out")
done
# The whole tree, not only the files written to: a write through one name of a
# hard-linked file changes every name.
diff -rq "$corpus" "$site" 2>&1 | grep ' differ$' | sed "s|^Files $corpus/||; s| and .*||" >"$S/storm-tree.list" || true
I[storm:tree_misses]=$(wc -l <"$S/storm-tree.list")
I[storm:tree_paths]=$(head -n 4 "$S/storm-tree.list" | paste -sd' ' -)
# Time from the last write until `mamori check` (fast) reports nothing, checking in a
# loop (each check takes ~0.2 s: an upper bound by that much); at most 30 s.
I[storm:check_clean_s]=timeout
for ((i = 0; i < 300; i++)); do
    c=$(check_changes "$cfg")
    if [[ $c == 0 ]]; then
        I[storm:check_clean_s]=$(elapsed "${I[storm:last_write_epoch]}" "$EPOCHREALTIME")
        break
    fi
    (($(elapsed "${I[storm:last_write_epoch]}" "$EPOCHREALTIME" | cut -d. -f1) < 30)) || {
        I[storm:check_clean_s]="not clean after 30 s ($c change(s))"
        break
    }
    sleep 0.1
done
I[storm:cpu_s]=$(awk -v a="$before" -v b="$(cpu_s "$AGENT_PID")" 'BEGIN {printf "%.2f", b - a}')
I[storm:hwm_kib]=$(vm "$AGENT_PID" VmHWM)
I[storm:counters]=$(agent_counters "$sock" 2>/dev/null || echo '{}')
stop_agent
say "storm: counters ${I[storm:counters]}"
repair_site storm

# ---------------------------------------------------------------- the script
row=script
say "script: inotify_restore.sh guarded on the same site; $N tampers"
I[script:load]=$(load)
t0=$EPOCHREALTIME
setsid "$PEERS/inotify_restore.sh" guarded "$site" "$corpus" 2>"$S/watch.err" </dev/null &
WATCHER_PGID=$!
until grep -q 'Watches established' "$S/watch.err"; do
    kill -0 "$WATCHER_PGID" 2>/dev/null || { cat "$S/watch.err" >&2; die "inotify_restore.sh exited"; }
    sleep 0.01
done
I[script:ready_s]=$(elapsed "$t0" "$EPOCHREALTIME")
RESTORE_LATENCY_CSV=$S/samples-script.csv \
    "$BIN/restore_latency" "$site" "$corpus" "$N" "$SEED" "$GAP_MS" "$TIMEOUT_MS" >"$S/latency-script.out" || true
sed 's/^/  /' "$S/latency-script.out" >&2
parse_latency "$S/latency-script.out" script
sleep 1
touch "$S/marker"
sleep 1
I[script:busy]=$(find "$site" -type f -cnewer "$S/marker" | wc -l)
kill -TERM -- "-$WATCHER_PGID" 2>/dev/null || true
WATCHER_PGID=""
sleep 0.2
I[script:left]=$(diff -rq "$corpus" "$site" 2>/dev/null | wc -l)

# ---------------------------------------------------------------- large corpus
if ((LARGE)); then
    lcorpus=$R/corpus-large L=$R/large
    mkdir -p "$L"
    say "large corpus: make_corpus.sh (rebuilt when an earlier run's restores touched it)"
    "$MAKE_CORPUS" large "$lcorpus" >&2
    I[large:files]=$(find "$lcorpus" -type f | wc -l)
    find "$lcorpus" -type f -print0 | xargs -0 cat >/dev/null # warm cache
    lcfg=$L/mamori.toml lstate=$L/state lsock=$L/agent.sock
    rm -rf -- "$lstate" "$L"/events.jsonl
    write_config "$lcfg" "$lstate" "$lcorpus" restore "$lsock" "$L/events.jsonl"
    say "large: mamori init"
    t0=$EPOCHREALTIME
    "$MAMORI" --config "$lcfg" init >"$L/init.out" 2>&1 || { cat "$L/init.out" >&2; die "mamori init (large) failed"; }
    I[large:init_s]=$(elapsed "$t0" "$EPOCHREALTIME")
    I[large:load]=$(load)
    start_agent "$lcfg" "$L/agent.log"
    I[large:ready_s]=$READY_S
    I[large:backend]=$BACKEND
    I[large:sched]=$(sched "$AGENT_PID")
    I[large:hwm_ready_kib]=$(vm "$AGENT_PID" VmHWM)
    say "large: agent ready in ${READY_S} s (VmHWM ${I[large:hwm_ready_kib]} KiB); $RSS_TAMPERS tampers in site001"
    # site001 is a copy of the small corpus, which serves as its backup.
    RESTORE_LATENCY_CSV=$L/samples.csv \
        "$BIN/restore_latency" "$lcorpus/site001" "$corpus" "$RSS_TAMPERS" "$SEED" 20 "$TIMEOUT_MS" >"$L/latency.out" || true
    sed 's/^/  /' "$L/latency.out" >&2
    parse_latency "$L/latency.out" large
    sleep 0.5
    I[large:hwm_kib]=$(vm "$AGENT_PID" VmHWM)
    I[large:rss_kib]=$(vm "$AGENT_PID" VmRSS)
    I[large:counters]=$(agent_counters "$lsock" 2>/dev/null || echo '{}')
    stop_agent
    I[large:left]=$(check_changes "$lcfg")
    say "large: VmHWM ${I[large:hwm_kib]} KiB; check after: ${I[large:left]} change(s)"
fi
end_uptime=$(uptime)

# ---------------------------------------------------------------- report
v() { local x=${I[$1]:-}; echo "${x:-n/a}"; }
mib() { [[ -n ${1:-} ]] && awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}' || echo n/a; }
ctr() { jq -r --arg k "$2" '.[$k] // "n/a"' <<<"${I[$1:counters]:-{\}}" 2>/dev/null || echo n/a; }
verdict() { # value op goal
    [[ -n $1 && $1 != n/a && $1 != timeout && $1 != error ]] || { echo "n/a"; return; }
    awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= g) : (op == "<=") ? (v <= g) : (v == g); print ok ? "PASS" : "**MISS**" }'
}
ratio=$(awk -v a="$(v script:p99)" -v b="$(v mamori-restore:p99)" 'BEGIN {if (b + 0 > 0 && a + 0 > 0) printf "%.1f", a / b; else print "n/a"}')
ratio50=$(awk -v a="$(v script:p50)" -v b="$(v mamori-restore:p50)" 'BEGIN {if (b + 0 > 0 && a + 0 > 0) printf "%.1f", a / b; else print "n/a"}')
ratio_nice=$(awk -v a="$(v script:p99)" -v b="$(v mamori-restore-nice:p99)" 'BEGIN {if (b + 0 > 0 && a + 0 > 0) printf "%.1f", a / b; else print "n/a"}')
ratio50_nice=$(awk -v a="$(v script:p50)" -v b="$(v mamori-restore-nice:p50)" 'BEGIN {if (b + 0 > 0 && a + 0 > 0) printf "%.1f", a / b; else print "n/a"}')
div() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 > 0 && a + 0 > 0) printf "%.1f", a / b; else print "n/a"}'; }
ratio_min=$(div "$(v script:p99)" "$(v minimal:p99)") ratio50_min=$(div "$(v script:p50)" "$(v minimal:p50)")
ratio_mm=$(div "$(v mamori-restore:p99)" "$(v minimal:p99)") ratio50_mm=$(div "$(v mamori-restore:p50)" "$(v minimal:p50)")
ratio_ff=$(div "$(v mamori-restore-fifo:p99)" "$(v minimal-fifo:p99)") ratio50_ff=$(div "$(v mamori-restore-fifo:p50)" "$(v minimal-fifo:p50)")
per_file=n/a
if [[ -n ${I[large:hwm_kib]:-} ]]; then
    per_file=$(awk -v k="${I[large:hwm_kib]}" -v f="${I[large:files]}" 'BEGIN {printf "%.0f", (k * 1024 - 40 * 1048576) / f}')
    rss_goal_mib=$(awk -v f="${I[large:files]}" 'BEGIN {printf "%.1f", (300 * f + 40 * 1048576) / 1048576}')
fi
report=$R/report-$(date +%Y%m%d-%H%M%S).md
{
    echo "## mamori real-time restore benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- command: bench/restore/run.sh$( ((quick)) && echo ' --quick')  (N=$N, SEED=$SEED, GAP_MS=$GAP_MS, TIMEOUT_MS=$TIMEOUT_MS, storm $STORM_WRITES writes over $STORM_FILES files)"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo), kernel $(uname -r), $(findmnt -no FSTYPE -T "$R")"
    echo "- mamori: copy of $MAMORI_SRC built $MAMORI_BUILT (HEAD $MAMORI_REV when the run started; the build may include uncommitted changes); backend ${I[mamori-restore:backend]:-?}; peer: inotify-tools $(dpkg-query -W -f='${Version}' inotify-tools 2>/dev/null || echo '?')"
    echo "- agents' open_gate: ${OPEN_GATE:-off}"
    echo "- small corpus: ${I[small:files]} files, ${I[small:dirs]} directories; mamori init ${I[small:init_s]} s"
    echo "- uptime at start: $start_uptime"
    echo "- uptime at end:   $end_uptime"
    echo "- work files: $R"
    echo
    echo "### Restore latency (small corpus, $N single-file tampers, same files for every row)"
    echo
    echo "| restorer | agent scheduling | p50 ms | p90 ms | p99 ms | max ms | mean ms | time-outs | torn reads | restorer CPU s | agent peak RSS MiB | load at start |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for row in mamori-restore mamori-restore-nice minimal mamori-preserve mamori-restore-fifo minimal-fifo script; do
        [[ -n ${I[$row:samples]:-} ]] || continue
        case $row in
        mamori-restore) label="mamori agent, restore" ;;
        mamori-restore-nice) label="mamori agent, restore, at the unit's Nice=-10" ;;
        minimal) label="(limit) minimal C restorer: fanotify → rename of a prepared copy" ;;
        minimal-fifo) label="(limit, diagnostic) minimal C restorer under \`chrt -f 50\`" ;;
        mamori-preserve) label="mamori agent, preserve (evidence kept)" ;;
        mamori-restore-fifo) label="(diagnostic) mamori agent, restore, under \`chrt -f 50\`" ;;
        script) label="inotifywait + cp (guarded)" ;;
        esac
        echo "| $label | $(if [[ $row == script ]]; then echo n/a; else v $row:sched; fi) | $(v $row:p50) | $(v $row:p90) | $(v $row:p99) | $(v $row:max) | $(v $row:mean) | $(v $row:timeouts) | $(v $row:torn) | $(v $row:cpu_s) | $(mib "${I[$row:hwm_kib]:-}") | $(v $row:load) |"
    done
    echo
    echo "Ratio script / mamori (restore mode, nice 0): p99 ${ratio}×, p50 ${ratio50}×; at the unit's Nice=-10: p99 ${ratio_nice}×, p50 ${ratio50_nice}×."
    if [[ -n ${I[minimal:samples]:-} ]]; then
        echo "Ratio script / minimal C restorer (the limit): p99 ${ratio_min}×, p50 ${ratio50_min}×; mamori (nice 0) / minimal: p99 ${ratio_mm}×, p50 ${ratio50_mm}×. The minimal restorer was ready (every directory marked, every copy prepared) in $(v minimal:ready_s) s; what it left different (hard links): $(v minimal:left) path(s), $(v minimal:left_hardlinked) hard-linked."
    fi
    if [[ -n ${I[minimal-fifo:samples]:-} ]]; then
        echo "Both under \`chrt -f 50\` (the own path, without waiting for a CPU): mamori / minimal p99 ${ratio_ff}×, p50 ${ratio50_ff}×."
    fi
    echo "Agent ready (start-up verify of the small corpus): ${I[mamori-restore:ready_s]:-n/a} s; inotifywait watches established: ${I[script:ready_s]:-n/a} s."
    echo "Agent counters, restore row: $(v mamori-restore:counters); Nice=-10 row: $(v mamori-restore-nice:counters); preserve row: $(v mamori-preserve:counters)."
    for row in mamori-restore mamori-restore-nice mamori-preserve mamori-restore-fifo; do
        [[ -n ${I[$row:left]:-} ]] || continue
        echo "Left different by the $row row (\`mamori check --full\` after the agent stopped): $(v $row:left) path(s), $(v $row:left_hardlinked) of them hard-linked in the corpus${I[$row:left_paths]:+: ${I[$row:left_paths]}}."
    done
    echo "Script: left different $(v script:left) (diff -rq); files it still rewrote in a quiet second after its run: $(v script:busy)."
    echo "The small corpus has $(find "$corpus" -type f -links +1 | wc -l) hard-linked files (make_corpus.sh's tar --dereference links identical targets)."
    echo
    echo "### Storm (small corpus, agent in restore mode, $(v storm:sched))"
    echo
    echo "| writes | files written | write errors | write time s | writes/s | last write → written files identical s | misses among written files | misses in the whole tree (diff -rq) | last write → \`mamori check\` clean s | agent CPU s | agent peak RSS MiB |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    echo "| $(v storm:writes) | $STORM_FILES | $(v storm:write_errors) | $(v storm:write_s) | $(v storm:writes_per_s) | $(v storm:quiescence_s) | $(v storm:misses) | $(v storm:tree_misses) | $(v storm:check_clean_s) | $(v storm:cpu_s) | $(mib "${I[storm:hwm_kib]:-}") |"
    echo
    echo "Agent counters after the storm: $(v storm:counters). Load at start: $(v storm:load)."
    echo "Whole-tree misses: $(v storm:tree_misses)${I[storm:tree_paths]:+ (${I[storm:tree_paths]})}; \`mamori check --full\` after the agent stopped: $(v storm:left) path(s), $(v storm:left_hardlinked) hard-linked in the corpus."
    echo
    if ((LARGE)); then
        echo "### Large corpus (${I[large:files]} files, agent $(v large:sched))"
        echo
        echo "| mamori init s | agent ready (start-up verify) s | VmHWM at ready MiB | VmHWM after $RSS_TAMPERS tampers MiB | (VmHWM − 40 MiB) / file | tamper p50 / p99 / max ms | time-outs | torn | check after |"
        echo "|---:|---:|---:|---:|---:|---|---:|---:|---:|"
        echo "| $(v large:init_s) | $(v large:ready_s) | $(mib "${I[large:hwm_ready_kib]:-}") | $(mib "${I[large:hwm_kib]:-}") | $per_file B | $(v large:p50) / $(v large:p99) / $(v large:max) | $(v large:timeouts) | $(v large:torn) | $(v large:left) |"
        echo
        echo "Agent counters: $(v large:counters). Load at start: $(v large:load)."
        echo
    fi
    echo "### Against the targets"
    echo
    echo "| target | measured | result |"
    echo "|---|---:|---|"
    echo "| restore p99 ≤ 1 ms (restore mode, nice 0) | $(v mamori-restore:p99) ms | $(verdict "$(v mamori-restore:p99)" "<=" 1) |"
    [[ -n ${I[mamori-restore-nice:samples]:-} ]] &&
        echo "| restore p99 ≤ 1 ms (restore mode, the unit's Nice=-10) | $(v mamori-restore-nice:p99) ms | $(verdict "$(v mamori-restore-nice:p99)" "<=" 1) |"
    echo "| restore p99 ≤ 1 ms (preserve mode, nice 0) | $(v mamori-preserve:p99) ms | $(verdict "$(v mamori-preserve:p99)" "<=" 1) |"
    echo "| ≥ 20× better than the script (p99 ratio, nice 0) | ${ratio}× | $(verdict "$ratio" ">=" 20) |"
    [[ -n ${I[mamori-restore-nice:samples]:-} ]] &&
        echo "| ≥ 20× better than the script (p99 ratio, Nice=-10) | ${ratio_nice}× | $(verdict "$ratio_nice" ">=" 20) |"
    echo "| 0 torn reads (restore / Nice=-10 / preserve) | $(v mamori-restore:torn) / $(v mamori-restore-nice:torn) / $(v mamori-preserve:torn) | $(verdict "$(( ${I[mamori-restore:torn]:-1} + ${I[mamori-restore-nice:torn]:-0} + ${I[mamori-preserve:torn]:-1} ))" "==" 0) |"
    echo "| 0 time-outs (restore / Nice=-10 / preserve) | $(v mamori-restore:timeouts) / $(v mamori-restore-nice:timeouts) / $(v mamori-preserve:timeouts) | $(verdict "$(( ${I[mamori-restore:timeouts]:-1} + ${I[mamori-restore-nice:timeouts]:-0} + ${I[mamori-preserve:timeouts]:-1} ))" "==" 0) |"
    hl=0 hl_rows="" hl_names=""
    for row in mamori-restore mamori-restore-nice mamori-preserve mamori-restore-fifo storm; do
        [[ -n ${I[$row:left_hardlinked]:-} ]] || continue
        hl=$((hl + I[$row:left_hardlinked])) hl_rows+="${hl_rows:+ / }${I[$row:left_hardlinked]}"
        hl_names+="${hl_names:+ / }${row#mamori-}"
    done
    echo "| hard-linked files restored (hard-linked paths left different, rows ${hl_names:-none}) | ${hl_rows:-n/a} | $(verdict "$hl" "==" 0) |"
    echo "| storm: 0 misses | $(v storm:misses) written, $(v storm:tree_misses) in the tree | $(verdict "$(( ${I[storm:misses]:-1} + ${I[storm:tree_misses]:-1} ))" "==" 0) |"
    storm_goal_kib=$(( (300 * ${I[small:files]:-0} + 40 * 1048576) / 1024 ))
    echo "| agent RSS ≤ 300 B/file + 40 MiB (storm, ${I[small:files]:-?} files) | $(mib "${I[storm:hwm_kib]:-}") MiB (goal ≤ $(mib "$storm_goal_kib") MiB) | $(verdict "${I[storm:hwm_kib]:-n/a}" "<=" "$storm_goal_kib") |"
    if ((LARGE)); then
        echo "| agent RSS ≤ 300 B/file + 40 MiB (large) | $(mib "${I[large:hwm_kib]:-}") MiB = $per_file B/file + 40 MiB (goal ≤ ${rss_goal_mib:-n/a} MiB) | $(verdict "$per_file" "<=" 300) |"
    fi
    echo
} | tee "$report"
say "report saved to $report"
