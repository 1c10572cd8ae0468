#!/usr/bin/env bash
# Servers the county supply system needs: RabbitMQ, Mosquitto, PostgreSQL, InfluxDB.
#   servers.sh up      use what runs; start what is stopped; install Debian's influxdb if missing;
#                      with no local servers but a Docker engine, `docker compose up -d` instead
#                      (with --env-file deploy/compose.env: copy deploy/compose.env.example first)
#   servers.sh status  one line per server
#   servers.sh down    stop InfluxDB started by us (ALL=1 also stops RabbitMQ, Mosquitto, PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/../.."
VAR=${SUPPLY_VAR_DIR:-$PWD/var}
mkdir -p "$VAR/log" "$VAR/influxdb"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # name port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do port_open "$2" && return 0; sleep 0.1; done
  echo "error: $1 did not open port $2 within $3 s" >&2; return 1
}
have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  if [ ! -f "$VAR/.apt-updated" ]; then as_root apt-get update -qq && touch "$VAR/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

up_rabbitmq() {
  port_open 5672 && return 0
  have rabbitmq-server || apt_install rabbitmq-server
  as_root rabbitmq-server -detached
  wait_port RabbitMQ 5672 60
}
up_mosquitto() {
  port_open 1883 && return 0
  have mosquitto || { apt_install mosquitto; }
  as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
  wait_port Mosquitto 1883 15
}
up_postgres() {
  port_open 5432 && return 0
  if ! ls /etc/postgresql >/dev/null 2>&1; then apt_install postgresql; fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  wait_port PostgreSQL 5432 30
}
up_influxdb() {
  if ! port_open 8086; then
    have influxd || apt_install influxdb
    # our own config: data under var/, HTTP on loopback only, no usage reporting
    sed -e "s#/var/lib/influxdb#$VAR/influxdb#g" \
        -e 's#^\(\s*\)\# *bind-address = ":8086"#\1bind-address = "127.0.0.1:8086"#' \
        -e 's#^\# *reporting-disabled = false#reporting-disabled = true#' \
        /etc/influxdb/influxdb.conf > "$VAR/influxdb/influxdb.conf"
    nohup influxd -config "$VAR/influxdb/influxdb.conf" >"$VAR/log/influxdb.log" 2>&1 &
    echo $! > "$VAR/influxdb/influxd.pid"
    wait_port InfluxDB 8086 60
  fi
  local i
  for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "http://127.0.0.1:8086/ping" && break; sleep 0.2
  done
  curl -fsS -o /dev/null -XPOST "http://127.0.0.1:8086/query" --data-urlencode "q=CREATE DATABASE ${INFLUX_DB:-supply}"
}

status() {
  local name port
  for pair in RabbitMQ:5672 Mosquitto:1883 PostgreSQL:5432 InfluxDB:8086; do
    name=${pair%%:*}; port=${pair##*:}
    if port_open "$port"; then printf '%-11s up    127.0.0.1:%s\n' "$name" "$port"
    else printf '%-11s DOWN  127.0.0.1:%s\n' "$name" "$port"; fi
  done
}

case "${1:-status}" in
  up)
    if ! port_open 5672 && ! have rabbitmq-server && have docker && docker info >/dev/null 2>&1; then
      # docker-compose.yml takes its passwords from deploy/compose.env (${VAR:?} refuses to start
      # without them)
      if [ ! -f deploy/compose.env ]; then
        echo "error: deploy/compose.env is missing; create it from the template and fill in every empty value:" >&2
        echo "  cp deploy/compose.env.example deploy/compose.env && chmod 600 deploy/compose.env" >&2
        echo "  (passwords: e.g. openssl rand -hex 16; MQTT users: deploy/mosquitto/README.md)" >&2
        exit 1
      fi
      docker compose --env-file deploy/compose.env up -d rabbitmq mosquitto postgres influxdb; exit 0
    fi
    up_rabbitmq; up_mosquitto; up_postgres; up_influxdb; status ;;
  status) status ;;
  down)
    if [ -f "$VAR/influxdb/influxd.pid" ]; then kill "$(cat "$VAR/influxdb/influxd.pid")" 2>/dev/null || true; rm -f "$VAR/influxdb/influxd.pid"; fi
    if [ "${ALL:-0}" = 1 ]; then
      as_root rabbitmqctl stop >/dev/null 2>&1 || true
      as_root pkill -x mosquitto || true
      as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main stop || true
    fi
    status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
