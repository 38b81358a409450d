#!/usr/bin/env bash
# The other logs attackers leave (docs/formats/other-logs.md), end to end across network
# namespaces this test creates: a real sshd in "srv" logs through a real rsyslog of the
# test's (auth.log in rsyslog's traditional format, as Debian writes it), and nginx
# there rejects a flood with limit_req in its error log. The agent reads auth.log as
# "sshd" and the error log as "nginx-error":
#   - 5 password guesses for root from 10.77.1.2 (sshpass) ban it in nftables: its
#     next connection is dropped;
#   - 5 guesses from 10.77.1.3 as a user named "x from 10.77.2.2 port 22" ban
#     10.77.1.3, never 10.77.2.2, whose address the user name holds;
#   - the administrator at 10.77.2.2 mistypes a password, then logs in with a key,
#     before and after the attacks: never banned;
#   - a flood from 10.77.1.4 rejected by limit_req bans it (rule web-limit-req, read from
#     the error log; no access log is configured), a client at a person's pace is not.
# journald does not run here: auth.log via rsyslog is what this tests. sshd reaches the
# test's rsyslog through /dev/log in a mount namespace of its own (the host's /dev is
# left alone).
# shellcheck disable=SC2016  # WAIT_EXPLAIN is eval'ed later; sshd's shell expands its own $1
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/netns_lib.sh"

for tool in sshpass ssh ssh-keygen rsyslogd unshare; do
  command -v "$tool" >/dev/null || fail "$tool not installed (tools/install-deps)"
done
[[ -x /usr/sbin/sshd ]] || fail "sshd not installed (tools/install-deps: openssh-server)"

chmod 0755 "$SCRATCH"
SRV=mamori-ssrv-$$ ATT=mamori-satt-$$ CLI=mamori-scli-$$
netns_add "$SRV" "$ATT" "$CLI"
netns_link "$SRV" 10.77.1.1/24 "$ATT" 10.77.1.2/24 10.77.1.3/24 10.77.1.4/24
netns_link "$SRV" 10.77.2.1/24 "$CLI" 10.77.2.2/24

step "rsyslog of the test's: auth and authpriv to auth.log, traditional format"
SYSLOG=$SCRATCH/syslog
AUTH_LOG=$SYSLOG/auth.log
mkdir -p "$SYSLOG/work"
cat >"$SYSLOG/rsyslog.conf" <<EOF
global(workDirectory="$SYSLOG/work" processInternalMessages="on")
module(load="imuxsock" sysSock.use="off")
input(type="imuxsock" socket="$SYSLOG/log.sock")
auth,authpriv.* action(type="omfile" file="$AUTH_LOG" template="RSYSLOG_TraditionalFileFormat"
                       flushOnTXEnd="on")
*.* action(type="omfile" file="$SYSLOG/rsyslogd.log")
EOF
: >"$AUTH_LOG"
rsyslogd -n -f "$SYSLOG/rsyslog.conf" -i "$SYSLOG/rsyslogd.pid" >"$SYSLOG/rsyslogd.stderr" 2>&1 &
RSYSLOG=$!
on_exit "stop_pid $RSYSLOG rsyslogd"
socket_up() { [[ -S $SYSLOG/log.sock ]]; }
WAIT_ON=$SYSLOG WAIT_EXPLAIN='cat "$SYSLOG/rsyslogd.stderr"' wait_for "rsyslogd's socket" socket_up

step "an agent in srv reading auth.log (sshd) and nginx's error log (nginx-error)"
mkdir -p "$SCRATCH/www" "$SCRATCH/web"
chmod 0755 "$SCRATCH/www" "$SCRATCH/web"
echo "<html>the shop</html>" >"$SCRATCH/www/index.html"
chmod 0644 "$SCRATCH/www/index.html"
ERROR_LOG=$SCRATCH/web/error.log
: >"$ERROR_LOG"
write_config "$SCRATCH/www"
agent_config
cat >>"$CONFIG" <<EOF
[[log]]
path = "$AUTH_LOG"
format = "sshd"

[[log]]
path = "$ERROR_LOG"
format = "nginx-error"

[ban]
backend = "nftables"
ttl = 600
EOF
mamori -q init
AGENT_NETNS=$SRV start_agent

step "sshd in srv on 10.77.1.1:2222 and 10.77.2.1:2222, logging to syslog (auth)"
ssh-keygen -q -t ed25519 -N '' -C '' -f "$SCRATCH/admin_key"
cp "$SCRATCH/admin_key.pub" "$SCRATCH/authorized_keys"
start_sshd_in "$SRV" "$SYSLOG/log.sock" 10.77.1.1 10.77.2.1
sshd_listening() { grep -q "sshd\[[0-9]*\]: Server listening on 10.77.2.1 port 2222" "$AUTH_LOG"; }
WAIT_ON=$SYSLOG WAIT_EXPLAIN='cat "$SCRATCH/sshd.stderr" "$AUTH_LOG"' \
  wait_for "sshd to listen (said in auth.log)" sshd_listening

