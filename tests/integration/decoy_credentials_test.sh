#!/usr/bin/env bash
# A decoy's credential used on the SSH honeypot, end to end, across network namespaces
# this test creates (and removes): nginx in "srv" serves a copy of Debian's WordPress
# tree with decoys planted (`mamori decoys plant`), the agent reads nginx's access log and
# relays the honeypot's events ([agent] honeypot_outbox, agent/relay). (decoys_test runs
# the same tree through php-fpm and MariaDB; here nginx serves the files, which is all a
# decoy needs.) A scanner in "att" fetches wp-config.php.bak and is
# banned on that request; a second attacker in "usr" logs in to the honeypot with the
# DB_PASSWORD from that file: the agent writes decoy-credential-used linking both addresses,
# bans the second too (its next TCP connection fails), and `mamori events` shows the
# fetch, the login and both bans as one incident. An ordinary password is just a
# honeypot event: nothing is banned for it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/netns_lib.sh"

HONEYPOT=$(dirname "$MAMORI")/mamori-honeypot
[[ -x $HONEYPOT ]] || fail "mamori-honeypot is not built beside $MAMORI"
for tool in sshpass ssh; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (tools/install-deps)"
done
[[ -f /usr/share/wordpress/wp-includes/version.php ]] || fail "Debian's wordpress is not installed (tools/install-deps)"
chmod 0711 "$SCRATCH"
SRV=mamori-csrv-$$ ATT=mamori-catt-$$ USR=mamori-cusr-$$
netns_add "$SRV" "$ATT" "$USR"
# srv <-> att: 10.79.1.0/24 (.3 is a search engine's crawler by its DNS, .4 only says it
# is one); srv <-> usr: 10.79.2.0/24 (usr also has .3).
# Name resolution in srv (ip netns exec mounts /etc/netns/NAME/* over /etc): .3's PTR and
# its name's address agree, under googlebot.com; no DNS server (a refused query, at once).
mkdir -p "/etc/netns/$SRV"
on_exit "rm -rf /etc/netns/$SRV"
printf '127.0.0.1 localhost\n10.79.1.3 crawl-10-79-1-3.googlebot.com\n' >"/etc/netns/$SRV/hosts"
echo "nameserver 127.0.0.1" >"/etc/netns/$SRV/resolv.conf"
netns_link "$SRV" 10.79.1.1/24 "$ATT" 10.79.1.2/24 10.79.1.3/24 10.79.1.4/24
netns_link "$SRV" 10.79.2.1/24 "$USR" 10.79.2.2/24 10.79.2.3/24

step "a WordPress tree with decoys planted, the honeypot's spool, the agent's config"
WWW=$SCRATCH/www
mkdir -p "$SCRATCH/web"
cp -a /usr/share/wordpress "$WWW"
chmod 0755 "$WWW" "$SCRATCH/web"
# The honeypot drops to an unprivileged user that exists already: tests running in
# parallel would race each other's useradd/userdel of a user of their own.
HP_USER=nobody
HP_STATE=$SCRATCH/honeypot
HP_LOG=$SCRATCH/honeypot.log
cat >"$SCRATCH/honeypot.toml" <<EOF
listen = "0.0.0.0:2222"
state_dir = "$HP_STATE"
user = "$HP_USER"
EOF
write_config "$WWW"
agent_config "honeypot_outbox = \"$HP_STATE/outbox\""
log_ban_config "$WWW"
expect_exit 0 mamori decoys plant --credential-log "$SCRATCH/decoy-log/credentials.log"
mamori -q init
[[ -f $WWW/wp-config.php.bak ]] || fail "wp-config.php.bak was not planted: $OUT $ERR"
expect_exit 0 mamori decoys list --json
token=$(json '[d["token"] for d in j["decoys"] if d["path"] == "wp-config.php.bak"][0]')

