#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# A throwaway PostgreSQL cluster for the tests, on 127.0.0.1:${SMTRUST_PG_PORT:-55432} (trust auth, loopback only).
#   start-postgres.sh start   start (or reuse) it; prints `export SMTRUST_TEST_POSTGRES_URL=...` for eval
#   start-postgres.sh stop    stop it (no-op when not running)
# As root the cluster runs as the `postgres` user (initdb refuses root). Its data dir is
# ${SMTRUST_CACHE}/pg, unless that user cannot reach it (/root is 0700): then /var/tmp/smtrust-pg.
set -euo pipefail
SMTRUST_STEP=postgres
. "$(dirname "$0")/common.sh"

port=${SMTRUST_PG_PORT:-55432}
db=smtrust_test

bindir="" best=0
for d in /usr/lib/postgresql/*/bin; do # the newest major version installed
  v=${d#/usr/lib/postgresql/}
  v=${v%/bin}
  if [[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt "$best" ] && [ -x "$d/initdb" ]; then
    best=$v
    bindir=$d
  fi
done
if [ -z "$bindir" ] && command -v pg_ctl >/dev/null 2>&1; then bindir=$(dirname "$(command -v pg_ctl)"); fi
[ -n "$bindir" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"

if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "no 'postgres' user to run the cluster as"
  as_pg() { runuser -u postgres -- "$@"; }
  pguser=postgres
else
  as_pg() { "$@"; }
  pguser=$(id -un)
fi

data="$SMTRUST_CACHE/pg"
mkdir -p "$SMTRUST_CACHE"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$SMTRUST_CACHE"; then
  data=/var/tmp/smtrust-pg
fi

url="postgres://$pguser@127.0.0.1:$port/$db"

running() { as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

case "${1:-start}" in
stop)
  if [ -d "$data" ] && running; then
    as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null || die "pg_ctl stop failed"
    log "stopped ($data)"
  fi
  exit 0
  ;;
start) ;;
*) die "usage: $0 start|stop" ;;
esac

if [ ! -f "$data/PG_VERSION" ]; then
  rm -rf "$data"
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres: "$data"
  chmod 700 "$data"
  log "initdb $data"
  as_pg "$bindir/initdb" -D "$data" -U "$pguser" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >"$data.initdb.log" 2>&1 || { cat "$data.initdb.log" >&2; die "initdb failed"; }
  cat >>"$data/postgresql.conf" <<CONF
# smtrust test cluster: loopback only, socket in the data dir, no durability needed
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
fi

if ! running; then
  as_pg "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null ||
    { tail -n 30 "$data/server.log" >&2 || true; die "pg_ctl start failed (is port $port taken?)"; }
  log "started on 127.0.0.1:$port ($data)"
else
  log "already running on 127.0.0.1:$port ($data)"
fi

if ! as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U "$pguser" -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U "$pguser" "$db" || die "createdb $db failed"
fi
as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U "$pguser" -d "$db" -tAc 'SELECT 1' >/dev/null ||
  die "cannot query $url"
echo "export SMTRUST_TEST_POSTGRES_URL=$url"
