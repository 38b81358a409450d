#!/usr/bin/env bash
# Access-log defense end to end, across network namespaces this test creates (and
# removes): nginx serves a site in "srv"; an attacker ("att", three addresses) and a
# normal client ("cli") reach it over veth pairs. The agent in srv reads nginx's access
# log: SQL-injection probes from one attacker address, a wp-login brute force from
# another and a probe hidden in a 16.9 KB log line (a padded user agent) from the third
# get each banned in nftables, and their next TCP connection fails; the normal
# client keeps getting 200s; `mamori bans del` lets an address back. nginx's log is
# rotated during the run and no line is lost.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/netns_lib.sh"

chmod 0755 "$SCRATCH"
SRV=mamori-srv-$$ ATT=mamori-att-$$ CLI=mamori-cli-$$
netns_add "$SRV" "$ATT" "$CLI"
# srv <-> att: 10.77.1.0/24 (the attacker has .2, .3 and .4); srv <-> cli: 10.77.2.0/24.
netns_link "$SRV" 10.77.1.1/24 "$ATT" 10.77.1.2/24 10.77.1.3/24 10.77.1.4/24
netns_link "$SRV" 10.77.2.1/24 "$CLI" 10.77.2.2/24

step "a site, its baseline, and an agent in srv that reads nginx's access log"
mkdir -p "$SCRATCH/www" "$SCRATCH/web"
chmod 0755 "$SCRATCH/www" "$SCRATCH/web"
echo "<html>the shop</html>" >"$SCRATCH/www/index.html"
chmod 0644 "$SCRATCH/www/index.html"
write_config "$SCRATCH/www"
agent_config
log_ban_config "$SCRATCH/www"
mamori -q init
# The agent runs in srv, where its nftables table filters the site's traffic. It starts
# before nginx, so it follows the access log from the first line nginx writes.
AGENT_NETNS=$SRV start_agent
start_nginx_in "$SRV" <<EOF
  server {
    listen 10.77.1.1:80;
    listen 10.77.2.1:80;
    root $SCRATCH/www;
    # The login form's answer to a wrong password: a 200, as WordPress gives.
    location = /wp-login.php { return 200 "wrong password\n"; }
  }
