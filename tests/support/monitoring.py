"""Helpers for the monitoring tests against real processes and servers (no tests in here): an
isolated environment (own MQTT topic root and client ids, own SQLite/PostgreSQL database, the
session's RabbitMQ vhost and InfluxDB database), process start-up, MQTT publishing with PUBACKs,
counting in InfluxDB, and clean-up of the broker state a test leaves (sessions, retained)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import requests
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from services.common.config import load_settings
from services.common.db import make_engine
from services.common.migrate import upgrade
from services.monitoring.adapters import schema
from tests.support import infra, intake
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, start_consuming

HOST, PORT = "127.0.0.1", 1883
ROOT_DIR = Path(__file__).resolve().parents[2]
WORKER_QUEUE = "evt-logistics-stock_received--monitoring.on_stock_received"


def uid(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def make_env(var_dir: Path, amqp_url: str, influx_db: str, **extra: str) -> dict[str, str]:
    """intake support's environment, with the test's own InfluxDB database and MQTT topic root."""
    root = uid("mt")
    return intake.make_env(var_dir, amqp_url, **{
        "INFLUX_DB": influx_db,
        "SUPPLY_MQTT_ROOT": root,
        "SUPPLY_MQTT_CLIENT_ID": f"{root}-ingest-1",
        "SUPPLY_MQTT_SHARE_GROUP": f"{root}-mon",
        "SUPPLY_MQTT_SESSION_EXPIRY_S": "600",
        "SUPPLY_INGEST_STATS_S": "1",
        "SUPPLY_MAX_FUTURE_SKEW_S": "300",
        **extra})


def migrate(env: dict[str, str]) -> str:
    url = load_settings("monitoring", env).database_url
    upgrade("monitoring", url)
    return url


def register_zones(env: dict[str, str], *zones: tuple[str, str, str]) -> None:
    """Add (depot, zone, storage class) to the env's zones file (created beside its var dir when
    missing), applied when a monitoring process starts: the ingest holds readings of unknown zones."""
    import yaml

    path = Path(env.get("SUPPLY_ZONES_FILE") or Path(env["SUPPLY_VAR_DIR"]).parent / "zones-registered.yaml")
    data = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
    data.setdefault("zones", []).extend({"depot": d, "zone": z, "storage_class": sc} for d, z, sc in zones)
    path.write_text(yaml.safe_dump(data))
    env["SUPPLY_ZONES_FILE"] = str(path)


def engine(env: dict[str, str]):
    return make_engine(load_settings("monitoring", env).database_url, pool_size=2)


def count_rows(env: dict[str, str], table) -> int:
    eng = engine(env)
    try:
        with eng.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()
    finally:
        eng.dispose()


def rejects(env: dict[str, str]) -> list:
    eng = engine(env)
    try:
        with eng.connect() as conn:
            return conn.execute(select(schema.ingest_rejects).order_by(schema.ingest_rejects.c.id)).all()
    finally:
        eng.dispose()


# --- processes --------------------------------------------------------------------------------

def ingest_status(env: dict[str, str], client_id: str | None = None) -> dict:
    cid = client_id or env["SUPPLY_MQTT_CLIENT_ID"]
    path = Path(env["SUPPLY_VAR_DIR"]) / "monitoring" / f"ingest-{cid}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def start_ingest(env: dict[str, str], log_dir: Path, **extra_env: str) -> ServiceProcess:
    """An ingest process, returned once its subscriptions are acknowledged."""
    cid = extra_env.get("SUPPLY_MQTT_CLIENT_ID", env["SUPPLY_MQTT_CLIENT_ID"])
    path = Path(env["SUPPLY_VAR_DIR"]) / "monitoring" / f"ingest-{cid}.json"
    path.unlink(missing_ok=True)
    proc = ServiceProcess("monitoring", "ingest", env, log_dir, extra_env=extra_env).start()

    def subscribed():
        if not proc.alive():
            raise AssertionError(f"ingest exited:\n{proc.log()[-3000:]}")
        return ingest_status(env, cid).get("mqtt") == "subscribed"

    eventually(subscribed, timeout=30, interval=0.1, what="ingest subscribed")
    return proc


def start_worker(env: dict[str, str], log_dir: Path, **extra_env: str) -> ServiceProcess:
    return start_consuming("monitoring", "worker", env, log_dir, [WORKER_QUEUE], timeout=40, **extra_env)


def start_relay(env: dict[str, str], log_dir: Path) -> ServiceProcess:
    return ServiceProcess("monitoring", "relay", env, log_dir).start()


def start_api(env: dict[str, str], log_dir: Path) -> ServiceProcess:
    proc = ServiceProcess("monitoring", "api", env, log_dir).start()
    proc.wait_healthy(f"127.0.0.1:{env['MONITORING_GRPC_PORT']}")
    return proc


def probe_effects(db: Path, event_type: str | None = None) -> list[dict]:
    from tests.support import probe_worker

    if not db.exists():
        return []
    eng = make_engine(f"sqlite:///{db}")
    try:
        with eng.connect() as conn:
            q = select(probe_worker.effects.c.event_type, probe_worker.effects.c.payload)
            rows = conn.execute(q).all()
    except Exception:  # noqa: BLE001 - the probe creates its tables on start
        return []
    finally:
        eng.dispose()
    return [json.loads(r.payload) for r in rows if event_type is None or r.event_type == event_type]


# --- MQTT ---------------------------------------------------------------------------------------

class Publisher:
    """QoS 1 publisher (MQTT 3.1.1, clean session) that can wait for every PUBACK."""

    def __init__(self, port: int = PORT):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=uid("pub-"))
        self.client.max_inflight_messages_set(200)
        self.client.connect(HOST, port)
        self.client.loop_start()
        self.infos: list = []

    def publish(self, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> None:
        self.infos.append(self.client.publish(topic, payload, qos=qos, retain=retain))

    def wait(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for info in self.infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        assert all(i.is_published() for i in self.infos), "not every PUBACK arrived"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def drop_session(client_id: str, port: int = PORT) -> None:
    """Remove a persistent session a test created on the shared broker."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    done = threading.Event()
    c.on_connect = lambda *a: done.set()
    try:
        c.connect(HOST, port, clean_start=True, properties=props)
        c.loop_start()
        done.wait(5)
        c.disconnect()
        c.loop_stop()
    except OSError:
        pass


