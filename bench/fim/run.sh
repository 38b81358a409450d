#!/usr/bin/env bash
# bench/fim/run.sh - baseline and batch-check benchmark: mamori side by side
# with AIDE, Tripwire, Samhain and the `xargs -P2 sha256sum` hashing limit.
#
# Usage: bench/fim/run.sh [small|large|both]        (default: small)
#
# Corpora come from bench/tools/make_corpus.sh (web roots of Debian's
# WordPress, phpMyAdmin and MediaWiki); peers run through
# bench/tools/fim-peers/fim_peers.sh. For each corpus, after one
# warm-up read of every file (warm cache):
#   - the hashing limit, REPS times;
#   - each peer: init REPS times, unchanged check REPS times;
#   - mamori: init REPS times (fresh state dir each time), unchanged `check`
#     REPS times, `check --full` REPS times;
#   - `fim_peers.sh tamper 100` (append a line to 100 files, fixed seed), then
#     one check per tool (mamori: `check` and `check --full`), comparing the
#     reported paths with the tampered list;
#   - the corpus is rebuilt with make_corpus.sh (undoes the tamper).
# Times are medians; wall time from the shell clock, CPU (user+sys) and peak
# RSS from /usr/bin/time. Prints a Markdown report on stdout (progress goes
# to stderr) and keeps a copy in $WORK/report-<corpus>-<date>.md.
#
# Environment:
#   WORK=/var/tmp/mamori-bench   work dir (corpora, databases, logs); never the repo
#   REPS=3                       repetitions per timed step (REPS_SMALL / REPS_LARGE override)
#   TOOLS="aide aide-w2 tripwire samhain"   peers to run ("" for none)
#   MAMORI=<repo>/build/release/bin/mamori  binary; missing -> mamori shows n/a
#   BENCH_TOOLS=bench/tools                 make_corpus.sh and fim-peers/
#   TAMPER_N=100                 files changed for the detection step
# Needs root (make_corpus.sh, samhain's mount namespace); bench/install-peers.sh
# installs the packages.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
readonly here repo

WORK=${WORK:-/var/tmp/mamori-bench}
REPS=${REPS:-3}
TOOLS=${TOOLS-aide aide-w2 tripwire samhain}
MAMORI=${MAMORI:-$repo/build/release/bin/mamori}
BENCH_TOOLS=${BENCH_TOOLS:-$here/../tools}
TAMPER_N=${TAMPER_N:-100}
MAKE_CORPUS=$BENCH_TOOLS/make_corpus.sh
FIM=$BENCH_TOOLS/fim-peers/fim_peers.sh
TIME=/usr/bin/time

die() { echo "run.sh: $*" >&2; exit 1; }
say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

