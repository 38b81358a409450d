#!/usr/bin/env bash
# Decoy files end to end, across network namespaces this test creates (and removes):
# nginx in "srv" serves a copy of Debian's WordPress tree; `mamori deploy -- mamori
# decoys plant` puts wp-config.php.bak, backup.sql and .env in it (never a name the site
# uses) and takes them into the baseline; the agent reads nginx's access log. A scanner
# ("att") that asks for one decoy is banned on that first request and its next TCP
# connection fails; a near miss (a name that is not a decoy) is not banned; a visitor
# ("cli") keeps getting the site.
source "$(dirname "$0")/lib.sh"

command -v nft >/dev/null || fail "nft not installed (tools/install-deps)"
command -v nginx >/dev/null || fail "nginx not installed (tools/install-deps)"
[[ -f /usr/share/wordpress/wp-includes/version.php ]] || fail "Debian's wordpress is not installed (tools/install-deps)"
chmod 0755 "$SCRATCH"
SRV=mamori-dsrv-$$ ATT=mamori-datt-$$ CLI=mamori-dcli-$$
for ns in "$SRV" "$ATT" "$CLI"; do
  ip netns add "$ns"
  on_exit "ip netns del $ns"
  ip -n "$ns" link set lo up
done
# srv <-> att: 10.78.1.0/24 (the attacker has .2 and .3); srv <-> cli: 10.78.2.0/24.
ip link add "da$$" netns "$SRV" type veth peer name eth0 netns "$ATT"
ip link add "dc$$" netns "$SRV" type veth peer name eth0 netns "$CLI"
ip -n "$SRV" addr add 10.78.1.1/24 dev "da$$"
ip -n "$SRV" addr add 10.78.2.1/24 dev "dc$$"
ip -n "$ATT" addr add 10.78.1.2/24 dev eth0
ip -n "$ATT" addr add 10.78.1.3/24 dev eth0
ip -n "$CLI" addr add 10.78.2.2/24 dev eth0
for l in "$SRV da$$" "$SRV dc$$" "$ATT eth0" "$CLI eth0"; do
  set -- $l
  ip -n "$1" link set "$2" up
done
# shellcheck disable=SC2317  # used by on_exit and the steps below
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

step "a WordPress tree, its baseline, and decoys planted under mamori deploy"
WWW=$SCRATCH/www
mkdir -p "$SCRATCH/web"
cp -a /usr/share/wordpress "$WWW"
chmod 0755 "$WWW" "$SCRATCH/web"
ACCESS_LOG=$SCRATCH/web/access.log
write_config "$WWW"
agent_config
cat >>"$CONFIG" <<EOF
[[log]]
path = "$ACCESS_LOG"
format = "combined"
root = "$WWW"
[ban]
backend = "nftables"
ttl = 600
EOF
mamori -q init
expect_exit 0 mamori decoys plant --dry-run --json
assert_eq '["wp-config.php.bak", "backup.sql", ".env"]' "$(json '[d["path"] for d in j["planted"]]')" \
  "the decoys a WordPress tree gets"
[[ ! -e $WWW/backup.sql ]] || fail "--dry-run wrote a file"
expect_exit 0 mamori deploy -- "$MAMORI" --config "$CONFIG" decoys plant
for f in wp-config.php.bak backup.sql .env; do
  [[ -f $WWW/$f ]] || fail "$f was not planted: $OUT $ERR"
  assert_eq "644 root" "$(stat -c '%a %U' "$WWW/$f")" "$f's mode and owner (the root's)"
done
assert_eq 600 "$(stat -c %a "$STATE/decoys.json")" "the record's mode"
expect_exit 0 mamori decoys list --json
assert_eq 3 "$(json 'len(j["decoys"])')" "decoys listed"
assert_eq "[]" "$(json '[d for d in j["decoys"] if "password" in d]')" "passwords in the JSON list"
user=$(json 'j["decoys"][0]["user"]')
assert_contains "$(cat "$WWW/wp-config.php.bak")" "define( 'DB_USER', '$user' );" "the fake user in the file"
expect_exit 0 mamori check
expect_exit 0 mamori decoys plant
assert_contains "$OUT" "nothing to plant" "a second plant"