EOF
up() { in_ns "$CLI" curl -s -o /dev/null --max-time 2 http://10.77.2.1/; }
WAIT_ON=$SCRATCH/web WAIT_EXPLAIN='cat "$SCRATCH/web/error.log"' wait_for "nginx to answer" up

step "the normal client requests pages all along, at a person's pace (20 a second)"
# One curl, its URL glob making the requests, rate-limited by curl itself: a client that
# asked as fast as it could would be a flood, and the flood rule would rightly ban it.
# Codes go to stderr, which is not buffered: the client is killed, not stopped.
# `ip netns exec` execs curl, so $! is curl itself (a shell function would be a subshell
# whose kill leaves curl running).
ip netns exec "$CLI" curl -s -o /dev/null -w '%{stderr}%{http_code}\n' --max-time 2 --rate 20/s \
  "http://10.77.2.1/index.html?n=[1-100000]" 2>"$SCRATCH/client.out" &
CLIENT=$!
on_exit 'kill $CLIENT 2>/dev/null; wait $CLIENT 2>/dev/null || true'

connects() {  # SOURCE-ADDRESS: does a TCP connection from it to the site succeed?
  in_ns "$ATT" curl -s -o /dev/null --interface "$1" --connect-timeout 2 http://10.77.1.1/
}
connects 10.77.1.2 || fail "the attacker could not connect before attacking"

step "SQL-injection probes from 10.77.1.2: banned, its next connection fails"
for q in "id=1%20UNION%20SELECT%20null,@@version--" "id=1'%20OR%20'1'='1" "id=1;SELECT%20SLEEP(5)"; do
  in_ns "$ATT" curl -s -o /dev/null --interface 10.77.1.2 --max-time 2 "http://10.77.1.1/item.php?$q" || true
done
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"; events | tail -n 2' wait_for "the ban of 10.77.1.2" banned 10.77.1.2
ban=$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.77.1.2"' | head -n 1)
assert_contains "$ban" '"rule": {"name": "sqli' "the rule in the ban event"
assert_contains "$ban" "UNION" "the request in the ban event"
assert_contains "$(in_ns "$SRV" nft list set inet mamori banned4)" "10.77.1.2" "the nft set"
! connects 10.77.1.2 || fail "the banned attacker still connects"

step "a probe hidden in a 16.9 KB log line (4,200 non-ASCII user-agent bytes) from 10.77.1.4: banned"
# nginx logs each byte >= 0x80 as \xHH: the line outgrows the tailer's 16 KiB limit, and
# its first 16 KiB (address, request) are what the rules judge.
long_ua=$(python3 -c 'import sys; sys.stdout.buffer.write(bytes(0x80 + i % 0x7f for i in range(4200)))')
in_ns "$ATT" curl -s -o /dev/null --interface 10.77.1.4 --max-time 2 -A "$long_ua" \
  "http://10.77.1.1/item.php?id=1%20UNION%20SELECT%20null,@@version--" || true
longest=$(python3 -c 'import sys; print(max(len(l) for l in open(sys.argv[1], "rb")))' "$ACCESS_LOG")
((longest > 16384)) || fail "the probe's log line is only $longest bytes"
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"; events | tail -n 2' wait_for "the ban of 10.77.1.4" banned 10.77.1.4
ban=$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.77.1.4"' | head -n 1)
assert_contains "$ban" '"rule": {"name": "sqli' "the long line's rule"
assert_contains "$ban" '"line": {"truncated": true}' "the ban says it judged a truncated line"
! connects 10.77.1.4 || fail "the attacker behind the long line still connects"
expect_exit 0 mamori status --json
(($(json 'j["agent"]["logwatch"]["lines_truncated"]') >= 1)) || fail "status counts no truncated line"

step "nginx's log is rotated (rename, USR1) in the middle of the run"
mv "$ACCESS_LOG" "$ACCESS_LOG.1"
kill -USR1 "$(cat "$SCRATCH/web/nginx.pid")"
reopened() { [[ -s $ACCESS_LOG ]]; }
WAIT_ON=$SCRATCH/web WAIT_EXPLAIN='tail -n 3 "$SCRATCH/client.out"; tail -n 3 "$SCRATCH/web/error.log"; ls -l "$SCRATCH/web"' \
  wait_for "nginx to write the new log" reopened

step "a wp-login brute force from 10.77.1.3: banned at the threshold, then cut off"
for i in $(seq 1 12); do
  in_ns "$ATT" curl -s -o /dev/null --interface 10.77.1.3 --max-time 2 \
    -d "log=admin&pwd=guess$i" http://10.77.1.1/wp-login.php || true
done
WAIT_EXPLAIN='events | tail -n 2' wait_for "the ban of 10.77.1.3" banned 10.77.1.3
assert_contains "$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.77.1.3"')" \
  "wp-login" "the brute-force rule"
! connects 10.77.1.3 || fail "the brute-forcer still connects"

step "the normal client was never banned and got only 200s"
kill "$CLIENT"
wait "$CLIENT" || true
total=$(grep -c . "$SCRATCH/client.out" || true)
ok=$(grep -c '^200$' "$SCRATCH/client.out" || true)
((total > 20)) || fail "the client made only $total requests"
assert_eq "$total" "$ok" "200s among the client's $total responses"
! banned 10.77.2.2 || fail "the normal client was banned"

step "no line was lost across the rotation"
logged=$(($(wc -l <"$ACCESS_LOG.1") + $(wc -l <"$ACCESS_LOG")))
read_all() {
  mamori status --json >"$SCRATCH/status.json" &&
    [[ $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["agent"]["logwatch"]["lines"])' \
      "$SCRATCH/status.json") -eq $logged ]]
}
WAIT_SECONDS=15 WAIT_EXPLAIN='cat "$SCRATCH/status.json"; echo "logged: $logged"' \
  wait_for "the agent to have read all $logged lines" read_all

step "mamori bans del lets 10.77.1.2 back in"
expect_exit 0 in_ns "$SRV" "$MAMORI" --config "$CONFIG" bans del 10.77.1.2
connects 10.77.1.2 || fail "10.77.1.2 still cannot connect after bans del"
! connects 10.77.1.3 || fail "10.77.1.3 was let back too"
unbanned() { events 'e["event"]["action"] == "ip-unbanned" and e["source"]["ip"] == "10.77.1.2"' | grep -q manual; }
unbanned || fail "no ip-unbanned event for the manual unban: $(events | tail -n 2)"
