#!/usr/bin/env bash
# bench/gate/web.sh - what the open gate (docs/open-gate.md) costs a web server: nginx
# (one worker) and php-fpm (Debian's defaults: opcache on) serving two WordPress copies
# (Debian's wordpress package) on loopback, measured with wrk, both copies guarded in
# restore mode by one agent:
#   root      as Debian ships it (root:root, 0644 and 0755): opens of a verified file
#             stop being asked about (locked)
#   www-data  chowned to www-data (and baselined so): every open is asked about
# URLs: a static file of each copy and a PHP page of the root copy. The agent runs with
# open_gate = "off", then "on", REPEAT times in turn (the machine is shared: the median
# is printed, every run in $WORK/runs). Prints requests/s and wrk's p50/p99 latency, and
# the ratio on/off.
#
# Usage: bench/gate/web.sh [SECONDS] [REPEAT]   (per URL and run; default 10, 3)
# Environment: MAMORI=<repo>/build/release/bin/mamori, WORK=/var/tmp/mamori-bench,
#   CONNECTIONS (wrk -c, default 16). Needs wrk, nginx, php-fpm (bench/install-peers.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MAMORI=${MAMORI:-$here/../../build/release/bin/mamori}
WORK=${WORK:-/var/tmp/mamori-bench}/gate-web
SECONDS_PER=${1:-10}
REPEAT=${2:-3}
CONNECTIONS=${CONNECTIONS:-16}
[[ -x $MAMORI ]] || { echo "no mamori at $MAMORI (cmake --preset release && cmake --build --preset release)" >&2; exit 2; }
for t in wrk nginx; do command -v $t >/dev/null || { echo "no $t: bench/install-peers.sh" >&2; exit 2; }; done
fpm=$(compgen -G '/usr/sbin/php-fpm*' | sort -V | tail -n 1) || { echo "no php-fpm: bench/install-peers.sh" >&2; exit 2; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$WORK" && mkdir -p "$WORK/web" && chmod 0755 "$WORK" "$WORK/.."
mkdir -p "$WORK/site"
cp -aL /usr/share/wordpress "$WORK/site/root"
# A PHP page that needs no database (Debian's WordPress has none configured here).
printf '<?php echo "hello from php ", date("c"), "\\n";\n' >"$WORK/site/root/hello.php"
cp -a "$WORK/site/root" "$WORK/site/www-data"
chown -R www-data:www-data "$WORK/site/www-data"
CSS=wp-includes/css/dashicons.min.css  # 59 KB, what every WordPress page loads
URLS=("/root/$CSS" "/www-data/$CSS" /root/hello.php)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/web/php-fpm.conf" <<EOF
[global]
pid = $WORK/web/php-fpm.pid
error_log = $WORK/web/php-fpm.log
daemonize = no
[bench]
user = www-data
group = www-data
listen = $WORK/web/php-fpm.sock
listen.owner = www-data
listen.group = www-data
pm = static
pm.max_children = 2
EOF
cat >"$WORK/web/nginx.conf" <<EOF
daemon off;
worker_processes 1;
user www-data www-data;
pid $WORK/web/nginx.pid;
error_log $WORK/web/nginx-error.log;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path $WORK/web/body;
  fastcgi_temp_path $WORK/web/fastcgi;
  proxy_temp_path $WORK/web/proxy;
  scgi_temp_path $WORK/web/scgi;
  uwsgi_temp_path $WORK/web/uwsgi;
  server {
    listen 127.0.0.1:$port;
    root $WORK/site;
    location ~ \.php\$ {
      try_files \$uri =404;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass unix:$WORK/web/php-fpm.sock;
    }
  }
}
EOF
cat >"$WORK/mamori.toml" <<TOML
state_dir = "$WORK/state"
[[root]]
path = "$WORK/site/root"
mode = "restore"
[[root]]
path = "$WORK/site/www-data"
mode = "restore"
[agent]
socket = "$WORK/agent.sock"
event_log = "$WORK/events.jsonl"
backend = "fanotify"
open_gate = "off"
TOML
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
"$fpm" -F -y "$WORK/web/php-fpm.conf" 2>"$WORK/web/php-fpm.out" &
pids+=($!)
nginx -p "$WORK/web" -e "$WORK/web/nginx-error.log" -c "$WORK/web/nginx.conf" 2>"$WORK/web/nginx.out" &
pids+=($!)
until curl -sf -o /dev/null "http://127.0.0.1:$port/root/hello.php"; do sleep 0.1; done
for u in "${URLS[@]}"; do curl -sf -o /dev/null "http://127.0.0.1:$port$u"; done

"$MAMORI" --config "$WORK/mamori.toml" -q init
measure() {  # URL: "requests/s p50 p99" by wrk
  wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER}s" --latency "$1" | awk '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; return v * 1e6 }
    /Requests\/sec/ { r = $2 } $1 == "50%" { p50 = us($2) } $1 == "99%" { p99 = us($2) }
    END { printf "%.0f %.0f %.0f", r, p50, p99 }'
}
runs=0
run() {  # GATE: one line per URL into $WORK/runs/GATE-N (N: the URL's position)
  sed -i "s/^open_gate = .*/open_gate = \"$1\"/" "$WORK/mamori.toml"
  local log=$WORK/agent-$1-$((++runs)).log i
  "$MAMORI" --config "$WORK/mamori.toml" agent 2>"$log" &
  local agent=$!
  until grep -q 'ready' "$log"; do kill -0 $agent; sleep 0.05; done
  for i in "${!URLS[@]}"; do
    curl -sf -o /dev/null "http://127.0.0.1:$port${URLS[$i]}"  # judged once
    measure "http://127.0.0.1:$port${URLS[$i]}" >>"$WORK/runs/$1-$i"
    echo >>"$WORK/runs/$1-$i"
  done
  kill $agent
  wait $agent || true
}
mkdir -p "$WORK/runs"
for _ in $(seq "$REPEAT"); do
  run off
  run on
done
median() {  # FILE: the median of each column
  python3 -c 'import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print(" ".join("%g" % statistics.median(c) for c in zip(*rows)))' "$1"
}
echo "wrk -t1 -c$CONNECTIONS -d${SECONDS_PER}s, nginx (1 worker) + php-fpm (2 workers, opcache on),"
echo "median of $REPEAT runs (gate off and on in turn); load $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "(requests/s, p50 µs, p99 µs)"
for i in "${!URLS[@]}"; do
  off=$(median "$WORK/runs/off-$i")
  on=$(median "$WORK/runs/on-$i")
  awk -v u="${URLS[$i]}" -v a="$off" -v b="$on" 'BEGIN { split(a, x); split(b, y);
    printf "  %-46s gate off: %s | on: %s | on/off %.2fx requests/s, p99 %+d µs\n",
      u, a, b, y[1] / x[1], y[3] - x[3] }'
done