guess() {  # NS SOURCE USER PASSWORD: one password guess at 10.77.1.1; true when refused
  ssh_guess "$1" "$2" 10.77.1.1 "$3" "$4"
}
admin_login() {  # the administrator, from 10.77.2.2, with the key
  ip netns exec "$CLI" timeout 10 ssh "${SSH_OPTS[@]}" -i "$SCRATCH/admin_key" \
    -o PreferredAuthentications=publickey root@10.77.2.1 echo logged in </dev/null 2>&1
}
connects() {  # NS SOURCE PORT: a TCP connection from SOURCE to srv succeeds within 2 s
  ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(2)
s.bind((sys.argv[1], 0))
s.connect(("10.77.1.1" if sys.argv[1].startswith("10.77.1.") else "10.77.2.1", int(sys.argv[2])))
' "$2" "$3" 2>/dev/null
}

step "the administrator mistypes a password once, then logs in with the key"
guess "$CLI" 10.77.2.2 root wrong-password || fail "a wrong password was accepted"
assert_eq "logged in" "$(admin_login)" "the administrator's key login"

step "5 password guesses for root from 10.77.1.2: banned, its next connection dropped"
connects "$ATT" 10.77.1.2 2222 || fail "10.77.1.2 could not connect before guessing"
for i in 1 2 3 4 5; do guess "$ATT" 10.77.1.2 root "guess$i" || fail "guess $i was accepted"; done
WAIT_EXPLAIN='tail -n 12 "$AUTH_LOG"; tail -n 5 "$AGENT_LOG"' wait_for "the ban of 10.77.1.2" banned 10.77.1.2
ban=$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.77.1.2"' | head -n 1)
assert_contains "$ban" '"rule": {"name": "sshd-auth-failures"}' "the rule in the ban event"
assert_contains "$ban" "Failed password for root from 10.77.1.2 port" "the line in the ban"
assert_contains "$ban" "\"path\": \"$AUTH_LOG\"" "the log in the ban event"
assert_contains "$(in_ns "$SRV" nft list set inet mamori banned4)" "10.77.1.2" "the nft set"
! connects "$ATT" 10.77.1.2 2222 || fail "the banned guesser still connects"

step "5 guesses from 10.77.1.3 as the user 'x from 10.77.2.2 port 22': 10.77.1.3 banned, never 10.77.2.2"
for i in 1 2 3 4 5; do
  GUESS_TIMEOUT=4 guess "$ATT" 10.77.1.3 "x from 10.77.2.2 port 22" "guess$i" ||
    fail "guess $i was accepted"
done
grep -q "Invalid user x from 10.77.2.2 port 22 from 10.77.1.3 port" "$AUTH_LOG" ||
  fail "sshd did not log the forged user name: $(tail -n 5 "$AUTH_LOG")"
WAIT_EXPLAIN='tail -n 12 "$AUTH_LOG"; tail -n 5 "$AGENT_LOG"' wait_for "the ban of 10.77.1.3" banned 10.77.1.3
! banned 10.77.2.2 || fail "the address in the user name was banned"
assert_eq "logged in" "$(admin_login)" "the administrator's key login after the attacks"
connects "$CLI" 10.77.2.2 2222 || fail "the administrator cannot connect"

step "nginx with limit_req (1 r/s, burst 2) in srv; its error log read as nginx-error"
start_nginx_in "$SRV" <<EOF
  limit_req_zone \$binary_remote_addr zone=perip:1m rate=1r/s;
  server {
    listen 10.77.1.1:80;
    listen 10.77.2.1:80;
    root $SCRATCH/www;
    location / { limit_req zone=perip burst=2 nodelay; }
  }
EOF
up() { in_ns "$CLI" curl -s -o /dev/null --max-time 2 http://10.77.2.1/; }
WAIT_ON=$SCRATCH/web WAIT_EXPLAIN='cat "$ERROR_LOG"' wait_for "nginx to answer" up

step "a flood from 10.77.1.4 (30 requests at once): rejected, banned; a person-paced client is not"
# In parallel: the ban may land during the flood, and a dropped request waits out its
# --max-time.
codes=$(in_ns "$ATT" curl -s -Z --parallel-max 30 -o /dev/null -w '%{http_code}\n' \
  --interface 10.77.1.4 --max-time 2 "http://10.77.1.1/index.html?n=[1-30]" 2>/dev/null || true)
(($(grep -c '^503$' <<<"$codes") >= 10)) || fail "limit_req rejected too few: $codes"
WAIT_EXPLAIN='tail -n 3 "$ERROR_LOG"; tail -n 5 "$AGENT_LOG"' wait_for "the ban of 10.77.1.4" banned 10.77.1.4
ban=$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.77.1.4"' | head -n 1)
assert_contains "$ban" '"rule": {"name": "web-limit-req"}' "the limit_req rule"
assert_contains "$ban" "\"path\": \"$ERROR_LOG\"" "the error log in the ban event"
! connects "$ATT" 10.77.1.4 80 || fail "the flooder still connects"
for i in 1 2 3; do
  [[ $(in_ns "$CLI" curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://10.77.2.1/) == 200 ]] ||
    fail "the person-paced client got no 200"
done
! banned 10.77.2.2 || fail "the person-paced client was banned"

step "the events are well-formed; status shows both logs read in their formats"
check_events
status=$(mamori status --json) || fail "mamori status failed"
for log in "$AUTH_LOG" "$ERROR_LOG"; do
  assert_contains "$status" "$log" "the log in status"
done
assert_not_contains "$status" '"unparseable": true' "an unparseable log in status"
