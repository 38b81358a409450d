# Shared helpers for the integration tests: sourced by every *_test.sh, never run alone.
#
#   bash tests/integration/NAME_test.sh /path/to/mamori
#
# Gives each test a scratch directory (removed on exit, whatever happened inside it:
# chmod 000, mounts registered with on_exit), a config writer, and assertions that
# print what was expected, what came out, and where.

# shellcheck disable=SC2034  # OUT, ERR, RC and friends are read by the tests
set -euo pipefail
set -E  # the ERR trap below also fires inside functions

MAMORI=${1:-${MAMORI:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/dev/bin/mamori}}
if [[ ! -x $MAMORI ]]; then
  echo "FAIL: mamori binary not found or not executable: '$MAMORI'" >&2
  echo "usage: bash $0 /path/to/mamori" >&2
  exit 1
fi
MAMORI=$(realpath "$MAMORI")
TEST_NAME=$(basename "$0" .sh)
if [[ $(id -u) -ne 0 ]]; then
  echo "FAIL: $TEST_NAME must run as root (it chowns, mknods and mounts)" >&2
  exit 1
fi

# Every mamori run gets this long before it counts as hung (a hang must fail, not stall
# CTest for ten minutes).
MAMORI_TIMEOUT=${MAMORI_TIMEOUT:-60}

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/mamori-it.$TEST_NAME.XXXXXX")
STATE=$SCRATCH/state
CONFIG=$SCRATCH/mamori.toml
OUT=""   # stdout of the last expect_exit
ERR=""   # stderr of the last expect_exit
RC=0     # exit status of the last expect_exit

_EXIT_HOOKS=()
# on_exit CMD...: run CMD (as one eval'ed string) when the test ends, last registered
# first, before the scratch directory is removed. Failures in hooks are reported, not
# fatal, so every hook gets its turn.
on_exit() { _EXIT_HOOKS+=("$*"); }

