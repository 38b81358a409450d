#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2028  # WAIT_EXPLAIN is eval'ed later; PHP's "\n" is PHP's
# PHP's opcache never runs tampered code after a restore (issue 15; docs/opcache.md).
# Real nginx and php-fpm with opcache on, the agent restoring a document root:
#   1. baseline, [opcache] off, validate_timestamps=0: code compiled while the file was
#      tampered keeps running after the agent restored it (the disk says "good", the
#      pool answers "pwned"): the gap this feature closes;
#   2. mode "invalidate": the same tamper, restored at start-up, is dropped from the
#      cache (opcache-invalidated names the restore in mamori.related_event and the
#      script it dropped); every request after it answers "good";
#   3. alert then restore (`mamori mode`): the running agent's restore is dropped too,
#      and so is a planted file it quarantines (extra.php, included by inc.php: the
#      include would run its compiled code with the file gone);
#   4. a race in real time: an attacker renames tampered copies over 20 scripts nobody
#      requested yet and requests each at once; whatever ran before the restores, every
#      one answers "good" once its opcache event is written;
#   5. the default validate_timestamps=1, revalidate_freq=2: with [opcache] off, a
#      tamper that kept the original's mtime (touch -r) still runs 3 s after the
#      restore (the restore puts the baseline's mtime back, so opcache sees nothing
#      new); with "invalidate" it is gone at once;
#   6. mode "reload": SIGUSR2 to php-fpm's master; the cache starts empty;
#   7. the helper is root's, 0644, outside the root; a request without mamori's
#      parameter runs nothing, and no URL reaches it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/web_lib.sh"
web_install

