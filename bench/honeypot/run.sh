#!/usr/bin/env bash
# Starts a mamori-honeypot on a free loopback port (its own temporary spool, limits raised
# past the run), holds SESSIONS idle SSH sessions against it with bench_honeypot, prints
# its memory per idle session, then stops it and removes the spool.
#
#   bash bench/honeypot/run.sh [BUILD_BIN_DIR] [SESSIONS]      (as root; default 2000)
set -euo pipefail
BIN=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/dev/bin}
SESSIONS=${2:-2000}
[[ -x $BIN/mamori-honeypot && -x $BIN/bench_honeypot ]] ||
  { echo "build mamori-honeypot and bench_honeypot first (cmake --build --preset dev --target mamori-honeypot bench_honeypot)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) > SESSIONS + 100 )) || { echo "ulimit -n $(ulimit -n) is too low for $SESSIONS sessions" >&2; exit 1; }
DIR=$(mktemp -d /tmp/mamori-bench-honeypot.XXXXXX)
chmod 711 "$DIR"
HP_PID=""
cleanup() {
  if [[ -n $HP_PID ]]; then kill -TERM "$HP_PID" 2>/dev/null; wait "$HP_PID" 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT
PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
USER_NAME=nobody
id -u mamori-honeypot >/dev/null 2>&1 && USER_NAME=mamori-honeypot
cat >"$DIR/honeypot.toml" <<TOML
listen = "127.0.0.1:$PORT"
state_dir = "$DIR/state"
user = "$USER_NAME"
[limits]
sessions = $((SESSIONS + 100))
sessions_per_address = $((SESSIONS + 100))
session_seconds = 3600
TOML
"$BIN/mamori-honeypot" --config "$DIR/honeypot.toml" 2>"$DIR/log" &
HP_PID=$!
for _ in $(seq 100); do grep -q 'ready: listening' "$DIR/log" && break; kill -0 "$HP_PID" || { cat "$DIR/log"; exit 1; }; sleep 0.1; done
grep -q 'ready: listening' "$DIR/log" || { cat "$DIR/log"; exit 1; }
echo "honeypot: $(grep -o 'banner .*' "$DIR/log"), pid $HP_PID, $(nproc) CPUs"
"$BIN/bench_honeypot" --port "$PORT" --pid "$HP_PID" --sessions "$SESSIONS"