_cleanup() {
  local rc=$?
  set +e
  trap - ERR
  local i
  for ((i = ${#_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
    eval "${_EXIT_HOOKS[i]}" || echo "warning: cleanup step failed: ${_EXIT_HOOKS[i]}" >&2
  done
  if [[ -d $SCRATCH ]]; then
    # chmod 000 directories and files must not stop the removal; never cross into a
    # file system a failed unmount left behind.
    chmod -R u+rwx "$SCRATCH" 2>/dev/null
    rm -rf --one-file-system "$SCRATCH" || echo "warning: could not remove $SCRATCH" >&2
  fi
  if [[ $rc -eq 0 ]]; then
    echo "PASS: $TEST_NAME"
  else
    echo "FAIL: $TEST_NAME (exit $rc)" >&2
  fi
  exit "$rc"
}
trap _cleanup EXIT
trap 'echo "FAIL: $TEST_NAME: command failed (exit $?) at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&2' ERR

# The caller of the assertion that failed, as file:line.
_where() {
  local i
  for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
    if [[ ${BASH_SOURCE[i]} != "${BASH_SOURCE[0]}" ]]; then
      echo "${BASH_SOURCE[i]##*/}:${BASH_LINENO[i - 1]}"
      return
    fi
  done
  echo "?"
}

fail() {
  echo "FAIL: $TEST_NAME: $(_where): $*" >&2
  exit 1
}

# step TEXT: say what the test is about to do (makes a failure easy to place).
step() { echo "--- $*"; }

# write_config ROOT...: a config with state_dir=$STATE and one [[root]] per argument.
# Set EXCLUDE (a TOML array literal) to give every root an exclude list.
write_config() {
  {
    echo "# written by $TEST_NAME"
    echo "state_dir = \"$STATE\""
    local r
    for r in "$@"; do
      echo
      echo "[[root]]"
      echo "path = \"$r\""
      echo "mode = \"restore\""
      if [[ -n ${EXCLUDE:-} ]]; then echo "exclude = $EXCLUDE"; fi
    done
  } >"$CONFIG"
}

# mamori ARGS...: the binary under test with this test's config, bounded in time.
mamori() { timeout -k 5 "$MAMORI_TIMEOUT" "$MAMORI" --config "$CONFIG" "$@"; }

# expect_exit CODE CMD...: run CMD, keep its stdout in $OUT and stderr in $ERR, and fail
# the test (showing both) unless it exited with CODE. CODE may list alternatives: "3|4".
expect_exit() {
  local want=$1
  shift
  local out_file=$SCRATCH/.out err_file=$SCRATCH/.err
  RC=0
  "$@" >"$out_file" 2>"$err_file" || RC=$?
  OUT=$(cat "$out_file")
  ERR=$(cat "$err_file")
  local ok=0 w
  IFS='|' read -ra _alts <<<"$want"
  for w in "${_alts[@]}"; do [[ $RC -eq $w ]] && ok=1; done
  if [[ $ok -ne 1 ]]; then
    {
      echo "FAIL: $TEST_NAME: $(_where): expected exit $want, got $RC from: $*"
      [[ $RC -eq 124 ]] && echo "  (exit 124: timed out after ${MAMORI_TIMEOUT}s, a hang)"
      [[ $RC -ge 128 && $RC -ne 124 ]] && echo "  (exit $RC: killed by signal $((RC - 128)), a crash)"
      echo "  --- stdout (first 60 lines):"
      head -n 60 "$out_file" | sed 's/^/  | /'
      echo "  --- stderr (first 60 lines):"
      head -n 60 "$err_file" | sed 's/^/  | /'
    } >&2
    exit 1
  fi
}

assert_eq() {  # EXPECTED ACTUAL [WHAT]
  if [[ "$1" != "$2" ]]; then
    fail "${3:-values differ}:
  expected: $(printf '%q' "$1")
  actual:   $(printf '%q' "$2")"
  fi
}

assert_ne() {  # UNEXPECTED ACTUAL [WHAT]
  [[ "$1" != "$2" ]] || fail "${3:-values should differ} but both are $(printf '%q' "$2")"
}

assert_contains() {  # HAYSTACK NEEDLE [WHAT]
  if [[ "$1" != *"$2"* ]]; then
    fail "${3:-text does not contain the expected string}:
  wanted: $(printf '%q' "$2")
  in (first 40 lines):
$(head -n 40 <<<"$1" | sed 's/^/  | /')"
  fi
}

assert_not_contains() {  # HAYSTACK NEEDLE [WHAT]
  if [[ "$1" == *"$2"* ]]; then
    fail "${3:-text contains a string it must not}:
  unwanted: $(printf '%q' "$2")
  in (first 40 lines):
$(head -n 40 <<<"$1" | sed 's/^/  | /')"
  fi
}

assert_same_file() {  # EXPECTED_FILE ACTUAL_FILE [WHAT]: byte-for-byte
  cmp -- "$1" "$2" >/dev/null 2>&1 ||
    fail "${3:-contents differ}: $(printf '%q' "$2") is not byte-identical to $(printf '%q' "$1")
  $(cmp -- "$1" "$2" 2>&1 | head -n 1)"
}

# json EXPR [JSON]: evaluate a Python expression over the parsed JSON (bound to `j`;
# from $OUT unless given) and print the result: strings bare, everything else as JSON.
# Fails the test if the text is not valid JSON or the expression raises.
json() {
  local expr=$1 text=${2-$OUT}
  local res rc=0
  res=$(python3 -c '
import json, sys
try:
    j = json.loads(sys.stdin.read())
except ValueError as e:
    sys.exit("invalid JSON: %s" % e)
try:
    v = eval(sys.argv[1], {"j": j, "json": json})
except Exception as e:
    sys.exit("%s: %s: %s" % (sys.argv[1], type(e).__name__, e))
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True))
' "$expr" <<<"$text" 2>&1) || rc=$?
  if [[ $rc -ne 0 ]]; then
    fail "json: $res
  in (first 40 lines):
$(head -n 40 <<<"$text" | sed 's/^/  | /')"
  fi
  printf '%s\n' "$res"
}

# The root hash `mamori status --json` prints (and checks it is 64 hex digits).
root_hash() {
  expect_exit 0 mamori --json status
  local h
  h=$(json 'j["root_hash"]')
  [[ $h =~ ^[0-9a-f]{64}$ ]] || fail "status --json root_hash is not 64 hex digits: $(printf '%q' "$h")"
  echo "$h"
}

sha256() { sha256sum -- "$1" | cut -d' ' -f1; }

# copy_wordpress DEST: a copy of Debian's WordPress tree ($WP_SRC, links dereferenced)
# to protect; $WP_SRC itself is the pristine copy to compare with.
WP_SRC=/usr/share/wordpress
copy_wordpress() {
  [[ -f $WP_SRC/index.php && -d $WP_SRC/wp-admin/css ]] ||
    fail "$WP_SRC is missing: install Debian's 'wordpress' package (tools/install-deps)"
  cp -aL "$WP_SRC" "$1"
}

# stop_pid PID NAME: SIGTERM, wait for the exit (SIGKILL after 10 s); false when it had
# to kill. The wait is on the exit itself (`wait`; `tail --pid` for a process that is
# not this shell's child); the 10 s are a deadline, not a poll.
# STOPPED_RC: the exit status it stopped with (unknown, 0, for a process not our child).
stop_pid() {
  local pid=$1 name=$2 watchdog rc=0
  STOPPED_RC=0
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  # (No ERR trap in the watchdog: its kill of a process already gone is no failure.)
  { trap - ERR; sleep 10 && kill -KILL "$pid" 2>/dev/null && echo killed >"$SCRATCH/.killed-$pid"; } &
  watchdog=$!
  wait "$pid" 2>/dev/null || rc=$?
  ((rc == 127)) && tail --pid="$pid" -f /dev/null  # not our child
  ((rc == 127)) || STOPPED_RC=$rc
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
  if [[ -e $SCRATCH/.killed-$pid ]]; then
    rm -f "$SCRATCH/.killed-$pid"
    echo "warning: $name (pid $pid) ignored SIGTERM for 10 s; killed" >&2
    return 1
  fi
  return 0
}

# --- the real-time agent ----------------------------------------------------------------
# write_config writes no [agent] table: agent_config appends one that keeps the socket
# and event log inside $SCRATCH. MODE (default restore) sets every root's mode.
EVENTS=$SCRATCH/events.jsonl
SOCKET=$SCRATCH/agent.sock
AGENT_LOG=$SCRATCH/agent.log
AGENT_PID=""
# The guard's tests run it without the open gate (docs/open-gate.md), which refuses other
# processes the files they are about to tamper with or read; a test of the gate asks for
# it with an open_gate line.
agent_config() {  # [EXTRA TOML LINES for [agent]...]
  sed -i "s/^mode = \"restore\"$/mode = \"${MODE:-restore}\"/" "$CONFIG"
  {
    echo
    echo "[agent]"
    echo "socket = \"$SOCKET\""
    echo "event_log = \"$EVENTS\""
    local l gate='open_gate = "off"'
    for l in "$@"; do
      echo "$l"
      [[ $l != open_gate\ =* ]] || gate=""
    done
    [[ -z $gate ]] || echo "$gate"
  } >>"$CONFIG"
}

# start_agent [ARGS...]: runs `mamori agent` in the background (stderr to $AGENT_LOG)
# and waits until it is ready (its log says so), at most 60 s. Stopped at exit.
# With AGENT_NETNS set, it runs in that network namespace (netns_lib.sh).
start_agent() {
  # Only what this start appends counts: an earlier run's "ready" is in the log too.
  _AGENT_LOG_FROM=$(stat -c %s "$AGENT_LOG" 2>/dev/null || echo 0)
  local in_ns=()
  [[ -z ${AGENT_NETNS:-} ]] || in_ns=(ip netns exec "$AGENT_NETNS")  # execs: $! is the agent
  "${in_ns[@]}" "$MAMORI" --config "$CONFIG" agent "$@" >>"$AGENT_LOG" 2>&1 &
  AGENT_PID=$!
  on_exit "stop_agent"
  WAIT_SECONDS=60 WAIT_EXPLAIN='cat "$AGENT_LOG"' wait_for "the agent to be ready" _agent_ready_or_gone
  if ! _agent_ready; then
    cat "$AGENT_LOG" >&2
    fail "the agent exited before it was ready"
  fi
}
_agent_ready() { tail -c +"$((_AGENT_LOG_FROM + 1))" "$AGENT_LOG" 2>/dev/null | grep -q 'ready: guarding'; }
_agent_ready_or_gone() { _agent_ready || ! kill -0 "$AGENT_PID" 2>/dev/null; }

# stop_agent: SIGTERM, then wait for it (SIGKILL after 10 s: a hang fails the test).
stop_agent() {
  [[ -n $AGENT_PID ]] || return 0
  local pid=$AGENT_PID
  AGENT_PID=""
  stop_pid "$pid" "the agent" || fail "the agent did not stop within 10 s of SIGTERM"
}

# wait_for DESCRIPTION CMD...: tries CMD until it succeeds, at most ${WAIT_SECONDS:-10} s.
# Between tries it waits for something to be written in ${WAIT_ON:-$SCRATCH} (the agent
# writes an event there after every action; its log is there too), never on a timer;
# inotifywait's 1 s bound only covers a write that lands between a try and the watch.
# On a timeout it fails naming DESCRIPTION, with the output of ${WAIT_EXPLAIN} (a
# command line, eval'ed) when set.
wait_for() {
  local what=$1 deadline=$((SECONDS + ${WAIT_SECONDS:-10}))
  shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      fail "timed out waiting for: $what${WAIT_EXPLAIN:+
$(eval "$WAIT_EXPLAIN" 2>&1 | head -n 40)}"
    fi
    inotifywait -qq -t 1 -e modify -e create -e moved_to -e delete -e attrib "${WAIT_ON:-$SCRATCH}" 2>/dev/null || true
  done
}

# control_request REQUEST: sends REQUEST (one line of JSON) on the agent's control
# socket ($SOCKET) and prints the answer line (docs/formats/control.md).
control_request() {
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while not out.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode())
' "$SOCKET" "$1"
}

