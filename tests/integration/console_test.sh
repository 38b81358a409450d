#!/usr/bin/env bash
# shellcheck disable=SC2016  # WAIT_EXPLAIN and on_exit strings are eval'ed later
# The web console (docs/manager.md "The web console") served by the real `mamori
# manager`, with three agents enrolled (web1 online; web2 killed, so lost; web3 stopped):
#   - over pinned TLS: / and a page's path answer index.html with the strict CSP and
#     hardening headers; an asset is cached for good and answers 304 to its ETag; a file
#     planted in the console directory after the start, a path with "..", and /api/v2
#     are 404 (never index.html under /api/);
#   - in Debian's Chromium (web/tests/console.mjs, Playwright): sign-in refuses a wrong
#     password, shows the fleet with each agent's status, filters, sorts, sets preserve
#     mode on every agent the filter shows (web1 done, the two others waiting), switches to
#     Japanese; opens the events page from the menu, filters it by agent (a permalink:
#     the filter survives a reload), sees web1's tampering appear live (no reload), opens
#     its incident: the story, the injected line in the baseline/tampered diff, the
#     tampered copy downloaded; accepts it as legitimate (a dismissed confirmation asks
#     nothing): web1 holds the tampered copy, its `mamori check` is clean, and the
#     incident's story tells the accept; opens the incident of a real attack (nginx and
#     php-fpm serve web1; an attacker rewrites index.php through a hole in it): the
#     request with the rule that banned it, the ban, pushed to the fleet, lifted from
#     there and gone from web1's nftables;
#     bans two addresses and lifts one (each confirmed; a dismissed confirmation changes
#     nothing), each seen arriving in and leaving web1's nftables sets, exports them as a
#     list and as an nftables file that `nft -c` accepts;
#     two addresses fetch a decoy of web1's (its rule is a decoy's): the decoys page
#     shows its 2 hits from 2 addresses and a false-positive rate of 0 %, then, once an
#     operator lifted one of the two bans on the bans page, 50 % (1 of 2); its links open
#     the decoy's events and its latest incident;
#     creates an enrollment token (shown once) and revokes it, sends a test alert that
#     reaches the manager's webhook sink (a real HTTP receiver), adds a user and deletes
#     it, reads the audit log newest first; signs out; a viewer sees no ban button, no
#     accept or restore button on the incident, no token or user form and no audit log,
#     and the API refuses its POSTs and GET (403); no
#     CSP violation or page error on the way, and axe-core finds no serious or critical
#     WCAG 2.1 A/AA violation on any page; at 390 px wide no page scrolls sideways.
#   - every answer the console reads (and a drift walk, a test alert, a command, an error)
#     validates against docs/formats/api.schema.json, from which the console's TypeScript
#     types are generated (api_schema_check.py).
# MAMORI_CONSOLE_SHOTS=DIR keeps the browser's screenshots there (docs/console/).
# Everything runs in a network namespace of the test's own: web1 bans through nftables
# there, never in the host's ruleset.
if [[ -z ${MAMORI_CONSOLE_NS:-} ]]; then
  ns=mamori-console-$$
  ip netns add "$ns" || exit 1
  ip -n "$ns" link set lo up
  rc=0
  MAMORI_CONSOLE_NS=$ns ip netns exec "$ns" bash "$0" "$@" || rc=$?
  ip netns del "$ns"
  exit "$rc"
fi
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/web_lib.sh"
source "$(dirname "$0")/fleet_lib.sh"
source "$(dirname "$0")/webhook_lib.sh"
web_install
ATTACKER=198.51.100.66

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILT=$(cd "$(dirname "$MAMORI")/.." && pwd)/console
[[ -f $BUILT/index.html ]] || fail "no console built in $BUILT (cmake --build … --target console)"
# The manager serves a copy, so that the test may plant a file in it.
cp -r "$BUILT" "$SCRATCH/console"

step "the manager with the console, a webhook sink, a user, three agents"
start_webhook "$SCRATCH/hook"
loopback_manager_config "console_dir = \"$SCRATCH/console\"
heartbeat = 1
lost_after = 3
[[sink]]
type = \"webhook\"
name = \"console-hook\"
url = \"$WEBHOOK_URL\""
printf 'console password 1\n' | expect_exit 0 mamori manager user add alice --role admin
printf 'viewer password 1\n' | expect_exit 0 mamori manager user add victor --role viewer
"$MAMORI" --config "$CONFIG" manager >>"$MLOG" 2>&1 &
MANAGER_PID=$!
on_exit 'stop_pid "$MANAGER_PID" "the manager"'
WAIT_SECONDS=20 WAIT_EXPLAIN='cat "$MLOG"' wait_for "the manager to listen" \
  grep -q 'listening on' "$MLOG"
