"""The monitoring ingest process against the real Mosquitto, InfluxDB and its database: readings
reach InfluxDB exactly once (counted back), malformed payloads are dead-lettered while ingest
goes on, and nothing is lost or doubled when the ingest is killed mid-stream or InfluxDB goes
away (a throwaway influxd of the test's own; the shared one is never stopped)."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from simulators.gateway import GatewayOptions, GatewayRunner
from simulators.sensors import Simulation
from tests.integration.test_influx_spool import ThrowawayInflux
from tests.support.monitoring import (
    Publisher,
    batch_payload,
    clear_retained,
    drop_session,
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

SCENARIO = {
    "name": "it-ingest",
    "interval_s": 60,
    "depots": [
        {"id": "DEPOT", "zones": [{"id": "chl", "storage_class": "chilled", "sensors": 3},
                                  {"id": "frz", "storage_class": "frozen", "sensors": 2}]},
        {"id": "DEPOT2", "zones": [{"id": "amb", "storage_class": "ambient", "sensors": 3}]},
    ],
    "faults": [
        {"at": 30, "depot": "DEPOT2", "zone": "amb", "sensor": "s1", "fault": "duplicate", "duration_min": 60},
        {"at": 30, "depot": "DEPOT2", "zone": "amb", "sensor": "s2", "fault": "out_of_order",
         "duration_min": 60, "params": {"delay_s": 150}},
    ],
}


@pytest.fixture
def env(tmp_path, amqp_url, influx_db):
    e = make_env(tmp_path / "var", amqp_url, influx_db, TEST_DEPOT=uid("it"))
    zones = tmp_path / "zones.yaml"
    zones.write_text(yaml.safe_dump({"depots": [
        {"id": e["TEST_DEPOT"], "zones": [{"id": "chl", "storage_class": "chilled", "sensors": ["s1", "s2"]}]}]}))
    e["SUPPLY_ZONES_FILE"] = str(zones)
    migrate(e)
    yield e
    drop_session(e["SUPPLY_MQTT_CLIENT_ID"])
    clear_retained(e["SUPPLY_MQTT_ROOT"])


def scenario(depot: str) -> dict:
    text = yaml.safe_dump(SCENARIO).replace("DEPOT", depot)
    return yaml.safe_load(text)


def test_simulated_gateways_readings_reach_influxdb_exactly_once(env, tmp_path, influx_db):
    depot = env["TEST_DEPOT"]
    sim = Simulation(scenario(depot), seed=3, start=hours_ago(6))
    register_zones(env, (depot, "frz", "frozen"), (f"{depot}2", "amb", "ambient"))
    ingest = start_ingest(env, tmp_path)
    try:
        runner = GatewayRunner(sim, GatewayOptions(root=env["SUPPLY_MQTT_ROOT"], speed=0, batch_size=50,
                                                   client_prefix=uid("gw-")))
        runner.connect()
        stats = runner.run(duration_min=180)
        runner.close(mark_offline=False)
        for link in runner.links.values():
            drop_session(link.client_id)
        assert stats.unacked == 0 and stats.duplicates > 0 and sim.stats.delayed > 0
        distinct = stats.readings - stats.duplicates
        where = f"depot = '{depot}' OR depot = '{depot}2'"
        eventually(lambda: influx_count(influx_db, where) == distinct, timeout=30,
                   what=f"{distinct} readings in InfluxDB")
        assert influx_distinct(influx_db, where) == distinct  # every (sensor, seq) once
        st = eventually(lambda: ingest_status(env).get("readings") == distinct and ingest_status(env),
                        timeout=10, what="stats written")
        assert st["duplicates"] == stats.duplicates  # QoS 1 duplicates counted, not stored twice
        assert st["readings"] == distinct and st["rejected"] == 0
        # the zones file says DEPOT/chl is chilled: its points carry the storage_class tag
        assert influx_count(influx_db, f"depot = '{depot}' AND storage_class = 'chilled'") > 0
    finally:
        ingest.stop()


def test_malformed_payloads_are_dead_lettered_with_reasons_and_ingest_continues(env, tmp_path, influx_db):
    depot = uid("bad")
    register_zones(env, (depot, "chl", "chilled"))
    root = env["SUPPLY_MQTT_ROOT"]
    ingest = start_ingest(env, tmp_path)
    pub = Publisher()
    try:
        good = entries(depot, "chl", ["s1"], hours_ago(2), 10)
        pub.publish(f"{root}/{depot}/gw/g1/batch", b'{"gateway": "g1", "readings": [')
        pub.publish(f"{root}/{depot}/gw/g1/batch", batch_payload("other", good))
        pub.publish(f"{root}/{depot}/gw/g1/batch",
                    batch_payload("g1", good[:5] + [{**good[5], "temp_c": float("nan")}]))
        pub.publish(f"{root}/{depot}/chl/s9/telemetry", b'{"ts": 1795852800000, "seq": 1}')
        pub.publish(f"{root}/{depot}/chl/s1/telemetry", "温度 正常".encode("gbk"))
        pub.publish(f"{root}/{depot}/gw/g1/batch", batch_payload("g1", good[6:]))
        pub.wait()
        eventually(lambda: influx_count(influx_db, f"depot = '{depot}'") == 9, timeout=20,
                   what="the 9 good readings")
        rows = eventually(lambda: len(rejects(env)) >= 5 and rejects(env), timeout=10, what="dead letters")
        codes = [r.code for r in rows]
        assert codes == ["bad_json", "gateway_mismatch", "not_finite", "missing_field", "bad_encoding"]
        assert "readings[5].temp_c is not a finite number" in rows[2].reason
        assert rows[2].entry_index == 5 and rows[3].reason == "temp_c is missing"
        assert all(r.topic.startswith(f"{root}/{depot}/") for r in rows)
        assert ingest.alive()
        eventually(lambda: ingest_status(env).get("rejected") == 5, timeout=10, what="5 counted")
    finally:
        pub.close()
        ingest.stop()


def _publish_stream(root: str, depot: str, n_messages: int, per_message: int, rate: float,
                    done: threading.Event) -> None:
    """Batches of `per_message` readings (distinct sensors × minutes) at `rate` messages/s."""
    pub = Publisher()
    start = hours_ago(30)
    sensors = [f"s{i}" for i in range(per_message)]
    try:
        for i in range(n_messages):
            pub.publish(f"{root}/{depot}/gw/g1/batch", batch_payload("g1", _minute(depot, sensors, start, i)))
            time.sleep(1.0 / rate)
        pub.wait(60)
    finally:
        pub.close()
        done.set()


def _minute(depot: str, sensors: list[str], start, i: int) -> list[dict]:
    from datetime import timedelta

    ts = int((start + timedelta(minutes=i)).timestamp() * 1000)
    return [{"depot": depot, "zone": "chl", "sensor": s, "ts": ts, "seq": i + 1,
             "temp_c": 2.5, "rh": 80.0} for s in sensors]


def test_kill_9_mid_stream_then_restart_every_qos1_reading_is_stored_exactly_once(env, tmp_path, influx_db):
    depot = uid("kill")
    register_zones(env, (depot, "chl", "chilled"))
    n, per = 600, 20
    ingest = start_ingest(env, tmp_path)
    done = threading.Event()
    t = threading.Thread(target=_publish_stream,
                         args=(env["SUPPLY_MQTT_ROOT"], depot, n, per, 150.0, done), daemon=True)
    t.start()
    where = f"depot = '{depot}'"
    try:
        eventually(lambda: influx_count(influx_db, where) >= 1000, timeout=20, what="ingest under way")
        ingest.kill()  # SIGKILL: no clean-up, unacked messages stay in the broker's session
        killed_at = influx_count(influx_db, where)
        time.sleep(0.5)  # published meanwhile: queued for the session
        ingest = start_ingest(env, tmp_path)
        done.wait(30)
        eventually(lambda: influx_count(influx_db, where) == n * per, timeout=40,
                   what=f"{n * per} readings after the restart")
        assert influx_distinct(influx_db, where) == n * per
        assert 1000 <= killed_at < n * per
    finally:
        ingest.stop()


def test_exit_after_writing_before_acking_redelivers_without_doubling(env, tmp_path, influx_db):
    """Failpoint: the process dies right after its first group is stored, before any PUBACK."""
    depot = uid("fp")
    register_zones(env, (depot, "chl", "chilled"))
    root = env["SUPPLY_MQTT_ROOT"]
    ingest = start_ingest(env, tmp_path, SUPPLY_FAILPOINTS="ingest_exit_before_ack")
    pub = Publisher()
    try:
        for i in range(10):
            pub.publish(f"{root}/{depot}/gw/g1/batch",
                        batch_payload("g1", _minute(depot, ["s1", "s2", "s3"], hours_ago(5), i)))
        pub.wait()
        assert ingest.wait_exit(20) == 75
        stored_before = influx_count(influx_db, f"depot = '{depot}'")
        assert stored_before > 0
        ingest = start_ingest(env, tmp_path)
        eventually(lambda: influx_count(influx_db, f"depot = '{depot}'") == 30, timeout=20,
                   what="30 readings, once each")
        assert influx_distinct(influx_db, f"depot = '{depot}'") == 30
    finally:
        pub.close()
        ingest.stop()


def test_influxdb_down_readings_spool_and_arrive_after_it_returns_none_doubled(env, tmp_path):
    server = ThrowawayInflux(tmp_path / "influxd").start()
    db = "monitoring"
    depot = uid("spool")
    register_zones(env, (depot, "chl", "chilled"))
    root = env["SUPPLY_MQTT_ROOT"]
    ingest = start_ingest(env, tmp_path, INFLUX_URL=server.url, INFLUX_DB=db)
    pub = Publisher()
    try:
        def send(first: int, k: int) -> None:
            for i in range(first, first + k):
                pub.publish(f"{root}/{depot}/gw/g1/batch",
                            batch_payload("g1", _minute(depot, ["s1", "s2"], hours_ago(8), i)))
            pub.wait()

        send(0, 10)
        eventually(lambda: influx_count(db, url=server.url) == 20, timeout=20, what="20 before the outage")
        server.terminate()
        send(10, 15)
        eventually(lambda: ingest_status(env).get("influx", {}).get("spooled_lines", 0) >= 30,
                   timeout=20, what="30 readings spooled")
        assert ingest_status(env)["acked"] >= 25  # acked once spooled (durable), not lost
        server.start()
        eventually(lambda: influx_count(db, url=server.url) == 50, timeout=60,
                   what="50 readings after InfluxDB is back")
        assert influx_distinct(db, "time > 0", url=server.url) == 50
        send(25, 5)
        eventually(lambda: influx_count(db, url=server.url) == 60, timeout=20, what="60 readings")
    finally:
        pub.close()
        ingest.stop()
        server.kill()
