#!/usr/bin/env bash
# The manager's PostgreSQL store against a real PostgreSQL server. Starts a throwaway
# cluster of its own (initdb + pg_ctl as the postgres user, everything under $SCRATCH, a
# unix socket there and a free loopback port, password (SCRAM) authentication over TCP,
# a non-superuser owning a database whose default collation is ICU en-US), then runs
# manager_store_test's PostgreSQL instances against it: the whole Store suite the SQLite
# store passes, plus the PostgreSQL-only tests (wrong password, lost connection and
# reconnect, NUL in text). Fails if no PostgreSQL test ran. Then the real `mamori
# manager` with `database = "postgresql://..."`: a wrong password refused by the CLI
# without showing it, a token, an enrollment and a batch sent twice (manager_client.py)
# stored once in PostgreSQL's table, and PostgreSQL restarted under the running manager:
# the next enrollment and events go through. The cluster is stopped and removed on every
# exit; the system's clusters are never touched.
#
#   bash tests/integration/manager_postgres_store_test.sh build/dev/bin/mamori
#
# manager_store_test is found next to the mamori binary (the build's bin/).

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/postgres_lib.sh"

STORE_TEST=$(dirname "$MAMORI")/manager_store_test
[[ -x $STORE_TEST ]] ||
  fail "manager_store_test not found next to mamori: '$STORE_TEST' (cmake --build --preset dev --target manager_store_test)"

step "a throwaway PostgreSQL cluster under $SCRATCH/pg"
start_postgres "$SCRATCH/pg"
assert_eq "en-US" "$(psql_admin -At -c "SELECT daticulocale FROM pg_database WHERE datname = 'mamori'")" \
  "the test database's collation (\"a\" sorts before \"B\" there, unlike in bytes)"
URL="$PG_URL&connect_timeout=10"

step "without MAMORI_TEST_POSTGRES_URL no PostgreSQL test exists (none can pass unrun)"
expect_exit 0 env -u MAMORI_TEST_POSTGRES_URL "$STORE_TEST" --gtest_list_tests --gtest_filter='Postgres/*'
assert_not_contains "$OUT" "postgresql" "PostgreSQL tests listed without MAMORI_TEST_POSTGRES_URL"

step "the tests there are with the URL"
expect_exit 0 env MAMORI_TEST_POSTGRES_URL="$URL" "$STORE_TEST" --gtest_list_tests --gtest_filter='Postgres/*'
listed=$(grep -c '/postgresql' <<<"$OUT" || true)
((listed >= 20)) || fail "only $listed PostgreSQL tests listed:
$OUT"

step "manager_store_test's PostgreSQL instances ($listed tests)"
RESULT=$SCRATCH/result.json
rc=0
MAMORI_TEST_POSTGRES_URL="$URL" timeout -k 5 300 "$STORE_TEST" --gtest_filter='Postgres/*' \
  --gtest_output=json:"$RESULT" >"$SCRATCH/store_test.log" 2>&1 || rc=$?
if ((rc != 0)); then
  grep -E '^\[  FAILED  \]|Failure|Expected|Which is|error' "$SCRATCH/store_test.log" | head -n 60 >&2
  fail "manager_store_test failed on PostgreSQL (exit $rc); server log: $(tail -n 5 "$PG_LOG")"
fi
ran=$(json 'sum(1 for s in j["testsuites"] for t in s["testsuite"] if t["status"] == "RUN" and t["name"].endswith("/postgresql"))' "$(cat "$RESULT")")
failed=$(json 'j["failures"]' "$(cat "$RESULT")")
assert_eq 0 "$failed" "failed PostgreSQL tests"
((ran > 0)) || fail "manager_store_test ran no PostgreSQL test"
assert_eq "$listed" "$ran" "PostgreSQL tests run vs listed"
assert_contains "$(cat "$SCRATCH/store_test.log")" "OneUseTokenRacedFromTwoConnectionsHasOneWinner/postgresql" \
  "the token race ran on PostgreSQL"

step "each test dropped its schema; the password never reached the log"
assert_eq 0 "$(psql_admin -At -d mamori -c "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'mamori_test_%'")" \
  "schemas left behind by the tests"
assert_not_contains "$(cat "$SCRATCH/store_test.log")" "$PG_PASSWORD" "the password in the test output"
echo "ran $ran PostgreSQL tests on PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}')"

# ---- the real manager on PostgreSQL ----------------------------------------------------