WWW=$SCRATCH/www
HELPER_DIR=$SCRATCH/mamori-php
HELPER=$HELPER_DIR/opcache-invalidate.php
mkdir -p "$WWW"
NAMES=(off down mode dflt_off dflt reload)
for n in "${NAMES[@]}"; do echo '<?php echo "good\n";' >"$WWW/$n.php"; done
for i in $(seq -w 1 20); do echo '<?php echo "good\n";' >"$WWW/race_$i.php"; done
# A script that includes an optional file, as plugin loaders do: a planted extra.php
# runs inside it, and stays compiled after its quarantine.
echo '<?php @include __DIR__ . "/extra.php"; echo "good\n";' >"$WWW/inc.php"
# Old files, as a site's are: opcache does not cache a file modified within
# opcache.file_update_protection (2 s).
touch -d '1 hour ago' "$WWW"/*.php
write_config "$WWW"
agent_config
cp "$CONFIG" "$SCRATCH/base.toml"
mamori -q init

fpm_settings() {  # the pool's opcache settings, and open_basedir that lets it read the helper
  echo "opcache.enable=1" "open_basedir=$WWW:$HELPER_DIR:$WEB_DIR/upload-tmp" "$@"
}
# shellcheck disable=SC2046
start_php_fpm "$WWW" $(fpm_settings opcache.validate_timestamps=0)
start_nginx "$WWW"

body() { curl -s --max-time 10 "$WEB_URL/$1" || true; }
# tamper NAME: the attacker's code renamed over NAME with NAME's own mtime (touch -r),
# as anyone who can write the directory can do.
tamper() {
  echo '<?php echo "pwned\n";' >"$SCRATCH/$1.tmp"
  touch -r "$WWW/$1" "$SCRATCH/$1.tmp"
  mv "$SCRATCH/$1.tmp" "$WWW/$1"
}
opcache_config() {  # MODE [EXTRA LINES]: the base config with an [opcache] table
  cp "$SCRATCH/base.toml" "$CONFIG"
  [[ $1 == off ]] && return 0
  {
    echo
    echo "[opcache]"
    echo "mode = \"$1\""
    echo "socket = \"$PHP_FPM_SOCK\""
    echo "helper = \"$HELPER\""
    shift
    local l
    for l in "$@"; do echo "$l"; done
  } >>"$CONFIG"
}
restored_id() {  # NAME: the id of the latest file-restored of NAME
  local line
  line=$(events "e[\"event\"][\"action\"] == \"file-restored\" and e[\"mamori\"][\"path\"] == \"$1\"" | tail -n 1)
  [[ -z $line ]] || json 'j["event"]["id"]' "$line"
}
is_restored() { [[ -n $(restored_id "$1") ]]; }
have_opcache_event() { [[ -n $(opcache_event_of "$1") ]]; }
opcache_event_of() {  # EVENT_ID: the opcache event that follows it
  events "e[\"event\"][\"action\"].startswith(\"opcache-\") and e.get(\"mamori\", {}).get(\"related_event\") == \"$1\"" | sed -n 1p
}
# every_request NAME N EXPECTED: N requests, each must answer EXPECTED.
every_request() {
  local i got
  for ((i = 0; i < $2; i++)); do
    got=$(body "$1")
    [[ $got == "$3" ]] || fail "request $((i + 1)) of $2 for $1 answered '$got', expected '$3'"
  done
}
REAL_WWW=$(realpath "$WWW")

step "1. baseline ([opcache] off, validate_timestamps=0): the restored file's old code keeps running"
tamper off.php
assert_eq "pwned" "$(body off.php)" "off.php while tampered (compiled now)"
opcache_config off
start_agent
WAIT_EXPLAIN='events | tail -n 5' wait_for "off.php restored at start-up" is_restored off.php
assert_eq '<?php echo "good\n";' "$(cat "$WWW/off.php")" "off.php on disk"
every_request off.php 5 pwned
echo "    the disk is restored, yet 5 of 5 requests ran the attacker's code"
stop_agent

step "2. invalidate: the start-up restore drops the compiled code; every request after it is good"
tamper down.php
assert_eq "pwned" "$(body down.php)" "down.php while tampered"
opcache_config invalidate
start_agent
WAIT_EXPLAIN='events | tail -n 5' wait_for "down.php restored" is_restored down.php
ID=$(restored_id down.php)
WAIT_EXPLAIN='events | tail -n 5; cat "$AGENT_LOG"' wait_for "the opcache event of down.php's restore" have_opcache_event "$ID"
EV=$(opcache_event_of "$ID")
assert_eq "opcache-invalidated" "$(json 'j["event"]["action"]' "$EV")" "down.php's opcache event ($EV)"
assert_eq "invalidate" "$(json 'j["mamori"]["opcache"]["method"]' "$EV")" "method"
assert_contains "$(json 'j["mamori"]["opcache"]["dropped"]' "$EV")" "$REAL_WWW/down.php" "the scripts dropped"
every_request down.php 20 good
[[ $(stat -c '%U %a' "$HELPER") == "root 644" ]] || fail "the helper is $(stat -c '%U %a' "$HELPER"), not root 644"
assert_eq "pwned" "$(body off.php)" "off.php (restored in step 1, never dropped)"

step "3. alert, then restore with mamori mode: the running agent's restore and quarantine are dropped too"
expect_exit 0 mamori mode "$WWW" alert
tamper mode.php
echo '<?php echo "pwned\n";' >"$WWW/extra.php"
touch -d '1 hour ago' "$WWW/extra.php"
assert_eq "pwned" "$(body mode.php)" "mode.php while tampered in alert mode"
assert_eq "pwned
good" "$(body inc.php)" "inc.php with the planted extra.php"
expect_exit 0 mamori mode "$WWW" restore
assert_eq '<?php echo "good\n";' "$(cat "$WWW/mode.php")" "mode.php on disk when mamori mode returned"
# Its event is published after the restore (made durable first): waited for.
wait_for "mode.php's restore event" is_restored mode.php
ID=$(restored_id mode.php)
wait_for "the opcache event of mode.php's restore" have_opcache_event "$ID"
EV=$(opcache_event_of "$ID")
assert_contains "$(json 'j["mamori"]["opcache"]["dropped"]' "$EV")" "$REAL_WWW/mode.php" "the scripts dropped"
every_request mode.php 20 good
[[ ! -e $WWW/extra.php ]] || fail "extra.php was not quarantined"
QID=$(events 'e["event"]["action"] == "file-quarantined" and e["mamori"]["path"] == "extra.php"' | tail -n 1)
[[ -n $QID ]] || fail "no file-quarantined for extra.php"
QID=$(json 'j["event"]["id"]' "$QID")
wait_for "the opcache event of extra.php's quarantine" have_opcache_event "$QID"
EV=$(opcache_event_of "$QID")
assert_contains "$(json 'j["mamori"]["opcache"]["dropped"]' "$EV")" "$REAL_WWW/extra.php" "the scripts dropped"
# (validate_timestamps=0: without the drop, the include would still run the compiled
# extra.php, its file gone.)
every_request inc.php 20 good

step "4. a real-time race: tampered copies renamed over 20 uncached scripts, each requested at once"
RACE=$(python3 - "$WWW" "$SCRATCH" "${WEB_URL#http://}" <<'EOF'
import http.client, os, sys
www, scratch, hostport = sys.argv[1:4]
host, port = hostport.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=10)
pwned = 0
for i in range(1, 21):
    name = f"race_{i:02d}.php"
    tmp = os.path.join(scratch, name + ".tmp")
    with open(tmp, "w") as f:
        f.write('<?php echo "pwned\\n";')
    st = os.stat(os.path.join(www, name))
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.rename(tmp, os.path.join(www, name))
    conn.request("GET", "/" + name)
    r = conn.getresponse()
    if r.read() == b"pwned\n":
        pwned += 1
print(pwned)
EOF
)
echo "    the attacker's code ran in $RACE of 20 requests made right after its rename"
race_done() {
  local i id
  for i in $(seq -w 1 20); do
    id=$(restored_id "race_$i.php")
    [[ -n $id && -n $(opcache_event_of "$id") ]] || return 1
  done
}
WAIT_SECONDS=30 WAIT_EXPLAIN='events | tail -n 5' wait_for "every race_*.php restored and dropped" race_done
for i in $(seq -w 1 20); do every_request "race_$i.php" 3 good; done
# From the guard's restore to the pool's answer (event.duration), over the race's events.
events 'e["event"]["action"] == "opcache-invalidated" and any("race_" in p for p in e["mamori"]["opcache"]["paths"])' |
  python3 -c '
import json, sys
d = sorted(json.loads(l)["event"]["duration"] / 1e6 for l in sys.stdin)
print("    %d opcache events for the race: restore to dropped in %.2f ms median, %.2f ms at most" % (len(d), d[len(d) // 2], d[-1]))
'

step "5. default validate_timestamps=1, revalidate_freq=2: off keeps a touch -r tamper running; invalidate does not"
stop_agent
stop_pid "$PHP_FPM_PID" php-fpm || fail "php-fpm did not stop"
# shellcheck disable=SC2046
start_php_fpm "$WWW" $(fpm_settings)
tamper dflt_off.php
assert_eq "pwned" "$(body dflt_off.php)" "dflt_off.php while tampered"
opcache_config off
start_agent
wait_for "dflt_off.php restored" is_restored dflt_off.php
# Past revalidate_freq: opcache looked at the file again, saw the mtime it cached (the
# restore put the baseline's back), and kept the attacker's code. (A time-based
# property of PHP's: waited for, not polled.)
sleep 3
every_request dflt_off.php 5 pwned
echo "    3 s after the restore, past revalidate_freq, the attacker's code still runs"
stop_agent
tamper dflt.php
assert_eq "pwned" "$(body dflt.php)" "dflt.php while tampered"
opcache_config invalidate
start_agent
wait_for "dflt.php restored" is_restored dflt.php
ID=$(restored_id dflt.php)
wait_for "the opcache event of dflt.php's restore" have_opcache_event "$ID"
every_request dflt.php 20 good

step "6. reload: SIGUSR2 to php-fpm's master empties the whole cache"
stop_agent
tamper reload.php
assert_eq "pwned" "$(body reload.php)" "reload.php while tampered"
opcache_config reload "pid_file = \"$WEB_DIR/php-fpm.pid\""
sed -i '/^socket = .*php-fpm.sock"$/d' "$CONFIG"
start_agent
wait_for "reload.php restored" is_restored reload.php
ID=$(restored_id reload.php)
wait_for "the opcache event of reload.php's restore" have_opcache_event "$ID"
EV=$(opcache_event_of "$ID")
assert_eq "opcache-invalidated" "$(json 'j["event"]["action"]' "$EV")" "reload.php's opcache event ($EV)"
assert_eq "reload" "$(json 'j["mamori"]["opcache"]["method"]' "$EV")" "method"
assert_eq "$PHP_FPM_PID" "$(json 'j["mamori"]["opcache"]["pid"]' "$EV")" "the master signalled"
# The master execs itself again (same pid); its socket answers once the new workers run.
fpm_back() { [[ $(body reload.php) == good ]]; }
wait_for "php-fpm back after its reload" fpm_back
every_request reload.php 20 good
every_request dflt_off.php 5 good  # the whole cache went: step 5's stale code too

step "7. the helper: nothing without mamori's parameter, no URL reaches it"
OUT=$(python3 - "$PHP_FPM_SOCK" "$HELPER" <<'EOF'
import socket, struct, sys
sock, helper = sys.argv[1:3]
def rec(t, c):
    return struct.pack(">BBHHBB", 1, t, 1, len(c), 0, 0) + c
def nv(n, v):
    return bytes([len(n), len(v)]) + n + v
params = b"".join(nv(n.encode(), v.encode()) for n, v in [
    ("SCRIPT_FILENAME", helper), ("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "1"),
    ("HTTP_MAMORI_OPCACHE", "1")])  # what a web request's header would become
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sock)
s.sendall(rec(1, b"\x00\x01\x00\x00\x00\x00\x00\x00") + rec(4, params) + rec(4, b"") + rec(5, b"/") + rec(5, b""))
out = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
i, text = 0, b""
while i + 8 <= len(out):
    t, _, n, p = struct.unpack(">xBHHBx", out[i:i + 8])
    if t == 6:
        text += out[i + 8:i + 8 + n]
    i += 8 + n + p
print(text.decode(errors="replace"))
EOF
)
assert_contains "$OUT" "Status: 403" "the helper without MAMORI_OPCACHE"
assert_not_contains "$OUT" "mamori-opcache" "the helper without MAMORI_OPCACHE"
for u in "/../mamori-php/opcache-invalidate.php" "/%2e%2e/mamori-php/opcache-invalidate.php" \
  "/..%2fmamori-php/opcache-invalidate.php"; do
  code=$(curl -s -o "$SCRATCH/u.out" -w '%{http_code}' --path-as-is --max-time 10 "$WEB_URL$u" || true)
  [[ $code != 200 ]] || fail "GET $u reached something: $(head -c 200 "$SCRATCH/u.out")"
done
check_events
