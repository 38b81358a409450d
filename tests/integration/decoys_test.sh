#!/usr/bin/env bash
# Decoys end to end, across network namespaces this test creates (and removes): nginx
# in "srv" serves a copy of Debian's WordPress tree through php-fpm, installed on a
# MariaDB of the test's own (datadir and socket in $SCRATCH); `mamori deploy -- mamori
# decoys plant` puts wp-config.php.bak, backup.sql and .env in it (never a name the site
# uses), the decoy URLs and WordPress's must-use plugin, and takes them into the
# baseline; the agent reads nginx's access log and the plugin's credential log.
# From "att", each scanner address touches one decoy and is banned on that first request,
# its next TCP connection failing: a decoy file (.2), the robots.txt Disallow trap (.4),
# the hidden link of the home page (.5), a fake admin path (.6). A near miss (.3), the
# home page and an unknown path (.7) and a wrong ordinary login (.8) are not banned.
# From "cli", a visitor (.2) keeps getting the site, and another address (.3) that logs
# in on wp-login.php with the credentials of the stolen wp-config.php.bak is banned by
# the decoy-credential rule.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/netns_lib.sh"
source "$(dirname "$0")/web_lib.sh"
chmod 0755 "$SCRATCH"
SRV=mamori-dsrv-$$ ATT=mamori-datt-$$ CLI=mamori-dcli-$$
netns_add "$SRV" "$ATT" "$CLI"
# srv <-> att: 10.78.1.0/24 (the attacker has .2 to .8); srv <-> cli: 10.78.2.0/24.
netns_link "$SRV" 10.78.1.1/24 "$ATT" 10.78.1.{2..8}/24
netns_link "$SRV" 10.78.2.1/24 "$CLI" 10.78.2.2/24 10.78.2.3/24

step "a WordPress tree on a MariaDB of the test's, installed"
WWW=$SCRATCH/www
mkdir -p "$SCRATCH/web"
chmod 0755 "$SCRATCH/web"
wordpress_db "$WWW" 10.78.1.1 "mamori decoys" \
  "update_option( 'permalink_structure', '/%postname%/' );  // WordPress's robots.txt needs it"

step "its baseline, and the decoys planted under mamori deploy"
CRED_LOG=$SCRATCH/decoy-log/credentials.log
# A second site, static, with a robots.txt of its own (no final newline, the web user's,
# 0640): the traps' group is appended to it, its owner and mode kept.
STATIC=$SCRATCH/static
mkdir -p "$STATIC"
echo '<html>static</html>' >"$STATIC/index.html"
printf 'User-agent: *\nDisallow: /search' >"$STATIC/robots.txt"
chown www-data:www-data "$STATIC/robots.txt"
chmod 0640 "$STATIC/robots.txt"
write_config "$WWW" "$STATIC"
agent_config
log_ban_config "$WWW"
mamori -q init
expect_exit 0 mamori decoys plant --dry-run --json
assert_eq '["wp-config.php.bak", "backup.sql", ".env"]' "$(json '[d["path"] for d in j["planted"] if d["root"] == "'"$WWW"'"]')" \
  "the decoys a WordPress tree gets"
[[ ! -e $WWW/backup.sql ]] || fail "--dry-run wrote a file"
assert_eq '["robots-trap", "link-trap", "fake-path", "fake-path", "fake-path", "fake-path"]' \
  "$(json '[u["kind"] for u in j["urls"] if u["root"] == "'"$WWW"'"]')" "the decoy URLs a WordPress tree gets"
assert_eq '["robots-trap", "/.git/config", "/adminer.php", "/phpmyadmin/", "/install.php"]' \
  "$(json '[u["kind"] if u["kind"] != "fake-path" else u["url"] for u in j["urls"] if u["root"] == "'"$STATIC"'"]')" \
  "the decoy URLs another site gets"
assert_eq '[{"kind": "wordpress", "plugin": true, "robots": "plugin"}]' \
  "$(json '[{k: s[k] for k in ("kind", "plugin", "robots")} for s in j["sites"]][:1]')" "how"
assert_eq '[{"kind": "generic", "plugin": false, "robots": "appended"}]' \
  "$(json '[{k: s[k] for k in ("kind", "plugin", "robots")} for s in j["sites"]][1:]')" "how, for the static site"
[[ ! -e $WWW/wp-content/mu-plugins ]] || fail "--dry-run wrote the plugin"
expect_exit 0 mamori deploy -- "$MAMORI" --config "$CONFIG" decoys plant --credential-log "$CRED_LOG"
for f in wp-config.php.bak backup.sql .env; do
  [[ -f $WWW/$f ]] || fail "$f was not planted: $OUT $ERR"
  assert_eq "644 root" "$(stat -c '%a %U' "$WWW/$f")" "$f's mode and owner (the root's)"