# events [PYTHON FILTER]: the events written so far, one JSON object per line, filtered
# by a Python expression over `e` (e.g. 'e["event"]["action"] == "file-restored"').
events() {
  python3 -c '
import json, os, sys
flt = sys.argv[1] if len(sys.argv) > 1 else "True"
try:
    for line in open(sys.argv[2], encoding="utf-8", errors="replace"):
        if not line.endswith("\n"):
            continue
        e = json.loads(line)
        if eval(flt, {"e": e}):
            print(json.dumps(e, sort_keys=True), flush=True)
except BrokenPipeError:
    # The reader had enough (`events ... | head -n 1`): not a failure of the pipeline.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
' "${1:-True}" "$EVENTS"
}

# check_events [FILE...]: every event written so far (or in FILEs) has only fields listed
# in docs/formats/ecs-fields.tsv, each of its type, the origin fields, a known action and
# its dataset (`mamori events --check`); fails the test naming each problem.
check_events() {
  local files=("$@")
  [[ ${#files[@]} -gt 0 ]] || files=("$EVENTS")
  expect_exit 0 mamori events --check "${files[@]}"
}

# loopback_manager_config [EXTRA-TOML]: $CONFIG for a `mamori manager` on a free loopback
# port (PORT), its state and SQLite store in MSTATE, its log MLOG; EXTRA-TOML goes into
# its [manager] table (and may open tables of its own after). No web console unless
# EXTRA-TOML names one: a console installed on the host (the default console_dir,
# /usr/share/mamori/console) is not the test's, and would answer unknown paths.
loopback_manager_config() {
  MSTATE=$SCRATCH/manager
  MLOG=$SCRATCH/manager.log
  PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local console='console_dir = ""'
  [[ ${1:-} == *console_dir* ]] && console=""
  cat >"$CONFIG" <<EOF
state_dir = "$STATE"
[manager]
listen = "127.0.0.1:$PORT"
public_url = "https://127.0.0.1:$PORT"
state_dir = "$MSTATE"
database = "sqlite://$MSTATE/manager.db"
$console
${1:-}
EOF
}
