# shellcheck shell=bash
# shellcheck disable=SC2016  # on_exit hooks are eval'ed later: single quotes are meant
# A private web stack for the integration tests: real nginx and php-fpm serving a
# directory of the test's, on a loopback port of their own, with every config, socket,
# log and temporary file inside $SCRATCH. Sourced after lib.sh, never run alone.
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/web_lib.sh"
#   web_install                       # the Debian packages, when missing
#   start_php_fpm "$SCRATCH/www"      # sets PHP_FPM_SOCK, PHP_FPM_PID
#   start_nginx "$SCRATCH/www" site.php   # sets WEB_URL (http://127.0.0.1:PORT), NGINX_PID
#   http_code "$WEB_URL/" ; http_get "$WEB_URL/x.php" FILE
#
# Both servers are stopped at exit (on_exit). Workers run as www-data, so $SCRATCH is
# made traversable (it is created 0700); the document root's own modes are the test's.

WEB_USER=${WEB_USER:-www-data}
WEB_DIR=$SCRATCH/web  # configs, sockets, logs, temporary files of both servers
NGINX_PID=""
PHP_FPM_PID=""
PHP_FPM_SOCK=""
WEB_URL=""

# web_install: nginx, php-fpm and curl from Debian, when missing (tools/install-deps
# lists them too).
web_install() {
  local want=()
  command -v nginx >/dev/null || want+=(nginx-light)
  compgen -G '/usr/sbin/php-fpm*' >/dev/null || want+=(php-fpm)
  command -v curl >/dev/null || want+=(curl)
  [[ ${#want[@]} -eq 0 ]] && return 0
  echo "installing ${want[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${want[@]}" >"$SCRATCH/apt.log" 2>&1; then
    apt-get update -q >>"$SCRATCH/apt.log" 2>&1
    apt-get install -y -q --no-install-recommends "${want[@]}" >>"$SCRATCH/apt.log" 2>&1 ||
      { cat "$SCRATCH/apt.log" >&2; fail "could not install ${want[*]}"; }
  fi
}

_web_dir() {
  chmod 0755 "$SCRATCH"
  mkdir -p "$WEB_DIR"
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_php_fpm DOCROOT [PHP_ADMIN_SETTING=VALUE...]: a php-fpm master of our own in
# the foreground (-F, so $! is the master), one static pool of two workers as
# $WEB_USER on a unix socket. Opcache is off unless opcache.enable=1 is given (a cached
# script must not hide what is on disk) and uploads land in $WEB_DIR/upload-tmp, on the
# same file system as DOCROOT, so move_uploaded_file() is a rename, as on a real server.
start_php_fpm() {
  local docroot=$1
  shift
  _web_dir
  local fpm
  fpm=$(compgen -G '/usr/sbin/php-fpm*' | sort -V | tail -n 1) || fail "php-fpm is not installed"
  PHP_FPM_SOCK=$WEB_DIR/php-fpm.sock
  install -d -o "$WEB_USER" -g "$WEB_USER" -m 0700 "$WEB_DIR/upload-tmp"
  {
    echo "[global]"
    echo "pid = $WEB_DIR/php-fpm.pid"
    echo "error_log = $WEB_DIR/php-fpm.log"
    echo "daemonize = no"
    echo
    echo "[mamori-test]"
    echo "user = $WEB_USER"
    echo "group = $WEB_USER"
    echo "listen = $PHP_FPM_SOCK"
    echo "listen.owner = $WEB_USER"
    echo "listen.group = $WEB_USER"
    echo "listen.mode = 0660"
    echo "pm = static"
    echo "pm.max_children = 2"
    echo "catch_workers_output = yes"
    # (opcache.enable=1 given below turns it on: agent_opcache_test.sh)
    [[ " $* " == *" opcache.enable="* ]] || echo "php_admin_value[opcache.enable] = 0"
    echo "php_admin_value[upload_tmp_dir] = $WEB_DIR/upload-tmp"
    # (a setting open_basedir=... given below replaces this one: php-fpm keeps the first)
    [[ " $* " == *" open_basedir="* ]] || echo "php_admin_value[open_basedir] = $docroot:$WEB_DIR/upload-tmp"
    echo "php_admin_value[error_log] = $WEB_DIR/php-errors.log"
    echo "php_admin_flag[log_errors] = on"
    local s
    for s in "$@"; do echo "php_admin_value[${s%%=*}] = ${s#*=}"; done
  } >"$WEB_DIR/php-fpm.conf"
  "$fpm" -F -y "$WEB_DIR/php-fpm.conf" >>"$WEB_DIR/php-fpm.out" 2>&1 &
  PHP_FPM_PID=$!
  on_exit 'stop_pid "$PHP_FPM_PID" php-fpm'
  fpm_up_or_gone() { [[ -S $PHP_FPM_SOCK ]] || ! kill -0 "$PHP_FPM_PID" 2>/dev/null; }
  WAIT_ON=$WEB_DIR wait_for "php-fpm's socket $PHP_FPM_SOCK" fpm_up_or_gone
  [[ -S $PHP_FPM_SOCK ]] && return 0
  cat "$WEB_DIR/php-fpm.out" "$WEB_DIR/php-fpm.log" >&2 2>/dev/null || true
  fail "php-fpm did not come up (socket $PHP_FPM_SOCK)"
}

# start_nginx DOCROOT [INDEX]: nginx in the foreground (daemon off, so $! is the master)
# with workers as $WEB_USER, on a free loopback port; *.php goes to start_php_fpm's
# socket, and a PHP script that does not exist is a 404 (try_files), never passed on.
# Sets WEB_URL. Call start_php_fpm first.
start_nginx() {
  local docroot=$1 index=${2:-index.php}
  _web_dir
  [[ -n $PHP_FPM_SOCK ]] || fail "start_nginx: start php-fpm first"
  local port _
  for _ in 1 2 3; do
    port=$(free_port)
    cat >"$WEB_DIR/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user $WEB_USER $WEB_USER;
pid $WEB_DIR/nginx.pid;
error_log $WEB_DIR/nginx-error.log info;
events { worker_connections 128; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log $WEB_DIR/nginx-access.log;
  client_body_temp_path $WEB_DIR/nginx-body;
  fastcgi_temp_path $WEB_DIR/nginx-fastcgi;
  proxy_temp_path $WEB_DIR/nginx-proxy;
  scgi_temp_path $WEB_DIR/nginx-scgi;
  uwsgi_temp_path $WEB_DIR/nginx-uwsgi;
  server {
    listen 127.0.0.1:$port;
    root $docroot;
    index $index;
    location ~ \.php\$ {
      try_files \$uri =404;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass unix:$PHP_FPM_SOCK;
    }
  }
}
EOF
    nginx -p "$WEB_DIR" -e "$WEB_DIR/nginx-error.log" -c "$WEB_DIR/nginx.conf" -t >"$WEB_DIR/nginx-t.out" 2>&1 ||
      { cat "$WEB_DIR/nginx-t.out" >&2; fail "nginx rejected its config"; }
    rm -f "$WEB_DIR/nginx.pid"
    nginx -p "$WEB_DIR" -e "$WEB_DIR/nginx-error.log" -c "$WEB_DIR/nginx.conf" >>"$WEB_DIR/nginx.out" 2>&1 &
    NGINX_PID=$!
    on_exit 'stop_pid "$NGINX_PID" nginx'
    WEB_URL=http://127.0.0.1:$port
    # nginx writes its pid file once its listening socket is bound, or exits.
    nginx_up_or_gone() { [[ -s $WEB_DIR/nginx.pid ]] || ! kill -0 "$NGINX_PID" 2>/dev/null; }
    WAIT_ON=$WEB_DIR wait_for "nginx to start" nginx_up_or_gone
    curl -s -o /dev/null --max-time 2 "$WEB_URL/" && return 0
    # The port may have been taken between free_port and bind: try another.
    stop_pid "$NGINX_PID" nginx || true
    NGINX_PID=""
    grep -q 'Address already in use' "$WEB_DIR/nginx-error.log" "$WEB_DIR/nginx.out" 2>/dev/null || break
  done
  cat "$WEB_DIR/nginx.out" "$WEB_DIR/nginx-error.log" >&2 2>/dev/null || true
  fail "nginx did not come up on $WEB_URL"
}

# http_code URL [CURL ARGS...]: the HTTP status (000 when no answer came).
http_code() {
  local url=$1
  shift
  curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$@" "$url" || true
}

# http_get URL FILE [CURL ARGS...]: the body into FILE; fails the test unless it is a 200.
http_get() {
  local url=$1 file=$2 code
  shift 2
  code=$(curl -s -o "$file" --max-time 10 -w '%{http_code}' "$@" "$url" || true)
  [[ $code == 200 ]] || fail "GET $url: HTTP $code, expected 200
$(head -c 2000 "$file" 2>/dev/null | sed 's/^/  | /')
  nginx error log (last lines):
$(tail -n 5 "$WEB_DIR/nginx-error.log" 2>/dev/null | sed 's/^/  | /')
  php errors (last lines):
$(tail -n 5 "$WEB_DIR/php-errors.log" "$WEB_DIR/php-fpm.log" 2>/dev/null | sed 's/^/  | /')"
}

# start_prober NAME URL...: requests each URL over and over in the background until
# stop_prober, one status code per line into $WEB_DIR/probe.NAME. (A load generator,
# not a timer: how many requests it makes does not matter, only that each succeeds, a
# timeout of PROBE_MAX_SECONDS (15 s: a loaded CI machine) included.)
PROBER_PIDS=()
start_prober() {
  local name=$1
  shift
  local out=$WEB_DIR/probe.$name
  : >"$out"
  (
    trap - ERR
    set +e
    while [[ ! -e $out.stop ]]; do
      for u in "$@"; do
        echo "$(curl -s -o /dev/null --max-time "${PROBE_MAX_SECONDS:-15}" -w '%{http_code}' "$u") $u" >>"$out"
      done
    done
  ) &
  PROBER_PIDS+=($!)
  on_exit "stop_pid $! prober"
}

# stop_prober NAME MIN: stops every prober, then fails unless NAME's requests were all
# 200 and there were at least MIN of them.
stop_prober() {
  local name=$1 min=$2 out=$WEB_DIR/probe.$1 p
  touch "$out.stop"
  for p in "${PROBER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PROBER_PIDS=()
  local total bad
  total=$(wc -l <"$out")
  bad=$(grep -cv '^200 ' "$out" || true)
  [[ $bad -eq 0 ]] || fail "$bad of $total requests during the attacks did not return 200:
$(grep -v '^200 ' "$out" | sort | uniq -c | head -n 10 | sed 's/^/  | /')"
  [[ $total -ge $min ]] || fail "only $total requests were made during the attacks (expected at least $min)"
  echo "    $total requests during the attacks, all 200"
}

# wordpress_db DOCROOT HOST TITLE [PHP]: a copy of Debian's WordPress at DOCROOT (which
# must not exist; made 0755), installed as TITLE (user admin, password
# the-real-admin-password) on a MariaDB of the test's own: datadir, socket and logs in
# DB ($SCRATCH/db), no network, stopped at exit (MARIADB is its pid). The site's
# wp-config.php (Debian's reads /etc/wordpress, which is not the test's) takes its URL
# from each request's Host header; HOST is the one the install runs as. PHP, when given,
# runs right after wp_install (options, theme settings). `sql ARGS...` is the mariadb
# client, as root, on that server.
DB=$SCRATCH/db
MARIADB=""
sql() { mariadb --no-defaults -S "$DB/mysqld.sock" -u root "$@"; }
wordpress_db() {
  local docroot=$1 host=$2 title=$3 php=${4:-}
  command -v mariadbd >/dev/null || fail "mariadb-server not installed (tools/install-deps)"
  [[ -f /usr/share/wordpress/wp-includes/version.php ]] || fail "Debian's wordpress is not installed (tools/install-deps)"
  [[ -d /usr/share/wordpress/wp-content/themes/twentytwentyone ]] ||
    fail "wordpress-theme-twentytwentyone is not installed (tools/install-deps)"
  mkdir -p "$DB"
  cp -a /usr/share/wordpress "$docroot"
  chmod 0755 "$docroot" "$DB"
  mariadb-install-db --no-defaults --datadir="$DB/data" --user=root >"$DB/install.log" 2>&1 ||
    { cat "$DB/install.log" >&2; fail "mariadb-install-db failed"; }
  mariadbd --no-defaults --datadir="$DB/data" --socket="$DB/mysqld.sock" --skip-networking \
    --user=root --pid-file="$DB/mysqld.pid" --log-error="$DB/error.log" >"$DB/out.log" 2>&1 &
  MARIADB=$!
  on_exit 'stop_pid "$MARIADB" mariadbd'
  db_up() { sql -e 'SELECT 1'; }
  WAIT_SECONDS=30 WAIT_ON=$DB WAIT_EXPLAIN='cat "$DB/error.log"' wait_for "MariaDB" db_up
  sql -e "CREATE DATABASE wp; CREATE USER wp@localhost IDENTIFIED BY 'wp-test-db'; GRANT ALL ON wp.* TO wp@localhost"
  cat >"$docroot/wp-config.php" <<WPCONFIG
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
  cat >"$DB/install.php" <<INSTALL
<?php
define( 'WP_INSTALLING', true );
\$_SERVER['HTTP_HOST'] = '$host';
\$_SERVER['REQUEST_URI'] = '/';
require '$docroot/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
wp_install( '$title', 'admin', 'admin@example.com', true, '', 'the-real-admin-password' );
$php
echo "installed\n";
INSTALL
  local installed
  installed=$(php "$DB/install.php" 2>&1) || fail "WordPress's install: $installed"
  assert_contains "$installed" "installed" "WordPress's install"
}