done
assert_eq 600 "$(stat -c %a "$STATE/decoys.json")" "the record's mode"
PLUGIN=$WWW/wp-content/mu-plugins/mamori-decoys.php
assert_eq "644 root" "$(stat -c '%a %U' "$PLUGIN")" "the plugin's mode and owner"
assert_eq "750 www-data" "$(stat -c '%a %U' "$SCRATCH/decoy-log")" "the credential log's directory"
assert_eq "640 www-data" "$(stat -c '%a %U' "$CRED_LOG")" "the credential log"
for f in wp-config.php.bak backup.sql .env; do
  pw=$(grep -oE "DB_PASSWORD', '[a-z0-9]{20}|IDENTIFIED BY '[a-z0-9]{20}|^DB_PASSWORD=[a-z0-9]{20}" "$WWW/$f" | grep -oE '[a-z0-9]{20}$')
  [[ -n $pw ]] || fail "no password found in $f"
  ! grep -q "$pw" "$PLUGIN" || fail "the plugin holds the password of $f in clear"
  grep -q "$(printf %s "$pw" | sha256sum | cut -d' ' -f1)" "$PLUGIN" || fail "the plugin lacks the hash of $f's password"
done
expect_exit 0 mamori decoys list --json
assert_eq 6 "$(json 'len(j["decoys"])')" "decoys listed (3 a site)"
assert_eq 11 "$(json 'len(j["urls"])')" "decoy URLs listed (6 + 5)"
static_trap=$(json '[u["url"] for u in j["urls"] if u["root"] == "'"$STATIC"'"][0]')
assert_eq "$(printf 'User-agent: *\nDisallow: /search\n\nUser-agent: *\nDisallow: %s' "$static_trap")" \
  "$(cat "$STATIC/robots.txt")" "the static site's robots.txt, the group appended"
assert_eq "640 www-data" "$(stat -c '%a %U' "$STATIC/robots.txt")" "its mode and owner, kept"
[[ ! -e $STATIC/wp-content ]] || fail "a plugin directory in a site that is no WordPress"
assert_eq "$CRED_LOG" "$(json 'j["credential_log"]')" "the credential log listed"
assert_eq "[]" "$(json '[d for d in j["decoys"] if "password" in d]')" "passwords in the JSON list"
user=$(json 'j["decoys"][0]["user"]')
ROBOTS_TRAP=$(json '[u["url"] for u in j["urls"] if u["kind"] == "robots-trap"][0]')
LINK_TRAP=$(json '[u["url"] for u in j["urls"] if u["kind"] == "link-trap"][0]')
[[ $ROBOTS_TRAP =~ ^/[a-z]+-[a-z0-9]{8}/$ ]] || fail "the robots.txt trap: $ROBOTS_TRAP"
[[ $LINK_TRAP =~ ^/[a-z]+-[a-z0-9]{8}/$ && $LINK_TRAP != "$ROBOTS_TRAP" ]] || fail "the link trap: $LINK_TRAP"
FAKE_RULE=$(json '[u["rule"] for u in j["urls"] if u["url"] == "/phpmyadmin/"][0]')
BAK_TOKEN=$(json '[d["token"] for d in j["decoys"] if d["path"] == "wp-config.php.bak"][0]')
expect_exit 0 mamori decoys list
assert_contains "$OUT" "$ROBOTS_TRAP  rule decoy-trap-" "the text list"
assert_contains "$(cat "$STATE/decoys.rules")" "id = \"decoy-credential-$BAK_TOKEN\"" "the credential rule"
assert_contains "$(cat "$WWW/wp-config.php.bak")" "define( 'DB_USER', '$user' );" "the fake user in the file"
expect_exit 0 mamori check
expect_exit 0 mamori decoys plant
assert_contains "$OUT" "nothing to plant" "a second plant"

step "the agent in srv, then nginx serving the tree"
# The agent starts before nginx, so it follows the access log from its first line.
AGENT_NETNS=$SRV start_agent
start_php_fpm "$WWW" "open_basedir=$WWW:$WEB_DIR/upload-tmp:$SCRATCH/decoy-log"
start_nginx_in "$SRV" <<EOF
  default_type text/plain;
  server {
    listen 10.78.1.1:80;
    listen 10.78.2.1:80;
    root $WWW;
    index index.php;
    location / {
      try_files \$uri \$uri/ /index.php?\$args;
    }
    location ~ \.php\$ {
      try_files \$uri =404;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass unix:$PHP_FPM_SOCK;
    }
  }
