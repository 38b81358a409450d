#!/usr/bin/env bash
# bench/logs/run.sh - access-log defense benchmark: `mamori logs test` and the agent
# against fail2ban (every shipped filter that applies to an access log, plus a
# hand-written WordPress filter) and CrowdSec, on logs from
# bench/tools/make_access_log.py (which writes the ground truth too).
#
# Usage: bench/logs/run.sh [--lines N] [--small-lines M] [--attackers K]
#                          [--no-crowdsec] [--no-latency]
#
# One run measures, in order:
#   1. Throughput and recall on an N-line log (default 1,000,000):
#        - mamori: `mamori logs test --format combined --json LOG` (the full default
#          rule set), once;
#        - fail2ban: `fail2ban-regex -o '<ip> <time>' LOG FILTER`, once per filter, one
#          after another (fail2ban-regex takes one filter per run); "all filters" is N
#          over the sum of their times. fail2ban-regex does not apply the jails, so
#          fail2ban/jails.py does (each jail's shipped maxretry/findtime, fail2ban
#          1.0's own counting, on log time) to decide which addresses it would ban.
#      Wall time from the shell clock, CPU and peak RSS from /usr/bin/time. Recall:
#      attackers of the ground truth banned; benign: any other address banned.
#   2. The same three-way on an M-line log (default 20,000; same generator and
#      seed, so it holds all 14 attackers, compressed in time), with CrowdSec
#      (`crowdsec -dsn file://LOG -type nginx -no-capi`, Debian's hub, a private
#      config and database in the work dir): CrowdSec replays a few hundred lines a
#      second, a million lines would take hours. --small-lines 0 skips this part.
#   3. Ban latency, live, in a network namespace the script creates (the host's
#      firewall is never touched): fail2ban-server with the same jails, banning with
#      Debian's nftables-multiport action, and (when it supports [[log]]) the mamori
#      agent; ban_latency.py appends to the log at a steady rate and times, for K
#      addresses, the write() of the line that completes the ban to the nftables
#      element appearing (`nft monitor`, event-driven).
# Prints a Markdown report on stdout (progress on stderr); raw results, outputs and
# the report stay in $WORK.
#
# Options:
#   --lines N         size of the main log (default 1000000)
#   --small-lines M   size of the CrowdSec log (default 20000; 0 = skip part 2)
#   --attackers K     addresses timed in part 3 (default 100)
#   --no-crowdsec     part 2 without CrowdSec
#   --no-latency      skip part 3
#
# Environment:
#   WORK=/tmp/mamori-bench-logs               work dir (never the repository)
#   MAMORI=<repo>/build/release/bin/mamori    (cmake --preset release && cmake --build --preset release)
#   BENCH_TOOLS=bench/tools                   make_access_log.py (read only)
#   SEED=1                                    generator seed
#   RATE=200                                  benign lines/s written during part 3
# Needs root (netns, nftables, package installs). Installs its peers if missing:
# fail2ban, python3-pyinotify (Debian recommends it: fail2ban's inotify backend),
# nftables, time, jq, and crowdsec (with "# no thanks" as its online API
# credentials, so it installs and runs offline). A program, not a test: not
# registered with CTest. Figures: docs/performance.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
readonly here repo

LINES=1000000 SMALL_LINES=20000 ATTACKERS=100 CROWDSEC=1 LATENCY=1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
    case $1 in
    --lines) LINES=${2:?}; shift ;;
    --small-lines) SMALL_LINES=${2:?}; shift ;;
    --attackers) ATTACKERS=${2:?}; shift ;;
    --no-crowdsec) CROWDSEC=0 ;;
    --no-latency) LATENCY=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done

WORK=${WORK:-/tmp/mamori-bench-logs}
MAMORI=${MAMORI:-$repo/build/release/bin/mamori}
BENCH_TOOLS=${BENCH_TOOLS:-$here/../tools}
SEED=${SEED:-1} RATE=${RATE:-200}
GEN=$BENCH_TOOLS/make_access_log.py
PY=/usr/bin/python3 # Debian's: jails.py imports fail2ban's own modules
TIME=/usr/bin/time

