#!/usr/bin/env bash
# The real-time agent in front of a real web stack: nginx and php-fpm serve a copy of
# Debian's WordPress tree, and the attacks come in over HTTP, executed by php-fpm as
# www-data, the way they do on a real server.
#   1. A vulnerable script appends a backdoor to a config file a page includes (the
#      phpMyAdmin config.inc.php exploit). Preserve mode: the file is back byte for byte
#      before the next request, the page prints what it printed before, and the evidence
#      store holds exactly the tampered bytes, with php-fpm and www-data as who did it.
#   2. Uploads (move_uploaded_file), allow_new = ["wp-content/uploads/**"]. A photo
#      stays (file-allowed); a web shell, a double extension and an .htaccess are
#      quarantined (deny_new's defaults): gone from disk, 404 over HTTP, their bytes in
#      the evidence store. So is a second stage the shell writes with file_put_contents.
# Throughout, the site keeps answering 200.
# shellcheck disable=SC2016  # PHP in single quotes is meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=web_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/web_lib.sh"

web_install

WP_SRC=/usr/share/wordpress
[[ -f $WP_SRC/index.php && -d $WP_SRC/wp-admin/css ]] ||
  fail "$WP_SRC is missing: install Debian's 'wordpress' package (tools/install-deps)"

step "a copy of WordPress with a few scripts of the site's own, then the baseline"
WWW=$SCRATCH/www
cp -aL "$WP_SRC" "$WWW"  # dereference the links to /etc/wordpress, /var/lib/wordpress
chmod 0755 "$WWW"
# A settings file the web server may write (as phpMyAdmin's config.inc.php was), and the
# page that includes it and prints its hash: the site's front page.
CONF_REL=wp-content/site-config.php
cat >"$WWW/$CONF_REL" <<'EOF'
<?php
// Site settings, kept writable by the web server for its setup page.
define('SITE_NAME', 'mamori test site');
$cfg['Servers'][1]['host'] = 'localhost';
$cfg['Servers'][1]['auth_type'] = 'cookie';
?>
EOF
chown www-data:www-data "$WWW/$CONF_REL"
chmod 0644 "$WWW/$CONF_REL"
cat >"$WWW/site.php" <<'EOF'
<?php
require __DIR__ . '/wp-content/site-config.php';
header('Content-Type: text/plain');
echo 'site: ', SITE_NAME, "\n";
echo 'config sha256: ', hash_file('sha256', __DIR__ . '/wp-content/site-config.php'), "\n";
EOF
# The vulnerable setup script: appends what the request says to the settings.
cat >"$WWW/setup.php" <<'EOF'
<?php
$n = file_put_contents(__DIR__ . '/wp-content/site-config.php', $_POST['v'], FILE_APPEND);
header('Content-Type: text/plain');
echo $n === false ? "failed\n" : "appended $n bytes\n";
EOF
# A media upload handler, as WordPress's: the file goes to uploads/YEAR/NAME with
# move_uploaded_file (a rename from PHP's upload directory).
cat >"$WWW/upload.php" <<'EOF'
<?php
$dir = __DIR__ . '/wp-content/uploads/2026';
if (!is_dir($dir) && !mkdir($dir, 0755, true)) { http_response_code(500); exit("mkdir failed\n"); }
$name = basename($_FILES['f']['name']);
if (!move_uploaded_file($_FILES['f']['tmp_name'], "$dir/$name")) { http_response_code(500); exit("move failed\n"); }
echo "stored $name\n";
EOF
# What a web shell does next: writes a file of its choosing with file_put_contents.
cat >"$WWW/dropper.php" <<'EOF'
<?php
$path = __DIR__ . '/wp-content/uploads/2026/' . basename($_POST['name']);
$n = file_put_contents($path, $_POST['body']);
echo $n === false ? "failed\n" : "wrote $n bytes\n";
EOF
install -d -o www-data -g www-data -m 0755 "$WWW/wp-content/uploads"
cp -a "$WWW/$CONF_REL" "$SCRATCH/pristine-config.php"