step "the agent in srv, then nginx serving the tree"
# The agent starts before nginx, so it follows the access log from its first line.
_AGENT_LOG_FROM=0
ip netns exec "$SRV" "$MAMORI" --config "$CONFIG" agent >>"$AGENT_LOG" 2>&1 &
AGENT_PID=$!
on_exit "stop_agent"
WAIT_SECONDS=60 WAIT_EXPLAIN='cat "$AGENT_LOG"' wait_for "the agent to be ready" _agent_ready_or_gone
_agent_ready || { cat "$AGENT_LOG" >&2; fail "the agent exited before it was ready"; }
cat >"$SCRATCH/web/nginx.conf" <<EOF
daemon off;
worker_processes 1;
user www-data www-data;
pid $SCRATCH/web/nginx.pid;
error_log $SCRATCH/web/error.log;
events { worker_connections 256; }
http {
  access_log $ACCESS_LOG combined;
  default_type text/plain;
  server {
    listen 10.78.1.1:80;
    listen 10.78.2.1:80;
    root $WWW;
  }
}
EOF
ip netns exec "$SRV" nginx -c "$SCRATCH/web/nginx.conf" -e "$SCRATCH/web/error.log" &
NGINX=$!
on_exit 'stop_pid $NGINX nginx'
page() { in_ns "$CLI" curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://10.78.2.1/readme.html; }
up() { [[ $(page) == 200 ]]; }
WAIT_ON=$SCRATCH/web WAIT_EXPLAIN='cat "$SCRATCH/web/error.log"' wait_for "nginx to serve the site" up

connects() {  # SOURCE-ADDRESS: does a TCP connection from it to the site succeed?
  in_ns "$ATT" curl -s -o /dev/null --interface "$1" --connect-timeout 2 http://10.78.1.1/readme.html
}
banned() { events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "'"$1"'"' | grep -q .; }
connects 10.78.1.2 || fail "the scanner could not connect before scanning"
connects 10.78.1.3 || fail "the second address could not connect before scanning"

step "with the agent running, plant outside a deploy is refused (the agent would take the files for a dropper's)"
expect_exit 2 mamori decoys plant --root "$WWW"
assert_contains "$ERR" "mamori deploy -- mamori decoys plant" "the refusal says how"

step "a near miss from 10.78.1.3, then one request for a decoy from 10.78.1.2: only the decoy bans"
# (wp-config.php.bak2 would do, but a built-in rule bans copies of wp-config.php anyway.)
code=$(in_ns "$ATT" curl -s -o /dev/null -w '%{http_code}' --interface 10.78.1.3 --max-time 2 \
  http://10.78.1.1/backup.sql.txt)
assert_eq 404 "$code" "the near miss's answer"
got=$(in_ns "$ATT" curl -s --interface 10.78.1.2 --max-time 2 http://10.78.1.1/wp-config.php.bak)
assert_contains "$got" "DB_PASSWORD" "the decoy, served by nginx"
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"; events | tail -n 2' wait_for "the ban of 10.78.1.2" banned 10.78.1.2
ban=$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.78.1.2"' | head -n 1)
assert_contains "$ban" '"rule": {"name": "decoy-' "the decoy's rule in the ban event"
assert_contains "$ban" "wp-config.php.bak" "the request in the ban event"
assert_contains "$(in_ns "$SRV" nft list set inet mamori banned4)" "10.78.1.2" "the nft set"
! connects 10.78.1.2 || fail "the scanner still connects after touching a decoy"
# The log is read in order: the near miss, earlier, was judged before the decoy request.
! banned 10.78.1.3 || fail "a request for a name that is no decoy was banned"
connects 10.78.1.3 || fail "the near miss's address was cut off"
assert_eq 200 "$(page)" "the visitor's page after the ban"

step "a process on the host (a web shell, as www-data) reads a decoy: decoy-opened names it; nginx's serving did not"
# The reader stays until the event is seen (its stdin, a FIFO, is closed then): the agent
# names a process from /proc, and one that is gone can only be named by its pid.
mkfifo "$SCRATCH/hold"
runuser -u www-data -- python3 -c 'import sys; open(sys.argv[1]).read(); sys.stdin.read()' \
  "$WWW/.env" <"$SCRATCH/hold" &
READER=$!
exec 4>"$SCRATCH/hold"
on_exit 'exec 4>&- 2>/dev/null; wait $READER 2>/dev/null || true'
opened() { events 'e["event"]["action"] == "decoy-opened"' | grep -q .; }
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"; events | tail -n 2' wait_for "the decoy-opened event" opened
exec 4>&-
wait "$READER" || fail "the reader failed"
ev=$(events 'e["event"]["action"] == "decoy-opened"')
assert_eq 1 "$(grep -c . <<<"$ev")" "decoy-opened events (nginx's open of wp-config.php.bak is the log's to judge)"
assert_contains "$ev" '"path": "'"$WWW"'/.env"' "the decoy's path"
assert_contains "$ev" '"executable": "/usr/bin/python3' "the process"
assert_contains "$ev" '"name": "www-data"' "the user"

step "the decoys are guarded like every other file"
echo "<?php // dropped" >>"$WWW/.env"
restored() { ! grep -q dropped "$WWW/.env"; }
WAIT_ON=$WWW wait_for "the tampered decoy restored" restored
