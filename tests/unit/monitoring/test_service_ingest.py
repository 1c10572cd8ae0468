"""The ingest pipeline and its handlers against a SQLite file (no broker, no InfluxDB: lines go to a
list). Two `Ingest` objects on one database stand for two ingest processes behind a shared
subscription: each gets part of a sensor's batches, and the alarms must come out as if one
process had seen everything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from services.common.catalogue import load_catalogue
from services.common.clock import FixedClock
from services.common.db import make_engine
from services.common.migrate import upgrade
from services.monitoring.adapters import schema
from services.monitoring.config import MonitoringConfig, ZoneSpec
from services.monitoring.domain.alarms import ZoneAlarms
from services.monitoring.domain.readings import Reading
from services.monitoring.handlers import base, ingest, lots, queries, zones
from services.monitoring.ingest import Ingest, InMessage, domain_topic, topic_filters

CAT = load_catalogue()
T0 = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)


@pytest.fixture
def ctx(tmp_path):
    url = f"sqlite:///{tmp_path / 'monitoring.db'}"
    upgrade("monitoring", url)
    c = base.MonitoringContext(engine=make_engine(url), catalogue=CAT, clock=FixedClock(T0 + timedelta(days=1)),
                            config=MonitoringConfig(mqtt_root="t1"), timezone=ZoneInfo("Asia/Shanghai"))
    zones.apply_zones_file(c, [ZoneSpec("cs", "chl", "chilled", ("s1", "s2"))])
    return c


def batch(depot: str, gateway: str, entries: list[dict], root: str = "t1") -> InMessage:
    return InMessage(f"{root}/{depot}/gw/{gateway}/batch",
                     json.dumps({"gateway": gateway, "readings": entries}).encode())


def entry(minute: int, temp: float, sensor: str = "s1", zone: str = "chl", depot: str = "cs") -> dict:
    return {"depot": depot, "zone": zone, "sensor": sensor,
            "ts": int((T0 + timedelta(minutes=minute)).timestamp() * 1000), "seq": minute,
            "temp_c": temp, "rh": 85.0}


def outbox(ctx) -> list[dict]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(schema.tables["outbox"].c.body).order_by(schema.tables["outbox"].c.id)).all()
    return [json.loads(r.body) for r in rows]


def count(ctx, table) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def compressor_failure(minutes: int = 120) -> list[dict]:
    """2 °C, then +0.15 °C/min from minute 10 (past 4 °C at ~24 min, past 8 °C at ~50 min)."""
    out = []
    for m in range(minutes):
        temp = 2.0 if m < 10 else round(2.0 + 0.15 * (m - 10), 2)
        out += [entry(m, temp, "s1"), entry(m, round(temp - 0.2, 2), "s2")]
    return out


def test_topics_are_rewritten_under_the_configured_root_and_telemetry_is_shared():
    assert domain_topic("t1/cs/gw/g1/batch", "t1") == "supply/cs/gw/g1/batch"
    assert domain_topic("a/b/cs/chl/s1/telemetry", "a/b") == "supply/cs/chl/s1/telemetry"
    assert domain_topic("other/cs/gw/g1/batch", "t1") is None
    assert topic_filters("t1", "monitoring") == [
        ("$share/monitoring/t1/+/gw/+/batch", 1), ("$share/monitoring/t1/+/+/+/telemetry", 1),
        ("t1/+/+/+/status", 0)]


def test_two_processes_sharing_a_sensors_batches_raise_the_alarm_once_as_one_would(ctx):
    lines: list[str] = []
    a = Ingest(ctx, lines.extend, "ingest-a")
    b = Ingest(ctx, lines.extend, "ingest-b")
    entries = compressor_failure()
    chunks = [entries[i:i + 6] for i in range(0, len(entries), 6)]
    for i, chunk in enumerate(chunks):  # alternate like a shared subscription does
        (a if i % 2 == 0 else b).process([batch("cs", "gw-cs", chunk)])

    expected = ZoneAlarms("cs", "chl", CAT.storage_classes["chilled"]).feed_many(
        [Reading("cs", "chl", e["sensor"], datetime.fromtimestamp(e["ts"] / 1000, UTC), e["seq"],
                 e["temp_c"], e["rh"]) for e in entries])
    opened = [t for t in expected if t.state == "opened"]
    assert {t.rule_code for t in opened} == {"CHL_WARM_30M", "CHL_HOT_INSTANT"}

    events = outbox(ctx)
    raised = [e["payload"] for e in events if e["event_type"] == "alert_raised"]
    assert sorted(p["rule_code"] for p in raised) == ["CHL_HOT_INSTANT", "CHL_WARM_30M"]
    warm = next(p for p in raised if p["rule_code"] == "CHL_WARM_30M")
    first = next(t for t in opened if t.rule_code == "CHL_WARM_30M")
    assert warm["opened_at"] == first.at.isoformat() and warm["spoilage"] is True
    assert warm["depot"] == "cs" and warm["zone"] == "chl" and warm["evidence"]["minutes_beyond"] >= 30
    assert len(lines) == len(entries)
    # the zone's state went through the database 20 times, by two writers
    with ctx.engine.connect() as conn:
        version = conn.execute(select(schema.zone_state.c.version)).scalar_one()
    assert version == len(chunks)


def test_readings_of_one_instant_are_judged_in_sensor_order_whatever_order_they_came_in(ctx):
    """s2 before s1 in the batch, both at 9 °C at the same instant: the zone's alarm opens with s1
    (as in time-then-sensor order), and the thermal sums keep s1's temperature for that instant."""
    ing = Ingest(ctx, [].extend, "ingest-a")
    ing.process([batch("cs", "gw-cs", [entry(0, 2.0, "s1"), entry(0, 2.0, "s2")])])
    work = ing.prepare([batch("cs", "gw-cs", [entry(1, 9.5, "s2"), entry(1, 9.0, "s1")])])
    outcome = ing.commit(work)
    opened = [t for t in outcome.transitions if t.rule_code == "CHL_HOT_INSTANT"]
    assert [(t.state, t.sensor) for t in opened] == [("opened", "s1"), ("updated", "s2")]
    assert ing.cache.zones["cs/chl"].thermal.last_temp_c == 9.0