assert_contains "$(cat "$MLOG")" "console: $(find "$BUILT" -type f | wc -l) files from $SCRATCH/console"
FP=$(grep -o 'fingerprint [0-9a-f]*' "$MLOG" | head -1 | cut -d' ' -f2)
expect_exit 0 mamori manager token create --uses 3
grep -o 'mamori-token-v1\.[A-Za-z0-9_-]*' <<<"$OUT" | head -n 1 >"$SCRATCH/token"
FLEET_MANAGER_CONFIG=$CONFIG
# web1 serves its tree with nginx and php-fpm; its index.php has a plugin hole (a POST
# rewrites the page, then dawdles: nginx logs the request after the guard has acted),
# and its log watch reads nginx's access log.
WEB1=$SCRATCH/a1/www
mkdir -p "$WEB1"
cat >"$WEB1/index.php" <<'PHP'
<?php
if ($_SERVER['REQUEST_METHOD'] === 'POST') { file_put_contents(__FILE__, $_POST['page']); sleep(2); exit("saved\n"); }
?>
<p>site 1, in PHP</p>
PHP
chown www-data: "$WEB1/index.php"
cp "$WEB1/index.php" "$SCRATCH/index.php.orig"
# A decoy in web1's site, with its access-log rule as `mamori decoys plant` writes one
# (docs/decoys.md): the console's decoys page counts its hits by the rule's id.
DECOY_RULE=decoy-console0test
DECOY_HITS=(198.51.100.71 198.51.100.72)
printf -- '-- MySQL dump\nCREATE USER wp_x IDENTIFIED BY "not-a-secret";\n' >"$WEB1/backup.sql"
cat >"$SCRATCH/decoys.rules" <<EOF
[[rule]]
id = "$DECOY_RULE"
pattern = '^/backup\\.sql(\\?|\$)'
case_sensitive = true
action = "ban"
severity = "critical"
tags = ["decoy"]
EOF
start_php_fpm "$WEB1"
start_nginx "$WEB1"
for i in 1 2 3; do
  mkdir -p "$SCRATCH/a$i/www"
  echo "site $i" >"$SCRATCH/a$i/www/index.html"
  fleet_agent "$i" "https://127.0.0.1:$PORT" "$SCRATCH/token"
  if ((i == 1)); then
    cat >>"${ACONF[1]}" <<EOF
[ban]
backend = "nftables"
nft_table = "mamori_console"
[[log]]
path = "$WEB_DIR/nginx-access.log"
format = "combined"
root = "$WEB1"
[logwatch]
rules = ["$SCRATCH/decoys.rules"]
EOF
  fi
  start_fleet_agent "$i"
done
all_online() { [[ $(fleet_online_count) == 3 ]]; }
WAIT_SECONDS=30 WAIT_EXPLAIN='fleet_agents_json' wait_for "all online" all_online
stop_pid "${APID[3]}" "agent 3" || fail "agent 3 did not stop"
{ kill -9 "${APID[2]}" && wait "${APID[2]}"; } 2>/dev/null || true
WAIT_SECONDS=20 WAIT_EXPLAIN='fleet_agents_json' wait_for "web2 lost" fleet_is_status web2 lost
WAIT_SECONDS=10 WAIT_EXPLAIN='fleet_agents_json' wait_for "web3 stopped" fleet_is_status web3 stopped
echo "planted" >"$SCRATCH/console/planted.js"

step "an attacker rewrites web1's index.php through its hole: restored, attributed, banned"
ip addr add "$ATTACKER/32" dev lo
for a in "${DECOY_HITS[@]}"; do ip addr add "$a/32" dev lo; done
code=$(http_code "$WEB_URL/index.php" --interface "$ATTACKER" --data-urlencode 'page=<?php system($_GET["c"]); ?>')
assert_eq 200 "$code" "the attacker's POST"
banned() { grep -F '"action":"ip-banned"' "${AEVENTS[1]}" | grep -qF "$ATTACKER"; }
WAIT_SECONDS=20 WAIT_EXPLAIN='tail -n 5 "${AEVENTS[1]}"' wait_for "web1 to ban the attacker" banned
assert_same_file "$SCRATCH/index.php.orig" "$WEB1/index.php" "index.php restored"
assert_contains "$(nft list table inet mamori_console)" "$ATTACKER" "the attacker in web1's nftables"

step "what the manager serves, over pinned TLS"
PYTHONPATH=$(dirname "$0") expect_exit 0 /usr/bin/python3 - "$PORT" "$FP" <<'PYEOF'
import http.client, sys
import manager_client as mc

port, fp = int(sys.argv[1]), sys.argv[2]

