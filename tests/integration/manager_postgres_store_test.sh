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

STORE_TEST=$(dirname "$MAMORI")/manager_store_test
[[ -x $STORE_TEST ]] ||
  fail "manager_store_test not found next to mamori: '$STORE_TEST' (cmake --build --preset dev --target manager_store_test)"
PGBIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
[[ -n $PGBIN && -x $PGBIN/initdb && -x $PGBIN/pg_ctl && -x $PGBIN/psql ]] ||
  fail "no PostgreSQL server under /usr/lib/postgresql/*/bin: install Debian's postgresql (tools/install-deps)"
id postgres >/dev/null 2>&1 || fail "no postgres user: install Debian's postgresql (tools/install-deps)"

PG=$SCRATCH/pg
mkdir "$PG"
chown postgres: "$PG"
chmod 0700 "$PG"
chmod o+x "$SCRATCH"  # the postgres user walks through to its own directory, no further
as_postgres() { runuser -u postgres -- "$@"; }

step "initdb: a cluster of our own in $PG/data"
as_postgres "$PGBIN/initdb" -D "$PG/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  -E UTF8 --locale=C.UTF-8 >"$PG/initdb.log" 2>&1 ||
  fail "initdb failed:
$(cat "$PG/initdb.log")"

stop_postgres() {
  [[ -f $PG/data/postmaster.pid ]] || return 0
  as_postgres "$PGBIN/pg_ctl" -D "$PG/data" -m fast -w -t 30 stop >/dev/null ||
    as_postgres "$PGBIN/pg_ctl" -D "$PG/data" -m immediate -w -t 30 stop
}
on_exit stop_postgres

# A free loopback port: asked of the kernel, then given to the server; if another process
# takes it in between, the start fails and we ask again.
PORT=""
for attempt in 1 2 3; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  step "start the server on 127.0.0.1:$port and $PG (attempt $attempt)"
  if as_postgres "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG" start >/dev/null; then
    PORT=$port
    break
  fi
done
[[ -n $PORT ]] || fail "the PostgreSQL server did not start:
$(tail -n 20 "$PG/server.log")"

psql_admin() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG" -p "$PORT" -U postgres -d postgres "$@"; }
PASSWORD=pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
step "a role with a password, owning a database with an ICU en-US collation"
psql_admin -v pw="$PASSWORD" <<'SQL'
CREATE ROLE mamori LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
CREATE DATABASE mamori OWNER mamori TEMPLATE template0 ENCODING 'UTF8'
  LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8';
SQL
assert_eq "en-US" "$(psql_admin -At -c "SELECT daticulocale FROM pg_database WHERE datname = 'mamori'")" \
  "the test database's collation (\"a\" sorts before \"B\" there, unlike in bytes)"

URL="postgresql://mamori:$PASSWORD@127.0.0.1:$PORT/mamori?sslmode=disable&connect_timeout=10"

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
  fail "manager_store_test failed on PostgreSQL (exit $rc); server log: $(tail -n 5 "$PG/server.log")"
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
assert_not_contains "$(cat "$SCRATCH/store_test.log")" "$PASSWORD" "the password in the test output"
echo "ran $ran PostgreSQL tests on PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