def clear_retained(root: str, port: int = PORT) -> None:
    """Delete the retained messages under `root` (publish empty retained payloads)."""
    topics: set[str] = set()
    marker = f"{root}/_sync/{uid()}"
    seen = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=uid("clr-"))

    def on_message(client, userdata, msg):
        if msg.topic == marker:
            seen.set()
        elif msg.retain and msg.payload:
            topics.add(msg.topic)

    subscribed = threading.Event()
    c.on_message = on_message
    c.on_subscribe = lambda *args: subscribed.set()
    c.connect(HOST, port)
    c.loop_start()
    c.subscribe(f"{root}/#", qos=0)  # QoS 0: a burst of retained messages is never dropped
    subscribed.wait(5)  # SUBACK: the retained messages come before the marker
    c.publish(marker, b"x", qos=1)
    seen.wait(5)
    for t in topics:
        c.publish(t, b"", qos=1, retain=True).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def batch_payload(gateway: str, entries: list[dict]) -> bytes:
    return json.dumps({"gateway": gateway, "readings": entries}).encode()


def entries(depot: str, zone: str, sensors: Iterable[str], start: datetime, minutes: int,
            temp=lambda m, s: 2.0, seq0: int = 1) -> list[dict]:
    """One reading per sensor per minute from `start`."""
    out = []
    for m in range(minutes):
        ts = int((start + timedelta(minutes=m)).timestamp() * 1000)
        for s in sensors:
            out.append({"depot": depot, "zone": zone, "sensor": s, "ts": ts, "seq": seq0 + m,
                        "temp_c": round(temp(m, s), 2), "rh": 80.0})
    return out


def hours_ago(h: float) -> datetime:
    return (datetime.now(UTC) - timedelta(hours=h)).replace(second=0, microsecond=0)


# --- InfluxDB -------------------------------------------------------------------------------------

def influx_count(db: str, where: str = "", url: str = infra.INFLUX_URL) -> int:
    q = "SELECT COUNT(seq) FROM env" + (f" WHERE {where}" if where else "")
    r = requests.post(f"{url}/query", data={"q": q, "db": db}, timeout=10)
    r.raise_for_status()
    series = r.json()["results"][0].get("series")
    return series[0]["values"][0][1] if series else 0


def influx_distinct(db: str, where: str, url: str = infra.INFLUX_URL) -> int:
    q = f"SELECT COUNT(DISTINCT(seq)) FROM env WHERE {where} GROUP BY depot, zone, sensor"
    r = requests.post(f"{url}/query", data={"q": q, "db": db}, timeout=10)
    r.raise_for_status()
    return sum(s["values"][0][1] for s in r.json()["results"][0].get("series", []))
