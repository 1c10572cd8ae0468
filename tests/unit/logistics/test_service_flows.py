"""Logistics use cases end to end on SQLite: receipts with put-away, donations, issues,
quarantine with re-picking, plan → trips, proof of delivery, reserves, audit."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from services.common.auth import Caller
from services.common.days import parse_instant
from services.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleRefused
from services.logistics import audit
from services.logistics.domain.policy import ReceiptPolicy
from services.logistics.handlers import (
    delivery,
    dispatch,
    ledger,
    queries,
    receipts,
    sites,
    stock,
)
from tests.unit.logistics.test_service_support import (
    HQ,
    KEEPER,
    TODAY,
    TOMORROW,
    balance,
    events,
    make_ctx,
    plan,
    plan_line,
    receive,
    requester,
    run,
    setup_depot,
    vehicle,
    write,
)

PROOF = "photo:" + "ab" * 32


@pytest.fixture
def ctx(tmp_path):
    c = make_ctx(tmp_path)
    setup_depot(c)
    return c


def test_receipt_puts_away_by_class_and_publishes_stock_received(ctx):
    lot = receive(ctx, "PORK-KG", 40, expiry=TODAY + timedelta(days=5))
    b = balance(ctx, lot)
    assert (b.zone_id, b.on_hand, b.status) == ("D1-CHL", 40, "available")
    got = events(ctx, "stock_received")[-1]
    assert got["lot_id"] == lot and got["storage_class"] == "chilled" and got["quantity"] == 40
    changed = events(ctx, "stock_changed")[-1]
    assert (changed["kind"], changed["on_hand"], changed["available"]) == ("receipt", 40, 40)
    assert events(ctx, "zone_registered")[0] == {
        "depot_id": "D1", "zone_id": "D1-AMB", "storage_class": "ambient", "capacity_l": 100_000,
        "name": "D1-AMB"}


@pytest.mark.parametrize("spec, rule", [
    (dict(item="RICE-10KG", expiry=TODAY - timedelta(days=1)), "EXPIRED_ON_ARRIVAL"),
    (dict(item="PORK-KG", zone="D1-AMB"), "STORAGE_CLASS_MISMATCH"),
    (dict(item="RICE-10KG", qty=10_000), "NO_FITTING_ZONE"),
    (dict(item="RICE-10KG", qty=8_000, zone="D1-AMB"), "ZONE_CAPACITY"),
    (dict(item="RICE-10KG", kind="transfer", origin=""), "ORIGIN_DOCUMENT_REQUIRED"),
])
def test_receipt_refusals_name_their_rule(ctx, spec, rule):
    with pytest.raises(RuleRefused) as exc:
        receive(ctx, spec["item"], spec.get("qty", 5), zone=spec.get("zone", ""),
                expiry=spec.get("expiry"), kind=spec.get("kind", "purchase"),
                origin=spec.get("origin", "PO-1"))
    assert exc.value.rule == rule
    assert events(ctx, "stock_received") == []


def test_segregation_refuses_an_oxidizer_into_a_zone_holding_flammables(tmp_path):
    ctx = make_ctx(tmp_path)
    run(ctx, sites.register_depot, HQ, {"id": "D9", "name": "危化品库", "lat": 30.0, "lon": 120.0})
    run(ctx, sites.register_zone, HQ, {"id": "D9-HAZ", "depot_id": "D9", "storage_class": "flammable",
                                   "capacity_l": 5000})
    ctx.receipt_policy = ReceiptPolicy(zone_accepts={"flammable": frozenset({"oxidizer"})})
    receive(ctx, "ETHANOL-75-500ML", 10, depot="D9", zone="D9-HAZ")
    with pytest.raises(RuleRefused) as exc:
        receive(ctx, "DISINF-84-1L", 10, depot="D9", zone="D9-HAZ")
    assert exc.value.rule == "SEGREGATION"


def test_accepted_donation_lines_become_lots_and_others_are_recorded_refused(ctx):
    payload = {"donation_id": "DN-1", "lines": [
        {"line_no": 0, "item_code": "MASK-N95", "quantity": 500, "lot": "L-7",
         "expiry": (TODAY + timedelta(days=300)).isoformat(), "decision": "accept", "inspector": "insp-1"},
        {"line_no": 1, "item_code": "MILK-1L", "quantity": 50, "lot": "L-8",
         "expiry": (TODAY + timedelta(days=3)).isoformat(), "decision": "return"},
        {"line_no": 2, "item_code": "PORK-KG", "quantity": 10, "lot": "L-9",
         "expiry": (TODAY - timedelta(days=1)).isoformat(), "decision": "accept"},
    ]}
    out = run(ctx, receipts.receive_donation, payload)
    assert [o["status"] for o in out] == ["accepted", "refused"]
    assert out[1]["rule_code"] == "EXPIRED_ON_ARRIVAL"
    lot = balance(ctx, out[0]["lot_ids"][0])
    assert (lot.zone_id, lot.on_hand, lot.source_kind) == ("D1-AMB", 500, "donation")
    assert run(ctx, receipts.receive_donation, payload) == []  # the same lines again: nothing new


def test_donation_goes_to_the_configured_depot_when_it_has_a_fitting_zone(ctx):
    setup_depot(ctx, "D2")
    ctx.donation_depot = "D2"
    out = run(ctx, receipts.receive_donation, {"donation_id": "DN-2", "lines": [
        {"line_no": 0, "item_code": "RICE-10KG", "quantity": 5, "lot": "X",
         "expiry": (TODAY + timedelta(days=100)).isoformat(), "decision": "accept"}]})
    assert balance(ctx, out[0]["lot_ids"][0]).depot_id == "D2"


def test_issue_needs_an_approved_plan_line_and_never_goes_below_zero(ctx):
    lot = receive(ctx, "RICE-10KG", 10)
    with pytest.raises(RuleRefused) as exc:
        run(ctx, stock.issue_stock, KEEPER, lot_id=lot, quantity=1, plan_line_id="PL-X")
    assert exc.value.rule == "PLAN_LINE_NOT_APPROVED"
    run(ctx, dispatch.apply_plan_approved, plan("P1", plan_line("PL-1", "RICE-10KG", 20, depot="D2")))
    with pytest.raises(RuleRefused) as exc:
        run(ctx, stock.issue_stock, KEEPER, lot_id=lot, quantity=1, plan_line_id="PL-1")
    assert exc.value.rule == "LOT_MISMATCH"
    run(ctx, dispatch.apply_plan_approved, plan("P2", plan_line("PL-2", "RICE-10KG", 30, lots=[("nope", 30)])))
    # the named lot is unknown: re-picked FEFO, 10 reserved, 20 unmet
    assert balance(ctx, lot).reserved == 10
    run(ctx, stock.issue_stock, KEEPER, lot_id=lot, quantity=10, plan_line_id="PL-2")
    with pytest.raises(RuleRefused) as exc:
        run(ctx, stock.issue_stock, KEEPER, lot_id=lot, quantity=1, plan_line_id="PL-2")
    assert exc.value.rule == "NEGATIVE_STOCK"
    assert (balance(ctx, lot).on_hand, balance(ctx, lot).reserved) == (0, 0)
    with pytest.raises(NotFound):
        run(ctx, stock.issue_stock, KEEPER, lot_id="missing", quantity=1, plan_line_id="PL-2")
    with pytest.raises(InvalidInput):
        run(ctx, stock.issue_stock, KEEPER, lot_id=lot, quantity=-1, plan_line_id="PL-2")
    with pytest.raises(PermissionDenied):
        run(ctx, stock.issue_stock, Caller("v", "village"), lot_id=lot, quantity=1, plan_line_id="PL-2")
    assert audit.reconcile(ctx.engine, ctx.ledger_key).ok


def _routed(ctx):
    run(ctx, sites.apply_requester, requester("V1"))
    run(ctx, sites.apply_requester, requester("V2", lat=30.35, lon=120.15))
    run(ctx, sites.register_vehicle, HQ, vehicle("T1"))
    old = receive(ctx, "PORK-KG", 30, expiry=TODAY + timedelta(days=3))
    new = receive(ctx, "PORK-KG", 30, expiry=TODAY + timedelta(days=6))
    rice = receive(ctx, "RICE-10KG", 100)
    run(ctx, dispatch.apply_plan_approved, plan(
        "P1", plan_line("PL-1", "PORK-KG", 20, demand="D-1"),
        plan_line("PL-2", "RICE-10KG", 10, lots=[(rice, 10)], demand="D-1"),
        plan_line("PL-3", "PORK-KG", 15, requester_id="V2", demand="D-2")))
    return old, new, rice


def test_plan_reserves_fefo_and_named_lots_then_routes_trips(ctx):
    old, new, rice = _routed(ctx)
    assert (balance(ctx, old).reserved, balance(ctx, new).reserved, balance(ctx, rice).reserved) == (30, 5, 10)
    assert dispatch.route_plan(ctx, "P1")
    assert not dispatch.route_plan(ctx, "P1")  # already dispatched
    with ctx.engine.connect() as conn:
        trips, plans = queries.list_trips(conn, plan_id="P1")
    assert len(trips) == 1 and plans[0].status == "dispatched"
    sent = events(ctx, "dispatch_scheduled")[0]
    shipped = {(ln["plan_line_id"], ln["lot_id"]): ln["quantity"]
               for t in sent["trips"] for s in t["stops"] for ln in s["lines"]}
    assert shipped == {("PL-1", old): 20, ("PL-2", rice): 10, ("PL-3", old): 10, ("PL-3", new): 5}
    assert {s["requester_id"] for s in sent["trips"][0]["stops"]} == {"V1", "V2"}
    assert sent["staffing"]["required"] == 8  # 35 households each → 4 persons per drop point


def test_quarantine_repicks_fefo_and_swaps_the_lot_on_the_trip(ctx):
    old, new, rice = _routed(ctx)
    dispatch.route_plan(ctx, "P1")
    out = run(ctx, stock.apply_alert, {"alert_id": "AL-1", "spoilage": True, "depot": "D1", "zone": "D1-CHL",
                                   "lot_ids": [old], "rule_code": "CHL_WARM_30M", "title_en": "warm"})
    assert [(r.plan_line_id, r.released, r.repicked, r.unmet) for r in out[0].repicks] == [
        ("PL-1", 20, 20, 0), ("PL-3", 10, 5, 5)]
    b = balance(ctx, old)
    assert (b.status, b.quarantined, b.reserved) == ("quarantined", 30, 0)
    with ctx.engine.connect() as conn:
        trip = queries.trip_row(conn, queries.list_trips(conn, plan_id="P1")[0][0].id)
    lots_on_trip = {ln["lot_id"] for s in trip.data["trip"]["stops"] for ln in s["lines"]}
    assert old not in lots_on_trip
    quarantined = events(ctx, "lot_quarantined")[0]
    assert quarantined["alert_id"] == "AL-1" and quarantined["lot_id"] == old
    with ctx.engine.connect() as conn:
        assert old not in {r.lot_id for r in queries.snapshot(ctx, conn, TOMORROW, [])[2]}
    # empty lot_ids: the whole zone
    run(ctx, stock.apply_alert, {"alert_id": "AL-2", "spoilage": True, "depot": "D1", "zone": "D1-CHL",
                             "lot_ids": []})
    assert balance(ctx, new).status == "quarantined"
    assert run(ctx, stock.apply_alert, {"alert_id": "AL-3", "spoilage": False, "depot": "D1",
                                    "zone": "D1-AMB", "lot_ids": []}) == []
    assert audit.reconcile(ctx.engine, ctx.ledger_key).ok


def test_release_and_write_off_by_a_person(ctx):
    lot = receive(ctx, "PORK-KG", 30)
    run(ctx, stock.quarantine_by_person, KEEPER, lot_id=lot, inspection_ref="INS-1", reason="包装破损")
    with pytest.raises(InvalidInput):
        run(ctx, stock.release, KEEPER, lot_id=lot, inspection_ref="", reason="ok")
    run(ctx, stock.release, KEEPER, lot_id=lot, inspection_ref="INS-2", reason="复检合格")
    assert balance(ctx, lot).status == "available"
    with pytest.raises(RuleRefused) as exc:
        run(ctx, stock.release, KEEPER, lot_id=lot, inspection_ref="INS-3", reason="again")
    assert exc.value.rule == "NOT_QUARANTINED"
    run(ctx, stock.write_off, KEEPER, lot_id=lot, quantity=0, doc_type="stocktake", doc_id="ST-1",
        reason="盘亏")
    assert (balance(ctx, lot).status, balance(ctx, lot).on_hand) == ("written_off", 0)
    assert [e["outcome"] for e in events(ctx, "lot_released")] == ["released", "written_off"]


def test_delivery_issues_returns_and_publishes_demand_results(ctx):
    old, new, rice = _routed(ctx)
    dispatch.route_plan(ctx, "P1")
    with ctx.engine.connect() as conn:
        trip = queries.list_trips(conn, plan_id="P1")[0][0]
    stop = next(s for s in trip.data["trip"]["stops"] if s["requester_id"] == "V1")
    lines = [delivery.ReceivedSpec(ln["plan_line_id"], ln["lot_id"], ln["quantity"]) for ln in stop["lines"]]
    lines[0] = delivery.ReceivedSpec(lines[0].plan_line_id, lines[0].lot_id, lines[0].received - 2,
                              (("refused", 2, "包装破损"),))
    args = dict(trip_id=trip.id, requester_id="V1", drop_point_id="DP1", receiver="村专班",
                received_at=parse_instant("2026-11-29T02:00:00Z", "received_at"), proof_ref=PROOF, lines=lines)
    first = write(ctx, "k1", delivery.confirm_delivery, KEEPER, **args)
    assert write(ctx, "k1", delivery.confirm_delivery, KEEPER, **args) == first  # same key
    assert write(ctx, "k2", delivery.confirm_delivery, KEEPER, **args) == first  # same content
    with pytest.raises(Conflict):
        write(ctx, "k3", delivery.confirm_delivery, KEEPER, **{**args, "receiver": "别人"})
    sent = events(ctx, "delivery_confirmed")
    assert len(sent) == 1
    got = {ln["plan_line_id"]: ln for ln in sent[0]["lines"]}
    assert {ln["demand_id"] for ln in sent[0]["lines"]} == {"D-1"}
    refused = got[lines[0].plan_line_id]
    assert (refused["received"], refused["refused"], refused["discrepancy"]) == (
        lines[0].received, 2, "refused")
    b = balance(ctx, lines[0].lot_id)
    assert b.reserved >= 0 and audit.reconcile(ctx.engine, ctx.ledger_key).ok


def test_reserve_below_floor_is_published_on_the_change_only(tmp_path):
    ctx = make_ctx(tmp_path, population=1000)
    setup_depot(ctx)
    receive(ctx, "RICE-10KG", 100)  # 1000 kg for 1000 people eating 0.4 kg/day … well below 15 days
    receive(ctx, "RICE-10KG", 10)
    below = [e for e in events(ctx, "reserve_below_floor") if e["group"] == "grain_oil"]
    assert len(below) == 1 and below[0]["floor_days"] == 15


def test_tampered_ledger_is_detected_and_exports_carry_the_hashes(ctx):
    lot = receive(ctx, "RICE-10KG", 10)
    receive(ctx, "FLOUR-5KG", 5)
    assert audit.reconcile(ctx.engine, ctx.ledger_key).ok
    buf = io.BytesIO()
    assert audit.export(ctx.engine, buf, "csv") == 2
    assert buf.getvalue().decode("utf-8-sig").splitlines()[0].startswith("seq,at_utc,at_us,kind")
    xbuf = io.BytesIO()
    audit.export(ctx.engine, xbuf, "xlsx")
    rows = list(load_workbook(io.BytesIO(xbuf.getvalue())).active.values)
    assert len(rows) == 3 and rows[1][-1] == json.loads(json.dumps(rows[1][-1]))
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET quantity = 99 WHERE lot_id = :l"), {"l": lot})
    report = audit.reconcile(ctx.engine, ctx.ledger_key)
    assert not report.ok and [(b.seq, b.problem) for b in report.chain_breaks] == [(1, "hash")]
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE lot_balances SET on_hand = 3 WHERE lot_id = :l"), {"l": lot})
    assert [(m.lot_id, m.field) for m in audit.reconcile(ctx.engine, ctx.ledger_key).mismatches] == [(lot, "on_hand")]


def test_a_plan_line_naming_a_quarantined_lot_is_repicked_fefo_never_reserved_there(ctx):
    bad = receive(ctx, "RICE-10KG", 50, expiry=TODAY + timedelta(days=20))
    good = receive(ctx, "RICE-10KG", 8, expiry=TODAY + timedelta(days=40))
    run(ctx, stock.quarantine_by_person, KEEPER, lot_id=bad, inspection_ref="INS-1", reason="受潮")
    run(ctx, dispatch.apply_plan_approved, plan("P1", plan_line("PL-1", "RICE-10KG", 10, lots=[(bad, 10)])))
    assert (balance(ctx, bad).reserved, balance(ctx, good).reserved) == (0, 8)
    with ctx.engine.connect() as conn:
        data = queries.list_trips(conn, plan_id="P1")[1][0].data
    assert [(u["plan_line_id"], u["quantity"], u["code"]) for u in data["unmet"]] == [
        ("PL-1", 2, "INSUFFICIENT_STOCK")]
    assert run(ctx, dispatch.apply_plan_approved, plan("P1", plan_line("PL-9", "RICE-10KG", 1))) is None


def test_days_of_supply_counts_usable_stock_against_the_floor(tmp_path):
    ctx = make_ctx(tmp_path, population=100)
    setup_depot(ctx)
    receive(ctx, "RICE-10KG", 10)  # 100 kg of rice
    lot = receive(ctx, "FLOUR-5KG", 10)  # 50 kg of flour, then quarantined: not usable
    run(ctx, stock.quarantine_by_person, KEEPER, lot_id=lot, inspection_ref="I", reason="x")
    with ctx.engine.connect() as conn:
        pop, _, groups = ledger.supply_days(ctx, conn)
    grain = next(g for g in groups if g.group == "grain_oil")
    assert pop == 100 and grain.usable == 100 and grain.below_floor and grain.reserve_days == 15
