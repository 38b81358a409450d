#!/usr/bin/env bash
# Never blind (issue 16): a real Apache writes its access log with
# LogFormat "%h %l %u %t %v \"%r\" %>s %b" (%t, which holds a space, before the unquoted
# %v) to two files. The agent reads one as "combined" (the wrong format) and the other
# with that LogFormat. The wrong one is a log-unparseable event, once, with a refused
# line and the counts, and `mamori status` says UNPARSEABLE for it; the right one is
# read: an SQL-injection probe from 127.0.0.66 is banned (ban backend none: the host's
# firewall is left alone). Lines in the format it was told make the first log readable
# again: one log-parseable event.
source "$(dirname "$0")/lib.sh"

command -v apache2 >/dev/null || fail "apache2 not installed (tools/install-deps)"
chmod 0755 "$SCRATCH"
AP=$SCRATCH/apache
mkdir -p "$AP/www" "$SCRATCH/site"
chmod 0755 "$AP" "$AP/www" "$SCRATCH/site"
echo "<html>the shop</html>" >"$AP/www/index.html"
echo "<html>guarded</html>" >"$SCRATCH/site/index.html"
chmod 0644 "$AP/www/index.html" "$SCRATCH/site/index.html"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WRONG=$AP/wrong.log RIGHT=$AP/right.log
FORMAT='%h %l %u %t %v "%r" %>s %b'

step "an agent reading two [[log]]s, one in the wrong format"
write_config "$SCRATCH/site"
agent_config
cat >>"$CONFIG" <<EOF
[[log]]
path = "$WRONG"
format = "combined"
[[log]]
path = "$RIGHT"
format = '$FORMAT'
[logwatch]
allowlist = ["127.0.0.1/32"]   # loopback is allowlisted by default: 127.0.0.66 is the probe
[ban]
backend = "none"
EOF
mamori -q init
start_agent

step "Apache writes both logs in its vhost format"
cat >"$AP/httpd.conf" <<EOF
ServerRoot $AP
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
Listen 127.0.0.1:$PORT
ServerName www.example.org
PidFile $AP/httpd.pid
ErrorLog $AP/error.log
User www-data
Group www-data
DocumentRoot $AP/www
<Directory $AP/www>
  Require all granted
</Directory>
LogFormat "%h %l %u %t %v \"%r\" %>s %b" vhost_unquoted
CustomLog $WRONG vhost_unquoted
CustomLog $RIGHT vhost_unquoted
EOF
apache2 -f "$AP/httpd.conf" -DFOREGROUND &
APACHE_PID=$!
on_exit "stop_pid $APACHE_PID apache2"
# shellcheck disable=SC2317  # called by wait_for
up() { curl -s -o /dev/null "http://127.0.0.1:$PORT/index.html"; }
wait_for "apache2 to answer" up
for i in $(seq 1 120); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/index.html?page=$i"
done
curl -s -o /dev/null --interface 127.0.0.66 \
  "http://127.0.0.1:$PORT/item.php?id=1%20UNION%20SELECT%20null,@@version--"
assert_contains "$(head -n 1 "$WRONG")" " www.example.org \"GET " "Apache's line"

# shellcheck disable=SC2317  # called by wait_for
unparseable() { [[ -n $(events 'e["event"]["action"] == "log-unparseable"') ]]; }
WAIT_SECONDS=30 WAIT_EXPLAIN='cat "$AGENT_LOG"' wait_for "a log-unparseable event" unparseable
# shellcheck disable=SC2317  # called by wait_for
banned() { [[ -n $(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "127.0.0.66"') ]]; }
WAIT_SECONDS=30 WAIT_EXPLAIN='cat "$AGENT_LOG"' wait_for "the probe's ban" banned

step "one log-unparseable event for the wrong log, with a sample; none for the right one"
EV=$(events 'e["event"]["action"] == "log-unparseable"')
assert_eq 1 "$(wc -l <<<"$EV")" "one event per episode"
assert_eq "$WRONG" "$(json 'j["log"]["file"]["path"]' "$EV")" "the log"
assert_eq combined "$(json 'j["mamori"]["log"]["format"]' "$EV")" "its format"
assert_eq no-match "$(json 'j["mamori"]["log"]["sample_reason"]' "$EV")" "why"
assert_contains "$(json 'j["mamori"]["log"]["sample"]' "$EV")" "www.example.org \"GET /index.html" "a refused line"
assert_eq true "$(json 'j["mamori"]["log"]["unparsed"] == j["mamori"]["log"]["lines"] >= 10' "$EV")" "every line refused"
assert_eq mamori.logwatch "$(json 'j["event"]["dataset"]' "$EV")" "dataset"
assert_contains "$(cat "$AGENT_LOG")" "does not fit its format 'combined'" "the agent's log says it"
BAN=$(events 'e["event"]["action"] == "ip-banned"')
assert_eq "$RIGHT" "$(json 'j["log"]["file"]["path"]' "$BAN")" "the right log bans"
assert_contains "$(json 'j["rule"]["name"]' "$BAN")" "sqli" "by the SQL-injection rule"

step "mamori status says so per log"
# shellcheck disable=SC2317  # called by wait_for
status_says() { mamori status | grep -q "UNPARSEABLE"; }
wait_for "status to show the unparseable log" status_says
expect_exit 0 mamori status
assert_contains "$OUT" "log        '$WRONG' UNPARSEABLE: does not fit its format" "the wrong log"
assert_contains "$OUT" "(no-match), e.g. '127.0.0.1 - - [" "its sample"
assert_contains "$OUT" "log        '$RIGHT' fits its format (0 of the last " "the right log"
expect_exit 0 mamori --json status
assert_eq true "$(json '[p["unparseable"] for p in j["agent"]["logwatch"]["parsing"] if p["path"] == "'"$WRONG"'"][0]')" "--json"

step "lines in the format it was told make it readable again: one log-parseable event"
python3 - "$WRONG" <<'PY'
import sys
with open(sys.argv[1], "a") as f:
    for i in range(1000):
        f.write('192.0.2.7 - - [07/Dec/2026:10:00:%02d +0000] "GET /p%d HTTP/1.1" 200 5 "-" "Mozilla/5.0"\n' % (i % 60, i))
PY
# shellcheck disable=SC2317  # called by wait_for
parseable() { [[ -n $(events 'e["event"]["action"] == "log-parseable"') ]]; }
WAIT_SECONDS=30 WAIT_EXPLAIN='cat "$AGENT_LOG"' wait_for "a log-parseable event" parseable
EV=$(events 'e["event"]["action"] == "log-parseable"')
assert_eq 1 "$(wc -l <<<"$EV")" "one"
assert_eq "$WRONG" "$(json 'j["log"]["file"]["path"]' "$EV")" "the log"
# shellcheck disable=SC2317  # called by wait_for
status_clear() { ! mamori status | grep -q UNPARSEABLE; }
wait_for "status to show it readable" status_clear
assert_eq 1 "$(events 'e["event"]["action"] == "log-unparseable"' | wc -l)" "still one log-unparseable"
check_events
