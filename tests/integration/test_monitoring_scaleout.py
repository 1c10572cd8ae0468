"""Two ingest processes behind one shared subscription, on PostgreSQL: each receives part of the
same sensors' batches; the zone's alarm state lives in the database under a row lock, so the
alarm opens once (not once per process), and every reading is stored once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import yaml
from sqlalchemy import select

from services.monitoring.adapters import schema
from tests.support.monitoring import (
    Publisher,
    batch_payload,
    drop_session,
    engine,
    hours_ago,
    influx_count,
    influx_distinct,
    ingest_status,
    make_env,
    migrate,
    start_ingest,
    uid,
)
from tests.support.polling import eventually


@pytest.fixture
def env(tmp_path, amqp_url, influx_db, pg_url_factory):
    depot = uid("so")
    zones = tmp_path / "zones.yaml"
    zones.write_text(yaml.safe_dump({"zones": [{"depot": depot, "zone": "chl", "storage_class": "chilled",
                                                "sensors": ["s1", "s2", "s3"]}]}))
    e = make_env(tmp_path / "var", amqp_url, influx_db, MONITORING_DATABASE_URL=pg_url_factory("monitoring"),
                 SUPPLY_ZONES_FILE=str(zones), TEST_DEPOT=depot, SUPPLY_INGEST_GROUP_WAIT_MS="2")
    migrate(e)
    yield e
    for n in (1, 2):
        drop_session(f"{e['SUPPLY_MQTT_ROOT']}-ingest-{n}")


def test_two_ingest_processes_share_a_zone_and_raise_each_alarm_once(env, tmp_path, influx_db):
    depot, root = env["TEST_DEPOT"], env["SUPPLY_MQTT_ROOT"]
    ids = [f"{root}-ingest-1", f"{root}-ingest-2"]
    procs = [start_ingest(env, tmp_path, SUPPLY_MQTT_CLIENT_ID=cid) for cid in ids]
    pub = Publisher()
    start = hours_ago(5)
    minutes = 120
    try:
        for m in range(minutes):  # one message per minute of the three sensors: 120 messages
            ts = int((start + timedelta(minutes=m)).timestamp() * 1000)
            temp = 2.0 if m < 10 else 2.0 + 0.15 * (m - 10)
            pub.publish(f"{root}/{depot}/gw/g1/batch", batch_payload("g1", [
                {"depot": depot, "zone": "chl", "sensor": s, "ts": ts, "seq": m + 1,
                 "temp_c": round(temp + d, 2), "rh": 85.0} for s, d in (("s1", 0), ("s2", -0.1), ("s3", 0.1))]))
            time.sleep(0.01)
        pub.wait()
        where = f"depot = '{depot}'"
        eventually(lambda: influx_count(influx_db, where) == 3 * minutes, timeout=30, what="every reading")
        assert influx_distinct(influx_db, where) == 3 * minutes
        shares = eventually(lambda: [ingest_status(env, cid).get("readings", 0) for cid in ids]
                            if sum(ingest_status(env, cid).get("readings", 0) for cid in ids) == 3 * minutes
                            else None, timeout=10, what="both processes' stats")
        assert all(n > 0 for n in shares), f"the shared subscription should split the load: {shares}"

        eng = engine(env)
        try:
            with eng.connect() as conn:
                a = schema.alerts
                rows = conn.execute(select(a.c.rule_code, a.c.state, a.c.opened_at)
                                    .where(a.c.depot == depot, a.c.kind == "alarm")).all()
                h = schema.alert_history
                opened = conn.execute(select(h.c.rule_code).where(h.c.depot == depot,
                                                                  h.c.action == "opened")).all()
                version = conn.execute(select(schema.zone_state.c.version)
                                       .where(schema.zone_state.c.zone_key == f"{depot}/chl")).scalar_one()
        finally:
            eng.dispose()
        assert sorted(r.rule_code for r in rows) == ["CHL_HOT_INSTANT", "CHL_WARM_30M"]
        assert sorted(r.rule_code for r in opened) == ["CHL_HOT_INSTANT", "CHL_WARM_30M"]
        warm = next(r for r in rows if r.rule_code == "CHL_WARM_30M")
        # above 4 °C from minute ~23 (s3 first), 30 min continuous: opens around minute 53
        opened_min = (warm.opened_at - start).total_seconds() / 60
        assert 50 <= opened_min <= 60, opened_min
        assert version >= 2  # saved by both processes, group after group
    finally:
        pub.close()
        for p in procs:
            p.stop()
