"""Issue 14 finding 7 and issue 15 item 5, through MQTT into a real ingest process (with the
monitoring worker learning zones from logistics' `zone_registered`), InfluxDB and the service's
database: readings for a zone nobody registered are held (not in InfluxDB), counted, and raise
one unregistered_sensor alert; a gateway writing another depot's zone is refused; registering
the zone judges the held readings; a zone registered just before its first reading is judged at
once, not after the ingest's next zone-map refresh."""

from __future__ import annotations

import json

import pytest
import yaml
from sqlalchemy import select

from services.common.messaging import EventPublisher, make_envelope
from services.monitoring.adapters import schema
from tests.support.monitoring import (
    Publisher,
    batch_payload,
    clear_retained,
    drop_session,
    engine,
    entries,
    hours_ago,
    influx_count,
    ingest_status,
    make_env,
    migrate,
    rejects,
    start_ingest,
    start_worker,
    uid,
)
from tests.support.polling import eventually

CAP = 3  # open unregistered_sensor alerts per depot


@pytest.fixture
def stack(tmp_path, amqp_url, influx_db):
    depot, other = uid("ua"), uid("ub")
    zones = tmp_path / "zones.yaml"
    zones.write_text(yaml.safe_dump({"zones": [
        {"depot": depot, "zone": f"{depot}-chl", "storage_class": "chilled", "sensors": ["s1"]},
        {"depot": other, "zone": f"{other}-chl", "storage_class": "chilled", "sensors": ["s1"]}]}))
    env = make_env(tmp_path / "var", amqp_url, influx_db, SUPPLY_ZONES_FILE=str(zones),
                   SUPPLY_HOLD_CHECK_S="0.2", SUPPLY_UNREGISTERED_ALERTS_PER_DEPOT=str(CAP))
    migrate(env)
    worker = start_worker(env, tmp_path)
    ingest = start_ingest(env, tmp_path)
    pub = Publisher()
    try:
        yield {"env": env, "depot": depot, "other": other, "pub": pub, "influx_db": influx_db}
    finally:
        pub.close()
        ingest.stop()
        worker.stop()
        drop_session(env["SUPPLY_MQTT_CLIENT_ID"])
        clear_retained(env["SUPPLY_MQTT_ROOT"])


def send(stack, zone: str, temps: list[float], minutes_ago: float = 2.0, seq0: int = 1) -> None:
    depot, root = stack["depot"], stack["env"]["SUPPLY_MQTT_ROOT"]
    rows = entries(depot, zone, ["s1"], hours_ago(minutes_ago / 60), len(temps),
                   temp=lambda m, s: temps[m], seq0=seq0)
    stack["pub"].publish(f"{root}/{depot}/gw/g1/batch", batch_payload("g1", rows))
    stack["pub"].wait()


def register_zone(stack, zone: str) -> None:
    """What logistics' RegisterZone publishes."""
    publisher = EventPublisher(stack["env"]["AMQP_URL"])
    try:
        env = make_envelope("logistics", "zone_registered", {
            "depot_id": stack["depot"], "zone_id": zone, "storage_class": "chilled",
            "capacity_l": 1000, "name": zone})
        publisher.publish("logistics.events", "zone_registered", json.dumps(env), env["event_id"])
    finally:
        publisher.close()


def alerts(stack, zone: str | None, kind: str) -> list:
    """The depot's alerts of this kind in this zone (None: in every zone)."""
    eng = engine(stack["env"])
    try:
        with eng.connect() as conn:
            a = schema.alerts
            where = [a.c.depot == stack["depot"], a.c.kind == kind]
            if zone is not None:
                where.append(a.c.zone == zone)
            return conn.execute(select(a.c.alert_id, a.c.state, a.c.rule_code, a.c.zone, a.c.data)
                                .where(*where).order_by(a.c.zone)).all()
    finally:
        eng.dispose()


def held_count(stack) -> int:
    eng = engine(stack["env"])
    try:
        with eng.connect() as conn:
            return len(conn.execute(select(schema.held_readings.c.id)).all())
    finally:
        eng.dispose()


def stored(stack, zone: str) -> int:
    return influx_count(stack["influx_db"], f"depot = '{stack['depot']}' AND zone = '{zone}'")


def test_readings_of_an_unregistered_zone_are_held_counted_and_alerted_once(stack):
    zone = uid("new-")
    send(stack, zone, [2.0] * 5, minutes_ago=30)
    send(stack, zone, [2.0] * 5, minutes_ago=20, seq0=6)
    eventually(lambda: ingest_status(stack["env"]).get("held") == 10, timeout=15, what="10 held")
    known = f"{stack['depot']}-chl"
    send(stack, known, [2.0] * 3)  # a registered zone's readings still go through
    eventually(lambda: stored(stack, known) == 3, timeout=15, what="the registered zone's readings")
    assert stored(stack, zone) == 0
    assert held_count(stack) == 10
    found = alerts(stack, zone, "unregistered_sensor")
    assert len(found) == 1 and found[0].state == "opened" and found[0].rule_code == "UNREGISTERED_SENSOR"
    assert "未登记" in found[0].data["title_zh"] and "not registered" in found[0].data["title_en"]


