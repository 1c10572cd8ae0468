"""The monitoring ingest across a restart of its MQTT broker. A private Mosquitto of the test's own
(free port, persistence under tmp; the machine's broker on 1883 is never touched) is stopped with
SIGTERM and started again on the same port with the same persistence file, while the sensor
gateway simulator publishes at QoS 1 (persistent session, resends what was not PUBACKed) and the
ingest consumes (persistent MQTT 5 session, shared subscription, manual acks).

What holds: the ingest's session, with the QoS 1 messages queued or in flight to it, survives the
restart, and a reading is never stored twice. What does not: Mosquitto 2.0 does not save shared
subscriptions in its persistence file (persist__subs_save walks the plain subscriptions of the
topic tree only), so after the restart the ingest's session has no `$share/…` subscription until
the ingest reconnects and subscribes again (paho backs off at least 1 s). A gateway that is back
sooner publishes into that gap; the broker PUBACKs those messages and drops them, as nobody is
subscribed. The mid-stream test is therefore an expected failure (strict: it starts failing
the day the gap is closed, e.g. by a broker that persists shared subscriptions).

Why SIGTERM and not SIGKILL: Mosquitto PUBACKs a QoS 1 message once it is in memory and writes
its persistence file only every `autosave_interval` and on a clean exit. Killed with -9 it
forgets whatever it acknowledged since its last save, by design, so no client can make that
case lossless; it is not tested here."""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from simulators.gateway import GatewayOptions, GatewayRunner, RunStats
from simulators.sensors import Simulation
from tests.support.infra import INFLUX_URL, free_port, port_open
from tests.support.monitoring import (
    Publisher,
    batch_payload,
    entries,
    hours_ago,
    influx_count,
    influx_distinct,
    ingest_status,
    make_env,
    migrate,
    register_zones,
    rejects,
    start_ingest,
    uid,
)
from tests.support.polling import eventually

SENSORS = 30  # one depot, one gateway, 30 sensors reporting every simulated minute
MINUTES = 300  # 9 000 readings in batches of 20: 450 QoS 1 messages
BATCH = 20
RATE = 90.0  # messages per second: the stream lasts ~5 s, the restart lands in it


class PrivateMosquitto:
    """A Mosquitto of the test's own, in the foreground, with persistence under `root`."""

    def __init__(self, root: Path):
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            pytest.fail("mosquitto is not installed: run deploy/scripts/servers.sh up")
        self.binary, self.root = binary, root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.log_path = root / "mosquitto.log"
        self.config = root / "mosquitto.conf"
        # as deploy/mosquitto/mosquitto.conf (persistence, deep session queues) without
        # authentication; `user`: started as root, Mosquitto would switch to the `mosquitto` user,
        # which may not write into pytest's tmp directory
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {root}/\n"
            "persistence_file mosquitto.db\n"
            "autosave_interval 60\n"
            "max_queued_messages 200000\n"
            "max_queued_bytes 0\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrivateMosquitto:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

        def up() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            return port_open(self.port)

        _must(up, 15, f"private mosquitto on {self.port}", interval=0.02)
        return self

    def terminate(self) -> None:
        """SIGTERM: Mosquitto drops its clients, saves its in-memory database and exits."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"mosquitto did not exit on SIGTERM:\n{self.log()[-3000:]}")
        if rc != 0 or "Saving in-memory database" not in self.log().rsplit("terminating", 1)[-1]:
            pytest.fail(f"mosquitto exited {rc} without saving:\n{self.log()[-3000:]}")
        _must(lambda: not port_open(self.port), 5, f"port {self.port} closed", interval=0.02)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def connected_since_last_start(self) -> list[str]:
        """Client ids in the order they connected to the running broker."""
        run = self.log().rsplit(" running", 1)[-1]
        return [line.rsplit(" as ", 1)[1].split(" ", 1)[0] for line in run.splitlines()
                if "New client connected" in line]


def _must(probe, timeout: float, what: str, interval: float = 0.05):
    """`eventually`, but a timeout is a broken precondition (pytest.fail), never the
    AssertionError the expected failure below stands for."""
    try:
        return eventually(probe, timeout=timeout, interval=interval, what=what)
    except AssertionError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def broker(tmp_path):
    server = PrivateMosquitto(tmp_path / "mosquitto").start()
    yield server
    server.kill()


@pytest.fixture
def env(tmp_path, amqp_url, influx_db, broker):
    # the county default: a plain subscription (SUPPLY_MQTT_SHARE_GROUP empty), which Mosquitto
    # 2.0 keeps in the persistent session across its restart (a $share one it does not: ADR 0003)
    e = make_env(tmp_path / "var", amqp_url, influx_db, MQTT_URL=broker.url, SUPPLY_MQTT_SHARE_GROUP="")
    migrate(e)
    return e


def _simulation(depot: str, sensors: int) -> Simulation:
    """No faults: every reading is distinct, so the gateway's count is the expectation."""
    return Simulation({"name": "it-broker-restart", "interval_s": 60,
                       "depots": [{"id": depot, "zones": [{"id": "chl", "storage_class": "chilled",
                                                           "sensors": sensors}]}]},
                      seed=11, start=hours_ago(12))


def _gateway(sim: Simulation, env: dict, broker: PrivateMosquitto, **options) -> GatewayRunner:
    opts = GatewayOptions(mqtt_url=broker.url, root=env["SUPPLY_MQTT_ROOT"], speed=0,
                          batch_size=BATCH, client_prefix=uid("gw-"), ack_timeout_s=20, **options)
    return GatewayRunner(sim, opts, log=lambda line: None)


def _ingest_log(ingest, message: str) -> list[dict]:
    """The ingest's JSON log records with this message."""
    out = []
    for line in ingest.log().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("message") == message:
            out.append(rec)
    return out


