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
#    caught by the home page's Googlebot fetch and by no browser fetch.
source "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || fail "nginx not installed (tools/install-deps)"
command -v mariadbd >/dev/null || fail "mariadb-server not installed (tools/install-deps)"
[[ -f /usr/share/wordpress/wp-includes/version.php ]] || fail "Debian's wordpress is not installed (tools/install-deps)"
[[ -d /usr/share/wordpress/wp-content/themes/twentytwentyone ]] ||
  fail "wordpress-theme-twentytwentyone is not installed (tools/install-deps)"
source "$(dirname "$0")/web_lib.sh"
chmod 0755 "$SCRATCH"

step "a WordPress tree on a MariaDB of the test's, installed"
WWW=$SCRATCH/www
DB=$SCRATCH/db
mkdir -p "$SCRATCH/web" "$DB"
cp -a /usr/share/wordpress "$WWW"
chmod 0755 "$WWW" "$SCRATCH/web" "$DB"
mariadb-install-db --no-defaults --datadir="$DB/data" --user=root >"$DB/install.log" 2>&1 ||
  { cat "$DB/install.log" >&2; fail "mariadb-install-db failed"; }
mariadbd --no-defaults --datadir="$DB/data" --socket="$DB/mysqld.sock" --skip-networking \
  --user=root --pid-file="$DB/mysqld.pid" --log-error="$DB/error.log" >"$DB/out.log" 2>&1 &
MARIADB=$!
on_exit 'stop_pid $MARIADB mariadbd'
sql() { mariadb --no-defaults -S "$DB/mysqld.sock" -u root "$@"; }
db_up() { sql -e 'SELECT 1'; }
WAIT_SECONDS=30 WAIT_ON=$DB WAIT_EXPLAIN='cat "$DB/error.log"' wait_for "MariaDB" db_up
sql -e "CREATE DATABASE wp; CREATE USER wp@localhost IDENTIFIED BY 'wp-test-db'; GRANT ALL ON wp.* TO wp@localhost"
cat >"$WWW/wp-config.php" <<WPCONFIG
<?php
define( 'DB_NAME', 'wp' );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', 'wp-test-db' );
define( 'DB_HOST', 'localhost:$DB/mysqld.sock' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
\$table_prefix = 'wp_';
define( 'WP_HOME', 'http://' . \$_SERVER['HTTP_HOST'] );
define( 'WP_SITEURL', WP_HOME );
define( 'WP_DEFAULT_THEME', 'twentytwentyone' );
define( 'DISABLE_WP_CRON', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
WPCONFIG
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
cat >"$SCRATCH/install.php" <<INSTALL
<?php
define( 'WP_INSTALLING', true );
\$_SERVER['HTTP_HOST'] = '127.0.0.1';
\$_SERVER['REQUEST_URI'] = '/';
require '$WWW/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
wp_install( 'mamori pages', 'admin', 'admin@example.com', true, '', 'the-real-admin-password' );
// The blog's home page shows each post's full text (the theme's default is a summary,
// which strips tags): what is stored in a post is on the home page too.
set_theme_mod( 'display_excerpt_or_full_post', 'full' );
echo "installed\n";
INSTALL
installed=$(php "$SCRATCH/install.php" 2>&1) || fail "WordPress's install: $installed"
assert_contains "$installed" "installed" "WordPress's install"

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
cat >>"$CONFIG" <<PAGES

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

step "cleaned up; then the owner embeds a video: an event until accepted"
sql wp -e "UPDATE wp_posts SET post_content = REPLACE(post_content,
  '<script src=\"https://evil.example/x.js\"></script>', '') WHERE ID = 1"
two_checks
expect_exit 0 mamori pages list
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

step "every event is documented"
check_events
