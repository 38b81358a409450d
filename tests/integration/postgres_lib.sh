# shellcheck shell=bash
# A throwaway PostgreSQL server for the integration tests: a cluster of its own made by
# initdb and run by pg_ctl as the postgres user, with its data, socket and log inside DIR,
# listening on a free port of 127.0.0.1. Never the system's clusters (no pg_ctlcluster,
# nothing under /var/lib/postgresql). Sourced after lib.sh, never run alone.
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/postgres_lib.sh"
#   start_postgres "$SCRATCH/pg"
#   ... database = "$PG_URL" ...
#
# start_postgres exports
#   PG_URL       postgresql://mamori:PASSWORD@127.0.0.1:PORT/mamori?sslmode=disable: role
#                mamori (not a superuser; SCRAM password over TCP) owning database
#                mamori, whose default collation is ICU en-US ("a" before "B", unlike bytes)
#   PG_PORT, PG_PASSWORD, PG_DIR
#   PG_BIN       the server's bin directory (initdb, pg_ctl, psql, postgres)
#   PG_LOG       the server's log
# and psql_admin ARGS... (psql as the superuser postgres over the socket, -v
# ON_ERROR_STOP=1); restart_postgres restarts it (the clients' connections cut); the
# server is stopped at exit (on_exit), DIR goes with $SCRATCH.

PG_DIR=""

# Debian's server, when missing (tools/install-deps lists it too).
postgres_install() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && id postgres >/dev/null 2>&1 && return 0
  echo "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends postgresql >"$SCRATCH/apt.log" 2>&1; then
    apt-get update -q >>"$SCRATCH/apt.log" 2>&1
    apt-get install -y -q --no-install-recommends postgresql >>"$SCRATCH/apt.log" 2>&1 ||
      fail "could not install postgresql:
$(tail -n 20 "$SCRATCH/apt.log")"
  fi
}

_as_postgres() { runuser -u postgres -- "$@"; }

start_postgres() {
  PG_DIR=$1
  postgres_install
  PG_BIN=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
  PG_LOG=$PG_DIR/server.log
  mkdir -p "$PG_DIR"
  chown postgres: "$PG_DIR"
  chmod 0700 "$PG_DIR"
  # The postgres user walks through the directories from $SCRATCH down to its own, and
  # no further ($SCRATCH is 0700 root).
  local d=$PG_DIR
  while [[ $d == "$SCRATCH"/* ]]; do
    d=$(dirname "$d")
    chmod o+x "$d"
  done

  _as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
    fail "initdb failed:
$(cat "$PG_DIR/initdb.log")"
  on_exit stop_postgres

  # A free port, asked of the kernel, then given to the server; if another process takes
  # it in between, the start fails and we ask again.
  local attempt port
  PG_PORT=""
  for attempt in 1 2 3; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if _as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_LOG" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG_DIR" start >/dev/null; then
      PG_PORT=$port
      break
    fi
    echo "PostgreSQL did not start on port $port (attempt $attempt)" >&2
  done
  [[ -n $PG_PORT ]] || fail "the PostgreSQL server did not start:
$(tail -n 20 "$PG_LOG")"

  PG_PASSWORD=pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  psql_admin -v pw="$PG_PASSWORD" <<'SQL'
CREATE ROLE mamori LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
CREATE DATABASE mamori OWNER mamori TEMPLATE template0 ENCODING 'UTF8'
  LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8';
SQL
  PG_URL="postgresql://mamori:$PG_PASSWORD@127.0.0.1:$PG_PORT/mamori?sslmode=disable"
}

psql_admin() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres "$@"
}

# restart_postgres: a fast shutdown (every client's connection is closed under it) and a
# start with the same options, as after a server upgrade or a failover.
restart_postgres() {
  _as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_LOG" -m fast -w -t 60 restart >/dev/null ||
    fail "PostgreSQL did not restart:
$(tail -n 20 "$PG_LOG")"
}

# stop_postgres: a fast shutdown (clients disconnected), an immediate one if that hangs.
stop_postgres() {
  [[ -n $PG_DIR && -f $PG_DIR/data/postmaster.pid ]] || return 0
  _as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null ||
    _as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop
}
