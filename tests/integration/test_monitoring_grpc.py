"""MonitoringService over gRPC (a real API process on the test's SQLite database): alerts listed,
watched and acknowledged, zone status, sensor history from InfluxDB, prices; bad input answered
with INVALID_ARGUMENT naming the field. The state is seeded in-process through the same handlers
the ingest and the worker use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from supply.v1 import common_pb2 as common
from supply.v1 import monitoring_pb2 as pb
from supply.v1 import monitoring_pb2_grpc as rpc

from services.common.catalogue import load_catalogue
from services.common.clock import RealClock
from services.common.config import load_settings
from services.monitoring.adapters.influx import InfluxWriter
from services.monitoring.config import ZoneSpec, monitoring_config
from services.monitoring.handlers import base, lots, zones
from services.monitoring.ingest import Ingest, InMessage
from tests.support.infra import INFLUX_URL
from tests.support.intake import ADMIN, HQ, VILLAGE
from tests.support.monitoring import (
    ROOT_DIR,
    batch_payload,
    engine,
    make_env,
    migrate,
    start_api,
    uid,
)
from tests.support.polling import eventually

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def world(tmp_path_factory, amqp_url, influx_db):
    tmp = tmp_path_factory.mktemp("mon-grpc")
    env = make_env(tmp / "var", amqp_url, influx_db)
    migrate(env)
    settings = load_settings("monitoring", env)
    ctx = base.MonitoringContext(engine=engine(env), catalogue=load_catalogue(), clock=RealClock(),
                              config=monitoring_config(settings), timezone=TZ)
    depot = uid("g")
    zones.apply_zones_file(ctx, [ZoneSpec(depot, "chl", "chilled", ("s1", "s2")),
                             ZoneSpec(depot, "med", "medicine_2_8", ("s1",))])
    api = start_api(env, tmp)
    channel = grpc.insecure_channel(f"127.0.0.1:{env['MONITORING_GRPC_PORT']}")
    yield {"env": env, "ctx": ctx, "depot": depot, "stub": rpc.MonitoringServiceStub(channel),
           "tmp": tmp, "influx_db": influx_db}
    channel.close()
    api.stop()


def call(world, method: str, request, token: str = ADMIN, **kw):
    return getattr(world["stub"], method)(request, metadata=[("authorization", f"Bearer {token}")],
                                          timeout=kw.pop("timeout", 15), **kw)


def bad_field(exc: grpc.RpcError) -> str:
    status = rpc_status.from_call(exc)
    for d in status.details:
        br = error_details_pb2.BadRequest()
        if d.Unpack(br):
            return br.field_violations[0].field
    return ""


def key() -> str:
    return uuid.uuid4().hex


def seed_compressor_failure(world, zone: str = "chl") -> datetime:
    """Readings of a failing chilled room through an in-process ingest writing to InfluxDB."""
    ctx, depot = world["ctx"], world["depot"]
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
    rows = []
    for m in range(90):
        ts = int((start + timedelta(minutes=m)).timestamp() * 1000)
        temp = 2.0 if m < 10 else 2.0 + 0.15 * (m - 10)
        rows += [{"depot": depot, "zone": zone, "sensor": s, "ts": ts, "seq": m + 1,
                  "temp_c": round(temp, 2), "rh": 85.0} for s in ("s1", "s2")]
    writer = InfluxWriter(INFLUX_URL, world["influx_db"], world["tmp"] / uid("spool"))
    try:
        ing = Ingest(ctx, lambda lines: (writer.add(lines), writer.flush()), "grpc-seed")
        root = ctx.config.mqtt_root
        ing.process([InMessage(f"{root}/{depot}/gw/gw1/batch", batch_payload("gw1", rows[i:i + 40]))
                     for i in range(0, len(rows), 40)])
    finally:
        writer.close()
    return start


@pytest.fixture(scope="module")
def seeded(world):
    start = seed_compressor_failure(world)
    ctx = world["ctx"]
    with ctx.uow() as uow:
        lots.stock_received(ctx, uow, {"occurred_at": start.isoformat(), "payload": {
            "lot_id": f"L-{world['depot']}", "item_code": "PORK-KG", "quantity": 40,
            "depot_id": world["depot"], "zone_id": "chl", "expiry": "2099-01-01",
            "received_at": start.isoformat()}})
        lots.reserve_below_floor(ctx, uow, {"payload": {"group": "grain_oil", "days_of_supply": 9.5,
                                                     "floor_days": 15}})
        uow.commit()
    return start


def test_list_alerts_filters_and_pages(world, seeded):
    depot = world["depot"]
    resp = call(world, "ListAlerts", pb.ListAlertsRequest(depot=depot, zone="chl",
                                                          kinds=[pb.ALERT_KIND_ALARM]))
    rules = sorted(a.rule_code for a in resp.alerts)
    assert rules == ["CHL_HOT_INSTANT", "CHL_WARM_30M"] and resp.page.total == 2
    warm = next(a for a in resp.alerts if a.rule_code == "CHL_WARM_30M")
    assert warm.state == pb.ALERT_STATE_OPEN and warm.spoilage and warm.severity == pb.SEVERITY_CRITICAL
    assert warm.history[0].action == pb.ALERT_ACTION_OPENED and warm.evidence["minutes_beyond"] >= 30
    assert warm.title_zh and warm.title_en
    # paging: one per page, newest first, until the token runs out
    seen, token = [], ""
    while True:
        page = call(world, "ListAlerts", pb.ListAlertsRequest(
            depot=depot, page=common.PageRequest(page_size=1, page_token=token)))
        seen += [a.alert_id for a in page.alerts]
        token = page.page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == page.page.total >= 2
    county = call(world, "ListAlerts", pb.ListAlertsRequest(kinds=[pb.ALERT_KIND_RESERVE_BELOW_FLOOR],
                                                            states=[pb.ALERT_STATE_OPEN]))
    assert any(a.subject == "grain_oil" for a in county.alerts)


def test_an_alerts_history_is_stored_once_in_its_own_rows_and_listed_whole(world, seeded):
    """An update must not re-read and rewrite every transition before it (it did: the alert's
    JSON carried its history, O(n²) over a long incident); the API still shows all of it."""
    from sqlalchemy import func, select

    from services.monitoring.adapters import alert_store, schema
    alerts = call(world, "ListAlerts", pb.ListAlertsRequest(depot=world["depot"], zone="chl",
                                                            kinds=[pb.ALERT_KIND_ALARM])).alerts
    warm = next(a for a in alerts if a.rule_code == "CHL_WARM_30M")
    with world["ctx"].uow() as uow:
        data = uow.conn.execute(select(schema.alerts.c.data)
                                .where(schema.alerts.c.alert_id == warm.alert_id)).scalar_one()
        rows = uow.conn.execute(select(func.count()).select_from(schema.alert_history)
                                .where(schema.alert_history.c.alert_id == warm.alert_id)).scalar_one()
    assert "history" not in data
    assert len(warm.history) == rows >= 2
    assert [e.action for e in warm.history[:2]] == [pb.ALERT_ACTION_OPENED, pb.ALERT_ACTION_UPDATED]
    assert warm.updated_at == warm.history[-1].at
    # a row written before the history moved out still reads, its last transition as updated_at
    old = dict(data, history=[{"action": "opened", "at": "2026-01-01T00:00:00+00:00"},
                              {"action": "updated", "at": "2026-01-01T01:00:00+00:00"}])
    old.pop("updated_at")
    restored = alert_store.from_data(old)
    assert restored.history == [] and restored.updated_at == datetime(2026, 1, 1, 1, tzinfo=UTC)


def test_list_alerts_bad_input_names_the_field(world):
    for request, field in (
        (pb.ListAlertsRequest(page=common.PageRequest(page_size=501)), "page.page_size"),
        (pb.ListAlertsRequest(page=common.PageRequest(page_token="%%%")), "page.page_token"),
        (pb.ListAlertsRequest(kinds=[pb.ALERT_KIND_UNSPECIFIED]), "kinds[0]"),
        (pb.ListAlertsRequest(zone="chl"), "depot"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call(world, "ListAlerts", request)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert bad_field(e.value) == field and e.value.details().startswith(field)


def test_acknowledge_is_idempotent_records_who_and_refuses_a_second_acknowledgement(world, seeded):
    alerts = call(world, "ListAlerts", pb.ListAlertsRequest(depot=world["depot"], zone="chl",
                                                            kinds=[pb.ALERT_KIND_ALARM])).alerts
    target = next(a for a in alerts if a.rule_code == "CHL_HOT_INSTANT")
    k = key()
    req = pb.AcknowledgeAlertRequest(idempotency_key=k, alert_id=target.alert_id, note="维修已派单")
    first = call(world, "AcknowledgeAlert", req, token=HQ)
    again = call(world, "AcknowledgeAlert", req, token=HQ)
    assert first == again
    assert first.state == pb.ALERT_STATE_ACKNOWLEDGED and first.acknowledged_by == "hq-officer"
    assert first.acknowledged_note == "维修已派单" and first.history[-1].action == pb.ALERT_ACTION_ACKNOWLEDGED
    with pytest.raises(grpc.RpcError) as e:
        call(world, "AcknowledgeAlert", pb.AcknowledgeAlertRequest(
            idempotency_key=key(), alert_id=target.alert_id), token=HQ)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert e.value.details().startswith("[ALERT_ALREADY_ACKNOWLEDGED]")
    with pytest.raises(grpc.RpcError) as e:
        call(world, "AcknowledgeAlert", pb.AcknowledgeAlertRequest(idempotency_key=key(), alert_id="nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        call(world, "AcknowledgeAlert", pb.AcknowledgeAlertRequest(idempotency_key=key(), alert_id=""))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(e.value) == "alert_id"
    with pytest.raises(grpc.RpcError) as e:
        call(world, "AcknowledgeAlert", pb.AcknowledgeAlertRequest(alert_id=target.alert_id), token=HQ)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(e.value) == "idempotency_key"
    with pytest.raises(grpc.RpcError) as e:
        call(world, "AcknowledgeAlert", pb.AcknowledgeAlertRequest(
            idempotency_key=key(), alert_id=target.alert_id), token=VILLAGE)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_watch_alerts_streams_transitions_and_resumes_from_a_cursor(world, seeded):
    got: list[pb.AlertTransition] = []
    stream = call(world, "WatchAlerts", pb.WatchAlertsRequest(depot=world["depot"]), timeout=60)

    def consume():
        try:
            for t in stream:
                got.append(t)
        except grpc.RpcError:
            pass  # cancelled

    th = threading.Thread(target=consume, daemon=True)
    th.start()
    alerts = call(world, "ListAlerts", pb.ListAlertsRequest(
        depot=world["depot"], kinds=[pb.ALERT_KIND_ALARM], states=[pb.ALERT_STATE_OPEN])).alerts
    target = alerts[0]
    # the stream starts at "now"; its initial metadata says where, before any transition
    start_cursor = int(dict(stream.initial_metadata())["x-watch-cursor"])
    assert start_cursor > 0
    call(world, "AcknowledgeAlert", pb.AcknowledgeAlertRequest(idempotency_key=key(),
                                                               alert_id=target.alert_id), token=HQ)
    eventually(lambda: any(t.alert.alert_id == target.alert_id for t in got), timeout=10,
               what="the acknowledgement on the stream")
    stream.cancel()
    th.join(5)
    ack = next(t for t in got if t.alert.alert_id == target.alert_id)
    assert ack.action == pb.ALERT_ACTION_ACKNOWLEDGED and ack.by == "hq-officer"
    assert all(t.cursor > start_cursor for t in got)
    assert ack.alert.state == pb.ALERT_STATE_ACKNOWLEDGED
    # from the beginning: every transition of this depot, in cursor order, the ack last so far
    replay = call(world, "WatchAlerts", pb.WatchAlertsRequest(depot=world["depot"], after_cursor=0),
                  timeout=60)
    first = []
    for t in replay:
        first.append(t)
        if t.cursor >= ack.cursor:
            break
    replay.cancel()
    assert [t.cursor for t in first] == sorted(t.cursor for t in first)
    assert first[0].action == pb.ALERT_ACTION_OPENED and first[-1].cursor == ack.cursor


def test_zone_status_shows_sensors_open_alarms_and_lot_life(world, seeded):
    z = call(world, "GetZoneStatus", pb.GetZoneStatusRequest(depot=world["depot"], zone="chl"))
    assert z.storage_class == "chilled" and z.storage_class_name_zh == "冷藏" and z.registered_by == "file"
    assert [s.sensor for s in z.sensors] == ["s1", "s2"]
    s1 = z.sensors[0]
    assert s1.HasField("temp_c") and s1.temp_c == pytest.approx(2.0 + 0.15 * 79, abs=0.01)
    assert s1.last_seq == 90 and s1.gateway == "gw1"
    assert {a.rule_code for a in z.open_alerts} >= {"CHL_WARM_30M"}
    lot = z.lots[0]
    assert lot.lot_id == f"L-{world['depot']}" and lot.on_hand == 40
    assert lot.HasField("remaining_days") and lot.remaining_days < lot.sl_ref_days
    with pytest.raises(grpc.RpcError) as e:
        call(world, "GetZoneStatus", pb.GetZoneStatusRequest(depot=world["depot"], zone="nowhere"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        call(world, "GetZoneStatus", pb.GetZoneStatusRequest(depot=world["depot"]))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(e.value) == "zone"


def ts(t: datetime) -> Timestamp:
    m = Timestamp()
    m.FromDatetime(t)
    return m


def test_sensor_history_is_downsampled_by_influxdb(world, seeded):
    start = seeded
    resp = call(world, "GetSensorHistory", pb.GetSensorHistoryRequest(
        depot=world["depot"], zone="chl", start=ts(start), end=ts(start + timedelta(minutes=90)),
        interval=Duration(seconds=600)))
    assert [s.sensor for s in resp.series] == ["s1", "s2"] and resp.interval.seconds == 600
    points = resp.series[0].points
    assert len(points) == 9 and all(p.count == 10 for p in points)
    assert points[0].temp_min_c == 2.0 and points[-1].temp_max_c == pytest.approx(2.0 + 0.15 * 79)
    assert points[0].rh_mean == 85.0
    auto = call(world, "GetSensorHistory", pb.GetSensorHistoryRequest(
        depot=world["depot"], zone="chl", sensor="s2", start=ts(start),
        end=ts(start + timedelta(minutes=90)), max_points=30))
    assert [s.sensor for s in auto.series] == ["s2"] and auto.interval.seconds == 180
    assert sum(p.count for p in auto.series[0].points) == 90
    for request, field in (
        (pb.GetSensorHistoryRequest(depot=world["depot"], zone="chl", start=ts(start)), "end"),
        (pb.GetSensorHistoryRequest(depot=world["depot"], zone="chl", start=ts(start), end=ts(start)), "end"),
        (pb.GetSensorHistoryRequest(depot=world["depot"], zone="chl", start=ts(start),
                                    end=ts(start + timedelta(days=1)), interval=Duration(seconds=1)), "interval"),
        (pb.GetSensorHistoryRequest(zone="chl", start=ts(start), end=ts(start + timedelta(hours=1))), "depot"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call(world, "GetSensorHistory", request)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(e.value) == field


def test_prices_rise_raises_an_alert_and_bad_prices_name_the_field(world):
    market = uid("MKT-")
    today = datetime.now(TZ).date()
    history = [pb.PriceReport(product="PORK", market=market, day=(today - timedelta(days=d)).isoformat(),
                              price_yuan=p) for d, p in ((3, "30.00"), (2, "31.00"), (1, "29.00"))]
    first = call(world, "SubmitPrices", pb.SubmitPricesRequest(idempotency_key=key(), prices=history), token=HQ)
    assert [r.price_fen for r in first.results] == [3000, 3100, 2900] and not first.results[0].alert_id
    k = key()
    req = pb.SubmitPricesRequest(idempotency_key=k, prices=[
        pb.PriceReport(product="PORK", market=market, price_yuan="38.50"),
        pb.PriceReport(product="EGG", market=market, price_yuan="9.80")])
    rise = call(world, "SubmitPrices", req, token=HQ)
    assert rise == call(world, "SubmitPrices", req, token=HQ)  # idempotent
    pork = rise.results[0]
    assert pork.day == today.isoformat() and pork.price_fen == 3850
    assert pork.baseline_fen == 3000 and pork.rise_pct == pytest.approx(28.33, abs=0.01)
    assert pork.alert_id and pork.alert_action == pb.ALERT_ACTION_OPENED and not rise.results[1].alert_id
    alerts = call(world, "ListAlerts", pb.ListAlertsRequest(kinds=[pb.ALERT_KIND_PRICE_RISE])).alerts
    mine = next(a for a in alerts if a.alert_id == pork.alert_id)
    assert mine.subject == f"PORK@{market}" and mine.evidence["price_fen"] == 3850
    back = call(world, "SubmitPrices", pb.SubmitPricesRequest(idempotency_key=key(), prices=[
        pb.PriceReport(product="PORK", market=market, price_yuan="31.00")]), token=HQ)
    assert back.results[0].alert_action == pb.ALERT_ACTION_CLEARED
    for prices, field in (
        ([pb.PriceReport(product="PORK", market=market, price_yuan="12.345")], "prices[0].price_yuan"),
        ([pb.PriceReport(product="EGG", market=market, price_yuan="9.8"),
          pb.PriceReport(product="CAVIAR", market=market, price_yuan="9")], "prices[1].product"),
        ([pb.PriceReport(product="EGG", market="市 场", price_yuan="9")], "prices[0].market"),
        ([pb.PriceReport(product="EGG", market=market, price_yuan="9",
                         day=(today + timedelta(days=1)).isoformat())], "prices[0].day"),
        ([pb.PriceReport(product="EGG", market=market)], "prices[0].price_yuan"),
        ([], "prices"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call(world, "SubmitPrices", pb.SubmitPricesRequest(idempotency_key=key(), prices=prices), token=HQ)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert bad_field(e.value) == field, e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        call(world, "SubmitPrices", pb.SubmitPricesRequest(idempotency_key=key(), prices=history), token=VILLAGE)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_calls_without_a_token_are_unauthenticated(world):
    with pytest.raises(grpc.RpcError) as e:
        world["stub"].ListAlerts(pb.ListAlertsRequest(), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert json.dumps({"ok": True})  # the stub survives for the other tests


def seed_dead_letters(world) -> tuple[str, str]:
    """Refused telemetry of two depots through an in-process ingest (no InfluxDB write needed)."""
    ctx = world["ctx"]
    root = ctx.config.mqtt_root
    a, b = uid("dla"), uid("dlb")
    ts = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    good = {"depot": a, "zone": "chl", "sensor": "s1", "ts": ts, "seq": 1, "temp_c": 2.0, "rh": 80.0}
    Ingest(ctx, lambda lines: None, "dl-seed").process([
        InMessage(f"{root}/{a}/gw/g1/batch", batch_payload("g1", [good, {**good, "seq": 2, "temp_c": "hot"}])),
        InMessage(f"{root}/{a}/chl/s2/telemetry", b'{"ts": '),
        InMessage(f"{root}/{b}/chl/s1/telemetry", b'{"ts": 1, "seq": 1}'),
    ])
    return a, b


def test_ingest_dead_letters_are_listed_by_depot_and_code_newest_first_with_paging(world):
    a, b = seed_dead_letters(world)
    resp = call(world, "ListIngestDeadLetters", pb.ListIngestDeadLettersRequest(depot=a))
    assert resp.page.total == 3 and [d.depot for d in resp.dead_letters] == [a, a, a]
    # newest first; its good reading names zone chl, registered under another depot
    assert [d.code for d in resp.dead_letters] == ["foreign_zone", "bad_json", "wrong_type"]
    typed = resp.dead_letters[2]
    assert typed.entry_index == 1 and "temp_c" in typed.reason and typed.reason_zh
    assert typed.topic.endswith(f"/{a}/gw/g1/batch") and typed.client_id == "dl-seed"
    assert not resp.dead_letters[1].HasField("entry_index")
    only = call(world, "ListIngestDeadLetters", pb.ListIngestDeadLettersRequest(depot=a, codes=["wrong_type"]))
    assert [d.id for d in only.dead_letters] == [typed.id]
    other = call(world, "ListIngestDeadLetters", pb.ListIngestDeadLettersRequest(depot=b), token=HQ)
    assert [(d.depot, d.code) for d in other.dead_letters] == [(b, "missing_field")]
    seen, token = [], ""
    while True:
        page = call(world, "ListIngestDeadLetters", pb.ListIngestDeadLettersRequest(
            depot=a, page=common.PageRequest(page_size=1, page_token=token)))
        seen += [d.id for d in page.dead_letters]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == [d.id for d in resp.dead_letters]
    later = Timestamp()
    later.FromDatetime(datetime.now(UTC) + timedelta(minutes=1))
    assert not call(world, "ListIngestDeadLetters", pb.ListIngestDeadLettersRequest(
        depot=a, received_after=later)).dead_letters


def test_ingest_dead_letters_need_a_sensor_reading_role_and_name_a_bad_page(world):
    with pytest.raises(grpc.RpcError) as e:
        call(world, "ListIngestDeadLetters", pb.ListIngestDeadLettersRequest(), token=VILLAGE)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for request, field in (
        (pb.ListIngestDeadLettersRequest(page=common.PageRequest(page_size=501)), "page.page_size"),
        (pb.ListIngestDeadLettersRequest(page=common.PageRequest(page_token="%%%")), "page.page_token"),
    ):
        with pytest.raises(grpc.RpcError) as e:
            call(world, "ListIngestDeadLetters", request)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(e.value) == field


def test_supplyctl_shows_the_ingest_dead_letters_of_a_depot(world):
    a, b = seed_dead_letters(world)
    run = subprocess.run([sys.executable, "-m", "services.cli", "dead-letters", "monitoring", "--ingest",
                          "--depot", a, "--token", ADMIN], cwd=ROOT_DIR, capture_output=True, text=True,
                         env={**os.environ, **world["env"], "COLUMNS": "250"}, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "bad_json" in run.stdout and "wrong_type" in run.stdout and "(3 of 3)" in run.stdout
    assert b not in run.stdout
    denied = subprocess.run([sys.executable, "-m", "services.cli", "dead-letters", "monitoring", "--ingest",
                             "--token", VILLAGE], cwd=ROOT_DIR, capture_output=True, text=True,
                            env={**os.environ, **world["env"], "COLUMNS": "250"}, timeout=60)
    assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stdout
