#!/usr/bin/env bash
# Make sure a Redis and a Mosquitto answer for the tests and the demo, and say where they are.
#
# Usage: scripts/services.sh [start|stop|status]
#   start (default)  Use the Redis on 127.0.0.1:6379 and the Mosquitto on 127.0.0.1:1883 when they answer.
#                    Otherwise start private ones on free loopback ports from PATH (state in .run/) and reuse
#                    them on the next run. Prints `export SATGW_REDIS_URL=...` and `export SATGW_MQTT_URL=...`
#                    on stdout and writes the same lines to .run/services.env; all chatter goes to stderr.
#   stop             Stop only the servers this script started.
#   status           Say what answers where.
#
# A SATGW_REDIS_URL or SATGW_MQTT_URL already in the environment is passed through untouched.
# Knobs, mainly for testing this script: SERVICES_RUN_DIR (default <repo>/.run), SERVICES_REDIS_PORT (6379),
# SERVICES_MQTT_PORT (1883), SERVICES_SBIN_DIRS (extra places to look for servers, default "/usr/sbin /usr/local/sbin",
# because Debian installs mosquitto in /usr/sbin, which is not on a normal user's PATH).
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${SERVICES_RUN_DIR:-$ROOT/.run}
REDIS_PORT=${SERVICES_REDIS_PORT:-6379}
MQTT_PORT=${SERVICES_MQTT_PORT:-1883}
SBIN_DIRS=${SERVICES_SBIN_DIRS-/usr/sbin /usr/local/sbin}
HOST=127.0.0.1

say() { printf 'services: %s\n' "$*" >&2; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo "; fi

# probe KIND PORT: exit 0 when a Redis (PING -> +PONG) or an MQTT broker (anonymous CONNECT -> CONNACK 0) answers.
probe() {
  python3 - "$1" "$HOST" "$2" <<'PY'
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    with socket.create_connection((host, port), timeout=2) as s:
        s.settimeout(2)
        if kind == "redis":
            s.sendall(b"PING\r\n")
            ok = s.recv(64).startswith(b"+PONG")
        else:
            # MQTT 3.1.1 CONNECT, clean session, keepalive 30 s, empty client id; then DISCONNECT.
            s.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 0]))
            ok = s.recv(4) == bytes([0x20, 2, 0, 0])
            s.sendall(bytes([0xE0, 0]))
except OSError:
    ok = False
sys.exit(0 if ok else 1)
PY
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# find_bin NAME: print the path of a server binary on PATH or in the usual sbin folders.
find_bin() {
  local dir
  if command -v "$1" 2>/dev/null; then return 0; fi
  for dir in $SBIN_DIRS; do
    if [ -x "$dir/$1" ]; then echo "$dir/$1"; return 0; fi
  done
  return 1
}

# running PID: the process exists and is not a zombie (an init that is slow to reap leaves those behind).
running() {
  local state
  [ -r "/proc/$1/stat" ] || return 1
  read -r _ _ state _ <"/proc/$1/stat" || return 1
  [ "$state" != Z ]
}

# ours_alive NAME COMM: the server we started earlier still runs (pid file names a live process of that command).
ours_alive() {
  local pid
  [ -f "$RUN/$1.pid" ] || return 1
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && running "$pid" || return 1
  grep -q "^$2" "/proc/$pid/comm"
}

# wait_for KIND PORT NAME: poll up to 10 s for a freshly started server.
wait_for() {
  local _
  for _ in $(seq 1 100); do
    if probe "$1" "$2"; then return 0; fi
    sleep 0.1
  done
  say "$3 did not answer on $HOST:$2 within 10 s; its log: $RUN/$3.log"
  tail -n 20 "$RUN/$3.log" >&2 2>/dev/null || true
  return 1
}

# launch NAME COMMAND...: start a self-daemonizing server. Its stdio goes to .run/NAME.out, not to our caller's
# pipes (a captured stderr would otherwise stay open as long as the server runs), and it must not inherit the lock.
launch() {
  local name=$1
  shift
  if ! "$@" </dev/null >"$RUN/$name.out" 2>&1 9>&-; then
    say "could not start $name: $*"
    cat "$RUN/$name.out" >&2
    return 1
  fi
}

install_hint() {
  say "no $1 answers on $HOST:$2 and '$3' is not installed."
  say "  Debian/Ubuntu: ${SUDO}apt-get install -y $4   (macOS: brew install $5)"
  say "  Or start one on $HOST:$2 yourself, or export $6 to point at one, then run this again."
}

redis_url() {
  local port
  if probe redis "$REDIS_PORT"; then echo "redis://$HOST:$REDIS_PORT/0"; return 0; fi
  if ours_alive redis redis-server && port=$(cat "$RUN/redis.port") && probe redis "$port"; then
    say "reusing the Redis started earlier on $HOST:$port"
    echo "redis://$HOST:$port/0"
    return 0
  fi
  start_redis
}