def test_a_redelivered_batch_changes_no_alarm_and_rewrites_identical_lines(ctx):
    lines: list[str] = []
    ing = Ingest(ctx, lines.extend, "ingest-a")
    msgs = [batch("cs", "gw-cs", chunk) for chunk in
            (compressor_failure()[i:i + 20] for i in range(0, 240, 20))]
    for m in msgs:
        ing.process([m])
    before = outbox(ctx)
    n_lines = len(lines)
    restarted = Ingest(ctx, lines.extend, "ingest-a")  # new process: empty de-duplicator and cache
    for m in msgs[-3:]:
        restarted.process([m])
    assert outbox(ctx) == before
    assert lines[n_lines:] == lines[n_lines - 60:n_lines]  # the same points again: InfluxDB overwrites


def test_a_restarted_ingest_decodes_its_zones_state_before_its_first_group_and_reloads_what_moved_on(
        ctx, monkeypatch):
    entries = compressor_failure()
    first = Ingest(ctx, [].extend, "ingest-a")
    first.process([batch("cs", "gw-cs", entries[:40])])
    restarted = Ingest(ctx, [].extend, "ingest-a")
    restarted.refresh_zones(force=True)
    assert restarted.warm() == 1 and restarted.cache.zones["cs/chl"].version == 1
    loaded: list[list[str]] = []
    real = ingest._load_zone_evals
    monkeypatch.setattr(ingest, "_load_zone_evals", lambda c, u, keys, *a: loaded.append(list(keys)) or real(c, u, keys, *a))
    restarted.process([batch("cs", "gw-cs", entries[40:60])])
    assert loaded == [[]]  # nothing left to load: the group's alarms did not wait for it
    other = Ingest(ctx, [].extend, "ingest-b")  # another process moves the zone on meanwhile
    other.process([batch("cs", "gw-cs", entries[60:80])])
    restarted.process([batch("cs", "gw-cs", entries[80:])])
    assert loaded[-1] == ["cs/chl"]  # its copy was stale: loaded again, not trusted
    raised = sorted(e["payload"]["rule_code"] for e in outbox(ctx) if e["event_type"] == "alert_raised")
    assert raised == ["CHL_HOT_INSTANT", "CHL_WARM_30M"]  # as one process would have raised them


