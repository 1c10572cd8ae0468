"""Logistics' events against the real RabbitMQ with real processes (api, worker, relay of
logistics on one SQLite file, and the probe worker playing intake and monitoring): a donation
inspected in intake becomes a lot, a spoilage alert quarantines a zone and the snapshot stops
offering it, an approved plan reserves stock and becomes trips, and a proof of delivery reaches
intake's side as `delivery_confirmed` with the demand ids."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from supply.v1 import logistics_pb2 as pb

from services.common.db import make_engine
from tests.support import probe_worker
from tests.support.intake import uid
from tests.support.logistics import (
    Logistics,
    confirm_all,
    day,
    env_for,
    migrate,
    plan_line,
    plan_payload,
    publish,
    requester_payload,
    start,
)
from tests.support.polling import eventually
from tests.support.processes import start_probe

PROBED = ("logistics:delivery_confirmed", "logistics:lot_quarantined", "logistics:dispatch_scheduled",
          "logistics:zone_registered")


class Stack:
    def __init__(self, tmp, amqp_url: str):
        self.env = env_for(tmp / "var", amqp_url)
        migrate(self.env)
        self.procs = {"probe": start_probe(self.env, tmp, tmp / "probe.db", *PROBED)}
        self.probe_db = make_engine(f"sqlite:///{tmp / 'probe.db'}")
        for kind in ("api", "worker", "relay"):
            self.procs[kind] = start(kind, self.env, tmp)
        self.api = Logistics(self.env)

    def probed(self, event_type: str) -> list[dict]:
        t = probe_worker.effects
        with self.probe_db.connect() as conn:
            rows = conn.execute(select(t.c.payload).where(t.c.event_type == event_type)
                                .order_by(t.c.id)).all()
        return [json.loads(r.payload) for r in rows]

    def close(self) -> None:
        self.api.close()
        for proc in self.procs.values():
            proc.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, amqp_url):
    s = Stack(tmp_path_factory.mktemp("logistics-events"), amqp_url)
    s.api.depot("D1")
    yield s
    s.close()


def test_zone_registration_is_published(stack):
    got = eventually(lambda: [z for z in stack.probed("zone_registered") if z["zone_id"] == "D1-CHL"],
                     timeout=20, what="zone_registered")
    assert got[0] == {"depot_id": "D1", "zone_id": "D1-CHL", "storage_class": "chilled",
                      "capacity_l": 20_000, "name": "D1-CHL"}


def test_accepted_donation_becomes_a_lot(stack):
    donation_id = uid("DN")
    publish(stack.env, "intake", "donation_inspected", {
        "donation_id": donation_id, "donor_kind": "organization", "donor": "爱心企业",
        "targeted": False, "target_requester_id": None, "target_use": "", "status": "inspected",
        "lines": [
            {"line_no": 0, "item_code": "MASK-N95", "quantity": 2000, "lot": "N95-2026-11",
             "expiry": day(400), "production_date": None, "decision": "accept", "medical_grade": True,
             "redirect_to": "", "reason": "合格", "inspector": "insp-7", "inspected_at": "2026-11-28T02:00:00Z"},
            {"line_no": 1, "item_code": "MILK-1L", "quantity": 30, "lot": "M-1", "expiry": day(5),
             "production_date": None, "decision": "return", "medical_grade": None, "redirect_to": "",
             "reason": "包装破损", "inspector": "insp-7", "inspected_at": "2026-11-28T02:00:00Z"}]})
    lot_id = f"RC-{donation_id}-0/1"
    lot = eventually(lambda: stack.api.lots(lot_id=lot_id), timeout=20, what="donation lot")[0]
    assert (lot.item_code, lot.on_hand, lot.zone_id, lot.source_kind) == ("MASK-N95", 2000, "D1-AMB",
                                                                          "donation")
    assert not stack.api.lots(item_code="MILK-1L")  # returned to the donor: never received


def test_spoilage_alert_quarantines_the_zone_and_the_snapshot_drops_it(stack):
    api = stack.api
    pork = [api.receive("D1", "PORK-KG", 40, expiry_days=5).lots[0].lot_id,
            api.receive("D1", "PORK-KG", 25, expiry_days=6).lots[0].lot_id]
    rice = api.receive("D1", "RICE-10KG", 10).lots[0].lot_id
    offered = {x.lot_id for x in api.GetStockSnapshot(pb.GetStockSnapshotRequest(delivery_day=day(1))).lots}
    assert set(pork) | {rice} <= offered
    alert_id = uid("AL")
    publish(stack.env, "monitoring", "alert_raised", {
        "alert_id": alert_id, "kind": "alarm", "severity": "critical", "depot": "D1", "zone": "D1-CHL",
        "rule_code": "CHL_HOT_INSTANT", "opened_at": "2026-11-28T03:00:00Z", "evidence": {},
        "lot_ids": [], "title_zh": "冷藏温度高于8°C", "title_en": "chilled above 8 °C", "spoilage": True})
    eventually(lambda: all(api.lot(x).status == pb.LOT_STATUS_QUARANTINED for x in pork),
               timeout=20, what="zone quarantined")
    offered = {x.lot_id for x in api.GetStockSnapshot(pb.GetStockSnapshotRequest(delivery_day=day(1))).lots}
    assert rice in offered and not set(pork) & offered
    # one event per lot, relayed from the outbox possibly in separate batches: wait for all of them
    eventually(lambda: {e["lot_id"] for e in stack.probed("lot_quarantined") if e["alert_id"] == alert_id}
               >= set(pork), timeout=20, what="a lot_quarantined event for each pork lot")


def test_approved_plan_becomes_trips_and_delivery_reaches_intake(stack):
    api = stack.api
    rid = uid("V")
    publish(stack.env, "intake", "requester_registered", requester_payload(rid))
    api.vehicle(uid("T"), "D1")
    lot_id = api.receive("D1", "FLOUR-5KG", 30).lots[0].lot_id
    plan_id = uid("P")
    lines = [plan_line(uid("PL"), rid, "FLOUR-5KG", 12, "D1", "DM-1", lots=[(lot_id, 12)]),
             plan_line(uid("PL"), rid, "OIL-5L", 4, "D1", "DM-2")]  # no oil in stock: unmet
    stack.api.receive("D1", "OIL-5L", 1)  # … only one

    def dispatched():
        resp = api.ListTrips(pb.ListTripsRequest(plan_id=plan_id))
        return resp if resp.dispatches and resp.dispatches[0].status == "dispatched" else None

    # the requester event and the plan travel on different queues: wait for the drop point first
    eventually(lambda: _requester_known(stack, rid), timeout=20, what="requester held")
    publish(stack.env, "allocation", "plan_approved", plan_payload(plan_id, day(1), lines))
    resp = eventually(dispatched, timeout=40, interval=0.3, what="plan dispatched")
    assert api.lot(lot_id).reserved == 12
    unmet = {(u.plan_line_id, u.quantity, u.reason.code) for u in resp.dispatches[0].unmet}
    assert (lines[1]["plan_line_id"], 3, "INSUFFICIENT_STOCK") in unmet
    assert len(resp.trips) == 1
    trip = resp.trips[0]
    assert trip.pass_number.startswith("通-") and trip.driver and trip.clerk
    got = eventually(lambda: [e for e in stack.probed("dispatch_scheduled") if e["plan_id"] == plan_id],
                     timeout=20, what="dispatch_scheduled")
    assert got[0]["trips"][0]["trip_id"] == trip.trip_id
    result = api.ConfirmDelivery(confirm_all(trip, trip.stops[0]))
    assert {ln.demand_id for ln in result.lines} == {"DM-1", "DM-2"}
    sent = eventually(lambda: [e for e in stack.probed("delivery_confirmed")
                               if e["trip_id"] == trip.trip_id], timeout=20, what="delivery_confirmed")
    assert {(ln["demand_id"], ln["item_code"], ln["received"]) for ln in sent[0]["lines"]} == {
        ("DM-1", "FLOUR-5KG", 12), ("DM-2", "OIL-5L", 1)}
    assert api.ReconcileLedger(pb.ReconcileLedgerRequest()).ok


def _requester_known(stack, rid: str) -> bool:
    from services.logistics.adapters import schema

    engine = make_engine(f"sqlite:///{stack.env['SUPPLY_VAR_DIR']}/logistics.db")
    try:
        with engine.connect() as conn:
            return conn.execute(select(schema.requesters.c.id)
                                .where(schema.requesters.c.id == rid)).first() is not None
    finally:
        engine.dispose()