CLIENT="/usr/bin/python3 $(dirname "$0")/manager_client.py"
MSTATE=$SCRATCH/manager
MLOG=$SCRATCH/manager.log
MPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
manager_config() {  # DATABASE_URL
  {
    echo "state_dir = \"$STATE\""
    echo "[manager]"
    echo "listen = \"127.0.0.1:$MPORT\""
    echo "public_url = \"https://127.0.0.1:$MPORT\""
    echo "state_dir = \"$MSTATE\""
    echo "database = \"$1\""
    # An agent gives up after 2 x lost_after = 6 s without a word from the manager; the
    # slow store below holds its first batch longer. 1 MiB: one batch is past it.
    echo "heartbeat = 1"
    echo "lost_after = 3"
    echo "event_queue_mb = 1"
  } >"$CONFIG"
  chmod 0600 "$CONFIG"
}
MANAGER_PID=""
on_exit '[[ -z $MANAGER_PID ]] || stop_pid "$MANAGER_PID" "the manager"'
agent_field() {  # KEY FIELD: from `mamori manager agents --json`
  expect_exit 0 mamori manager agents --json
  json "[a['$2'] for a in j['agents'] if a['agent_key'] == '$1'][0]"
}
stored_events() {  # KEY: rows in PostgreSQL itself
  psql_admin -At -d mamori -v key="$1" <<<"SELECT count(*) FROM events WHERE agent_key = :'key'"
}

step "a wrong password: the CLI names the database and the failure, not the password"
manager_config "postgresql://mamori:wrong-$PG_PASSWORD@127.0.0.1:$PG_PORT/mamori?sslmode=disable"
expect_exit 3 mamori manager agents
assert_contains "$ERR" "authentication failed"
assert_contains "$ERR" "mamori@127.0.0.1:$PG_PORT/mamori"
assert_not_contains "$ERR$OUT" "$PG_PASSWORD" "the password in the CLI's output"

step "mamori manager on PostgreSQL: a token, an enrollment, events stored once"
manager_config "$PG_URL"
"$MAMORI" --config "$CONFIG" manager >>"$MLOG" 2>&1 &
MANAGER_PID=$!
WAIT_SECONDS=20 WAIT_EXPLAIN='cat "$MLOG"' wait_for "the manager to listen" grep -q 'listening on' "$MLOG"
expect_exit 0 mamori manager token create --group web --uses 2 --json
TOKEN=$(json 'j["token"]')
expect_exit 0 $CLIENT enroll "$TOKEN"
assert_eq 200 "$(json 'j["status"]')" "enrollment on PostgreSQL"
M1=$(json 'json.dumps(j["manager"])')
KEY1=$(json 'j["manager"]["agent_key"]')
expect_exit 0 $CLIENT events "$M1"
assert_eq 5 "$(agent_field "$KEY1" events)" "events stored once each"
assert_eq 5 "$(stored_events "$KEY1")" "rows in PostgreSQL's events table"
assert_eq stopped "$(agent_field "$KEY1" status)" "after bye"