def test_spoilage_alarm_carries_the_lots_the_zone_holds(ctx):
    with ctx.uow() as uow:
        for lot, item, zone in (("L-PORK", "PORK-KG", "chl"), ("L-MILK", "MILK-1L", "chl"),
                                ("L-RICE", "RICE-10KG", "amb")):
            lots.stock_received(ctx, uow, {"occurred_at": T0.isoformat(), "payload": {
                "lot_id": lot, "item_code": item, "quantity": 10, "depot_id": "cs", "zone_id": zone,
                "expiry": "2026-12-30", "received_at": T0.isoformat()}})
        uow.commit()
    Ingest(ctx, [].extend, "ingest-a").process([batch("cs", "gw-cs", compressor_failure())])
    raised = [e["payload"] for e in outbox(ctx) if e["event_type"] == "alert_raised"
              and e["payload"]["kind"] == "alarm"]
    assert raised and all(p["lot_ids"] == ["L-MILK", "L-PORK"] for p in raised)


def test_malformed_payloads_are_dead_lettered_with_reasons_and_the_good_readings_pass(ctx):
    lines: list[str] = []
    ing = Ingest(ctx, lines.extend, "ingest-a")
    bad_entry = {**entry(1, 3.0), "temp_c": "warm"}
    msgs = [
        InMessage("t1/cs/gw/gw-cs/batch", b"{not json"),
        batch("cs", "gw-cs", [entry(0, 3.0), bad_entry, {**entry(2, 3.0), "seq": None}]),
        InMessage("t1/cs/chl/s1/telemetry", json.dumps({"ts": 1, "seq": 1, "temp_c": 2.0}).encode()),
        InMessage("t1/cs/chl/s2/status", b"maybe"),
    ]
    work = ing.process(msgs)
    assert len(lines) == 1 and len(work.readings) == 1
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(schema.ingest_rejects).order_by(schema.ingest_rejects.c.id)).all()
    assert [r.code for r in rows] == ["bad_json", "wrong_type", "wrong_type", "bad_timestamp", "wrong_type"]
    assert rows[1].entry_index == 1 and "readings[1].temp_c must be a number" in rows[1].reason
    assert rows[0].topic == "t1/cs/gw/gw-cs/batch" and rows[0].client_id == "ingest-a"
    assert ing.stats["rejected"] == 5


def test_statuses_of_one_group_are_saved_in_arrival_order_for_sensors_gateways_and_new_sensors(ctx):
    ing = Ingest(ctx, [].extend, "ingest-a")
    ing.process([InMessage("t1/cs/chl/s1/status", b"offline"), InMessage("t1/cs/gw/gw-cs/status", b"offline"),
                 InMessage("t1/cs/chl/s9/status", b"online"), InMessage("t1/cs/chl/s1/status", b"online"),
                 InMessage("t1/cs/gw/gw-cs/status", b"online"), InMessage("t1/cs/chl/s2/status", b"offline")])
    with ctx.engine.connect() as conn:
        sensors = dict(conn.execute(select(schema.sensors.c.sensor_key, schema.sensors.c.status)).all())
        gateways = dict(conn.execute(select(schema.gateways.c.gateway_key, schema.gateways.c.status)).all())
    assert sensors == {"cs/chl/s1": "online", "cs/chl/s2": "offline", "cs/chl/s9": "online"}
    assert gateways == {"cs/gw-cs": "online"}
    assert ing.stats["statuses"] == 6


def test_gateway_will_and_silence_make_sensors_offline_and_data_brings_them_back(ctx):
    ing = Ingest(ctx, [].extend, "ingest-a")
    ing.process([batch("cs", "gw-cs", [entry(0, 2.0, "s1"), entry(0, 2.0, "s2")])])
    assert ingest.check_offline(ctx) == []
    ing.process([InMessage("t1/cs/gw/gw-cs/status", b"offline")])
    went = ingest.check_offline(ctx)
    assert {(t.sensor, t.state, t.reason) for t in went} == {("s1", "offline", "last_will"),
                                                             ("s2", "offline", "last_will")}
    assert ingest.check_offline(ctx) == []  # reported once
    ing.process([InMessage("t1/cs/gw/gw-cs/status", b"online")])
    back = ingest.check_offline(ctx)
    assert {(t.sensor, t.state) for t in back} == {("s1", "online"), ("s2", "online")}
    ctx.clock.advance(minutes=3, seconds=1)  # 3 × 60 s without data
    assert {t.reason for t in ingest.check_offline(ctx)} == {"silent"}
    types = [e["event_type"] for e in outbox(ctx)]
    assert types.count("alert_raised") == 4 and types.count("alert_cleared") == 2


