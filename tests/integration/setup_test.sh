#!/usr/bin/env bash
# `mamori setup` on two machines' worth of real web servers, each run with its config
# in this test's scratch directory (nginx -p/-c, apache2 -d/-f, php-fpm -y) and setup
# pointed at it, so the host's /etc is neither read nor changed:
#   a. nginx + php-fpm serving a copy of Debian's WordPress tree, the config split
#      over includes (a glob), a log_format of its own, a second server sharing the
#      root through a symlink, a server rooted at /var and one at a missing directory.
#      The written config names the root, the access log with its format (which
#      `mamori logs test` reads nginx's real lines with), uploads as allow_new, the
#      cache excluded, wp-config.php guarded, the php-fpm pool for [opcache]; /var is
#      refused and the missing root named. Then `mamori init` and the agent started
#      with that config put a tampered file back.
#   b. Apache with Debian's layout (apache2.conf, envvars, sites-enabled/) and two
#      sites: both roots and both logs, each log in its own LogFormat, read back.
#   c. What setup refuses: an existing config without --force, no --yes without a
#      terminal, an include loop, a root of '/'.
# shellcheck disable=SC2016  # nginx variables and PHP in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=web_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/web_lib.sh"

web_install
command -v apache2 >/dev/null || fail "apache2 not installed (tools/install-deps)"
WP_SRC=/usr/share/wordpress
[[ -f $WP_SRC/wp-includes/version.php ]] || fail "Debian's wordpress is not installed (tools/install-deps)"
setup_cmd() { timeout -k 5 "$MAMORI_TIMEOUT" "$MAMORI" setup "$@"; }
# toml_get FILE EXPR: a value of the TOML file, by a Python expression over `c`.
toml_get() { python3 -c 'import sys, tomllib; c = tomllib.load(open(sys.argv[1], "rb")); print(eval(sys.argv[2]))' "$@"; }

