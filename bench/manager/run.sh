#!/usr/bin/env bash
# The manager's benchmark (issue 12; bench/manager/README.md): starts `mamori manager` on
# loopback with a temporary state directory and config, runs bench_manager against it
# (N simulated agents, heartbeats, an event stream, cut and frozen agents), stops it and
# prints the figures beside the issue's targets and the peers' published anchors.
#
#   bench/manager/run.sh MAMORI BENCH_MANAGER [N]        N agents, default 10000
#
# Builds nothing: MAMORI is the mamori binary, BENCH_MANAGER bench_manager (both from one
# build, e.g. build/dev/bin/). Environment:
#   RATE (20000 events/s in total), DURATION (60 s of events), IDLE (20 s of heartbeats
#   only), CUT (100), FREEZE (100), LOST_AFTER (10), HEARTBEAT (2), EVENT_QUEUE_MB (64:
#   the manager's admission control; 65536 turns it practically off),
#   REUSE=1  keep the manager's state and the agents' credentials in WORK
#            (default /var/tmp/mamori-bench/manager) and reuse them next time (no
#            enrollment: the run starts in seconds); without it everything lives in a
#            temporary directory removed at the end;
#   PERF=1   record the manager with `perf record -g` during the event stream
#            (PERF_DATA, default WORK/perf.data, kept when set; a summary is printed).
# Open files: the manager and the tool each hold one socket per agent. The script raises
# its soft RLIMIT_NOFILE to the hard limit (`ulimit -n`) and refuses to start when that is
# below N + 1000; raise the hard limit (limits.conf, systemd LimitNOFILE=, or `ulimit -Hn`
# as a privileged user) for larger fleets.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
fi
MAMORI=$(realpath "$1")
BENCH=$(realpath "$2")
N=${3:-10000}
RATE=${RATE:-20000}
DURATION=${DURATION:-60}
IDLE=${IDLE:-20}
CUT=${CUT:-100}
FREEZE=${FREEZE:-100}
LOST_AFTER=${LOST_AFTER:-10}
HEARTBEAT=${HEARTBEAT:-2}
EVENT_QUEUE_MB=${EVENT_QUEUE_MB:-64}
REUSE=${REUSE:-0}
PERF=${PERF:-0}
# A new address each run: a manager whose state is reused holds the last run's ban.
BAN_ADDRESS=${BAN_ADDRESS:-198.51.100.$((RANDOM % 254 + 1))}
for b in "$MAMORI" "$BENCH"; do [[ -x $b ]] || { echo "run.sh: $b is not executable" >&2; exit 2; }; done

hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
want=$((N + 1000))
ulimit -n "$hard"
if ((hard < want)); then
  echo "run.sh: RLIMIT_NOFILE's hard limit is $hard, $N agents need $want: raise it" >&2
  exit 2
fi

