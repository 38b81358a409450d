#!/usr/bin/env bash
# The manager's PostgreSQL store against a real PostgreSQL server. Starts a throwaway
# cluster of its own (initdb + pg_ctl as the postgres user, everything under $SCRATCH, a
# unix socket there and a free loopback port, password (SCRAM) authentication over TCP,
# a non-superuser owning a database whose default collation is ICU en-US), then runs
# manager_store_test's PostgreSQL instances against it: the whole Store suite the SQLite
# store passes, plus the PostgreSQL-only tests (wrong password, lost connection and
# reconnect, NUL in text). Fails if no PostgreSQL test ran. The cluster is stopped and
# removed on every exit; the system's clusters are never touched.
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