start_redis() {
  local bin port
  if ! bin=$(find_bin redis-server); then
    install_hint Redis "$REDIS_PORT" redis-server redis-server redis SATGW_REDIS_URL
    return 1
  fi
  port=$(free_port) || return 1
  say "no Redis on $HOST:$REDIS_PORT; starting $bin on $HOST:$port (log: $RUN/redis.log)"
  # noeviction: tests must see the same failure mode as production, never silently evicted queue entries.
  launch redis "$bin" --daemonize yes --bind "$HOST" --port "$port" --save "" --appendonly no \
    --maxmemory-policy noeviction --dir "$RUN" --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log" || return 1
  echo "$port" >"$RUN/redis.port"
  wait_for redis "$port" redis || return 1
  echo "redis://$HOST:$port/0"
}

mqtt_url() {
  local port
  if probe mqtt "$MQTT_PORT"; then echo "mqtt://$HOST:$MQTT_PORT"; return 0; fi
  if ours_alive mosquitto mosquitto && port=$(cat "$RUN/mosquitto.port") && probe mqtt "$port"; then
    say "reusing the Mosquitto started earlier on $HOST:$port"
    echo "mqtt://$HOST:$port"
    return 0
  fi
  start_mosquitto
}

# write_mosquitto_conf PORT: a broker for tests, with the queue limits of deploy/mosquitto.conf.
write_mosquitto_conf() {
  cat >"$RUN/mosquitto.conf" <<EOF
# Written by scripts/services.sh for tests and the demo; deploy/mosquitto.conf is the production one.
listener $1 $HOST
allow_anonymous true
persistence false
# The default of 1000 queued QoS 1 messages per offline session silently drops terminal traffic that the
# broker already acknowledged while the gateway restarts; tests exercise exactly that, so raise it.
max_queued_messages 1000000
# ... and cap it by memory instead (per client): 256 MiB.
max_queued_bytes 268435456
max_inflight_messages 1000
pid_file $RUN/mosquitto.pid
log_dest file $RUN/mosquitto.log
EOF
  # As root, mosquitto drops privileges to the 'mosquitto' user, which then cannot write .run/; stay root.
  if [ "$(id -u)" -eq 0 ]; then echo "user root" >>"$RUN/mosquitto.conf"; fi
}

start_mosquitto() {
  local bin port
  if ! bin=$(find_bin mosquitto); then
    install_hint Mosquitto "$MQTT_PORT" mosquitto mosquitto mosquitto SATGW_MQTT_URL
    return 1
  fi
  port=$(free_port) || return 1
  write_mosquitto_conf "$port"
  say "no Mosquitto on $HOST:$MQTT_PORT; starting $bin on $HOST:$port (log: $RUN/mosquitto.log)"
  launch mosquitto "$bin" -d -c "$RUN/mosquitto.conf" || return 1
  echo "$port" >"$RUN/mosquitto.port"
  wait_for mqtt "$port" mosquitto || return 1
  echo "mqtt://$HOST:$port"
}

lock() {
  if command -v flock >/dev/null; then
    exec 9>"$RUN/services.lock"
    flock -w 60 9
  fi
}

cmd_start() {
  local redis=${SATGW_REDIS_URL:-} mqtt=${SATGW_MQTT_URL:-} failed=0
  lock
  # Both are tried before giving up, so a newcomer learns about every missing server at once.
  if [ -z "$redis" ]; then redis=$(redis_url) || failed=1; fi
  if [ -z "$mqtt" ]; then mqtt=$(mqtt_url) || failed=1; fi
  if [ "$failed" -ne 0 ]; then return 1; fi
  printf 'export SATGW_REDIS_URL=%q\nexport SATGW_MQTT_URL=%q\n' "$redis" "$mqtt" | tee "$RUN/services.env"
}

# stop_ours NAME COMM: SIGTERM the server we started, wait for it to go, forget it.
stop_ours() {
  local pid _
  if ours_alive "$1" "$2"; then
    pid=$(cat "$RUN/$1.pid")
    kill "$pid"
    for _ in $(seq 1 50); do
      running "$pid" || break
      sleep 0.1
    done
    say "stopped $1 (pid $pid)"
  fi
  rm -f "$RUN/$1.pid" "$RUN/$1.port"
}

cmd_stop() {
  lock
  stop_ours redis redis-server
  stop_ours mosquitto mosquitto
  rm -f "$RUN/services.env"
}

cmd_status() {
  local port
  for port in "$REDIS_PORT" $(cat "$RUN/redis.port" 2>/dev/null); do
    if probe redis "$port"; then say "Redis answers on $HOST:$port"; fi
  done
  for port in "$MQTT_PORT" $(cat "$RUN/mosquitto.port" 2>/dev/null); do
    if probe mqtt "$port"; then say "Mosquitto answers on $HOST:$port"; fi
  done
}

main() {
  if ! python3 -c pass; then
    say "python3 is needed (${SUDO}apt-get install -y python3)"
    exit 1
  fi
  mkdir -p "$RUN"
  case "${1:-start}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) say "usage: $0 [start|stop|status]"; exit 2 ;;
  esac
}

main "$@"
