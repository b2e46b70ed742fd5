#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# A Mosquitto broker for the tests on 127.0.0.1:${SMTRUST_MQTT_PORT:-18883} (anonymous, loopback only).
#   start-mosquitto.sh start   start (or reuse) it; prints `export SMTRUST_TEST_MQTT=127.0.0.1:PORT` for eval
#   start-mosquitto.sh stop    stop it (no-op when not running)
set -euo pipefail
SMTRUST_STEP=mosquitto
. "$(dirname "$0")/common.sh"

port=${SMTRUST_MQTT_PORT:-18883}
run="$SMTRUST_CACHE/mosquitto"
pidfile="$run/mosquitto.pid"
mkdir -p "$run"

mosq=$(command -v mosquitto || true)
[ -n "$mosq" ] || { [ -x /usr/sbin/mosquitto ] && mosq=/usr/sbin/mosquitto; } ||
  die "mosquitto not found (apt-get install mosquitto)"

alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

case "${1:-start}" in
stop)
  if alive; then
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "stopped (pid $pid)"
  fi
  rm -f "$pidfile"
  exit 0
  ;;
start) ;;
*) die "usage: $0 start|stop" ;;
esac

if alive && listening; then
  log "already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"
else
  listening && die "port $port is taken by another process"
  cat >"$run/mosquitto.conf" <<CONF
# smtrust test broker (as root, mosquitto drops to its own user after reading this)
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
CONF
  # setsid: the broker must outlive this script; its PID is ours to stop later.
  setsid "$mosq" -c "$run/mosquitto.conf" >"$run/mosquitto.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 100); do listening && break; sleep 0.1; done
  listening || { cat "$run/mosquitto.log" >&2; die "mosquitto did not listen on 127.0.0.1:$port"; }
  log "started on 127.0.0.1:$port (pid $(cat "$pidfile"))"
fi
echo "export SMTRUST_TEST_MQTT=127.0.0.1:$port"