write_config "$WWW"
sed -i '/^path = /a allow_new = ["wp-content/uploads/**"]' "$CONFIG"
MODE=preserve agent_config
expect_exit 0 mamori init
assert_contains "$OUT" "baseline sealed"

step "nginx and php-fpm up; the agent guarding the tree"
start_php_fpm "$WWW"
start_nginx "$WWW" site.php
http_get "$WEB_URL/" "$SCRATCH/front.before"
assert_contains "$(cat "$SCRATCH/front.before")" "site: mamori test site"
assert_contains "$(cat "$SCRATCH/front.before")" "config sha256: $(sha256 "$SCRATCH/pristine-config.php")"
http_get "$WEB_URL/readme.html" "$SCRATCH/readme.before"
assert_same_file "$WWW/readme.html" "$SCRATCH/readme.before" "readme.html over HTTP"

start_agent
assert_contains "$(cat "$AGENT_LOG")" "guarding 1 root(s) with fanotify" \
  "the agent should use fanotify here (who-data comes from it)"
start_prober site "$WEB_URL/" "$WEB_URL/readme.html" "$WEB_URL/wp-includes/js/jquery/jquery.min.js"

# logged ACTION REL: an event line names ACTION and, as mamori.path, REL (a grep, cheap
# enough to poll; the_event then checks the parsed event).
logged() { grep -F "\"path\":\"$2\"" "$EVENTS" 2>/dev/null | grep -qF "\"action\":\"$1\""; }
# the_event FILTER: the one event that matches (fails on none or several).
the_event() {
  local found n
  found=$(events "$1")
  n=$(grep -c . <<<"$found" || true)
  [[ $n -eq 1 ]] || fail "expected exactly one event matching: $1, found $n:
$(events | sed 's/^/  | /' | tail -n 30)"
  printf '%s\n' "$found"
}
# evidence_for REL: the id of the one evidence item kept for REL in the root.
evidence_for() {
  expect_exit 0 mamori --json evidence list
  local ids
  ids=$(json "[i['mamori']['evidence']['id'] for i in j['items'] if i['file']['path'] == '$WWW/$1']")
  [[ $ids =~ ^\[([0-9]+)\]$ ]] || fail "expected one evidence item for $1, found ids $ids:
$(sed 's/^/  | /' <<<"$OUT" | head -n 40)"
  echo "${BASH_REMATCH[1]}"
}
# who_is_php EVENT_OR_ITEM_JSON WHAT: php-fpm did it, as www-data.
WWW_DATA_UID=$(id -u www-data)
who_is_php() {
  local who
  who=$(json '"%s %s %s" % (j["process"]["executable"], j["user"]["name"], j["user"]["id"])' "$1")
  [[ $who =~ ^/[^\ ]*/php-fpm[^\ /]*\ www-data\ $WWW_DATA_UID$ ]] ||
    fail "$2: expected php-fpm as www-data (uid $WWW_DATA_UID), got: process.executable user.name user.id = $who"
}

# --- 1. a backdoor appended to an included config over HTTP ---------------------------
step "1. POST /setup.php appends a backdoor to $CONF_REL"
BACKDOOR='<?php /* backdoor */ eval($_POST['"'"'x'"'"']); ?>'
PAYLOAD=$'\n'"$BACKDOOR"$'\n'  # a blank line, then the backdoor
printf '%s' "$PAYLOAD" >"$SCRATCH/payload"
{ cat "$SCRATCH/pristine-config.php"; printf '%s' "$PAYLOAD"; } >"$SCRATCH/tampered-config.php"
http_get "$WEB_URL/setup.php" "$SCRATCH/setup.out" --data-urlencode "v@$SCRATCH/payload"
assert_eq "appended ${#PAYLOAD} bytes" "$(cat "$SCRATCH/setup.out")" "the exploit request"

