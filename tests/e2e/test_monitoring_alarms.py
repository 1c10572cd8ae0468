"""Monitoring end to end with its four processes (ingest, worker, relay; a probe worker plays
logistics): the worker learns a lot from logistics' `stock_received`; a scripted compressor
failure, published by the gateway simulator over MQTT at accelerated speed, opens CHL_WARM_30M;
`alert_raised` arrives on the `monitoring.events` exchange with that lot's id and spoilage true;
the transition lands in InfluxDB (measurement `alarm`); the gateway's clean exit (retained
`offline` statuses) makes the worker raise sensor_offline alerts."""

from __future__ import annotations

import json

import pytest
import requests
import yaml
from sqlalchemy import select

from services.common.messaging import EventPublisher, make_envelope
from services.monitoring.adapters import schema
from simulators.gateway import GatewayOptions, GatewayRunner
from simulators.sensors import Simulation
from tests.support.infra import INFLUX_URL
from tests.support.monitoring import (
    clear_retained,
    drop_session,
    engine,
    hours_ago,
    make_env,
    migrate,
    probe_effects,
    start_ingest,
    start_relay,
    start_worker,
    uid,
)
from tests.support.polling import eventually
from tests.support.processes import start_probe


@pytest.fixture
def env(tmp_path, amqp_url, influx_db):
    depot = uid("cs")
    scenario = {
        "name": "e2e-compressor", "interval_s": 60,
        "depots": [{"id": depot, "zones": [{"id": "chl", "storage_class": "chilled", "sensors": ["s1", "s2"]},
                                           {"id": "amb", "storage_class": "ambient", "sensors": ["s1"]}]}],
        "faults": [{"at": 20, "depot": depot, "zone": "chl", "fault": "compressor_failure",
                    "duration_min": 90, "params": {"rate_c_per_min": 0.15}}],
    }
    zones = tmp_path / "scenario.yaml"
    zones.write_text(yaml.safe_dump(scenario))
    e = make_env(tmp_path / "var", amqp_url, influx_db, SUPPLY_ZONES_FILE=str(zones),
                 SUPPLY_OFFLINE_CHECK_S="1", SUPPLY_EXPORT_CHECK_S="0.5", TEST_DEPOT=depot)
    migrate(e)
    yield e, scenario
    drop_session(e["SUPPLY_MQTT_CLIENT_ID"])
    clear_retained(e["SUPPLY_MQTT_ROOT"])


def lots_known(env: dict, lot_id: str) -> bool:
    eng = engine(env)
    try:
        with eng.connect() as conn:
            return conn.execute(select(schema.lots.c.lot_id).where(schema.lots.c.lot_id == lot_id)).first() is not None
    finally:
        eng.dispose()


def alarm_points(db: str, depot: str) -> list:
    r = requests.post(f"{INFLUX_URL}/query", timeout=10, data={
        "db": db, "q": f"SELECT state, rule_code, alert_id FROM alarm WHERE depot = '{depot}'"})
    series = r.json()["results"][0].get("series") or []
    return series[0]["values"] if series else []


def test_compressor_failure_raises_a_spoilage_alert_with_the_lots_of_the_zone(env, tmp_path, influx_db):
    env, scenario = env
    depot = env["TEST_DEPOT"]
    probe_db = tmp_path / "probe.db"
    procs = [start_probe(env, tmp_path, probe_db, "monitoring:alert_raised"),
             start_worker(env, tmp_path), start_relay(env, tmp_path)]
    try:
        start = hours_ago(4)
        lot_id = uid("LOT-PORK-")
        publisher = EventPublisher(env["AMQP_URL"])
        publisher.publish("logistics.events", "stock_received", json.dumps(make_envelope(
            "logistics", "stock_received", {
                "receipt_id": uid("R-"), "lot_id": lot_id, "item_code": "PORK-KG", "quantity": 120,
                "depot_id": depot, "zone_id": "chl", "storage_class": "chilled", "expiry": "2099-12-31",
                "source_kind": "purchase", "source_ref": "PO-1", "received_at": start.isoformat()})),
            uid("m-"))
        publisher.close()
        eventually(lambda: lots_known(env, lot_id), timeout=20, what="the worker learned the lot")

        procs.append(start_ingest(env, tmp_path))
        sim = Simulation(scenario, seed=11, start=start)
        runner = GatewayRunner(sim, GatewayOptions(root=env["SUPPLY_MQTT_ROOT"], speed=0, batch_size=40,
                                                   client_prefix=uid("gw-")))
        runner.connect()
        stats = runner.run(duration_min=150)
        assert stats.unacked == 0

        def warm_alert():
            return [p for p in probe_effects(probe_db, "alert_raised") if p["rule_code"] == "CHL_WARM_30M"]

        raised = eventually(warm_alert, timeout=30, what="alert_raised CHL_WARM_30M on monitoring.events")
        assert len(raised) == 1
        p = raised[0]
        assert p["lot_ids"] == [lot_id] and p["spoilage"] is True and p["kind"] == "alarm"
        assert (p["depot"], p["zone"]) == (depot, "chl") and p["severity"] == "critical"
        assert p["evidence"]["minutes_beyond"] >= 30 and p["evidence"]["limit"] == 4
        assert p["title_zh"] and p["title_en"]
        assert not [x for x in probe_effects(probe_db, "alert_raised") if x["zone"] == "amb"]

        points = eventually(lambda: alarm_points(influx_db, depot), timeout=20, what="alarm points")
        assert {"opened"} <= {v[1] for v in points}
        assert p["alert_id"] in {v[3] for v in points}

        runner.close(mark_offline=True)  # retained "offline" on the gateway and every sensor
        for link in runner.links.values():
            drop_session(link.client_id)
        def offline():
            got = {(x["zone"], x["subject"], x["evidence"]["reason"])
                   for x in probe_effects(probe_db, "alert_raised")
                   if x["kind"] == "sensor_offline" and x["depot"] == depot}
            return got if len(got) == 3 else None

        assert eventually(offline, timeout=20, what="3 sensor_offline alerts") == {
            ("chl", "s1", "last_will"), ("chl", "s2", "last_will"), ("amb", "s1", "last_will")}
    finally:
        for proc in procs:
            proc.stop()