step "a. nginx + php-fpm serving Debian's WordPress tree"
WWW=$SCRATCH/www
cp -aL "$WP_SRC" "$WWW"  # dereference the links to /etc/wordpress, /var/lib/wordpress
mkdir -p "$WWW/wp-content/uploads" "$WWW/wp-content/cache"
printf '<?php echo "hello from php-fpm\\n";\n' >"$WWW/hello.php"
chmod 0755 "$WWW"
ln -s "$WWW" "$SCRATCH/www-link"
start_php_fpm "$WWW"
NG=$SCRATCH/nginx
mkdir -p "$NG/sites-enabled"
PORT=$(free_port)
PORT2=$(free_port)
FMT='$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time'
cat >"$NG/nginx.conf" <<EOF
daemon off;
worker_processes 1;
user $WEB_USER $WEB_USER;
pid $NG/nginx.pid;
error_log $NG/error.log;
events { worker_connections 64; }
http {
  include /etc/nginx/mime.types;
  # the site's own format, split over two strings as nginx allows
  log_format timed '\$remote_addr - \$remote_user [\$time_local] "\$request" '
                   '\$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" rt=\$request_time';
  access_log $NG/default-access.log;
  client_body_temp_path $NG/body;
  fastcgi_temp_path $NG/fastcgi;
  proxy_temp_path $NG/proxy;
  scgi_temp_path $NG/scgi;
  uwsgi_temp_path $NG/uwsgi;
  include sites-enabled/*.conf;
}
EOF
cat >"$NG/sites-enabled/wordpress.conf" <<EOF
server {
  listen 127.0.0.1:$PORT;
  server_name wp.test;
  root $WWW;
  access_log $NG/wp-access.log timed;
  location ~ \.php\$ {
    try_files \$uri =404;
    include /etc/nginx/fastcgi_params;
    fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
    fastcgi_pass unix:$PHP_FPM_SOCK;
  }
}
# the same site under another name, through a symlink to its root
server {
  listen 127.0.0.1:$PORT2;
  server_name "www.wp.test";
  root $SCRATCH/www-link;
  access_log $NG/wp-access.log timed;
}
EOF
cat >"$NG/sites-enabled/odd.conf" <<EOF
server { listen 127.0.0.1:$(free_port); server_name system.test; root /var; }
server { listen 127.0.0.1:$(free_port); server_name gone.test; root $SCRATCH/no-such-dir; }
EOF
nginx -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf" -t >"$NG/t.out" 2>&1 ||
  { cat "$NG/t.out" >&2; fail "nginx rejected the test's config"; }
nginx -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf" >"$NG/out" 2>&1 &
NGINX_PID=$!
on_exit 'stop_pid "$NGINX_PID" nginx'
ng_up() { curl -s -o /dev/null "http://127.0.0.1:$PORT/readme.html"; }
WAIT_ON=$NG wait_for "nginx to answer" ng_up
http_get "http://127.0.0.1:$PORT/hello.php" "$SCRATCH/hello.out"
assert_eq "hello from php-fpm" "$(cat "$SCRATCH/hello.out")" "PHP through php-fpm"
for i in 1 2 3; do curl -s -o /dev/null -A "probe $i" "http://127.0.0.1:$PORT/readme.html?i=$i"; done

step "a. mamori setup reads it and writes the config"
WP_CONF=$SCRATCH/wp.toml
expect_exit 0 setup_cmd --nginx-conf "$NG/nginx.conf" --apache-conf none \
  --php-fpm-conf "$WEB_DIR/php-fpm.conf" --output "$WP_CONF" --yes
assert_contains "$OUT" "wrote '$WP_CONF'"
assert_contains "$OUT" "mamori --config '$WP_CONF' init"
assert_contains "$OUT" "systemctl enable --now mamori-agent"
assert_eq "600" "$(stat -c %a "$WP_CONF")" "the config's mode"
assert_eq "['$WWW']" "$(toml_get "$WP_CONF" '[r["path"] for r in c["root"]]')" "the roots"
assert_eq "['wp-content/uploads/**']" "$(toml_get "$WP_CONF" 'c["root"][0]["allow_new"]')" "allow_new"
assert_eq "['wp-content/cache/**']" "$(toml_get "$WP_CONF" 'c["root"][0]["exclude"]')" "exclude"
assert_eq "restore" "$(toml_get "$WP_CONF" 'c["root"][0]["mode"]')" "mode"
assert_eq "['$NG/default-access.log', '$NG/wp-access.log']" \
  "$(toml_get "$WP_CONF" 'sorted(l["path"] for l in c["log"])')" "the access logs"
assert_eq "$FMT" "$(toml_get "$WP_CONF" '[l for l in c["log"] if l["path"].endswith("wp-access.log")][0]["format"]')" \
  "the log_format, its two strings joined"
assert_eq "$WWW" "$(toml_get "$WP_CONF" '[l for l in c["log"] if l["path"].endswith("wp-access.log")][0]["root"]')" \
  "the log's root"
assert_eq "invalidate $PHP_FPM_SOCK $WEB_DIR/php-fpm.pid" \
  "$(toml_get "$WP_CONF" 'c["opcache"]["mode"] + " " + c["opcache"]["socket"] + " " + c["opcache"]["pid_file"]')" \
  "[opcache] from the php-fpm pool"
CONF_TEXT=$(cat "$WP_CONF")
assert_contains "$CONF_TEXT" "# wp-config.php holds the database password: guarded"
assert_contains "$CONF_TEXT" "# nginx server wp.test ($NG/sites-enabled/wordpress.conf:1): root $WWW ($NG/sites-enabled/wordpress.conf:4)"
assert_contains "$CONF_TEXT" "root $SCRATCH/www-link ($NG/sites-enabled/wordpress.conf:17), a symlink to $WWW"
assert_contains "$CONF_TEXT" "# The web server's user: $WEB_USER (nginx, $NG/nginx.conf:3)"
assert_contains "$CONF_TEXT" "root '/var' of nginx server system.test ($NG/sites-enabled/odd.conf:1) is a system directory: refused"
assert_contains "$CONF_TEXT" "root '$SCRATCH/no-such-dir' of nginx server gone.test ($NG/sites-enabled/odd.conf:2) does not exist: left out"
assert_contains "$CONF_TEXT" "php-fpm pool 'mamori-test'"
# The format setup wrote reads nginx's real lines.
expect_exit 0 "$MAMORI" logs test --format "$FMT" "$NG/wp-access.log"

step "a. mamori init and the agent with that config put a tampered file back"
cp "$WP_CONF" "$CONFIG"
sed -i "s|^state_dir = .*|state_dir = \"$STATE\"|" "$CONFIG"
# The opcache helper goes to the test's directory, not /var/lib (and php-fpm's
# open_basedir does not allow it: the agent says so and carries on).
sed -i "/^\[opcache\]/a helper = \"$SCRATCH/mamori-php/opcache-invalidate.php\"" "$CONFIG"
agent_config
expect_exit 0 mamori init
start_agent
cp "$WWW/wp-login.php" "$SCRATCH/wp-login.orig"
echo '<?php system($_GET["c"]);' >>"$WWW/wp-login.php"
restored() { cmp -s "$SCRATCH/wp-login.orig" "$WWW/wp-login.php"; }
WAIT_ON=$WWW wait_for "wp-login.php put back" restored
# An upload stays; the cache is not even looked at.
install -d "$WWW/wp-content/uploads/2026"
echo "GIF89a" >"$WWW/wp-content/uploads/2026/photo.gif"
echo "cached" >"$WWW/wp-content/cache/page.html"
stop_agent
[[ -f $WWW/wp-content/uploads/2026/photo.gif ]] || fail "the upload was not let stay"
expect_exit 0 mamori check

step "b. Apache with Debian's layout and two sites"
AP=$SCRATCH/apache
mkdir -p "$AP/sites-enabled" "$AP/conf-enabled" "$AP/log" "$SCRATCH/site-a" "$SCRATCH/site-b"
chmod 0755 "$AP" "$SCRATCH/site-a" "$SCRATCH/site-b"
echo "<html>a</html>" >"$SCRATCH/site-a/index.html"
echo "<html>b</html>" >"$SCRATCH/site-b/index.html"
APORT=$(free_port)
cat >"$AP/envvars" <<EOF
# as Debian's /etc/apache2/envvars
unset HOME
SUFFIX=
export APACHE_RUN_USER=$WEB_USER
export APACHE_RUN_GROUP=$WEB_USER
export APACHE_PID_FILE=$AP/apache2\$SUFFIX.pid
export APACHE_LOG_DIR=$AP/log\$SUFFIX
EOF
cat >"$AP/apache2.conf" <<EOF
ServerRoot $AP
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
PidFile \${APACHE_PID_FILE}
User \${APACHE_RUN_USER}
Group \${APACHE_RUN_GROUP}
ErrorLog \${APACHE_LOG_DIR}/error.log
Listen 127.0.0.1:$APORT
ServerName localhost
LogFormat "%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" vhost_combined
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \\
\"%{User-Agent}i\"" combined
IncludeOptional conf-enabled/*.conf
IncludeOptional sites-enabled/*.conf
EOF
cat >"$AP/sites-enabled/a.conf" <<EOF
<VirtualHost 127.0.0.1:$APORT>
	ServerName a.test
	DocumentRoot $SCRATCH/site-a
	<Directory $SCRATCH/site-a>
		Require all granted
	</Directory>
	CustomLog \${APACHE_LOG_DIR}/a-access.log combined
</VirtualHost>
EOF
cat >"$AP/sites-enabled/b.conf" <<EOF
<VirtualHost 127.0.0.1:$APORT>
	ServerName b.test
	DocumentRoot "$SCRATCH/site-b"
	<Directory "$SCRATCH/site-b">
		Require all granted
	</Directory>
	CustomLog \${APACHE_LOG_DIR}/b-access.log "%h %l %u %t \"%r\" %>s %b"
</VirtualHost>
EOF
(
  set -a
  # shellcheck disable=SC1091
  . "$AP/envvars"
  exec apache2 -d "$AP" -f "$AP/apache2.conf" -DFOREGROUND
) >"$AP/out" 2>&1 &
APACHE_PID=$!
on_exit 'stop_pid "$APACHE_PID" apache2'
ap_up() { curl -s -o /dev/null -H 'Host: a.test' "http://127.0.0.1:$APORT/index.html"; }
WAIT_ON=$AP WAIT_EXPLAIN='cat "$AP/out" "$AP/log/error.log"' wait_for "apache2 to answer" ap_up
for h in a b; do
  for i in 1 2; do curl -s -o /dev/null -H "Host: $h.test" "http://127.0.0.1:$APORT/index.html?i=$i"; done
done
[[ -s $AP/log/a-access.log && -s $AP/log/b-access.log ]] || fail "Apache wrote no access logs: $(cat "$AP/out")"

AP_CONF=$SCRATCH/apache.toml
expect_exit 0 setup_cmd --apache-conf "$AP/apache2.conf" --nginx-conf none --php-fpm-conf none \
  --output "$AP_CONF" --yes --json
assert_eq "True" "$(echo "$OUT" | python3 -c 'import json, sys; print(json.load(sys.stdin)["written"])')" "--json: written"
assert_eq "['$SCRATCH/site-a', '$SCRATCH/site-b']" "$(toml_get "$AP_CONF" '[r["path"] for r in c["root"]]')" "both roots"
assert_eq "['$AP/log/a-access.log', '$AP/log/b-access.log']" "$(toml_get "$AP_CONF" '[l["path"] for l in c["log"]]')" "both logs"
assert_eq "['$SCRATCH/site-a', '$SCRATCH/site-b']" "$(toml_get "$AP_CONF" '[l["root"] for l in c["log"]]')" "the logs' roots"
assert_contains "$(cat "$AP_CONF")" "# The web server's user: $WEB_USER (apache, $AP/apache2.conf:5)"
assert_contains "$(cat "$AP_CONF")" "format 'combined'"
for l in a b; do
  f=$(toml_get "$AP_CONF" "[l for l in c['log'] if l['path'].endswith('$l-access.log')][0]['format']")
  expect_exit 0 "$MAMORI" logs test --format "$f" "$AP/log/$l-access.log"
done

step "b. --init records the baseline right after writing"
AP_INIT=$SCRATCH/apache-init.toml
expect_exit 0 setup_cmd --apache-conf "$AP/apache2.conf" --nginx-conf none --php-fpm-conf none \
  --output "$AP_INIT" --state-dir "$SCRATCH/state-apache" --yes --init
assert_contains "$OUT" "baseline sealed"
assert_contains "$OUT" "systemctl enable --now mamori-agent"
expect_exit 0 timeout -k 5 "$MAMORI_TIMEOUT" "$MAMORI" --config "$AP_INIT" check
echo "<html>defaced</html>" >"$SCRATCH/site-b/index.html"
expect_exit 1 timeout -k 5 "$MAMORI_TIMEOUT" "$MAMORI" --config "$AP_INIT" check
assert_contains "$OUT" "index.html"

step "c. what setup refuses"
expect_exit 2 setup_cmd --apache-conf "$AP/apache2.conf" --nginx-conf none --php-fpm-conf none \
  --output "$AP_CONF" --yes
assert_contains "$ERR" "exists; --force replaces it"
expect_exit 0 setup_cmd --apache-conf "$AP/apache2.conf" --nginx-conf none --php-fpm-conf none \
  --output "$AP_CONF" --yes --force
expect_exit 1 setup_cmd --apache-conf "$AP/apache2.conf" --nginx-conf none --php-fpm-conf none \
  --output "$SCRATCH/unconfirmed.toml" </dev/null
assert_contains "$ERR" "not written"
[[ ! -e $SCRATCH/unconfirmed.toml ]] || fail "written without --yes"
expect_exit 2 setup_cmd --nginx-conf "$SCRATCH/nope.conf" --apache-conf none --php-fpm-conf none --yes \
  --output "$SCRATCH/x.toml"
ODD=$SCRATCH/odd
mkdir -p "$ODD"
printf 'http {\n  include loop.conf;\n  server { root /; }\n}\n' >"$ODD/nginx.conf"
printf 'include loop.conf;\n' >"$ODD/loop.conf"
expect_exit 3 setup_cmd --nginx-conf "$ODD/nginx.conf" --apache-conf none --php-fpm-conf none \
  --output "$SCRATCH/x.toml" --yes
assert_contains "$OUT" "$ODD/loop.conf:1: include loop: $ODD/nginx.conf -> $ODD/loop.conf -> $ODD/loop.conf (not read again)"
assert_contains "$OUT" "root '/' of nginx server"
assert_contains "$OUT" "is the whole file system: refused"
assert_contains "$ERR" "found no document root mamori can guard"
[[ ! -e $SCRATCH/x.toml ]] || fail "a config was written with nothing to guard"