wait_for "a file-restored event for $CONF_REL" logged file-restored "$CONF_REL"
ev=$(the_event "e['event']['action'] == 'file-restored' and e['mamori']['path'] == '$CONF_REL'")
assert_eq realtime "$(json 'j["mamori"]["trigger"]' "$ev")" "mamori.trigger"
assert_eq preserve "$(json 'j["mamori"]["mode"]' "$ev")" "mamori.mode"
assert_eq "$WWW/$CONF_REL" "$(json 'j["file"]["path"]' "$ev")" "file.path"
assert_eq "$(sha256 "$SCRATCH/tampered-config.php")" "$(json 'j["file"]["hash"]["sha256"]' "$ev")" \
  "file.hash.sha256 is the tampered content's"
who_is_php "$ev" "the restore event"
assert_same_file "$SCRATCH/pristine-config.php" "$WWW/$CONF_REL" "the config after the restore"
assert_eq "www-data:www-data 644" "$(stat -c '%U:%G %a' "$WWW/$CONF_REL")" "owner and mode after the restore"

http_get "$WEB_URL/" "$SCRATCH/front.after"
assert_same_file "$SCRATCH/front.before" "$SCRATCH/front.after" "the front page after the restore"

step "1. the evidence: exactly the tampered bytes, the diff shows the backdoor, php-fpm did it"
id=$(evidence_for "$CONF_REL")
assert_eq "$id" "$(json 'j["mamori"]["evidence"]["id"]' "$ev")" "the event names the evidence item"
expect_exit 0 mamori --json evidence show "$id"
item=$OUT
assert_eq modified "$(json 'j["mamori"]["evidence"]["reason"]' "$item")" "evidence reason"
assert_eq "$(sha256 "$SCRATCH/pristine-config.php")" "$(json 'j["mamori"]["baseline"]["sha256"]' "$item")" \
  "evidence baseline sha256"
assert_eq "$(json 'j["event"]["id"]' "$ev")" "$(json 'j["event"]["id"]' "$item")" "evidence event.id"
who_is_php "$item" "the evidence item"
expect_exit 0 mamori evidence export "$id" -o "$SCRATCH/exported-config.php"
assert_same_file "$SCRATCH/tampered-config.php" "$SCRATCH/exported-config.php" \
  "the exported evidence (original + injected bytes)"
expect_exit 1 mamori evidence diff "$id"
added=$(grep '^+' <<<"$OUT" | grep -v '^+++ ' || true)
assert_eq "+"$'\n'"+$BACKDOOR" "$added" "lines the evidence diff adds"
assert_eq "" "$(grep '^-' <<<"$OUT" | grep -v '^--- ' || true)" "lines the evidence diff removes"

# --- 2. uploads: a photo stays, scripts are quarantined --------------------------------
step "2. an upload of a photo stays"
UP=wp-content/uploads/2026
printf '\xff\xd8\xff\xe0\x00\x10JFIF\x00mamori test photo\xff\xd9' >"$SCRATCH/photo.jpg"
http_get "$WEB_URL/upload.php" "$SCRATCH/upload.out" -F "f=@$SCRATCH/photo.jpg;filename=photo.jpg"
assert_eq "stored photo.jpg" "$(cat "$SCRATCH/upload.out")" "the photo upload"
wait_for "a file-allowed event for $UP/photo.jpg" logged file-allowed "$UP/photo.jpg"
# The rename and PHP's chmod after it may each be reported: the first is enough.
ev=$(events "e['event']['action'] == 'file-allowed' and e['mamori']['path'] == '$UP/photo.jpg'")
ev=${ev%%$'\n'*}
who_is_php "$ev" "the file-allowed event"