if [[ $REUSE == 1 ]]; then
  WORK=${WORK:-/var/tmp/mamori-bench/manager}
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d /var/tmp/mamori-bench-manager.XXXXXX)
fi
PERF_DATA=${PERF_DATA:-$WORK/perf.data}
MSTATE=$WORK/state
CONFIG=$WORK/mamori.toml
MLOG=$WORK/manager.log
MANAGER_PID=""
PERF_PID=""
cleanup() {
  [[ -n $PERF_PID ]] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null || true
  if [[ -n $MANAGER_PID ]]; then
    kill -TERM "$MANAGER_PID" 2>/dev/null || true
    wait "$MANAGER_PID" 2>/dev/null || true
  fi
  [[ $REUSE == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$CONFIG" <<EOF
state_dir = "$WORK/agent-state"
[manager]
listen = "127.0.0.1:$PORT"
public_url = "https://127.0.0.1:$PORT"
state_dir = "$MSTATE"
database = "sqlite://$MSTATE/manager.db"
heartbeat = $HEARTBEAT
lost_after = $LOST_AFTER
max_agents = $((N + 1000))
event_queue_mb = $EVENT_QUEUE_MB
EOF

: >"$MLOG"
"$MAMORI" --config "$CONFIG" manager >>"$MLOG" 2>&1 &
MANAGER_PID=$!
for _ in $(seq 200); do
  grep -q 'listening on' "$MLOG" && break
  kill -0 "$MANAGER_PID" 2>/dev/null || { cat "$MLOG" >&2; exit 3; }
  sleep 0.1
done
grep -q 'listening on' "$MLOG" || { echo "run.sh: the manager did not start" >&2; cat "$MLOG" >&2; exit 3; }

TOKEN=$("$MAMORI" --config "$CONFIG" manager token create --group bench --uses "$N" --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

if [[ $PERF == 1 ]]; then
  # Started when the event stream starts (after the tool's first "online again" line).
  (
    until grep -q 'agents online again after' "$WORK/bench.log" 2>/dev/null; do sleep 0.5; done
    exec perf record -g -o "$PERF_DATA" -p "$MANAGER_PID" -- sleep "$DURATION"
  ) &
  PERF_PID=$!
fi

start_s=$(date +%s)
"$BENCH" --token "$TOKEN" --credentials "$WORK/credentials.jsonl" --agents "$N" \
  --rate "$RATE" --duration "$DURATION" --idle "$IDLE" --cut "$CUT" --freeze "$FREEZE" \
  --lost-after "$LOST_AFTER" --manager-pid "$MANAGER_PID" --db "$MSTATE/manager.db" \
  --state-dir "$MSTATE" --trigger-ban --ban-address "$BAN_ADDRESS" --commands-out "$WORK/commands.tsv" \
  --json "$WORK/result.json" 2> >(tee "$WORK/bench.log" >&2)
end_s=$(date +%s)

kill -TERM "$MANAGER_PID"
wait "$MANAGER_PID" || true
MANAGER_PID=""
[[ -n $PERF_PID ]] && { wait "$PERF_PID" 2>/dev/null || true; PERF_PID=""; }
DB_AFTER=$(stat -c %s "$MSTATE/manager.db")

python3 - "$WORK/result.json" "$N" "$DB_AFTER" "$LOST_AFTER" "$RATE" "$((end_s - start_s))" "$BAN_ADDRESS" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
n, db_after, lost_after, rate, wall = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
ban_address = sys.argv[7]
c, i, e, m, t = r["connect"], r["idle"], r["events"], r["manager"], r["tool"]
none = {"agents": 0, "detected": 0, "decided": {"p50_ms": 0, "p99_ms": 0, "max_ms": 0}}
l = r.get("lost", {"cut": none, "frozen": none})
stored = e["stored_per_s"]
print(f"\nmamori manager, {n} simulated agents (bench_manager), {wall} s; load {r['machine']['loadavg_start']} -> {r['machine']['loadavg_end']}\n")
print("| figure | value |")
print("|---|---:|")
rows = [
    ("agents held (welcomed) / time to connect all", f"{c['held']} / {n} in {c['seconds']:.1f} s ({c['per_s']:.0f}/s)"),
    ("connect failures / channels ended unexpectedly / reconnects", f"{c['connect_failures']} / {t['ended_unexpectedly']} / {t['reconnects']}"),
    ("why the tool's channels ended unexpectedly", ", ".join(f"{k}: {v}" for k, v in sorted(t.get("end_reasons", {}).items(), key=lambda kv: -kv[1])) or "-"),
    ("agent-lost reported for agents never cut (whole run)", f"{m['unexpected_lost']} {m['unexpected_lost_reasons'] or ''}"),
    ("idle: heartbeats/s, manager CPU", f"{i['heartbeats_per_s']:.0f}/s, {i['manager_cpu_pct']:.1f} %"),
    ("idle: DB growth per agent per day (heartbeats only)", f"{i['db_bytes_per_agent_day']:.0f} B"),
    ("events offered / stored (acked) per s", f"{e['rate_offered_per_s']:.0f} / {stored:.0f}"),
    ("events per batch; batches/s; windows dropped and resent", f"{e['events_per_batch']:.2f}; {e['batches_per_s']:.0f}; {t.get('resends', 0)}"),
    ("ack latency p50 / p99 / max (batch sent -> ack)", f"{e['ack_latency']['p50_ms']:.1f} / {e['ack_latency']['p99_ms']:.1f} / {e['ack_latency']['max_ms']:.1f} ms"),
    ("oldest event offered -> ack p50 / p99", f"{e['oldest_event_to_ack']['p50_ms']:.1f} / {e['oldest_event_to_ack']['p99_ms']:.1f} ms"),
    ("backlog at the end of the stream (events)", f"{e['backlog_end']}"),
    ("manager CPU during events / tool CPU", f"{e['manager_cpu_pct']:.1f} % / {e['tool_cpu_pct']:.1f} % (of one core)"),
    ("DB bytes per stored event (db + wal growth)", f"{e['db_bytes_per_event']:.0f} B"),
    ("DB bytes per agent per day at this rate", f"{e['db_bytes_per_agent_day']/1e6:.1f} MB ({rate/n*86400:.0f} events/agent/day)"),
    ("DB file after the manager stopped (checkpointed)", f"{db_after/1e6:.1f} MB"),
]
for when, label in (("lost", "heartbeats only"), ("lost_under_load", "during the event stream")):
    if when not in r:
        continue
    for k in ("cut", "frozen"):
        d = r[when][k]["decided"]
        rows.append((f"lost detected, {'connection cut' if k == 'cut' else 'silent (frozen)'}, {label}: p50 / p99 / max (detected/of)",
                     f"{d['p50_ms']/1000:.3f} / {d['p99_ms']/1000:.3f} / {d['max_ms']/1000:.3f} s ({r[when][k]['detected']}/{r[when][k]['agents']})"))
def rtt(x): return f"{x['p50_ms']:.0f} / {x['p99_ms']:.0f} / {x['max_ms']:.0f} ms" if x["n"] else "no pong"
rows.append(("manager responsiveness, ping RTT p50 / p99 / max: idle", rtt(i["ping_rtt"])))
for when, label in (("lost", "heartbeats only"), ("lost_under_load", "during the event stream")):
    if when in r:
        rows.append((f"... while agents are lost ({label})", rtt(r[when]["ping_rtt"])))
        rec = r[when]["recovery"]
        rows.append((f"... while the cut and frozen agents reconnect ({label})", f"{rtt(rec['ping_rtt'])}; {rec['online']} online after {rec['seconds']:.0f} s, {rec['unexpected_lost']} others lost meanwhile"))
rows.append(("... during the event stream", rtt(e["ping_rtt"])))
rows += [
    ("manager RSS at the end / HWM", f"{m['rss_mib']:.0f} / {m['hwm_mib']:.0f} MiB"),
    ("manager CPU time, whole run", f"{m['cpu_s']:.1f} s"),
]
for g in r["commands"]["groups"]:
    rows.append((f"command {g['what'][:60]}", f"{g['agents']} agents, from {g['from']}: p50 {g['latency']['p50_ms']:.1f} ms, p99 {g['latency']['p99_ms']:.1f} ms"))
for k, v in rows:
    print(f"| {k} | {v} |")

def verdict(ok): return "PASS" if ok else "**MISS**"
cut_p99 = l["cut"]["decided"]["p99_ms"] / 1000
frz_p99 = l["frozen"]["decided"]["p99_ms"] / 1000
cut_ok = 0 < l["cut"]["detected"] == l["cut"]["agents"] and cut_p99 <= 2
frz_ok = 0 < l["frozen"]["detected"] == l["frozen"]["agents"] and frz_p99 <= lost_after + 1
held_ok = c["held"] == n and n >= 10000 and m["unexpected_lost"] == 0 and t["ended_unexpectedly"] == 0
ban = [g for g in r["commands"]["groups"] if '"cmd":"ban"' in g["what"] and ban_address in g["what"]]
print("\n| target (issue 12) | measured | result | published anchor |")
print("|---|---:|---|---|")
print(f"| 10,000 agents held | {c['held']} of {n}, {m['unexpected_lost']} lost unexpectedly | {verdict(held_ok) if n >= 10000 else 'n/a (N < 10,000)'} | |")
if "lost" in r:
    print(f"| connection dropped -> agent-lost within 2 s (p99) | {cut_p99:.3f} s | {verdict(cut_ok)} | Wazuh 600 s (10 min), Elastic Fleet 300 s (5 min) |")
    print(f"| silent -> lost within timeout + 1 s = {lost_after + 1} s (p99) | {frz_p99:.3f} s | {verdict(frz_ok)} | Wazuh 600 s, Elastic Fleet 300 s |")
else:
    print("| agent-lost within 2 s / timeout + 1 s (p99) | CUT=0 FREEZE=0 | not measured | Wazuh 600 s, Elastic Fleet 300 s |")
if e["rate_offered_per_s"] > 0:
    print(f"| >= 20,000 events/s stored on SQLite | {stored:.0f}/s (offered {e['rate_offered_per_s']:.0f}/s) | {verdict(stored >= 20000)} | |")
else:
    print("| >= 20,000 events/s stored on SQLite | RATE=0 | not measured | |")
if ban:
    b = ban[0]
    print(f"| ban to all agents <= 1 s p99 | {b['latency']['p99_ms']/1000:.3f} s to {b['agents']} agents | {verdict(b['agents'] >= c['held'] - l['cut']['agents'] - l['frozen']['agents'] and b['latency']['p99_ms'] <= 1000)} | CrowdSec 10 s ban poll (2 h community list) |")
else:
    print("| ban to all agents <= 1 s p99 | no ban command reached the agents | **MISS** | CrowdSec 10 s ban poll (2 h community list) |")
print(f"| RSS <= 1 GiB | HWM {m['hwm_mib']:.0f} MiB | {verdict(m['hwm_mib'] <= 1024)} | |")
EOF

if [[ $PERF == 1 && -f $PERF_DATA ]]; then
  echo
  # Each thread's share (the io thread is "mamori"), then each busy thread's top symbols.
  perf report -i "$PERF_DATA" --no-children --sort comm --stdio 2>/dev/null |
    grep -E '^ +[0-9]'
  for comm in mamori mamori-events mamori-store; do
    echo "--- $comm"
    perf report -i "$PERF_DATA" --no-children --comms "$comm" --sort dso,sym \
      --percent-limit 1 --stdio 2>/dev/null | grep -E '^ +[0-9]' | cut -c1-160 | head -25
  done
fi