step "a store slower than the agents (its events table locked for 8 s by another session): the channel past event_queue_mb gives the writer no more events: a small batch behind is held for it, a large one dropped and asked for again once the others are stored; the channel is read all along (its pings answered); nothing lost, nothing stored twice"
expect_exit 0 mamori manager token create --group slow --json
SLOW_TOKEN=$(json 'j["token"]')
enroll_slow() {  # NAME CHANNEL_VAR KEY_VAR: an agent of the slow group, its channel and key
  expect_exit 0 $CLIENT enroll "$SLOW_TOKEN" "" "$1"
  printf -v "$2" '%s' "$(json 'json.dumps(j["manager"])')"
  printf -v "$3" '%s' "$(json 'j["manager"]["agent_key"]')"
}
enroll_slow slow1 M3 KEY3
enroll_slow slow2 M4 KEY4
events_locked() {
  [[ $(psql_admin -At -d mamori -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
    WHERE c.relname = 'events' AND l.mode = 'ShareRowExclusiveLock' AND l.granted") == 1 ]]
}
lock_events() {  # SECONDS, in the background: LOCK_PID
  psql_admin -d mamori -c "BEGIN" -c "LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE" \
    -c "SELECT pg_sleep($1)" -c "COMMIT" >"$SCRATCH/lock.log" 2>&1 &
  LOCK_PID=$!
  wait_for "the events table locked" events_locked
}
lock_released() { wait "$LOCK_PID" || fail "the locking session failed: $(cat "$SCRATCH/lock.log")"; }
lock_events 8
expect_exit 0 $CLIENT backpressure "$M3"
lock_released
echo "$OUT"
first_ack=$(json 'j["first_ack_s"]')
python3 -c "import sys; sys.exit(not $first_ack >= 4)" ||
  fail "the first batch was acked after $first_ack s, before the lock went: it never waited"
pong=$(json 'j["slowest_pong_s"]')
python3 -c "import sys; sys.exit(not $pong <= 1)" ||
  fail "the manager took $pong s to answer a ping while the channel waited"
(($(json 'j["pongs"]') >= 4)) || fail "fewer than 4 pongs while the channel waited: $OUT"
assert_eq 1 "$(json 'j["resends"]')" "resends asked for the dropped batch"
assert_eq 810 "$(stored_events "$KEY3")" "the three batches stored, once"
assert_eq stopped "$(agent_field "$KEY3" status)" "after bye: never lost on the way"

step "two channels past event_queue_mb while the store is held: the first stored while the second still fills the queue waits its turn to take events again, connected (the admission queue holds it); both acked, twice, nothing lost"
enroll_slow slow3 M5 KEY5
enroll_slow slow4 M6 KEY6
lock_events 4
expect_exit 0 $CLIENT take-turns "$M5" "$M6"
lock_released
echo "$OUT"
for k in "$KEY5" "$KEY6"; do
  assert_eq 800 "$(stored_events "$k")" "both batches of each stored, once"
  stopped() { [[ $(agent_field "$k" status) == stopped ]]; }
  WAIT_SECONDS=5 wait_for "the agent stopped after bye, never lost on the way" stopped
done

step "an agent gone while its channel is paused (the store locked again): lost within 3 s; the manager's own agent-lost event waits for the store on a thread of its own, not the channels'"
lock_events 8
expect_exit 0 $CLIENT backpressure-drop "$M4"
cut_ms=$(date +%s%3N)
agent_lost() { [[ $(agent_field "$KEY4" status) == lost ]]; }
WAIT_SECONDS=5 wait_for "the cut agent lost while its channel is paused" agent_lost
lost_ms=$(($(date +%s%3N) - cut_ms))
echo "lost $lost_ms ms after the cut"
((lost_ms <= 3000)) || fail "the cut agent was lost $lost_ms ms after the cut (heartbeat 1 s)"
expect_exit 0 $CLIENT welcome-time "$M3"
echo "a hello while the events table is still locked: $OUT"
python3 -c "import sys; sys.exit(not $(json 'j["welcome_s"]') <= 2)" ||
  fail "the welcome took $(json 'j["welcome_s"]') s: the io thread waited for the locked store"
events_locked || fail "the lock ended before the hello: the step proves nothing; make it longer"
lock_released
cut_batch_stored() { [[ $(stored_events "$KEY4") == 400 ]]; }
WAIT_SECONDS=10 wait_for "the cut agent's batch, read before the cut, stored" cut_batch_stored

step "an agent frozen while its channel is paused (the store locked again): lost lost_after (3 s) after its last word, not once its turn to take events comes"
enroll_slow slow5 M7 KEY7
lock_events 10
$CLIENT backpressure-silent "$M7" >"$SCRATCH/frozen.out" 2>&1 &
FROZEN_PID=$!
frozen_sent() { [[ -s $SCRATCH/frozen.out ]]; }
wait_for "the frozen agent's batch sent" frozen_sent
sent_ms=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sent_ms"])' \
  "$SCRATCH/frozen.out")
# The manager logs each of its events as it reports it; the log is in SCRATCH, where
# wait_for watches: the wait ends as the line is written.
silences_before=$(grep -c "sent nothing for" "$MLOG" || true)
frozen_reported() { (($(grep -c "sent nothing for" "$MLOG") > silences_before)); }
WAIT_SECONDS=8 wait_for "the frozen agent lost while its channel is paused" frozen_reported
lost_ms=$(($(date +%s%3N) - sent_ms))
assert_eq lost "$(agent_field "$KEY7" status)" "the frozen agent's status"
echo "    lost $lost_ms ms after its last word (lost_after 3 s)"
((lost_ms <= 4000)) || fail "the frozen agent was lost $lost_ms ms after its last word"
events_locked || fail "the lock ended before the agent was lost: the channel may have taken events again"
wait "$FROZEN_PID" || fail "the frozen client failed: $(cat "$SCRATCH/frozen.out")"
lock_released
frozen_batch_stored() { [[ $(stored_events "$KEY7") == 400 ]]; }
WAIT_SECONDS=10 wait_for "the frozen agent's batch, read before it froze, stored" frozen_batch_stored

step "PostgreSQL restarted under the running manager: its next calls reconnect"
restart_postgres
expect_exit 0 $CLIENT enroll "$TOKEN"
assert_eq 200 "$(json 'j["status"]')" "enrollment after the restart"
M2=$(json 'json.dumps(j["manager"])')
KEY2=$(json 'j["manager"]["agent_key"]')
expect_exit 0 $CLIENT events "$M2"
assert_eq 5 "$(stored_events "$KEY2")" "the second agent's events after the restart"
kill -0 "$MANAGER_PID" 2>/dev/null || fail "the manager died with the database restart:
$(tail -n 20 "$MLOG")"
expect_exit 0 mamori manager token list --json
assert_eq '[0]' "$(json '[t["uses_left"] for t in j["tokens"] if t["group"] == "web"]')" "the token's two uses, each counted once"
assert_not_contains "$(cat "$MLOG")" "$PG_PASSWORD" "the password in the manager's log"
stop_pid "$MANAGER_PID" "the manager" || fail "the manager did not stop within 10 s of SIGTERM"
MANAGER_PID=""
((STOPPED_RC == 0)) || fail "the manager exited with status $STOPPED_RC on SIGTERM"
