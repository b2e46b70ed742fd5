#!/usr/bin/env bash
# Rebuilds seeds/mqtt_frames from real peers: Mosquitto 2.0 clients (mosquitto_pub / mosquitto_sub, MQTT 3.1.1
# and 5.0) talking to a real Mosquitto broker ($SMTRUST_TEST_MQTT, scripts/peers/start-mosquitto.sh) through a
# recording relay. Each connection gives two files: what the client sent (.up) and what the broker sent (.down).
set -euo pipefail
cd "$(dirname "$0")"
broker=${SMTRUST_TEST_MQTT:?start the broker: eval "\$(scripts/peers/start-mosquitto.sh start)"}
out=mqtt_frames
mkdir -p "$out"

# relay NAME: accept one connection on a free port (printed), relay it to the broker, record both directions.
relay() {
  python3 - "$broker" "$out/$1" <<'PY' &
import socket, sys, threading
host, port = sys.argv[1].rsplit(":", 1)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
c, _ = srv.accept(); u = socket.create_connection((host, int(port)))
def pump(a, b, path):
    with open(path, "wb") as f:
        while (d := a.recv(65536)):
            f.write(d); b.sendall(d)
    try: b.shutdown(socket.SHUT_WR)
    except OSError: pass
t = threading.Thread(target=pump, args=(u, c, sys.argv[2] + ".down")); t.start()
pump(c, u, sys.argv[2] + ".up"); t.join()
PY
}

for v in 311 5; do
  exec 3< <(relay "sub-v$v"); read -r port <&3
  mosquitto_sub -V "$v" -p "$port" -i "seed-sub-$v" -q 2 -C 2 -W 10 \
    -t "devices/d1/down/#" -t "devices/+/up/temp" -t "\$share/g/devices/d1/cfg" >/dev/null &
  sub=$!
  sleep 0.5
  exec 4< <(relay "pub-v$v"); read -r port2 <&4
  mosquitto_pub -V "$v" -p "$port2" -i "seed-pub-$v" -q 1 -t devices/d1/down/cmd -m reboot
  exec 5< <(relay "pub-qos2-v$v"); read -r port3 <&5
  mosquitto_pub -V "$v" -p "$port3" -i "seed-pub2-$v" -q 2 -r -t devices/d2/up/temp -m 21.5
  wait "$sub"
  # A persistent session that unsubscribes at start (-U).
  exec 6< <(relay "unsub-v$v"); read -r port4 <&6
  mosquitto_sub -V "$v" -p "$port4" -i "seed-unsub-$v" -c -q 1 -t devices/d1/down/x -U "devices/d1/down/#" -E >/dev/null
done
# Clear the retained message.
mosquitto_pub -h "${broker%:*}" -p "${broker#*:}" -r -n -t devices/d2/up/temp
wait
ls -l "$out"