step "2. a web shell, a double extension and an .htaccess are quarantined"
printf '<?php system($_GET["c"]); /* mamori web shell */ ?>\n' >"$SCRATCH/shell.php"
printf '<?php passthru($_GET["c"]); ?>\xff\xd9\n' >"$SCRATCH/x.php.jpg"
HTACCESS=$'AddType application/x-httpd-php .jpg\nOptions +ExecCGI\n'
printf '%s' "$HTACCESS" >"$SCRATCH/.htaccess"
for name in shell.php x.php.jpg .htaccess; do
  http_get "$WEB_URL/upload.php" "$SCRATCH/upload.out" -F "f=@$SCRATCH/$name;filename=$name"
  assert_eq "stored $name" "$(cat "$SCRATCH/upload.out")" "the upload of $name"
done
# And what a web shell does next: writes a second stage with file_put_contents.
STAGE2='<?php /* mamori second stage */ @eval(base64_decode($_COOKIE["k"])); ?>'
printf '%s\n' "$STAGE2" >"$SCRATCH/cache.php"
http_get "$WEB_URL/dropper.php" "$SCRATCH/dropper.out" --data-urlencode "name=cache.php" \
  --data-urlencode "body@$SCRATCH/cache.php"
assert_eq "wrote $((${#STAGE2} + 1)) bytes" "$(cat "$SCRATCH/dropper.out")" "the second stage's write"

for name in shell.php x.php.jpg .htaccess cache.php; do
  rel=$UP/$name
  wait_for "a file-quarantined event for $rel" logged file-quarantined "$rel"
  ev=$(the_event "e['event']['action'] == 'file-quarantined' and e['mamori']['path'] == '$rel'")
  who_is_php "$ev" "the quarantine event of $name"
  [[ ! -e $WWW/$rel && ! -L $WWW/$rel ]] || fail "$rel is still on disk after its quarantine"
  assert_eq 404 "$(http_code "$WEB_URL/$rel")" "GET /$rel after its quarantine"
  id=$(evidence_for "$rel")
  assert_eq "$id" "$(json 'j["mamori"]["evidence"]["id"]' "$ev")" "the quarantine event names the evidence item"
  expect_exit 0 mamori --json evidence show "$id"
  assert_eq quarantined "$(json 'j["mamori"]["evidence"]["reason"]' "$OUT")" "evidence reason of $name"
  who_is_php "$OUT" "the evidence of $name"
  expect_exit 0 mamori evidence export "$id" -o "$SCRATCH/exported-$name"
  # cache.php is written in place (open, then write): the guard may quarantine it
  # between the two, and still keeps every byte the writer adds to the unlinked inode.
  assert_same_file "$SCRATCH/$name" "$SCRATCH/exported-$name" "the quarantined bytes of $name"
done

step "2. the photo is still there, served as uploaded"
assert_same_file "$SCRATCH/photo.jpg" "$WWW/$UP/photo.jpg" "the allowed upload on disk"
http_get "$WEB_URL/$UP/photo.jpg" "$SCRATCH/photo.http"
assert_same_file "$SCRATCH/photo.jpg" "$SCRATCH/photo.http" "the allowed upload over HTTP"
assert_eq "" "$(events "e['event']['action'] == 'file-quarantined' and 'photo' in e['mamori']['path']")" \
  "the photo must never be quarantined"

step "the site answered 200 throughout; nothing failed"
stop_prober site 30
http_get "$WEB_URL/" "$SCRATCH/front.end"
assert_same_file "$SCRATCH/front.before" "$SCRATCH/front.end" "the front page at the end"
assert_eq "" "$(events "e['event']['action'] in ('file-restore-failed', 'evidence-failed')")" "failure events"
# The allowed uploads are all check may list, as allowed: not changes (exit 0).
expect_exit 0 mamori --json check
assert_eq "$WWW/$UP added True
$WWW/$UP/photo.jpg added True" \
  "$(json '"\n".join(sorted("%s %s %s" % (c["path"], c["change"], c.get("allowed")) for c in j["changes"]))')" \
  "check --json: the tree is its baseline plus the allowed uploads"

step "every event written passes the field list (docs/formats/ecs-fields.tsv)"
check_events