die() { echo "run.sh: $*" >&2; exit 1; }
say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace, nftables, installing the peers)"
[[ -f $GEN ]] || die "no $GEN"
case $WORK/ in "$repo"/*) die "WORK must be outside the repository" ;; esac
mkdir -p "$WORK"
W=$(cd "$WORK" && pwd)

# ---------------------------------------------------------------- the peers
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold "$@" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold "$@" >&2; }
}
need=()
for p in fail2ban python3-pyinotify nftables time jq iproute2; do installed "$p" || need+=("$p"); done
if ((${#need[@]})); then
    say "installing ${need[*]}"
    apt_install "${need[@]}"
fi
CROWDSEC_NOTE=""
if ((CROWDSEC && SMALL_LINES > 0)) && ! installed crowdsec; then
    # Without credentials the package's postinst registers with CrowdSec's online API;
    # a non-empty credentials file tells it not to (README.Debian).
    mkdir -p /etc/crowdsec
    [[ -s /etc/crowdsec/online_api_credentials.yaml ]] || echo '# no thanks' >/etc/crowdsec/online_api_credentials.yaml
    say "installing crowdsec (offline: no online API registration)"
    apt_install crowdsec || CROWDSEC_NOTE="crowdsec did not install (see the output above)"
fi
if ((CROWDSEC)) && ! installed crowdsec; then
    CROWDSEC=0 CROWDSEC_NOTE=${CROWDSEC_NOTE:-crowdsec is not installed}
fi
# fail2ban's packaging does not start the service where policy-rc.d forbids it, but
# where it does, the host's fail2ban runs with Debian's sshd jail only; the benchmark
# never talks to it (own socket, own config).

# ---------------------------------------------------------------- measuring
RESULTS=$W/results-$(date +%Y%m%d-%H%M%S).tsv
printf 'part\ttool\tstep\twall_s\tcpu_s\trss_kib\trc\tload1\n' >"$RESULTS"
declare -A R # "part:tool:key" -> value

# timed PART TOOL STEP OUT -- CMD...: CMD once under /usr/bin/time, stdout to OUT,
# stderr to OUT.err; R[PART:TOOL:{wall,cpu,rss,rc}] and a line in $RESULTS.
timed() {
    local part=$1 tool=$2 step=$3 out=$4 tf=$W/.time.$$ t0 t1 rc u s m load wall
    shift 5
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$EPOCHREALTIME
    set +e
    "$TIME" -f '%e %U %S %M' -o "$tf" "$@" >"$out" 2>"$out.err"
    rc=$?
    set -e
    t1=$EPOCHREALTIME
    read -r _ u s m <<<"$(tail -n1 "$tf")"
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    R[$part:$tool:wall]=$wall
    R[$part:$tool:cpu]=$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u + s}')
    R[$part:$tool:rss]=$m
    R[$part:$tool:rc]=$rc
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$part" "$tool" "$step" "$wall" "${R[$part:$tool:cpu]}" "$m" "$rc" "$load" >>"$RESULTS"
    say "  $tool: ${wall} s, rc $rc"
}

# make_log N -> path of an N-line log (and N.truth.json), generated once per N and seed
make_log() {
    local n=$1 log=$W/access-$1-s$SEED.log
    if [[ ! -s $log || ! -s $log.truth.json ]] ||
        [[ $(jq '.lines_total' "$log.truth.json" 2>/dev/null) != "$n" ]]; then
        say "generating a $n-line log (seed $SEED)"
        python3 "$GEN" "$n" --seed "$SEED" --out "$log.tmp" --truth "$log.truth.json" >&2
        mv -f -- "$log.tmp" "$log"
    fi
    echo "$log"
}

# f2b_conf DIR LOG: fail2ban's configuration in DIR: Debian's /etc/fail2ban (read, never
# changed) without jail.d/, our filter and jails, on LOG; its own socket, pid file, log.
f2b_conf() {
    local d=$1 log=$2
    rm -rf -- "$d"
    mkdir -p "$d"
    cp -a /etc/fail2ban/. "$d/"
    rm -f -- "$d"/jail.d/* "$d"/*.local "$d"/jail.d/*.local
    cp -- "$here"/fail2ban/filter.d/*.conf "$d/filter.d/"
    sed "s|@LOG@|$log|g" "$here/fail2ban/jail.local.in" >"$d/jail.local"
    cat >"$d/fail2ban.local" <<EOF
[DEFAULT]
logtarget = $d/fail2ban.log
socket = $d/fail2ban.sock
pidfile = $d/fail2ban.pid
dbfile = :memory:
EOF
}
# the jails enabled in a configuration
f2b_jails() { sed -n 's/^\[\([a-z0-9-]*\)\]$/\1/p' "$here/fail2ban/jail.local.in" | grep -v '^DEFAULT$'; }
mapfile -t JAILS < <(f2b_jails)

# score PART TOOL BANNED_LIST TRUTH: R[PART:TOOL:{banned,attackers,benign,tricky,missed}]
score() {
    local part=$1 tool=$2 list=$3 truth=$4 att=$W/.att.$$ trk=$W/.trk.$$
    jq -r '.attackers[].ip' "$truth" | sort -u >"$att"
    jq -r '.benign_tricky[].ip' "$truth" | sort -u >"$trk"
    sort -u -o "$list" "$list"
    R[$part:$tool:banned]=$(wc -l <"$list")
    R[$part:$tool:attackers]=$(comm -12 "$att" "$list" | wc -l)
    R[$part:$tool:benign]=$(comm -13 "$att" "$list" | wc -l)
    R[$part:$tool:tricky]=$(comm -13 "$att" "$list" | comm -12 - "$trk" | wc -l)
    R[$part:$tool:missed]=$(comm -23 "$att" "$list" | paste -sd' ' -)
    R[$part:truth_attackers]=$(wc -l <"$att")
    rm -f -- "$att" "$trk"
}

# mamori_logs PART LOG DIR: `mamori logs test` on LOG; banned addresses to DIR/mamori.banned
have_mamori=0
[[ -x $MAMORI ]] && have_mamori=1
MAMORI_NOTE=""
((have_mamori)) || MAMORI_NOTE="no binary at $MAMORI (cmake --preset release && cmake --build --preset release)"
mamori_logs() {
    local part=$1 log=$2 d=$3 out
    ((have_mamori)) || return 0
    [[ -z $MAMORI_NOTE ]] || return 0
    out=$d/mamori.json
    timed "$part" mamori "logs test" "$out" -- "$MAMORI" logs test --format combined --json "$log"
    # Exit 0: nobody banned, 1: some; 3 with a report: the log does not fit the format
    # (too many lines refused; docs/formats/access-logs.md): scored all the same, and said.
    if [[ ${R[$part:mamori:rc]} == 3 ]] && jq -e '.unparseable' "$out" >/dev/null 2>&1; then
        R[$part:mamori:unfit]="$(jq '.unparsed' "$out") of $(jq '.lines' "$out") lines do not fit --format combined (exit 3)"
        say "mamori: ${R[$part:mamori:unfit]}"
    elif [[ ${R[$part:mamori:rc]} != [01] ]] || ! jq -e '.lines' "$out" >/dev/null 2>&1; then
        MAMORI_NOTE="\`mamori logs test\` is not usable yet (exit ${R[$part:mamori:rc]}: $(head -c 200 "$out.err" | head -n1))"
        say "mamori: $MAMORI_NOTE"
        unset "R[$part:mamori:wall]"
        return 0
    fi
    jq -r '.bans[].ip' "$out" >"$d/mamori.banned"
    R[$part:mamori:lines]=$(jq '.lines' "$out")
    R[$part:mamori:parsed]=$(jq '.parsed' "$out")
    R[$part:mamori:own_lps]=$(jq '.lines_per_second | floor' "$out")
    R[$part:mamori:skipped]=$(jq -c '.skipped' "$out")
    R[$part:mamori:by_rule]=$(jq -r '.by_rule | to_entries | map("\(.key) \(.value)") | join(", ")' "$out")
    score "$part" mamori "$d/mamori.banned" "$log.truth.json"
}

# fail2ban_logs PART LOG DIR: every jail's filter over LOG, then the jails' verdicts
fail2ban_logs() {
    local part=$1 log=$2 d=$3 j sum=0 cpu=0 rss=0 matched=0 n r
    local conf=$d/fail2ban-conf
    f2b_conf "$conf" "$log"
    mkdir -p "$d/matches"
    for j in "${JAILS[@]}"; do
        timed "$part" "f2b:$j" "fail2ban-regex $j" "$d/matches/$j.matches" -- \
            fail2ban-regex -o '<ip> <time>' "$log" "$conf/filter.d/$j.conf"
        n=$(awk 'NF == 2' "$d/matches/$j.matches" | wc -l)
        R[$part:f2b:$j:matched]=$n
        sum=$(awk -v a="$sum" -v b="${R[$part:f2b:$j:wall]}" 'BEGIN {print a + b}')
        cpu=$(awk -v a="$cpu" -v b="${R[$part:f2b:$j:cpu]}" 'BEGIN {print a + b}')
        r=${R[$part:f2b:$j:rss]}
        ((r > rss)) && rss=$r
        matched=$((matched + n))
    done
    R[$part:f2b:all:wall]=$sum R[$part:f2b:all:cpu]=$cpu R[$part:f2b:all:rss]=$rss R[$part:f2b:all:matched]=$matched
    "$PY" "$here/fail2ban/jails.py" "$conf" "$d/matches" >"$d/fail2ban.bans.tsv"
    for j in "${JAILS[@]}"; do
        awk -F'\t' -v j="$j" '$1 == j {print $2}' "$d/fail2ban.bans.tsv" >"$d/f2b-$j.banned"
        score "$part" "f2b:$j" "$d/f2b-$j.banned" "$log.truth.json"
    done
    cut -f2 "$d/fail2ban.bans.tsv" >"$d/fail2ban.banned"
    score "$part" f2b:all "$d/fail2ban.banned" "$log.truth.json"
    awk -F'\t' '$1 != "wordpress-access" {print $2}' "$d/fail2ban.bans.tsv" >"$d/fail2ban-shipped.banned"
    score "$part" f2b:shipped "$d/fail2ban-shipped.banned" "$log.truth.json"
}

# crowdsec_logs PART LOG DIR: CrowdSec's replay ("time machine") mode with a private
# config and database; bans = its ban decisions.
CS_PORT=18481
crowdsec_logs() {
    local part=$1 log=$2 d=$3/crowdsec
    rm -rf -- "$d"
    mkdir -p "$d/acquis.d" "$d/data"
    : >"$d/acquis.yaml"
    # Debian's hub enables crowdsecurity/http-path-traversal-probing but ships its data
    # file as path_traversal.txt, not the http_path_traversal.txt the scenario loads
    # (both come from crowdsecurity/sec-lists web/path_traversal.txt). Without it the
    # scenario never fires and CrowdSec logs an error with its whole data map for every
    # line. A private data dir supplies it; nothing under /var/lib/crowdsec changes.
    local f
    for f in /var/lib/crowdsec/data/*; do
        [[ $(basename "$f") == crowdsec.db* ]] || ln -s "$(readlink -f "$f")" "$d/data/"
    done
    [[ -e $d/data/http_path_traversal.txt ]] ||
        ln -s /usr/share/crowdsec/data/path_traversal.txt "$d/data/http_path_traversal.txt"
    cp -- /var/lib/crowdsec/data/crowdsec.db "$d/crowdsec.db" # holds the machine the package registered
    sed "s|^url: .*|url: http://127.0.0.1:$CS_PORT|" /etc/crowdsec/local_api_credentials.yaml >"$d/local_api_credentials.yaml"
    "$PY" - "$d" "$CS_PORT" <<'PY'
import sys
d, port = sys.argv[1], sys.argv[2]
s = open("/etc/crowdsec/config.yaml").read()
for a, b in (("daemonize: true", "daemonize: false"), ("log_dir: /var/log/", "log_dir: %s/" % d),
             ("data_dir: /var/lib/crowdsec/data/", "data_dir: %s/data/" % d),
             ("db_path: /var/lib/crowdsec/data/crowdsec.db", "db_path: %s/crowdsec.db" % d),
             ("acquisition_path: /etc/crowdsec/acquis.yaml", "acquisition_path: %s/acquis.yaml" % d),
             ("acquisition_dir: /etc/crowdsec/acquis.d", "acquisition_dir: %s/acquis.d" % d),
             ("listen_uri: 127.0.0.1:8080", "listen_uri: 127.0.0.1:%s" % port),
             ("credentials_path: /etc/crowdsec/local_api_credentials.yaml",
              "credentials_path: %s/local_api_credentials.yaml" % d),
             ("prometheus:\n  enabled: true", "prometheus:\n  enabled: false")):
    if a not in s:
        sys.exit("crowdsec config: no %r in /etc/crowdsec/config.yaml" % a)
    s = s.replace(a, b)
open(d + "/config.yaml", "w").write(s)
PY
    timed "$part" crowdsec "crowdsec -dsn" "$d/crowdsec.out" -- \
        crowdsec -c "$d/config.yaml" -dsn "file://$log" -type nginx -no-capi
    "$PY" -c "import sqlite3, sys
for (v,) in sqlite3.connect(sys.argv[1]).execute(\"select distinct value from decisions where type = 'ban' and scope = 'Ip'\"):
    print(v)" "$d/crowdsec.db" >"$d/crowdsec.banned"
    R[$part:crowdsec:errors]=$(cat "$d/crowdsec.out" "$d/crowdsec.out.err" | grep -c 'level=error' || true)
    R[$part:crowdsec:scenarios]=$("$PY" -c "import sqlite3, sys
print(', '.join('%s %d' % r for r in sqlite3.connect(sys.argv[1]).execute('select scenario, count(distinct value) from decisions group by 1 order by 2 desc')))" "$d/crowdsec.db")
    score "$part" crowdsec "$d/crowdsec.banned" "$log.truth.json"
}

# ---------------------------------------------------------------- processes (part 3)
NS="" F2B_PID="" AGENT_PID="" F2B_CONF=""
cleanup() {
    set +e
    if [[ -n $F2B_PID ]]; then
        fail2ban-client -c "$F2B_CONF" stop >/dev/null 2>&1 || kill -TERM "$F2B_PID"
        wait "$F2B_PID" 2>/dev/null
    fi
    if [[ -n $AGENT_PID ]]; then
        kill -TERM "$AGENT_PID" 2>/dev/null
        wait "$AGENT_PID" 2>/dev/null
    fi
    [[ -n $NS ]] && ip netns del "$NS" 2>/dev/null
    NS="" F2B_PID="" AGENT_PID=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# parse_latency OUT PEER: ban_latency.py's summary -> R[lat:PEER:...]
parse_latency() {
    local out=$1 peer=$2 k
    for k in samples banned timeouts early in_set; do
        R[lat:$peer:$k]=$(awk -v k="$k" '/^peer / {for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' "$out")
    done
    for k in min p50 p90 p99 max mean; do
        R[lat:$peer:$k]=$(awk -v k="$k" '/^latency_ms/ {for (i = 2; i < NF; i += 2) if ($i == k) print $(i + 1)}' "$out")
    done
}

latency_fail2ban() {
    local d=$W/live/fail2ban log=$W/live/fail2ban/access.log i
    mkdir -p "$d"
    : >"$log"
    F2B_CONF=$d/conf
    f2b_conf "$F2B_CONF" "$log"
    say "fail2ban-server (${#JAILS[@]} jails, nftables-multiport, pyinotify) in netns $NS"
    ip netns exec "$NS" fail2ban-client -c "$F2B_CONF" -x -f start >"$d/server.out" 2>&1 &
    F2B_PID=$!
    for ((i = 0; i < 300; i++)); do
        fail2ban-client -c "$F2B_CONF" status 2>/dev/null | grep -q "Number of jail:.*${#JAILS[@]}" && break
        kill -0 "$F2B_PID" 2>/dev/null || die "fail2ban-server exited: $(tail -n3 "$d/server.out")"
        sleep 0.1
    done
    R[lat:fail2ban:backend]=$(fail2ban-client -c "$F2B_CONF" -d 2>/dev/null | sed -n "s/^\['add', '[^']*', '\([a-z]*\)'\]$/\1/p" | sort -u | paste -sd, -)
    R[lat:fail2ban:load]=$(cut -d' ' -f1-3 /proc/loadavg)
    say "ban latency, fail2ban: $ATTACKERS addresses"
    "$PY" "$here/ban_latency.py" --peer fail2ban --netns "$NS" --log "$log" --attackers "$ATTACKERS" \
        --rate "$RATE" --csv "$d/latency.csv" >"$d/latency.out" 2>"$d/latency.err" ||
        R[lat:fail2ban:error]=$(tail -n1 "$d/latency.err")
    sed 's/^/  /' "$d/latency.out" >&2
    parse_latency "$d/latency.out" fail2ban
    R[lat:fail2ban:cpu]=$(awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$F2B_PID/stat" 2>/dev/null || echo "")
    fail2ban-client -c "$F2B_CONF" stop >/dev/null 2>&1 || kill -TERM "$F2B_PID"
    wait "$F2B_PID" 2>/dev/null || true
    F2B_PID=""
}

# The agent's [[log]] and [ban] keys are the lead's to define (core/config); this is the
# shape assumed until then. An agent that rejects them exits at start: reported, skipped.
latency_mamori() {
    local d=$W/live/mamori log=$W/live/mamori/access.log cfg=$W/live/mamori/mamori.toml i
    if ((!have_mamori)); then
        R[lat:mamori:error]="no binary at $MAMORI"
        return 0
    fi
    rm -rf -- "$d"
    mkdir -p "$d/site"
    : >"$log"
    echo '<?php echo "hello";' >"$d/site/index.php"
    cat >"$cfg" <<EOF
# written by bench/logs/run.sh
state_dir = "$d/state"

[[root]]
path = "$d/site"
mode = "alert"

[agent]
socket = "$d/agent.sock"
event_log = "$d/events.jsonl"

[[log]]
path = "$log"
format = "combined"

[ban]
backend = "nftables"
nft_table = "mamori"
EOF
    if ! "$MAMORI" --config "$cfg" init >"$d/init.out" 2>&1; then
        R[lat:mamori:error]="\`mamori init\` with [[log]]/[ban] in the config failed: $(head -n1 "$d/init.out")"
        return 0
    fi
    ip netns exec "$NS" "$MAMORI" --config "$cfg" agent >"$d/agent.log" 2>&1 &
    AGENT_PID=$!
    for ((i = 0; i < 600; i++)); do
        grep -q 'ready' "$d/agent.log" && break
        if ! kill -0 "$AGENT_PID" 2>/dev/null; then
            wait "$AGENT_PID" 2>/dev/null || true
            AGENT_PID=""
            R[lat:mamori:error]="the agent exited at start: $(grep -v '^$' "$d/agent.log" | tail -n1 | head -c 200)"
            return 0
        fi
        sleep 0.1
    done
    R[lat:mamori:load]=$(cut -d' ' -f1-3 /proc/loadavg)
    say "ban latency, mamori: $ATTACKERS addresses"
    "$PY" "$here/ban_latency.py" --peer mamori --netns "$NS" --log "$log" --attackers "$ATTACKERS" \
        --rate "$RATE" --warmup-timeout 15 --csv "$d/latency.csv" >"$d/latency.out" 2>"$d/latency.err" ||
        R[lat:mamori:error]="$(tail -n1 "$d/latency.err") (does the agent read [[log]] and ban into inet mamori yet?)"
    sed 's/^/  /' "$d/latency.out" >&2
    parse_latency "$d/latency.out" mamori
    R[lat:mamori:cpu]=$(awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$AGENT_PID/stat" 2>/dev/null || echo "")
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=""
}

# ---------------------------------------------------------------- run
start_uptime=$(uptime)
say "work dir $W; $LINES lines; small log $SMALL_LINES; $ATTACKERS latency samples; mamori: $( ((have_mamori)) && echo "$MAMORI" || echo "missing")"
if ((have_mamori)); then
    # Benchmark a snapshot: the build tree may be relinked while this runs.
    mkdir -p "$W/bin"
    MAMORI_BUILT=$(date -u -r "$MAMORI" '+%Y-%m-%d %H:%M UTC')
    cp -- "$MAMORI" "$W/bin/mamori.new" && mv -f -- "$W/bin/mamori.new" "$W/bin/mamori"
    MAMORI_SRC=$MAMORI MAMORI=$W/bin/mamori
fi

BIG=$(make_log "$LINES")
R[big:lines]=$LINES
mkdir -p "$W/big"
R[big:load]=$(cut -d' ' -f1-3 /proc/loadavg)
say "part 1: $LINES lines ($BIG)"
cat "$BIG" >/dev/null # warm cache
mamori_logs big "$BIG" "$W/big"
fail2ban_logs big "$BIG" "$W/big"

if ((SMALL_LINES > 0)); then
    SMALL=$(make_log "$SMALL_LINES")
    R[small:lines]=$SMALL_LINES
    mkdir -p "$W/small"
    say "part 2: $SMALL_LINES lines ($SMALL)"
    mamori_logs small "$SMALL" "$W/small"
    fail2ban_logs small "$SMALL" "$W/small"
    if ((CROWDSEC)); then crowdsec_logs small "$SMALL" "$W/small"; fi
fi

if ((LATENCY)); then
    NS=mamori-bench-logs-$$
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
    say "part 3: ban latency in netns $NS"
    latency_fail2ban
    latency_mamori
    ip netns del "$NS"
    NS=""
fi
end_uptime=$(uptime)

# ---------------------------------------------------------------- report
v() { local x=${R[$1]:-}; echo "${x:-n/a}"; }
lps() { # part tool -> lines per second of wall time
    local w=${R[$1:$2:wall]:-} n=${R[$1:lines]}
    [[ -n $w ]] || { echo "n/a"; return; }
    awk -v n="$n" -v w="$w" 'BEGIN {if (w > 0) printf "%.0f", n / w; else print "n/a"}'
}
lpcpu() { # part tool -> lines per CPU second
    local c=${R[$1:$2:cpu]:-} n=${R[$1:lines]}
    [[ -n $c ]] || { echo "n/a"; return; }
    awk -v n="$n" -v c="$c" 'BEGIN {if (c > 0) printf "%.0f", n / c; else print "n/a"}'
}
mib() { [[ -n ${1:-} ]] || { echo "n/a"; return; }; awk -v v="$1" 'BEGIN {printf "%.1f", v / 1024}'; }
ratio() { [[ -n ${1:-} && -n ${2:-} && $1 != n/a && $2 != n/a ]] || { echo "n/a"; return; }
    awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f×", a / b; else print "n/a"}'; }
verdict() {
    [[ -n ${1:-} && $1 != n/a ]] || { echo "n/a"; return; }
    awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= g) : (op == "<=") ? (v <= g) : (v == g); print ok ? "PASS" : "MISS" }'
}
recall() { # part tool -> "a / total", benign
    [[ -n ${R[$1:$2:attackers]:-} ]] || { echo "n/a | n/a"; return; }
    echo "${R[$1:$2:attackers]} / ${R[$1:truth_attackers]} | ${R[$1:$2:benign]} (${R[$1:$2:tricky]} tricky)"
}
throughput_table() {
    local part=$1 j
    echo "| tool | rules | wall s | CPU s | lines/s (wall) | lines per CPU s | peak RSS MiB | matched lines | attackers banned | benign banned |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    if [[ -n ${R[$part:mamori:wall]:-} ]]; then
        echo "| **mamori** \`logs test\` | default rule set | $(v "$part:mamori:wall") | $(v "$part:mamori:cpu") | $(lps "$part" mamori) | $(lpcpu "$part" mamori) | $(mib "${R[$part:mamori:rss]}") | — | $(recall "$part" mamori) |"
    else
        echo "| **mamori** \`logs test\` | default rule set | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"
    fi
    for j in "${JAILS[@]}"; do
        echo "| fail2ban-regex | $j | $(v "$part:f2b:$j:wall") | $(v "$part:f2b:$j:cpu") | $(lps "$part" "f2b:$j") | $(lpcpu "$part" "f2b:$j") | $(mib "${R[$part:f2b:$j:rss]:-}") | $(v "$part:f2b:$j:matched") | $(recall "$part" "f2b:$j") |"
    done
    echo "| fail2ban, the $((${#JAILS[@]} - 1)) shipped filters | (jails together) | | | | | | | $(recall "$part" f2b:shipped) |"
    echo "| **fail2ban, all ${#JAILS[@]} filters** (sum of runs) | | $(v "$part:f2b:all:wall") | $(v "$part:f2b:all:cpu") | $(lps "$part" f2b:all) | $(lpcpu "$part" f2b:all) | $(mib "${R[$part:f2b:all:rss]}") | $(v "$part:f2b:all:matched") | $(recall "$part" f2b:all) |"
    if [[ $part == small && -n ${R[small:crowdsec:wall]:-} ]]; then
        echo "| CrowdSec replay | Debian hub: nginx, base-http-scenarios, http-cve | $(v small:crowdsec:wall) | $(v small:crowdsec:cpu) | $(lps small crowdsec) | $(lpcpu small crowdsec) | $(mib "${R[small:crowdsec:rss]}") | — | $(recall small crowdsec) |"
    fi
}
attacker_table() { # which attacker each tool banned
    local part=$1 log=$2 d=$W/$1 ip
    echo "| attacker | campaigns (lines) | mamori | fail2ban jails |$([[ $part == small && -n ${R[small:crowdsec:wall]:-} ]] && echo " CrowdSec scenarios |")"
    echo "|---|---|---|---|$([[ $part == small && -n ${R[small:crowdsec:wall]:-} ]] && echo "---|")"
    while IFS=$'\t' read -r ip camps; do
        local m="n/a" f c=""
        if [[ -s $d/mamori.json && -n ${R[$part:mamori:wall]:-} ]]; then
            m=$(jq -r --arg ip "$ip" '[.bans[] | select(.ip == $ip) | .rule] | unique | join(", ")' "$d/mamori.json")
            m=${m:-**missed**}
        fi
        f=$(awk -F'\t' -v ip="$ip" '$2 == ip {print $1}' "$d/fail2ban.bans.tsv" | paste -sd, - | sed 's/,/, /g')
        f=${f:-**missed**}
        if [[ $part == small && -n ${R[small:crowdsec:wall]:-} ]]; then
            c=$("$PY" -c "import sqlite3, sys
print(', '.join(r[0].split('/')[-1] for r in sqlite3.connect(sys.argv[1]).execute('select distinct scenario from decisions where value = ?', (sys.argv[2],))))" "$d/crowdsec/crowdsec.db" "$ip")
            c=" ${c:-**missed**} |"
        fi
        echo "| $ip | $camps | $m | $f |$c"
    done < <(jq -r '.attackers[] | [.ip, ([.campaigns[] | "\(.type) (\(.lines))"] | join(", "))] | @tsv' "$log.truth.json")
}

report=$W/report-$(date +%Y%m%d-%H%M%S).md
{
    echo "## mamori log-scanning benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
    if ((have_mamori)); then
        echo "- mamori: $MAMORI_SRC (built $MAMORI_BUILT, $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?') + working tree)${MAMORI_NOTE:+; $MAMORI_NOTE}"
    else
        echo "- mamori: n/a ($MAMORI_NOTE)"
    fi
    echo "- peers: $(dpkg-query -W -f='${Package} ${Version}' fail2ban), $(dpkg-query -W -f='${Package} ${Version}' crowdsec 2>/dev/null || echo 'crowdsec n/a')${CROWDSEC_NOTE:+ ($CROWDSEC_NOTE)}, $(nft --version)"
    echo "- uptime at start: $start_uptime"
    echo "- uptime at end:   $end_uptime"
    echo "- raw results: $RESULTS; outputs under $W"
    echo
    echo "### $LINES-line access log ($(basename "$BIG"), $(jq '.lines_attack' "$BIG.truth.json") attack lines from $(jq '.attackers | length' "$BIG.truth.json") attackers)"
    echo
    echo "One run each, warm cache; load at the start: ${R[big:load]}."
    echo
    throughput_table big
    echo
    attacker_table big "$BIG"
    echo
    if [[ -n ${R[big:mamori:wall]:-} ]]; then
        echo "mamori's own figures: $(v big:mamori:lines) lines, $(v big:mamori:parsed) parsed, skipped $(v big:mamori:skipped), $(v big:mamori:own_lps) lines/s measured inside; bans by rule: $(v big:mamori:by_rule)."
        for p in big small; do
            [[ -z ${R[$p:mamori:unfit]:-} ]] || echo "**mamori: the $p log does not fit its format**: ${R[$p:mamori:unfit]}; its figures are for a log mamori mostly refused."
        done
        echo
    fi
    if ((SMALL_LINES > 0)); then
        echo "### $SMALL_LINES-line access log, with CrowdSec ($(basename "$SMALL"), $(jq '.lines_attack' "$SMALL.truth.json") attack lines)"
        echo
        throughput_table small
        echo
        if [[ -n ${R[small:crowdsec:wall]:-} ]]; then
            echo "CrowdSec ban decisions by scenario (addresses): $(v small:crowdsec:scenarios). Errors it logged: $(v small:crowdsec:errors) (the GeoIP enrichers: Debian does not ship the MaxMind databases; the missing http_path_traversal.txt is supplied, see README)."
            echo
            attacker_table small "$SMALL"
            echo
        elif [[ -n $CROWDSEC_NOTE ]]; then
            echo "CrowdSec: skipped ($CROWDSEC_NOTE)."
            echo
        fi
    fi
    if ((LATENCY)); then
        echo "### Ban latency: line write() → nftables element (live, $ATTACKERS addresses, $RATE benign lines/s)"
        echo
        echo "| daemon | how it bans | samples | banned | time-outs | early | in set at end | p50 ms | p90 ms | p99 ms | max ms | mean ms | daemon CPU s | load |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        echo "| fail2ban-server | ${#JAILS[@]} jails, backend $(v lat:fail2ban:backend), nftables-multiport; 5th 404 on /phpmyadmin/ (nginx-botsearch) | $(v lat:fail2ban:samples) | $(v lat:fail2ban:banned) | $(v lat:fail2ban:timeouts) | $(v lat:fail2ban:early) | $(v lat:fail2ban:in_set) | $(v lat:fail2ban:p50) | $(v lat:fail2ban:p90) | $(v lat:fail2ban:p99) | $(v lat:fail2ban:max) | $(v lat:fail2ban:mean) | $(v lat:fail2ban:cpu) | $(v lat:fail2ban:load) |"
        echo "| **mamori agent** | default rules, libnftables; 1st UNION SELECT (sqli-union-select) | $(v lat:mamori:samples) | $(v lat:mamori:banned) | $(v lat:mamori:timeouts) | $(v lat:mamori:early) | $(v lat:mamori:in_set) | $(v lat:mamori:p50) | $(v lat:mamori:p90) | $(v lat:mamori:p99) | $(v lat:mamori:max) | $(v lat:mamori:mean) | $(v lat:mamori:cpu) | $(v lat:mamori:load) |"
        echo
        [[ -z ${R[lat:fail2ban:error]:-} ]] || echo "fail2ban: ${R[lat:fail2ban:error]}"
        [[ -z ${R[lat:mamori:error]:-} ]] || echo "mamori: not measured: ${R[lat:mamori:error]}"
        echo
        echo "Ratio fail2ban / mamori: p50 $(ratio "$(v lat:fail2ban:p50)" "$(v lat:mamori:p50)"), p99 $(ratio "$(v lat:fail2ban:p99)" "$(v lat:mamori:p99)")."
        echo
    fi
    echo "### Against the targets"
    echo
    mlps=$(lps big mamori)
    echo "| target | measured | result |"
    echo "|---|---:|---|"
    echo "| mamori ≥ 1,000,000 lines/s with the full rule set ($LINES lines, wall) | $mlps lines/s ($(lpcpu big mamori) per CPU s) | $(verdict "$mlps" ">=" 1000000) |"
    echo "| mamori vs fail2ban, all filters (lines/s) | $(ratio "$mlps" "$(lps big f2b:all)") | |"
    echo "| 14 of 14 attackers banned | $(v big:mamori:attackers) / $(v big:truth_attackers) (fail2ban, all filters: $(v big:f2b:all:attackers)) | $(verdict "$(v big:mamori:attackers)" "==" "$(v big:truth_attackers)") |"
    echo "| no benign address banned | $(v big:mamori:benign) (fail2ban: $(v big:f2b:all:benign)) | $(verdict "$(v big:mamori:benign)" "==" 0) |"
    echo "| ban p99 ≤ 10 ms | $(v lat:mamori:p99) ms (fail2ban: $(v lat:fail2ban:p99) ms) | $(verdict "$(v lat:mamori:p99)" "<=" 10) |"
    echo
} | tee "$report"
say "report saved to $report"
