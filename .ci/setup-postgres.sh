#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages (if missing), starts a private
# cluster on 127.0.0.1 (its own data directory and port, so it never touches
# the system cluster), creates the test database and prints the environment
# the tests read:
#   eval "$(.ci/setup-postgres.sh)"
# Idempotent: a second run finds the cluster running and prints the same lines.
# Everything except the export lines goes to stderr.
set -euo pipefail

PORT="${LEPTON_PG_PORT:-55432}"
DIR="${LEPTON_PG_DIR:-/tmp/lepton-pg}"
DB="${LEPTON_PG_DB:-lepton_test}"
log() { echo "setup-postgres: $*" >&2; }

pgbin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

if [ -z "$(pgbin)" ]; then
  log "installing postgresql from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
BIN="$(pgbin)"
[ -x "$BIN/initdb" ] || { log "no initdb under $BIN"; exit 1; }

# initdb and postgres refuse to run as root: use the postgres account then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown postgres: "$DIR"

if [ ! -f "$DIR/data/PG_VERSION" ]; then
  log "initdb in $DIR/data"
  as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >&2
fi

if ! as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  log "starting postgres on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off" start >&2
fi

for _ in $(seq 1 60); do
  as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
  sleep 1
done
as_pg "$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" >&2

if ! as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB" >&2
fi

echo "export LEPTON_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:$PORT/$DB?sslmode=disable'"