def test_reserve_and_expiry_and_segregation_alerts(ctx):
    with ctx.uow() as uow:
        zones.register_zone(ctx, uow, "wh", "flm", "flammable")
        for lot, item, expiry in (("L-ETH", "ETHANOL-75-500ML", "2027-06-01"),
                                  ("L-84", "DISINF-84-1L", "2026-12-05")):
            lots.stock_received(ctx, uow, {"occurred_at": T0.isoformat(), "payload": {
                "lot_id": lot, "item_code": item, "quantity": 5, "depot_id": "wh", "zone_id": "flm",
                "expiry": expiry}})
        lots.reserve_below_floor(ctx, uow, {"payload": {"group": "pork", "days_of_supply": 1.5,
                                                     "floor_days": 3}})
        uow.commit()
    raised = {(p["kind"], p["rule_code"]) for p in
              (e["payload"] for e in outbox(ctx) if e["event_type"] == "alert_raised")}
    assert ("segregation", "SEG_FLAMMABLE_WITH_OXIDIZER") in raised
    assert ("segregation", "SEG_WRONG_CLASS") in raised
    assert ("near_expiry", "NEAR_EXPIRY") in raised  # 84 disinfectant: 7 days left, window 30
    assert ("reserve_below_floor", "RESERVE_FLOOR") in raised
    with ctx.uow() as uow:
        lots.stock_changed(ctx, uow, {"payload": {"lot_id": "L-84", "on_hand": 0, "status": "available",
                                               "ledger_seq": 3}})
        uow.commit()
    cleared = {e["payload"]["rule_code"] for e in outbox(ctx) if e["event_type"] == "alert_cleared"}
    assert {"SEG_FLAMMABLE_WITH_OXIDIZER", "NEAR_EXPIRY"} <= cleared


def test_lot_life_runs_out_in_a_warm_zone_and_is_alerted_for_quarantine(ctx):
    with ctx.uow() as uow:
        lots.stock_received(ctx, uow, {"occurred_at": T0.isoformat(), "payload": {
            "lot_id": "L-PORK", "item_code": "PORK-KG", "quantity": 10, "depot_id": "cs",
            "zone_id": "chl", "received_at": T0.isoformat()}})
        uow.commit()
    # pork: SL_ref 7 d at 4 °C, Tmin -8: at 16 °C RRS = 4, so the life runs out after 1.75 days
    entries = [entry(m, 16.0, "s1") for m in range(0, 60 * 48, 30)]
    Ingest(ctx, [].extend, "ingest-a").process([batch("cs", "gw-cs", entries)])
    ctx.clock.current = T0 + timedelta(days=2)
    assert lots.check_spoilage(ctx) >= 1
    spoiled = [e["payload"] for e in outbox(ctx)
               if e["event_type"] == "alert_raised" and e["payload"]["kind"] == "spoilage"]
    assert len(spoiled) == 1 and spoiled[0]["lot_ids"] == ["L-PORK"] and spoiled[0]["spoilage"] is True
    assert spoiled[0]["evidence"]["remaining_days"] <= 0
    lots.check_spoilage(ctx)  # not raised twice
    assert len([e for e in outbox(ctx) if e["payload"].get("kind") == "spoilage"]) == 1
    with ctx.uow() as uow:
        status = queries.zone_status(ctx, uow, "cs", "chl")
    assert status.lots[0].remaining_days < 0 and status.storage_class == "chilled"


def test_a_flood_of_refused_entries_is_stored_up_to_a_cap_plus_one_summary_row(ctx):
    from dataclasses import replace

    ctx.config = replace(ctx.config, max_reject_rows=3)
    ing = Ingest(ctx, [].extend, "ingest-a")
    bad = [{**entry(m, 3.0), "temp_c": "x"} for m in range(10)]
    ing.process([batch("cs", "gw-cs", bad)])
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(schema.ingest_rejects).order_by(schema.ingest_rejects.c.id)).all()
    assert [r.code for r in rows] == ["wrong_type"] * 3 + ["truncated"]
    assert rows[-1].reason.startswith("7 more rejected") and "wrong_type × 7" in rows[-1].reason
    assert ing.stats["rejected"] == 10