def test_a_gateway_writing_another_depots_zone_is_refused_counted_and_alerted(stack):
    foreign = f"{stack['other']}-chl"
    send(stack, foreign, [9.5] * 4, minutes_ago=10)
    send(stack, foreign, [9.5] * 4, minutes_ago=5, seq0=5)
    st = eventually(lambda: ingest_status(stack["env"]).get("foreign") == 8 and ingest_status(stack["env"]),
                    timeout=15, what="8 refused as foreign")
    assert st.get("held", 0) == 0
    assert influx_count(stack["influx_db"], f"zone = '{foreign}'") == 0
    assert [r.code for r in rejects(stack["env"])] == ["foreign_zone"] * 8
    found = alerts(stack, foreign, "unregistered_sensor")
    assert len(found) == 1 and found[0].data["evidence"]["registered_under"] == stack["other"]
    assert alerts(stack, foreign, "alarm") == []  # never judged under the other depot's zone


def test_registering_the_zone_judges_its_held_readings_and_resolves_the_alert(stack):
    zone = uid("late-")
    send(stack, zone, [2.0, 2.5, 9.5, 3.0], minutes_ago=10)  # 9.5 °C: CHL_HOT_INSTANT once judged
    eventually(lambda: ingest_status(stack["env"]).get("held") == 4, timeout=15, what="4 held")
    assert alerts(stack, zone, "alarm") == []
    register_zone(stack, zone)
    hot = eventually(lambda: [a for a in alerts(stack, zone, "alarm") if a.rule_code == "CHL_HOT_INSTANT"],
                     timeout=20, what="the held 9.5 °C reading judged")
    assert len(hot) == 1
    eventually(lambda: stored(stack, zone) == 4, timeout=15, what="the held readings in InfluxDB")
    eventually(lambda: held_count(stack) == 0, timeout=10, what="the hold cleared")
    eventually(lambda: alerts(stack, zone, "unregistered_sensor")[0].state == "cleared", timeout=10,
               what="the unregistered-sensor alert resolved")
    eventually(lambda: ingest_status(stack["env"]).get("released") == 4, timeout=5, what="4 counted released")


def test_a_zone_registered_just_before_its_first_reading_is_judged_at_once(stack):
    zone = uid("fresh-")
    register_zone(stack, zone)
    eng = engine(stack["env"])
    try:
        def registered():
            with eng.connect() as conn:
                return conn.execute(select(schema.zones.c.zone_key).where(schema.zones.c.zone == zone)).first()
        eventually(registered, timeout=20, interval=0.02, what="zone registered by the worker")
    finally:
        eng.dispose()
    send(stack, zone, [9.5], minutes_ago=1)
    eventually(lambda: alerts(stack, zone, "alarm"), timeout=3, what="the first reading judged")
    assert ingest_status(stack["env"]).get("held", 0) == 0
    eventually(lambda: stored(stack, zone) == 1, timeout=10, what="stored")


def test_unregistered_sensor_alerts_are_capped_per_depot_beyond_the_cap_only_counted(stack):
    """A gateway publishing made-up zone ids raises CAP zone alerts and one saying the cap was
    hit; further zones are counted, not alerted."""
    depot, root = stack["depot"], stack["env"]["SUPPLY_MQTT_ROOT"]

    def made_up(n: int, minutes_ago: float) -> list[str]:
        zones = [uid("fake-") for _ in range(n)]
        rows = [e for z in zones for e in entries(depot, z, ["s1"], hours_ago(minutes_ago / 60), 1)]
        stack["pub"].publish(f"{root}/{depot}/gw/g1/batch", batch_payload("g1", rows))
        stack["pub"].wait()
        return zones

    made_up(CAP + 3, minutes_ago=10)
    st = eventually(lambda: ingest_status(stack["env"]).get("held") == CAP + 3 and ingest_status(stack["env"]),
                    timeout=15, what="every made-up zone's reading held")
    assert st["unregistered_over_cap"] == 3
    found = alerts(stack, None, "unregistered_sensor")
    per_zone = [a for a in found if a.rule_code == "UNREGISTERED_SENSOR"]
    cap = [a for a in found if a.rule_code == "UNREGISTERED_SENSOR_CAP"]
    assert len(per_zone) == CAP and len(cap) == 1 and cap[0].state == "opened"
    assert cap[0].data["evidence"]["cap"] == CAP and len(cap[0].data["evidence"]["zones_not_alerted"]) == 3
    assert "未登记" in cap[0].data["title_zh"] and "only counted" in cap[0].data["title_en"]
    made_up(2, minutes_ago=5)
    eventually(lambda: ingest_status(stack["env"]).get("unregistered_over_cap") == 5, timeout=15,
               what="two more zones counted over the cap")
    again = alerts(stack, None, "unregistered_sensor")
    assert sorted(a.alert_id for a in again) == sorted(a.alert_id for a in found)  # no new alert
    register_zone(stack, per_zone[0].zone)  # its alert clears: the depot is below the cap again
    eventually(lambda: [a.state for a in alerts(stack, None, "unregistered_sensor")
                        if a.rule_code == "UNREGISTERED_SENSOR_CAP"] == ["cleared"], timeout=20,
               what="the cap's alert cleared")