sizes=()
case ${1:-small} in
small | large) sizes=("${1:-small}") ;;
both) sizes=(small large) ;;
*) die "usage: bench/fim/run.sh [small|large|both]" ;;
esac
[[ $(id -u) -eq 0 ]] || die "must run as root (make_corpus.sh, samhain namespace)"
[[ -x $TIME ]] || die "$TIME missing: run bench/install-peers.sh"
command -v jq >/dev/null || die "jq missing: run bench/install-peers.sh"
[[ -x $MAKE_CORPUS && -x $FIM ]] || die "no $MAKE_CORPUS or $FIM"
case $WORK/ in "$repo"/*) die "WORK must be outside the repository" ;; esac
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

have_mamori=0
[[ -x $MAMORI ]] && have_mamori=1

# ---------------------------------------------------------------- measuring
# Results: one line per timed run: size tool step wall_s cpu_s rss_kib rc load1
# (load1 = the 1-minute load average just before the run)
RESULTS=$WORK/results-$(date +%Y%m%d-%H%M%S).tsv
: >"$RESULTS"
declare -A INFO # "size:tool:key" -> value

# timed SIZE TOOL STEP OUT -- CMD...   run CMD once under /usr/bin/time, stdout
# to OUT, stderr to OUT.err; appends a line to $RESULTS.
timed() {
    local size=$1 tool=$2 step=$3 out=$4
    shift 5
    local tf=$WORK/.time.$$ t0 t1 rc line u s m load
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$EPOCHREALTIME
    set +e
    "$TIME" -f '%e %U %S %M' -o "$tf" "$@" >"$out" 2>"$out.err"
    rc=$?
    set -e
    t1=$EPOCHREALTIME
    line=$(tail -n1 "$tf")
    read -r _ u s m <<<"$line"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$tool" "$step" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" \
        "$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u + s}')" "$m" "$rc" "$load" >>"$RESULTS"
    say "  $tool $step: $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s, rc $rc"
}

# median SIZE TOOL STEP COLUMN(4 wall, 5 cpu, 6 rss KiB) -> median or empty
median() {
    awk -F'\t' -v z="$1" -v t="$2" -v s="$3" -v c="$4" '$1 == z && $2 == t && $3 == s {print $c}' \
        "$RESULTS" | sort -g | awk '{v[NR] = $1} END {
            if (NR == 0) exit
            if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# the exit codes seen for a step, e.g. "0" or "0,1"
codes() {
    awk -F'\t' -v z="$1" -v t="$2" -v s="$3" '$1 == z && $2 == t && $3 == s {print $7}' \
        "$RESULTS" | sort -un | paste -sd, -
}
runs() { awk -F'\t' -v z="$1" -v t="$2" -v s="$3" '$1 == z && $2 == t && $3 == s' "$RESULTS" | wc -l; }

# compare FOUND_LIST TAMPERED_LIST SIZE TOOL PREFIX: store found/missing/extra
compare() {
    local found=$1 want=$2 key=$3:$4 p=$5
    INFO[$key:${p}found]=$(sort -u "$found" | wc -l)
    INFO[$key:${p}missing]=$(comm -23 <(sort -u "$want") <(sort -u "$found") | wc -l)
    INFO[$key:${p}extra]=$(comm -13 <(sort -u "$want") <(sort -u "$found") | wc -l)
}

# mamori's --json output -> changed paths (one a line); fails on bad JSON
mamori_paths() { jq -r '.changes[] | .path' "$1"; }

# ---------------------------------------------------------------- one corpus
bench_size() {
    local size=$1 reps corpus wd pw logs tool i files bytes
    reps=$REPS
    [[ $size == small && -n ${REPS_SMALL:-} ]] && reps=$REPS_SMALL
    [[ $size == large && -n ${REPS_LARGE:-} ]] && reps=$REPS_LARGE
    INFO[$size:reps]=$reps
    corpus=$WORK/corpus-$size
    wd=$WORK/$size
    pw=$wd/peers
    logs=$wd/logs
    mkdir -p "$wd" "$pw" "$logs"

    say "== $size corpus: make_corpus.sh (idempotent; rebuilds a changed corpus)"
    "$MAKE_CORPUS" "$size" "$corpus" >&2
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}')
    INFO[$size:files]=$files
    INFO[$size:bytes]=$bytes
    INFO[$size:load_start]=$(cut -d' ' -f1-3 /proc/loadavg)
    say "$files files, $bytes bytes; warm-up read"
    find "$corpus" -type f -print0 | xargs -0 cat >/dev/null

    say "hashing limit (find | xargs -0 -P2 sha256sum), $reps runs"
    for ((i = 1; i <= reps; i++)); do
        # shellcheck disable=SC2016 # $1 belongs to the inner bash
        timed "$size" sha256sum check "$logs/sha256sum.out" -- \
            bash -c 'find "$1" -type f -print0 | xargs -0 -P2 sha256sum >/dev/null' _ "$corpus"
    done

    for tool in $TOOLS; do
        say "$tool: setup, init x$reps, check x$reps"
        "$FIM" setup "$tool" "$corpus" "$pw" >"$logs/$tool.setup.log" 2>&1 \
            || die "fim_peers.sh setup $tool failed, see $logs/$tool.setup.log"
        for ((i = 1; i <= reps; i++)); do
            timed "$size" "$tool" init "$logs/$tool.init.out" -- "$FIM" init "$tool" "$corpus" "$pw"
        done
        INFO[$size:$tool:dbsize]=$("$FIM" dbsize "$tool" "$corpus" "$pw")
        for ((i = 1; i <= reps; i++)); do
            timed "$size" "$tool" check "$logs/$tool.check.out" -- "$FIM" check "$tool" "$corpus" "$pw"
        done
        INFO[$size:$tool:fp]=$("$FIM" count "$tool" "$corpus" "$pw")
    done

    local cfg=$wd/mamori.toml state=$wd/mamori-state
    if ((have_mamori)); then
        cat >"$cfg" <<EOF
state_dir = "$state"
[[root]]
path = "$corpus"
mode = "alert"
EOF
        say "mamori: init x$reps (fresh state each time), check x$reps, check --full x$reps"
        for ((i = 1; i <= reps; i++)); do
            rm -rf -- "${state:?}"
            timed "$size" mamori init "$logs/mamori.init.out" -- "$MAMORI" --config "$cfg" init
            # init stores content raw and leaves its compression to a background
            # `init --compress-store`; the state's size right now is what it takes
            # meanwhile. A foreground --compress-store waits for that one to finish
            # (or does the work itself): its wall time is how long compression ran on
            # after init returned.
            INFO[$size:mamori:rawsize]=$(du -sb "$state" | cut -f1)
            timed "$size" mamori compress "$logs/mamori.compress.out" -- \
                "$MAMORI" --config "$cfg" init --compress-store
        done
        if [[ -d $state ]]; then
            INFO[$size:mamori:dbsize]=$(du -sb "$state" | cut -f1)
            if [[ -d $state/store ]]; then
                INFO[$size:mamori:store]=$(du -sb "$state/store" | cut -f1)
            fi
        fi
        for ((i = 1; i <= reps; i++)); do
            timed "$size" mamori check "$logs/mamori.check.out" -- "$MAMORI" --config "$cfg" check --json
        done
        INFO[$size:mamori:fp]=$(mamori_paths "$logs/mamori.check.out" | wc -l) || INFO[$size:mamori:fp]="bad JSON"
        for ((i = 1; i <= reps; i++)); do
            timed "$size" mamori full "$logs/mamori.full.out" -- "$MAMORI" --config "$cfg" check --full --json
        done
        INFO[$size:mamori:fpfull]=$(mamori_paths "$logs/mamori.full.out" | wc -l) || INFO[$size:mamori:fpfull]="bad JSON"
        INFO[$size:mamori:errors]=$(jq '.errors | length' "$logs/mamori.check.out" "$logs/mamori.full.out" 2>/dev/null \
            | paste -sd/ -) || INFO[$size:mamori:errors]="bad JSON"
    fi

    say "tamper: append a line to $TAMPER_N files; one check per tool"
    "$FIM" tamper "$TAMPER_N" "$corpus" "$wd" 2>&1 | sed 's/^/  /' >&2
    local list=$wd/tampered.list
    for tool in $TOOLS; do
        timed "$size" "$tool" tampered "$logs/$tool.tampered.out" -- "$FIM" check "$tool" "$corpus" "$pw"
        "$FIM" paths "$tool" "$corpus" "$pw" >"$wd/$tool.found"
        compare "$wd/$tool.found" "$list" "$size" "$tool" ""
    done
    if ((have_mamori)); then
        timed "$size" mamori tampered "$logs/mamori.tampered.out" -- "$MAMORI" --config "$cfg" check --json
        if mamori_paths "$logs/mamori.tampered.out" >"$wd/mamori.found"; then
            compare "$wd/mamori.found" "$list" "$size" mamori ""
        else
            INFO[$size:mamori:found]="bad JSON"
        fi
        timed "$size" mamori tamperedfull "$logs/mamori.tamperedfull.out" -- \
            "$MAMORI" --config "$cfg" check --full --json
        if mamori_paths "$logs/mamori.tamperedfull.out" >"$wd/mamori-full.found"; then
            compare "$wd/mamori-full.found" "$list" "$size" mamori "full_"
        else
            INFO[$size:mamori:full_found]="bad JSON"
        fi
    fi
    INFO[$size:load_end]=$(cut -d' ' -f1-3 /proc/loadavg)

    say "restoring the corpus (make_corpus.sh rebuilds it)"
    "$MAKE_CORPUS" "$size" "$corpus" >&2
}

# ---------------------------------------------------------------- report
fmt() { # value decimals -> formatted, or n/a
    [[ -n $1 ]] || { echo "n/a"; return; }
    awk -v v="$1" -v d="$2" 'BEGIN {printf "%.*f", d, v}'
}
mib() { [[ -n $1 ]] || { echo "n/a"; return; }; awk -v v="$1" 'BEGIN {printf "%.1f", v / 1024}'; }
ratio() { # a b -> a/b with 1 decimal, or empty
    [[ -n $1 && -n $2 ]] || return 0
    awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f", a / b}'
}
rx() { local r; r=$(ratio "$1" "$2"); [[ -n $r ]] && echo "$r×" || echo "n/a"; }
verdict() { # value op goal -> PASS / MISS / n/a
    [[ -n $1 && $1 != n/a ]] || { echo "n/a"; return; }
    awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= g) : (op == "<=") ? (v <= g) : (v == g)
        print ok ? "PASS" : "MISS" }'
}

step_label() {
    case $1:$2 in
    sha256sum:check) echo "hash every file (limit)" ;;
    mamori:init) echo "init (store included, uncompressed)" ;;
    mamori:compress) echo "store compressed in the background (wall after init returned)" ;;
    mamori:check) echo "check (fast, unchanged)" ;;
    mamori:full) echo "check --full (unchanged)" ;;
    mamori:tampered) echo "check after $TAMPER_N changed" ;;
    mamori:tamperedfull) echo "check --full after $TAMPER_N changed" ;;
    *:init) echo "init" ;;
    *:check) echo "check (unchanged)" ;;
    *:tampered) echo "check after $TAMPER_N changed" ;;
    esac
}

report_size() {
    local size=$1 files=${INFO[$1:files]} bytes=${INFO[$1:bytes]} tool step w c r
    echo "### $size corpus: $files files, $(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB"
    echo
    echo "Medians of ${INFO[$size:reps]} runs (after-tamper checks: 1 run), warm cache."
    echo "Load average (1/5/15 min) at start: ${INFO[$size:load_start]}; at end: ${INFO[$size:load_end]}." \
        "Highest 1-min load seen before a timed step: $(awk -F'\t' -v z="$size" '$1 == z && $8 > m {m = $8} END {print m + 0}' "$RESULTS")," \
        "before a mamori step: $(awk -F'\t' -v z="$size" '$1 == z && $2 == "mamori" && $8 > m {m = $8} END {print m + 0}' "$RESULTS")."
    echo
    echo "| tool | step | wall s | CPU s | peak RSS MiB | exit |"
    echo "|---|---|---:|---:|---:|---|"
    for tool in sha256sum $TOOLS mamori; do
        for step in init compress check full tampered tamperedfull; do
            [[ $tool == mamori ]] || [[ $step != full && $step != tamperedfull && $step != compress ]] || continue
            [[ $tool != sha256sum ]] || [[ $step == check ]] || continue
            if [[ $tool == mamori ]] && ((!have_mamori)); then
                echo "| mamori | $(step_label mamori "$step") | n/a | n/a | n/a | no binary |"
                continue
            fi
            (($(runs "$size" "$tool" "$step") > 0)) || continue
            w=$(median "$size" "$tool" "$step" 4)
            c=$(median "$size" "$tool" "$step" 5)
            r=$(median "$size" "$tool" "$step" 6)
            echo "| $tool | $(step_label "$tool" "$step") | $(fmt "$w" 3) | $(fmt "$c" 2) | $(mib "$r") | $(codes "$size" "$tool" "$step") |"
        done
    done
    echo
    echo "| tool | baseline bytes | % of corpus bytes | reported on unchanged check | found after tamper | missing | extra |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for tool in $TOOLS mamori; do
        if [[ $tool == mamori ]] && ((!have_mamori)); then
            echo "| mamori | n/a | n/a | n/a | n/a | n/a | n/a |"
            continue
        fi
        local db=${INFO[$size:$tool:dbsize]:-} pct="n/a"
        [[ -n $db ]] && pct=$(awk -v a="$db" -v b="$bytes" 'BEGIN {printf "%.2f", 100 * a / b}')
        echo "| $tool | ${db:-n/a} | $pct | ${INFO[$size:$tool:fp]:-n/a} | ${INFO[$size:$tool:found]:-n/a} / $TAMPER_N | ${INFO[$size:$tool:missing]:-n/a} | ${INFO[$size:$tool:extra]:-n/a} |"
        if [[ $tool == mamori ]]; then
            echo "| mamori --full | (same) | | ${INFO[$size:mamori:fpfull]:-n/a} | ${INFO[$size:mamori:full_found]:-n/a} / $TAMPER_N | ${INFO[$size:mamori:full_missing]:-n/a} | ${INFO[$size:mamori:full_extra]:-n/a} |"
        fi
    done
    echo
    echo "Baseline: mamori = \`du -sb\` of its state dir (catalog + store); peers = their database file."
    if [[ -n ${INFO[$size:mamori:store]:-} ]]; then
        echo "mamori's store (compressed copies) is ${INFO[$size:mamori:store]} bytes of it, the rest is the catalog."
    fi
    if [[ -n ${INFO[$size:mamori:rawsize]:-} ]]; then
        echo "Right after init returned (content stored uncompressed, compression running): mamori's state was ${INFO[$size:mamori:rawsize]} bytes ($(awk -v a="${INFO[$size:mamori:rawsize]}" -v b="$bytes" 'BEGIN {printf "%.2f", 100 * a / b}') % of the corpus)."
    fi
    if ((have_mamori)); then
        echo "mamori JSON \"errors\" on the unchanged check / check --full: ${INFO[$size:mamori:errors]:-n/a}."
    fi
    echo

    # ratios and targets
    local mi mc mf ai ac sc a2i a2c rss_max rss_goal db pct_goal
    mi=$(median "$size" mamori init 4); mc=$(median "$size" mamori check 4); mf=$(median "$size" mamori full 4)
    ai=$(median "$size" aide init 4); ac=$(median "$size" aide check 4)
    a2i=$(median "$size" aide-w2 init 4); a2c=$(median "$size" aide-w2 check 4)
    sc=$(median "$size" samhain check 4)
    local r_init r_check r_full r_samh
    r_init=$(ratio "$ai" "$mi"); r_check=$(ratio "$ac" "$mc"); r_full=$(ratio "$ac" "$mf")
    r_samh=$(ratio "$sc" "$mc")
    rss_max=$(for s in init check full tampered tamperedfull; do median "$size" mamori "$s" 6; done | sort -g | tail -n1)
    rss_goal=$(awk -v f="$files" 'BEGIN {printf "%.0f", (250 * f + 30 * 1048576) / 1024}')
    db=${INFO[$size:mamori:dbsize]:-}
    pct_goal=35; [[ $size == large ]] && pct_goal=10
    local pct=""; [[ -n $db ]] && pct=$(awk -v a="$db" -v b="$bytes" 'BEGIN {printf "%.2f", 100 * a / b}')
    local found_ok=""
    if ((have_mamori)) && [[ -n ${INFO[$size:mamori:found]:-} ]]; then
        if [[ ${INFO[$size:mamori:found]} == "$TAMPER_N" && ${INFO[$size:mamori:missing]} == 0 && ${INFO[$size:mamori:extra]} == 0 \
            && ${INFO[$size:mamori:full_found]:-} == "$TAMPER_N" && ${INFO[$size:mamori:full_extra]:-} == 0 \
            && ${INFO[$size:mamori:fp]:-} == 0 && ${INFO[$size:mamori:fpfull]:-} == 0 ]]; then
            found_ok=1
        else
            found_ok=0
        fi
    fi
    local ci cc cf cai cac csc
    ci=$(median "$size" mamori init 5); cc=$(median "$size" mamori check 5); cf=$(median "$size" mamori full 5)
    cai=$(median "$size" aide init 5); cac=$(median "$size" aide check 5); csc=$(median "$size" samhain check 5)
    echo "| target ($size) | measured (wall) | goal | result | same ratio on CPU time |"
    echo "|---|---:|---:|---|---:|"
    echo "| init: AIDE / mamori | ${r_init:-n/a}× | ≥ 3× | $(verdict "$r_init" ">=" 3) | $(rx "$cai" "$ci") |"
    local mz r_initz
    mz=$(median "$size" mamori compress 4)
    [[ -n $mi && -n $mz ]] && r_initz=$(ratio "$ai" "$(awk -v a="$mi" -v b="$mz" 'BEGIN {print a + b}')")
    echo "| init until the store is compressed: AIDE / (mamori init + background compression) | ${r_initz:-n/a}× | (for reference) | | |"
    echo "| unchanged check: AIDE check / mamori check | ${r_check:-n/a}× | ≥ 20× | $(verdict "$r_check" ">=" 20) | $(rx "$cac" "$cc") |"
    echo "| unchanged check: Samhain check / mamori check | ${r_samh:-n/a}× | ≥ 5× | $(verdict "$r_samh" ">=" 5) | $(rx "$csc" "$cc") |"
    echo "| full check: AIDE check / mamori check --full | ${r_full:-n/a}× | ≥ 3× | $(verdict "$r_full" ">=" 3) | $(rx "$cac" "$cf") |"
    echo "| changes found after tamper (check and --full), none extra, none when unchanged | ${INFO[$size:mamori:found]:-n/a} and ${INFO[$size:mamori:full_found]:-n/a} of $TAMPER_N; extra ${INFO[$size:mamori:extra]:-n/a}/${INFO[$size:mamori:full_extra]:-n/a} | exactly $TAMPER_N, 0 extra | $(verdict "$found_ok" "==" 1) | |"
    echo "| mamori peak RSS (max over its steps) | $(mib "$rss_max") MiB | ≤ $(mib "$rss_goal") MiB (250 B/file + 30 MiB) | $(verdict "$rss_max" "<=" "$rss_goal") | |"
    echo "| catalog + store size | ${pct:-n/a} % of corpus | ≤ $pct_goal % | $(verdict "$pct" "<=" "$pct_goal") | |"
    echo
    if [[ -n $a2c ]]; then
        echo "For reference, against AIDE with num_workers=2 (aide-w2): init $(rx "$a2i" "$mi"), check $(rx "$a2c" "$mc"), full check $(rx "$a2c" "$mf") (ratios of wall-time medians)."
        echo
    fi
}

# ---------------------------------------------------------------- main
start_uptime=$(uptime)
say "work dir $WORK; reps ${REPS}; tools: ${TOOLS:-none}; mamori: $( ((have_mamori)) && echo "$MAMORI" || echo "missing ($MAMORI)")"
for size in "${sizes[@]}"; do
    bench_size "$size"
done
end_uptime=$(uptime)

report=$WORK/report-${1:-small}-$(date +%Y%m%d-%H%M%S).md
{
    echo "## mamori FIM benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
    echo "- mamori: $( ((have_mamori)) && echo "$MAMORI ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?') + working tree)" || echo "n/a (no binary at $MAMORI)")"
    echo "- peers: $(for p in aide tripwire samhain; do dpkg-query -W -f='${Package} ${Version}; ' "$p" 2>/dev/null; done)hash: AIDE and Samhain SHA-256, Tripwire SHA-1"
    echo "- uptime at start: $start_uptime"
    echo "- uptime at end:   $end_uptime"
    echo "- raw results: $RESULTS"
    echo
    for size in "${sizes[@]}"; do
        report_size "$size"
    done
} | tee "$report"
say "report saved to $report"
