# shellcheck shell=bash
# shellcheck disable=SC2016  # on_exit hooks are eval'ed later: single quotes are meant
# A webhook receiver for the integration tests: webhook_server.py (python3 http.server)
# on a loopback port of its own. Sourced after lib.sh, never run alone.
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/webhook_lib.sh"
#   start_webhook "$SCRATCH/hook" --fail-first 2   # sets WEBHOOK_PORT, WEBHOOK_OUT, WEBHOOK_URL
#   webhook_wait_bodies 3                           # waits for 3 accepted bodies
#
# WEBHOOK_OUT (DIR/bodies.jsonl) holds each accepted (2xx) body, one per line;
# DIR/requests.jsonl every request with its status and headers (X-Mamori-Event-Id,
# Authorization, ...). --fail-first N answers 500 to the first N requests; --status CODE
# answers CODE after them. The server is stopped at exit (on_exit).

WEBHOOK_PORT=""
WEBHOOK_OUT=""
WEBHOOK_URL=""
WEBHOOK_PID=""

# start_webhook DIR [--fail-first N] [--status CODE] [--reply TEXT]
start_webhook() {
  local dir=$1
  shift
  mkdir -p "$dir"
  local port_file=$SCRATCH/.webhook-port.$$.$RANDOM
  /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/webhook_server.py" "$dir" --port-file "$port_file" "$@" \
    >/dev/null 2>>"$SCRATCH/webhook.log" &
  WEBHOOK_PID=$!
  on_exit "stop_pid $WEBHOOK_PID 'the webhook server'"  # this instance's pid: a test may start several
  WAIT_EXPLAIN='cat "$SCRATCH/webhook.log"' wait_for "the webhook server to listen" \
    _webhook_listening_or_gone "$port_file"
  [[ -s $port_file ]] || fail "the webhook server exited before it listened: $(cat "$SCRATCH/webhook.log")"
  WEBHOOK_PORT=$(cat "$port_file")
  WEBHOOK_OUT=$dir/bodies.jsonl
  WEBHOOK_URL=http://127.0.0.1:$WEBHOOK_PORT/hook
  export WEBHOOK_PORT WEBHOOK_OUT WEBHOOK_URL
}
_webhook_listening_or_gone() { [[ -s $1 ]] || ! kill -0 "$WEBHOOK_PID" 2>/dev/null; }

stop_webhook() {
  [[ -n $WEBHOOK_PID ]] || return 0
  local pid=$WEBHOOK_PID
  WEBHOOK_PID=""
  stop_pid "$pid" "the webhook server"
}

# webhook_bodies: how many bodies were accepted so far.
webhook_bodies() { [[ -e $WEBHOOK_OUT ]] && wc -l <"$WEBHOOK_OUT" || echo 0; }

# webhook_wait_bodies N: waits until at least N bodies were accepted, at most
# ${WAIT_SECONDS:-10} s.
webhook_wait_bodies() {
  WAIT_ON=$(dirname "$WEBHOOK_OUT") wait_for "$1 webhook bodies in $WEBHOOK_OUT" _webhook_has "$1"
}
_webhook_has() { (($(webhook_bodies) >= $1)); }