def _seqs(db: str, depot: str, sensor: str) -> list[int]:
    q = f"SELECT seq FROM env WHERE depot = '{depot}' AND sensor = '{sensor}'"
    r = requests.post(f"{INFLUX_URL}/query", data={"q": q, "db": db}, timeout=10)
    r.raise_for_status()
    series = r.json()["results"][0].get("series") or [{"values": []}]
    return sorted(int(v[1]) for v in series[0]["values"])


def _gaps(seqs: list[int]) -> list[str]:
    return [f"{a + 1}..{b - 1}" for a, b in zip(seqs, seqs[1:], strict=False) if b - a > 1]


def test_broker_restart_mid_stream_every_qos1_reading_is_stored_exactly_once(
        broker, env, tmp_path, influx_db):
    depot = uid("brk")
    marker = uid("mark")
    register_zones(env, (depot, "chl", "chilled"), (marker, "chl", "chilled"))
    where = f"depot = '{depot}'"
    ingest = start_ingest(env, tmp_path)
    runner = _gateway(_simulation(depot, SENSORS), env, broker, max_rate=RATE)
    for link in runner.links.values():
        # a field gateway that retries at once (paho's default waits 1 s, like the ingest, and
        # who comes back first would be a coin toss): it is back before the ingest, every run
        link.client.reconnect_delay_set(min_delay=0.05, max_delay=0.4)
    result: dict[str, RunStats | BaseException] = {}

    def publish() -> None:
        try:
            result["stats"] = runner.run(duration_min=MINUTES)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=publish, name="gateway", daemon=True)
    try:
        runner.connect()
        thread.start()
        _must(lambda: influx_count(influx_db, where) >= 1_500, 20, "ingest under way")

        broker.terminate()
        stored_before = influx_count(influx_db, where)
        if not thread.is_alive() or stored_before >= SENSORS * MINUTES:
            pytest.fail("the broker restart did not land mid-stream")
        broker.start()  # same port and persistence file: sessions and their queues come back

        thread.join(60)
        if thread.is_alive():
            pytest.fail("the gateway did not finish within 60 s")
        if "error" in result:
            raise result["error"]
        stats = result["stats"]
        if stats.unacked or stats.readings != SENSORS * MINUTES or stats.duplicates or stats.garbage:
            pytest.fail(f"gateway: {stats.summary()}")
        if not all(link.connects >= 2 for link in runner.links.values()):
            pytest.fail("the gateway did not reconnect")
        # the ingest is back on its persistent session and subscribed again
        _must(lambda: len(_ingest_log(ingest, "mqtt subscribed")) >= 2, 20, "ingest re-subscribed")
        reconnect = _ingest_log(ingest, "mqtt connected")[-1]
        if reconnect.get("session_present") is not True or reconnect.get("generation") != 2:
            pytest.fail(f"the ingest's session did not survive the restart: {reconnect}")
        order = broker.connected_since_last_start()
        if order.index(env["SUPPLY_MQTT_CLIENT_ID"]) < order.index(next(iter(runner.links.values())).client_id):
            pytest.fail(f"the ingest was back before the gateway: {order}")

        # barrier: a marker published now is delivered after everything queued before it, so once
        # it is stored, everything that will ever arrive has
        pub = Publisher(port=broker.port)
        try:
            pub.publish(f"{env['SUPPLY_MQTT_ROOT']}/{marker}/gw/g1/batch",
                        batch_payload("g1", entries(marker, "chl", ["s1"], hours_ago(1), 1)))
            pub.wait(10)
        finally:
            pub.close()
        _must(lambda: influx_count(influx_db, f"depot = '{marker}'") == 1, 30, "the marker stored")

        expected = stats.readings
        stored = influx_count(influx_db, where)
        distinct = influx_distinct(influx_db, where)
        assert stored == distinct, f"{stored - distinct} readings stored twice"
        assert rejects(env) == [], "readings refused on redelivery"
        assert ingest_status(env).get("rejected", 0) == 0
        sensor = "s01"
        assert distinct == expected, (
            f"{expected - distinct} of {expected} PUBACKed readings lost (stored before the "
            f"restart: {stored_before}); {sensor} is missing seq {_gaps(_seqs(influx_db, depot, sensor))}; "
            f"connected after the restart: {order}")
    finally:
        runner.stop()
        if thread.is_alive():
            thread.join(30)
        runner.close(mark_offline=False)
        ingest.stop()


def test_backlog_queued_for_a_stopped_ingest_survives_a_broker_restart_exactly_once(
        broker, env, tmp_path, influx_db):
    """The part that holds: QoS 1 messages already queued in the ingest's session when the
    broker goes down are restored from its persistence file and stored once each."""
    depot = uid("blg")
    register_zones(env, (depot, "chl", "chilled"))
    where = f"depot = '{depot}'"
    ingest = start_ingest(env, tmp_path)
    ingest.stop()  # clean DISCONNECT: the session stays, with SUPPLY_MQTT_SESSION_EXPIRY_S
    runner = _gateway(_simulation(depot, 10), env, broker)
    try:
        runner.connect()
        stats = runner.run(duration_min=60)
        assert stats.unacked == 0 and stats.readings == 600
    finally:
        runner.close(mark_offline=False)

    broker.terminate()
    broker.start()
    ingest = start_ingest(env, tmp_path)
    try:
        eventually(lambda: influx_count(influx_db, where) == 600, timeout=30,
                   what="600 queued readings after the broker restart")
        assert influx_distinct(influx_db, where) == 600
        assert _ingest_log(ingest, "mqtt connected")[0].get("session_present") is True
    finally:
        ingest.stop()
