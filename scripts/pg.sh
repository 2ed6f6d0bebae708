#!/usr/bin/env bash
# Local PostgreSQL from Debian's package, data inside the checkout (.local/pg).
#   scripts/pg.sh start | stop | status | url DB
# Idempotent. Runs as the unprivileged `postgres` user when invoked as root.
# Env: PG_PORT (55432), PG_DATABASES ("identity quota"), LOCAL_DIR (.local).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOCAL_DIR="${LOCAL_DIR:-$ROOT/.local}"
PGDATA="$LOCAL_DIR/pg/data"
PGRUN="$LOCAL_DIR/pg/run"
PGLOG="$LOCAL_DIR/pg/postgres.log"
PG_PORT="${PG_PORT:-55432}"
PG_DATABASES="${PG_DATABASES:-identity quota ferretdb}"
PG_USER_NAME="gateway"

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && { echo "$d"; return; }; done
  return 1
}

ensure_installed() {
  if ! PGBIN="$(find_bin)"; then
    echo "pg: installing Debian's postgresql package"
    local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    PGBIN="$(find_bin)"
  fi
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

psql_cmd() { as_owner "$PGBIN/psql" -h "$PGRUN" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

# As root the server runs as `postgres`, which must be able to traverse every folder above
# its data directory (a checkout under a 0700 folder, e.g. from mktemp -d, is not).
grant_traverse() {
  local dir
  dir="$(dirname "$LOCAL_DIR/pg")"
  while [ "$dir" != "/" ]; do
    if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
      if ! { command -v setfacl >/dev/null && setfacl -m u:postgres:x "$dir" 2>/dev/null; }; then
        chmod o+x "$dir"
      fi
      echo "pg: let postgres traverse $dir"
    fi
    dir="$(dirname "$dir")"
  done
}

start() {
  ensure_installed
  mkdir -p "$PGDATA" "$PGRUN"
  if [ "$(id -u)" -eq 0 ]; then grant_traverse; chown -R postgres:postgres "$LOCAL_DIR/pg"; fi
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "pg: initdb $PGDATA"
    as_owner "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    echo "pg: already running on port $PG_PORT"
  else
    as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 \
      -o "-p $PG_PORT -k $PGRUN -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${PG_FSYNC:-on} -c shared_buffers=256MB" start >/dev/null
    echo "pg: started on 127.0.0.1:$PG_PORT"
  fi
  if [ "$(psql_cmd -c "select 1 from pg_roles where rolname='$PG_USER_NAME'")" != "1" ]; then
    psql_cmd -c "create role $PG_USER_NAME login password '$PG_USER_NAME' createdb"
  fi
  # DROP DATABASE ... WITH (FORCE) of a test database must also end an autovacuum worker
  # there, whose backend belongs to no role: that takes pg_signal_backend (idempotent).
  psql_cmd -c "grant pg_signal_backend to $PG_USER_NAME" 2>/dev/null
  local db
  for db in $PG_DATABASES; do
    if [ "$(psql_cmd -c "select 1 from pg_database where datname='$db'")" != "1" ]; then
      psql_cmd -c "create database $db owner $PG_USER_NAME"
      echo "pg: created database $db"
    fi
  done
}

stop() {
  PGBIN="$(find_bin)" || return 0
  [ -s "$PGDATA/PG_VERSION" ] || return 0
  if as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null && echo "pg: stopped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) PGBIN="$(find_bin)"; as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status ;;
  url) echo "postgresql+psycopg://$PG_USER_NAME:$PG_USER_NAME@127.0.0.1:$PG_PORT/${2:?database}" ;;
  *) echo "usage: $0 start|stop|status|url DB" >&2; exit 2 ;;
esac