EOF
page() { in_ns "$CLI" curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://10.78.2.1/readme.html; }
up() { [[ $(page) == 200 ]]; }
WAIT_ON=$SCRATCH/web WAIT_EXPLAIN='cat "$SCRATCH/web/error.log"' wait_for "nginx to serve the site" up

connects() {  # SOURCE-ADDRESS: does a TCP connection from it to the site succeed?
  in_ns "$ATT" curl -s -o /dev/null --interface "$1" --connect-timeout 2 http://10.78.1.1/readme.html
}
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

# get ADDRESS PATH [CURL ARGS...]: the body of PATH as the attacker's ADDRESS gets it.
get() {
  local from=$1 path=$2
  shift 2
  in_ns "$ATT" curl -s --interface "$from" --max-time 5 "$@" "http://10.78.1.1$path"
}
code() { get "$1" "$2" -o /dev/null -w '%{http_code}'; }
# ban_of ADDRESS: its ip-banned event.
ban_of() { events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "'"$1"'"' | head -n 1; }
# banned_at_once ADDRESS RULE-PREFIX WHAT: the ban came, names a rule RULE-PREFIX..., and
# the address's next connection fails.
banned_at_once() {
  WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"; events | tail -n 2' wait_for "the ban of $1 ($3)" banned "$1"
  assert_contains "$(ban_of "$1")" '"rule": {"name": "'"$2" "the rule of $3's ban"
  ! connects "$1" || fail "$1 still connects after $3"
}

step "robots.txt, served by WordPress, Disallows the trap; who asks for the trap is banned (10.78.1.4)"
robots=$(get 10.78.1.4 /robots.txt)
assert_contains "$robots" "Disallow: /wp-admin/" "WordPress's own robots.txt"
assert_contains "$robots" "Disallow: $ROBOTS_TRAP" "the trap in robots.txt"
assert_contains "$robots" "Disallow: $LINK_TRAP" "the link trap in robots.txt"
assert_eq 404 "$(code 10.78.1.4 "$ROBOTS_TRAP")" "the trap's answer (like any unknown path)"
banned_at_once 10.78.1.4 "decoy-trap-" "the robots.txt trap"

step "the home page (10.78.1.5) holds the hidden link; following it bans"
home=$(get 10.78.1.5 /)
assert_contains "$home" "twentytwentyone" "WordPress's rendered home page"
link=$(grep -oE '<a href="[^"]*" rel="nofollow" style="display:none" aria-hidden="true" tabindex="-1">' <<<"$home" |
  sed -E 's/<a href="([^"]*)".*/\1/')
assert_eq "$LINK_TRAP" "$link" "the hidden link's target"
connects 10.78.1.5 || fail "reading the home page banned its reader"
assert_eq 404 "$(code 10.78.1.5 "$link")" "the link trap's answer"
banned_at_once 10.78.1.5 "decoy-trap-" "the hidden link"

step "a fake admin path (10.78.1.6): a 404 like any other, and a ban by its decoy rule"
assert_eq 404 "$(code 10.78.1.6 /phpmyadmin/)" "/phpmyadmin/'s answer"
banned_at_once 10.78.1.6 "$FAKE_RULE" "/phpmyadmin/"

step "a visitor's home page, an unknown path and a wrong ordinary login (10.78.1.7, .8) are no decoys"
assert_eq 200 "$(code 10.78.1.7 /)" "the home page"
assert_eq 404 "$(code 10.78.1.7 /no-such-page-here/)" "an unknown path"
login=$(get 10.78.1.8 /wp-login.php -o /dev/null -w '%{http_code}' --data 'log=admin&pwd=wrong-password&wp-submit=Log+In')
assert_eq 200 "$login" "a wrong login's answer"

step "the stolen wp-config.php.bak's credentials used on wp-login.php from another address (10.78.2.3)"
db_user=$(sed -nE "s/^define\( 'DB_USER', '([^']*)' \);/\1/p" <<<"$got")
db_pass=$(sed -nE "s/^define\( 'DB_PASSWORD', '([^']*)' \);/\1/p" <<<"$got")
[[ -n $db_user && -n $db_pass ]] || fail "no credentials in the fetched wp-config.php.bak"
in_ns "$CLI" curl -s -o /dev/null --interface 10.78.2.3 --max-time 5 http://10.78.2.1/readme.html ||
  fail "10.78.2.3 could not connect before the login"
login=$(in_ns "$CLI" curl -s -o /dev/null -w '%{http_code}' --interface 10.78.2.3 --max-time 5 \
  --data-urlencode "log=$db_user" --data-urlencode "pwd=$db_pass" --data 'wp-submit=Log+In' \
  http://10.78.2.1/wp-login.php)
assert_eq 200 "$login" "the decoy login's answer (a failed login, as any)"
assert_contains "$(cat "$CRED_LOG")" '10.78.2.3 - - [' "the plugin's line"
assert_contains "$(cat "$CRED_LOG")" "\"POST /wp-login.php?mamori-decoy-credential=$BAK_TOKEN HTTP/1.1\" 200 0" \
  "the plugin's request"
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"; cat "$CRED_LOG"; events | tail -n 2' wait_for "the ban of 10.78.2.3" banned 10.78.2.3
cred_ban=$(ban_of 10.78.2.3)
assert_contains "$cred_ban" '"rule": {"name": "decoy-credential-'"$BAK_TOKEN"'"' "the credential's rule"
assert_contains "$cred_ban" "$CRED_LOG" "the log the ban came from"
! in_ns "$CLI" curl -s -o /dev/null --interface 10.78.2.3 --connect-timeout 2 http://10.78.2.1/readme.html ||
  fail "10.78.2.3 still connects after using a decoy's credential"
# The log watch links the use to the fetch (decoy_links.h): one incident.
use=$(events 'e["event"]["action"] == "decoy-credential-used" and e["source"]["ip"] == "10.78.2.3"')
assert_contains "$use" '"fetched_by": ["10.78.1.2"]' "the use linked to the fetch of wp-config.php.bak"

step "nothing else was banned"
for a in 10.78.1.3 10.78.1.7 10.78.1.8 10.78.2.2; do
  ! banned "$a" || fail "$a was banned: $(ban_of "$a")"
done
connects 10.78.1.7 || fail "the visitor's address was cut off"
connects 10.78.1.8 || fail "the wrong login's address was cut off"
assert_eq 200 "$(page)" "the visitor's page at the end"
check_events

step "the credential log is the web user's: its lines ban as the access log's do, never the allowlist; a symlink there is not followed"
# What an attacker who owns www-data can do with it (docs/decoys.md): the trust the
# access log, also the web user's on Debian, already has.
forged() {  # ADDRESS: a line as the plugin writes it
  printf '%s - - [07/Dec/2026:08:00:00 +0000] "POST /wp-login.php?mamori-decoy-credential=%s HTTP/1.1" 200 0 "-" "x"\n' "$1" "$BAK_TOKEN"
}
runuser -u www-data -- sh -c 'cat >>"$1"' - "$CRED_LOG" <<<"$(forged 127.0.0.1; forged 198.51.100.7)"
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"' wait_for "the ban of the forged line's address" banned 198.51.100.7
! banned 127.0.0.1 || fail "an allowlisted address was banned from the credential log"
forged 198.51.100.8 >"$SCRATCH/not-a-log"
runuser -u www-data -- sh -c 'mv "$1" "$1.1" && ln -s "$2" "$1"' - "$CRED_LOG" "$SCRATCH/not-a-log"
refused() { grep -q "credentials.log.*a symbolic link" "$AGENT_LOG"; }
WAIT_EXPLAIN='tail -n 3 "$AGENT_LOG"' wait_for "the agent to refuse the symlink" refused
! banned 198.51.100.8 || fail "the agent followed a symlink the web user put in place of the credential log"

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
assert_eq 1 "$(grep -c . <<<"$ev")" "decoy-opened events (nginx's open of wp-config.php.bak is the log's to judge): $(/usr/bin/python3 -c 'import json, sys; print("; ".join(json.loads(l)["message"] for l in sys.stdin))' <<<"$ev")"
assert_contains "$ev" '"path": "'"$WWW"'/.env"' "the decoy's path"
# Seen from the agent's mount namespace (ip netns exec made it one): in a chroot the
# path leads from the host's root, /var/tmp/ROOT/usr/bin/python3.
[[ $(json 'j["process"]["executable"]' "$ev") == */usr/bin/python3* ]] ||
  fail "the process is not the reader: $(json 'j["process"]["executable"]' "$ev")"
assert_contains "$ev" '"name": "www-data"' "the user"
env_token=$(json '[d["token"] for d in j["decoys"] if d["path"] == ".env" and d["root"] == "'"$WWW"'"][0]' "$(mamori decoys list --json)")
assert_eq "$env_token" "$(json 'j["mamori"]["decoy"]["token"]' "$ev")" "the decoy's token in decoy-opened"

step "the decoys are guarded like every other file"
echo "<?php // dropped" >>"$WWW/.env"
restored() { ! grep -q dropped "$WWW/.env"; }
WAIT_ON=$WWW wait_for "the tampered decoy restored" restored
