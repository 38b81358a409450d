#!/usr/bin/env bash
# Self-healing end to end, with real parts: HAProxy on loopback balances two nginx
# backends, A and B, each serving its own copy of a site guarded by its own agent, and
# health-checks each on /health (the agent's health file). A client requests pages all
# along. A tamper storm on A: A's agent fails A's health check, HAProxy marks A down,
# and from then on nothing comes from A; every response the client got is the original
# page or is counted as tampered. rsyslog (TCP) and an SMTP server receive the events.
# `mamori heal --clear` on A puts it back in rotation.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rsyslog_lib.sh"
source "$(dirname "$0")/smtp_lib.sh"

command -v haproxy >/dev/null || fail "haproxy is not installed (tools/install-deps)"
command -v nginx >/dev/null || fail "nginx is not installed (tools/install-deps)"
chmod 0755 "$SCRATCH"  # nginx workers (www-data) read the sites

step "two copies of a site, each baselined and guarded by its own agent"
for s in a b; do
  mkdir -p "$SCRATCH/site-$s" "$SCRATCH/health-$s"
  chmod 0755 "$SCRATCH/site-$s" "$SCRATCH/health-$s"
  for i in $(seq 0 19); do
    printf '<html><body>page %s of the shop, served by %s</body></html>\n' "$i" "$s" >"$SCRATCH/site-$s/page$i.html"
  done
  chmod 0644 "$SCRATCH/site-$s"/*.html
done
start_rsyslog "$SCRATCH/rsyslog"
start_smtp "$SCRATCH/smtp"

agent_conf() {  # NAME EXTRA...
  local s=$1
  shift
  cat >"$SCRATCH/$s.toml" <<EOF
state_dir = "$SCRATCH/state-$s"
[[root]]
path = "$SCRATCH/site-$s"
mode = "restore"
[agent]
socket = "$SCRATCH/$s.sock"
event_log = "$SCRATCH/events-$s.jsonl"
storm_changes_per_second = 50
[heal]
on = ["tamper-storm"]
tamper_count = 5
tamper_window = 10
health_file = "$SCRATCH/health-$s/ok"
EOF
  local l
  for l in "$@"; do echo "$l" >>"$SCRATCH/$s.toml"; done
}
agent_conf a \
  '[[sink]]' 'type = "syslog"' "address = \"tcp://127.0.0.1:$RSYSLOG_TCP_PORT\"" 'min_severity = "warning"' \
  '[[sink]]' 'type = "smtp"' "url = \"smtp://127.0.0.1:$SMTP_PORT\"" 'from = "mamori@web-a.test"' \
  'to = ["oncall@example.test", "security@example.test"]' 'starttls = "none"' 'digest = 1' \
  'min_severity = "critical"'
agent_conf b

declare -A AGENT_PIDS
start_named_agent() {  # NAME
  local s=$1
  timeout -k 5 60 "$MAMORI" --config "$SCRATCH/$s.toml" -q init >/dev/null
  "$MAMORI" --config "$SCRATCH/$s.toml" agent >>"$SCRATCH/agent-$s.log" 2>&1 &
  AGENT_PIDS[$s]=$!
  on_exit "stop_pid ${AGENT_PIDS[$s]} 'agent $s'"
  ready() { grep -q 'ready: guarding' "$SCRATCH/agent-$1.log" || ! kill -0 "${AGENT_PIDS[$1]}"; }
  WAIT_SECONDS=60 WAIT_EXPLAIN="cat '$SCRATCH/agent-$s.log'" wait_for "agent $s to be ready" ready "$s"
  kill -0 "${AGENT_PIDS[$s]}" || { cat "$SCRATCH/agent-$s.log" >&2; fail "agent $s exited"; }
}
start_named_agent a
start_named_agent b
assert_eq "ok" "$(cat "$SCRATCH/health-a/ok")" "A's health file while healthy"

step "nginx serving both sites, HAProxy balancing them with health checks on /health"
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT_A=$(port) PORT_B=$(port) PORT_LB=$(port)
mkdir -p "$SCRATCH/web"
cat >"$SCRATCH/web/nginx.conf" <<EOF
daemon off;
worker_processes 1;
user www-data www-data;
pid $SCRATCH/web/nginx.pid;
error_log $SCRATCH/web/nginx-error.log;
events { worker_connections 256; }
http {
  access_log off;
  default_type text/html;
  server {
    listen 127.0.0.1:$PORT_A;
    root $SCRATCH/site-a;
    add_header X-Backend a always;
    location = /health { alias $SCRATCH/health-a/ok; }
  }
  server {
    listen 127.0.0.1:$PORT_B;
    root $SCRATCH/site-b;
    add_header X-Backend b always;
    location = /health { alias $SCRATCH/health-b/ok; }
  }
}
EOF
nginx -c "$SCRATCH/web/nginx.conf" -e "$SCRATCH/web/nginx-error.log" &
NGINX=$!
on_exit 'stop_pid $NGINX nginx'
cat >"$SCRATCH/web/haproxy.cfg" <<EOF
global
  log 127.0.0.1:$RSYSLOG_UDP_PORT local0
defaults
  mode http
  log global
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  default-server inter 100ms fastinter 100ms downinter 100ms fall 1 rise 1
frontend site
  bind 127.0.0.1:$PORT_LB
  default_backend backends
backend backends
  balance roundrobin
  # A's open gate refuses nginx a page the storm has just rewritten (nginx answers 403):
  # HAProxy asks B instead, so the client gets the original either way.
  retries 2
  option redispatch 1
  retry-on 403 500 502 503 504 conn-failure empty-response
  option httpchk GET /health
  http-check expect status 200
  server a 127.0.0.1:$PORT_A check
  server b 127.0.0.1:$PORT_B check
EOF
haproxy -db -f "$SCRATCH/web/haproxy.cfg" >"$SCRATCH/web/haproxy.out" 2>&1 &
HAPROXY=$!
on_exit 'stop_pid $HAPROXY haproxy'
# The client counts every refused connection as a failure: it starts once HAProxy listens
# (on a loaded machine HAProxy took longer to bind than the client to start).
haproxy_listens() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT_LB") 2>/dev/null; }
WAIT_ON=$SCRATCH/web WAIT_SECONDS=20 WAIT_EXPLAIN='cat "$SCRATCH/web/haproxy.out"' \
  wait_for "HAProxy to listen on $PORT_LB" haproxy_listens

step "a client requests pages through HAProxy all along, comparing each with the original"
cp -r "$SCRATCH/site-a" "$SCRATCH/original-a"
cp -r "$SCRATCH/site-b" "$SCRATCH/original-b"
CLIENT_OUT=$SCRATCH/client/log
mkdir -p "$SCRATCH/client"
cat >"$SCRATCH/client/client.py" <<'EOF'
# One line per response: "<backend> <status> ok|TAMPERED|CUT|REFUSED" (CUT: a strict
# beginning of the original, no byte of the attacker's). Runs until STOP exists.
import http.client, os, sys, time
port, scratch, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
original = {}
for s in "ab":
    for i in range(20):
        with open(f"{scratch}/original-{s}/page{i}.html", "rb") as f:
            original[(s, i)] = f.read()
log = open(out, "w", buffering=1)
i = 0
while not os.path.exists(stop):
    page = i % 20
    i += 1
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", f"/page{page}.html")
        r = c.getresponse()
        body = r.read()
        c.close()
    except OSError as e:
        log.write(f"- error {e.__class__.__name__} {str(e)[:120]} at {time.time():.3f}\n")
        continue
    backend = r.getheader("X-Backend", "-")
    if r.status != 200:
        verdict = "REFUSED"
    else:
        want = original.get((backend, page))
        verdict = "ok" if body == want else "CUT" if want and want.startswith(body) else "TAMPERED"
    # What a tampered one held: the storm's bytes, or a cut copy of the original.
    sample = f" {body[:60]!r}" if verdict == "TAMPERED" else ""
    log.write(f"{backend} {r.status} {verdict}{sample}\n")
EOF
python3 "$SCRATCH/client/client.py" "$PORT_LB" "$SCRATCH" "$CLIENT_OUT" "$SCRATCH/client/stop" &
CLIENT=$!
on_exit 'touch "$SCRATCH/client/stop"; wait $CLIENT 2>/dev/null'
served_by_both() { grep -q '^a 200 ok' "$CLIENT_OUT" && grep -q '^b 200 ok' "$CLIENT_OUT"; }
WAIT_ON=$SCRATCH/client WAIT_SECONDS=30 WAIT_EXPLAIN='tail "$CLIENT_OUT"; cat "$SCRATCH/web/haproxy.out"' \
  wait_for "responses from both backends" served_by_both

step "a tamper storm on A: the agent restores, fails A's health check, HAProxy drains A"
cat >"$SCRATCH/client/storm.py" <<'EOF'
# Rewrites A's pages as fast as it can until STOP exists (an attacker's defacement run).
import os, sys
site, stop = sys.argv[1], sys.argv[2]
n = 0
while not os.path.exists(stop):
    for i in range(20):
        try:
            with open(f"{site}/page{i}.html", "w") as f:
                f.write("<html><body>HACKED by the storm</body></html>\n")
            n += 1
        except OSError:
            pass
print(n)
EOF
START_AT=$(wc -l <"$CLIENT_OUT")
python3 "$SCRATCH/client/storm.py" "$SCRATCH/site-a" "$SCRATCH/client/stop-storm" >"$SCRATCH/client/storm.out" &
STORM=$!
on_exit 'touch "$SCRATCH/client/stop-storm"; wait $STORM 2>/dev/null'
a_down() { grep -q 'backends/a is DOWN' "$RSYSLOG_OUT"; }
WAIT_ON=$(dirname "$RSYSLOG_OUT") WAIT_SECONDS=20 \
  WAIT_EXPLAIN='tail -n 5 "$SCRATCH/agent-a.log"; tail -n 5 "$RSYSLOG_OUT"; ls -l "$SCRATCH/health-a"' \
  wait_for "HAProxy to mark A down" a_down
[[ ! -e $SCRATCH/health-a/ok ]] || fail "A's health file is still there"
DOWN_AT=$(wc -l <"$CLIENT_OUT")
# From here on, no request may reach A: give the client 300 more responses to prove it.
more_responses() { (($(wc -l <"$CLIENT_OUT") >= DOWN_AT + 300)); }
WAIT_ON=$SCRATCH/client WAIT_SECONDS=30 wait_for "300 responses after A was drained" more_responses
touch "$SCRATCH/client/stop-storm"
wait "$STORM"
WRITES=$(cat "$SCRATCH/client/storm.out")
after=$(tail -n +"$((DOWN_AT + 2))" "$CLIENT_OUT")
assert_not_contains "$after" $'\na ' "responses from A after HAProxy marked it down"
[[ $after != a\ * ]] || fail "a response from A after HAProxy marked it down"
during=$(head -n "$DOWN_AT" "$CLIENT_OUT" | tail -n +"$((START_AT + 1))")
TAMPERED=$(grep -c 'TAMPERED' <<<"$during" || true)
FROM_A=$(grep -c '^a ' <<<"$during" || true)
TAMPERED_B=$(grep -c '^b .*TAMPERED' "$CLIENT_OUT" || true)
assert_eq 0 "$TAMPERED_B" "tampered responses from B (never attacked)"
# A's open gate (docs/open-gate.md): not one of the storm's pages reached the client, even
# before the drain (without the gate: 7 to 47 did). A page nginx opened just before the
# storm's O_TRUNC can still go out cut short (docs/open-gate.md, "What it does not cover").
[[ $TAMPERED == 0 ]] || echo "tampered: $(grep TAMPERED <<<"$during" | head -n 5)"
assert_eq 0 "$TAMPERED" "tampered responses from A between the storm's start and the drain"
REFUSED=$(grep -c ' REFUSED$' "$CLIENT_OUT" || true)
CUT=$(grep -c ' CUT' <<<"$during" || true)
assert_eq 0 "$REFUSED" "error responses that reached the client (HAProxy retries A's refusals on B)"
echo "storm: $WRITES writes to A; $((DOWN_AT - START_AT)) responses between the storm's start and A's" \
  "drain, $FROM_A of them from A, $TAMPERED tampered, $CUT cut short"

step "every page of A is the original again"
a_restored() { diff -r "$SCRATCH/original-a" "$SCRATCH/site-a" >/dev/null; }
WAIT_ON=$SCRATCH WAIT_EXPLAIN='diff -r "$SCRATCH/original-a" "$SCRATCH/site-a"' wait_for "A restored" a_restored

step "the events reached rsyslog (TCP) and the SMTP server, with their fields"
EVENTS=$SCRATCH/events-a.jsonl
unhealthy_id=$(events 'e["event"]["action"] == "node-unhealthy"' | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"]["id"])')
[[ -n $unhealthy_id ]] || fail "no node-unhealthy event in A's event log"
storm_id=$(events 'e["event"]["action"] == "tamper-storm"' | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"]["id"])')
in_syslog() { grep -q "id=\"$unhealthy_id\"" "$RSYSLOG_OUT" && grep -q "id=\"$storm_id\"" "$RSYSLOG_OUT"; }
WAIT_ON=$(dirname "$RSYSLOG_OUT") WAIT_EXPLAIN='grep mamori "$RSYSLOG_OUT" | tail -n 5' \
  wait_for "node-unhealthy and tamper-storm in rsyslog" in_syslog
line=$(grep "id=\"$unhealthy_id\"" "$RSYSLOG_OUT")
assert_contains "$line" 'node-unhealthy' "the syslog MSGID"
assert_contains "$line" 'action="node-unhealthy"' "the structured data"
assert_contains "$(grep "id=\"$storm_id\"" "$RSYSLOG_OUT")" "root=\"$SCRATCH/site-a\"" "the storm's root"
in_mail() { grep -lq "$unhealthy_id" "$SMTP_MAILDIR"/* 2>/dev/null; }
WAIT_ON=$SMTP_MAILDIR WAIT_EXPLAIN='ls -l "$SMTP_MAILDIR"' wait_for "the mail about node-unhealthy" in_mail
mail=$(cat "$(grep -l "$unhealthy_id" "$SMTP_MAILDIR"/* | head -n 1)")
assert_contains "$mail" "oncall@example.test" "a recipient"
assert_contains "$mail" "security@example.test" "the other recipient"
assert_contains "$mail" "Subject: [mamori]" "the subject"
assert_contains "$mail" "$SCRATCH/site-a" "the root in the body"

step "mamori heal --clear on A puts it back in rotation"
# Once the storm is over: a tamper after the clear would (rightly) fail A again.
storm_over() { events 'e["event"]["action"] == "tamper-storm-ended"' | grep -q .; }
wait_for "the end of the storm" storm_over
expect_exit 1 timeout 30 "$MAMORI" --config "$SCRATCH/a.toml" heal
assert_contains "$OUT" "UNHEALTHY" "heal's status"
expect_exit 0 timeout 30 "$MAMORI" --config "$SCRATCH/a.toml" heal --clear
assert_eq "ok" "$(cat "$SCRATCH/health-a/ok")" "A's health file after --clear"
CLEARED_AT=$(wc -l <"$CLIENT_OUT")
a_back() { tail -n +"$CLEARED_AT" "$CLIENT_OUT" | grep -q '^a 200 ok'; }
WAIT_ON=$SCRATCH/client WAIT_SECONDS=20 \
  WAIT_EXPLAIN='tail -n 5 "$RSYSLOG_OUT"; events | tail -n 6 | cut -c 1-400; ls -l "$SCRATCH/health-a"' \
  wait_for "responses from A again" a_back
touch "$SCRATCH/client/stop"
wait "$CLIENT"
errors=$(grep -c '^- error' "$CLIENT_OUT" || true)
if ((errors > 0)); then  # which errors, when, and what HAProxy said meanwhile
  grep '^- error' "$CLIENT_OUT" | cut -d' ' -f3 | sort | uniq -c
  grep -n '^- error' "$CLIENT_OUT" | sed -n '1p;$p'
  echo "client lines: $(wc -l <"$CLIENT_OUT"), cleared at line $CLEARED_AT"
  tail -n 20 "$SCRATCH/web/haproxy.out"
  kill -0 "$HAPROXY" 2>/dev/null || echo "HAProxy is not running any more"
fi
assert_eq 0 "$errors" "failed requests through HAProxy"
echo "tampered responses that reached the client: $TAMPERED of $FROM_A from A between the storm's start and the drain"