def get(path, headers=None):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=mc.tls_context(), timeout=10)
    c.connect(); mc.check_fp(c.sock, fp)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    return r, r.read()

def check(cond, what):
    if not cond:
        print("FAIL:", what); sys.exit(1)

index, body = get("/")
check(index.status == 200 and b'<div id="app">' in body, "/ is index.html: %s" % index.status)
csp = index.getheader("Content-Security-Policy") or ""
check("script-src 'self'" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp, "CSP: " + csp)
for h, v in (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
             ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-cache")):
    check(index.getheader(h) == v, "%s: %r" % (h, index.getheader(h)))
check(b"<script>" not in body and b"style=" not in body, "no inline script or style")
page, page_body = get("/fleet?filter=web")
check(page.status == 200 and page_body == body, "a page's path is index.html")

asset = body.split(b'src="')[1].split(b'"')[0].decode()
r, js = get(asset)
check(r.status == 200 and r.getheader("Content-Type") == "text/javascript; charset=utf-8", "asset " + asset)
check("immutable" in r.getheader("Cache-Control"), "asset cached for good")
r, again = get(asset, {"If-None-Match": r.getheader("ETag")})
check(r.status == 304 and again == b"", "304 for a current copy: %s" % r.status)

for path in ("/planted.js", "/assets/../favicon.svg", "/%2e%2e/etc/passwd", "/api/v2", "/api/"):
    r, b = get(path)
    check(r.status == 404 and b'id="app"' not in b, "%s: %s %r" % (path, r.status, b[:60]))
print("served as it should")
PYEOF

step "the console in Chromium"
SHOTS=${MAMORI_CONSOLE_SHOTS:-}
[[ -z $SHOTS ]] || mkdir -p "$SHOTS"
mkdir -p "$SCRATCH/downloads"
MAMORI_CONSOLE_DOWNLOADS=$SCRATCH/downloads MAMORI_CONSOLE_VIEWER='victor:viewer password 1' \
  MAMORI_CONSOLE_NFT_TABLE=mamori_console MAMORI_CONSOLE_ATTACKER=$ATTACKER \
  MAMORI_CONSOLE_WEB_URL=$WEB_URL MAMORI_CONSOLE_DECOY="$DECOY_RULE ${DECOY_HITS[*]}" expect_exit 0 timeout -k 5 300 node "$REPO/web/tests/console.mjs" "https://127.0.0.1:$PORT" \
  alice 'console password 1' "$SCRATCH/a1/www" "$SHOTS"
grep '^console: ' <<<"$OUT" || true  # what it measured

step "the tampered copy the incident page downloaded and accepted, and web1's mode"
assert_eq $'site 1\n<iframe src=//evil.example></iframe>' "$(cat "$SCRATCH/downloads/evidence.bin")" "the evidence"
assert_same_file "$SCRATCH/downloads/evidence.bin" "$SCRATCH/a1/www/index.html" "web1 holds the accepted copy"
expect_exit 0 "$MAMORI" --config "${ACONF[1]}" check
expect_exit 0 "$MAMORI" --config "${ACONF[1]}" status --json
assert_eq preserve "$(json 'j["agent"]["roots"][0]["mode"]')" "web1's mode, set by the bulk action"

step "the bans the console exported"
assert_eq $'203.0.113.50\n2001:db8::7' "$(cat "$SCRATCH/downloads/bans.txt")" "the plain list"
cat "$SCRATCH/downloads/mamori-bans.nft"
# nft's check mode parses and validates the file against the kernel, changing nothing.
expect_exit 0 nft -c -f "$SCRATCH/downloads/mamori-bans.nft"
assert_contains "$(cat "$SCRATCH/downloads/mamori-bans.nft")" "elements = { 2001:db8::7 }"
expect_exit 0 mamori manager bans --json
assert_contains "$OUT" '"2001:db8::7"'
assert_not_contains "$OUT" '"203.0.113.50"' "lifted from the console"

step "the test alert the settings page asked for, at the webhook"
assert_contains "$(cat "$WEBHOOK_OUT")" '"action":"sink-test"'

step "what the settings page did, as the CLI sees it"
expect_exit 0 mamori manager token list --json
assert_eq true "$(json '[t["revoked"] for t in j["tokens"] if t["group"] == "web"][-1]')" \
  "the console's token, revoked"
expect_exit 0 mamori manager user list --json
assert_not_contains "$OUT" '"olga"' "deleted from the console"
echo "$OUT"

step "every answer the console reads, against the schema its types come from"
PYTHONPATH=$(dirname "$0") expect_exit 0 /usr/bin/python3 "$(dirname "$0")/api_schema_check.py" \
  "https://127.0.0.1:$PORT" "$FP" alice 'console password 1'
echo "$OUT"