step "the honeypot, the agent and nginx in srv"
ip netns exec "$SRV" "$HONEYPOT" --config "$SCRATCH/honeypot.toml" >>"$HP_LOG" 2>&1 &
HP_PID=$!
on_exit 'stop_pid $HP_PID "the honeypot"'
hp_ready() { grep -q ready "$HP_LOG"; }
WAIT_SECONDS=60 WAIT_EXPLAIN='cat "$HP_LOG"' wait_for "the honeypot to be ready" hp_ready
AGENT_NETNS=$SRV start_agent
start_nginx_in "$SRV" <<EOF
  default_type text/plain;
  server { listen 10.79.1.1:80; listen 10.79.2.1:80; root $WWW; }
EOF
up() { [[ $(in_ns "$USR" curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://10.79.2.1/readme.html) == 200 ]]; }
WAIT_EXPLAIN='cat "$SCRATCH/web/error.log"' wait_for "nginx to serve the site" up

SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o PubkeyAuthentication=no -o ConnectTimeout=5 -o NumberOfPasswordPrompts=1 -p 2222)
reaches() {  # NS SOURCE-ADDRESS PORT: does a TCP connection from it to srv succeed?
  in_ns "$1" timeout 3 /usr/bin/python3 -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); s.settimeout(2); s.connect((sys.argv[2], int(sys.argv[3])))' \
    "$2" "${2%.*}.1" "$3" 2>/dev/null
}
reaches "$USR" 10.79.2.2 2222 || fail "usr cannot reach the honeypot before anything happened"

step "an ordinary password on the honeypot: relayed as the agent's event, nothing banned"
expect_exit "5|255" in_ns "$USR" timeout 30 sshpass -p 123456 ssh "${SSH_OPTS[@]}" -b 10.79.2.3 root@10.79.2.1 id
relayed() { events 'e["event"]["action"] == "ssh-login-failed" and e["source"]["ip"] == "10.79.2.3"' | grep -q .; }
WAIT_EXPLAIN='tail -n 5 "$AGENT_LOG"' wait_for "the honeypot's login event in the agent's log" relayed
ev=$(events 'e["event"]["action"] == "ssh-login-failed" and e["source"]["ip"] == "10.79.2.3"' | head -n 1)
assert_contains "$ev" '"dataset": "mamori.honeypot"' "the relayed event's dataset"
assert_contains "$ev" '"password": "123456"' "the password tried"
assert_eq "$(cat "$STATE/agent-id")" "$(json 'j["agent"]["id"]' "$ev")" "the relayed event's agent.id (the agent's own)"
! banned 10.79.2.3 || fail "an ordinary password got banned"

step "att fetches wp-config.php.bak: banned on that request"
got=$(in_ns "$ATT" curl -s --max-time 2 http://10.79.1.1/wp-config.php.bak)
password=$(sed -n "s/^define( 'DB_PASSWORD', '\(.*\)' );/\1/p" <<<"$got")
[[ -n $password ]] || fail "no DB_PASSWORD in the served wp-config.php.bak: $got"
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"' wait_for "the ban of 10.79.1.2" banned 10.79.1.2
fetch_ban=$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.79.1.2"' | head -n 1)
assert_eq "decoy-$token" "$(json 'j["rule"]["name"]' "$fetch_ban")" "the fetch's rule"

step "a search engine's crawler (forward-confirmed reverse DNS) asks for a decoy: not banned; one that only says so is"
GOOGLEBOT="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
in_ns "$ATT" curl -s -o /dev/null -A "$GOOGLEBOT" --interface 10.79.1.3 --max-time 2 http://10.79.1.1/backup.sql
in_ns "$ATT" curl -s -o /dev/null -A "$GOOGLEBOT" --interface 10.79.1.4 --max-time 2 http://10.79.1.1/backup.sql
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"' wait_for "the ban of the false crawler 10.79.1.4" banned 10.79.1.4
spared() { grep -q "10.79.1.3 is crawl-10-79-1-3.googlebot.com, a search engine's crawler: not banned" "$AGENT_LOG"; }
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"' wait_for "the crawler judged" spared
! banned 10.79.1.3 || fail "the search engine's crawler was banned"
reaches "$ATT" 10.79.1.3 80 || fail "the crawler was cut off"

step "usr logs in to the honeypot with that password: linked to the fetch, banned"
t0=$(date +%s%N)
expect_exit "5|255" in_ns "$USR" timeout 30 sshpass -p "$password" ssh "${SSH_OPTS[@]}" -b 10.79.2.2 root@10.79.2.1 id
WAIT_EXPLAIN='tail -n 5 "$AGENT_LOG"; events | tail -n 3' wait_for "the ban of 10.79.2.2" banned 10.79.2.2
echo "ban of the credential's user $(( ($(date +%s%N) - t0) / 1000000 )) ms after the ssh client started"
use=$(events 'e["event"]["action"] == "decoy-credential-used"')
assert_eq 1 "$(grep -c . <<<"$use")" "decoy-credential-used events"
assert_eq 10.79.2.2 "$(json 'j["source"]["ip"]' "$use")" "who used it"
assert_eq '["10.79.2.2", "10.79.1.2"]' "$(json 'j["related"]["ip"]' "$use")" "related.ip"
assert_eq "$token ssh $WWW/wp-config.php.bak" "$(json '" ".join([j["mamori"]["decoy"]["token"], j["mamori"]["decoy"]["used_on"], j["mamori"]["decoy"]["path"]])' "$use")" "the decoy named"
assert_eq "$(json 'j["event"]["id"]' "$fetch_ban")" "$(json 'j["mamori"]["related_event"]' "$use")" "the link to the fetch's ban"
use_id=$(json 'j["event"]["id"]' "$use")
user_ban=$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.79.2.2"')
assert_eq "decoy-credential-$token $use_id" "$(json 'j["rule"]["name"] + " " + j["mamori"]["related_event"]' "$user_ban")" "the user's ban, linked"
login=$(events 'e["event"]["action"] == "ssh-login-failed" and e["source"]["ip"] == "10.79.2.2"' | head -n 1)
assert_eq "$use_id" "$(json 'j["mamori"]["related_event"]' "$login")" "the login event, linked"
assert_contains "$(in_ns "$SRV" nft list set inet mamori banned4)" "10.79.2.2" "the nft set"
! reaches "$USR" 10.79.2.2 2222 || fail "the credential's user still reaches the honeypot"
reaches "$USR" 10.79.2.3 2222 || fail "the other address of usr was cut off"

step "mamori events: the fetch, the use, the login and both bans are one incident"
expect_exit 0 mamori events --ip 10.79.2.2
echo "$OUT"
incident=$(grep -c '^incident' <<<"$OUT")
assert_eq 1 "$incident" "incidents shown for 10.79.2.2:
$OUT"
for needle in 10.79.1.2 decoy-credential-used ssh-login-failed "decoy-$token"; do
  assert_contains "$OUT" "$needle" "the incident"
done

step "a second login with the same password within the minute: one incident, not two"
expect_exit "5|255" in_ns "$USR" timeout 30 sshpass -p "$password" ssh "${SSH_OPTS[@]}" -b 10.79.2.3 wp_nobody@10.79.2.1 id
twice() { [[ $(events 'e["event"]["action"] == "decoy-credential-used"' | grep -c .) == 2 ]]; }
WAIT_EXPLAIN='events | tail -n 3' wait_for "the second address's use" twice
banned 10.79.2.3 || fail "the second user of the credential was not banned"

step "every event the agent wrote passes the field list"
check_events

step "the agent restarts: nothing relayed twice"
before=$(events 'e["event"]["dataset"] == "mamori.honeypot"' | grep -c .)
stop_agent
AGENT_NETNS=$SRV start_agent
# One new session after the restart: once its last event is relayed, everything before it
# was read (in order), so anything relayed twice would be counted by then.
expect_exit "5|255" in_ns "$ATT" timeout 30 sshpass -p 123456 ssh "${SSH_OPTS[@]}" -b 10.79.1.3 root@10.79.1.1 id
ended() { events 'e["event"]["action"] == "ssh-session-ended" and e["source"]["ip"] == "10.79.1.3"' | grep -q .; }
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"' wait_for "the new session's end, relayed" ended
assert_eq "$((before + 3))" "$(events 'e["event"]["dataset"] == "mamori.honeypot"' | grep -c .)" \
  "honeypot events after a restart (those before it, and the new session's connection, login and end)"
