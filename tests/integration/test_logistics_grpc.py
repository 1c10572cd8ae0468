"""LogisticsService over real gRPC against a real API process on SQLite: bad input and rule
refusals with their codes, idempotent writes, proof of delivery once per stop, the snapshot
allocation reads, ledger export, and a tampered ledger caught by ReconcileLedger and by
`python -m services.logistics.reconcile`."""

from __future__ import annotations

import io
import subprocess
import sys

import grpc
import pytest
from grpc_status import rpc_status
from openpyxl import load_workbook
from sqlalchemy import text
from supply.v1 import logistics_pb2 as pb

from services.common.config import load_settings
from services.logistics.bootstrap import build_context
from services.logistics.handlers import dispatch, sites
from tests.support.intake import VILLAGE, uid
from tests.support.logistics import (
    Logistics,
    confirm_all,
    day,
    env_for,
    key,
    migrate,
    plan_line,
    plan_payload,
    requester_payload,
    start,
)
from tests.support.processes import ROOT


class Stack:
    """The API process on a SQLite file; the test process seeds what arrives by events
    (requesters, approved plans) through the same handlers the worker runs."""

    def __init__(self, tmp, amqp_url: str):
        self.env = env_for(tmp / "var", amqp_url)
        migrate(self.env)
        self.ctx = build_context(load_settings("logistics", self.env))
        self.api_proc = start("api", self.env, tmp)
        self.api = Logistics(self.env)

    def seed(self, fn, *args, **kw):
        with self.ctx.uow() as uow:
            out = fn(self.ctx, uow, *args, **kw)
            uow.commit()
            return out

    def close(self) -> None:
        self.api.close()
        self.api_proc.stop()
        self.ctx.engine.dispose()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, amqp_url):
    s = Stack(tmp_path_factory.mktemp("logistics-grpc"), amqp_url)
    s.api.depot("D1")
    yield s
    s.close()


def _status(exc: grpc.RpcError):
    return rpc_status.from_call(exc)


def rule_of(exc: grpc.RpcError) -> str:
    from google.rpc import error_details_pb2

    for detail in _status(exc).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def test_bad_input_and_rule_refusals_carry_their_codes(stack):
    api = stack.api
    with pytest.raises(grpc.RpcError) as exc:
        api.receive("D1", "RICE-10KG", -5)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith("lines[0].quantity")
    with pytest.raises(grpc.RpcError) as exc:
        api.receive("D1", "RICE-10KG", 5, expiry_days=-1)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rule_of(exc.value) == "EXPIRED_ON_ARRIVAL" and "[EXPIRED_ON_ARRIVAL]" in exc.value.details()
    with pytest.raises(grpc.RpcError) as exc:
        api.receive("D1", "PORK-KG", 5, zone="D1-AMB")
    assert rule_of(exc.value) == "STORAGE_CLASS_MISMATCH"
    with pytest.raises(grpc.RpcError) as exc:
        api.receive("D-NOPE", "RICE-10KG", 5)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as exc:
        api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id="no-such-lot", quantity=1,
                                            plan_line_id="PL-1"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as exc:
        api.receive("D1", "RICE-10KG", 5, token=VILLAGE)
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as exc:
        api.GetStockSnapshot(pb.GetStockSnapshotRequest(delivery_day="tomorrow"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_issue_more_than_the_balance_is_refused_and_writes_are_idempotent(stack):
    api = stack.api
    receipt = api.receive("D1", "FLOUR-5KG", 8)
    lot_id = receipt.lots[0].lot_id
    request = pb.ReceiveStockRequest(idempotency_key=key(), kind=pb.RECEIPT_KIND_PURCHASE,
                                     depot_id="D1", origin_ref="PO-9", lines=[pb.ReceiptLineSpec(
                                         item_code="OIL-5L", quantity=3, lot_number="O-1",
                                         expiry=day(200))])
    first = api.ReceiveStock(request)
    assert api.ReceiveStock(request).receipt_id == first.receipt_id  # same key: same receipt
    plid = uid("PL")
    stack.seed(dispatch.apply_plan_approved, plan_payload(uid("P"), day(1), [
        plan_line(plid, "V-none", "FLOUR-5KG", 20, "D1", "DM-1")]))
    assert api.lot(lot_id).reserved == 8  # FEFO reserved what there is; 12 reported unmet
    with pytest.raises(grpc.RpcError) as exc:
        api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id=lot_id, quantity=9,
                                            plan_line_id=plid))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rule_of(exc.value) == "NEGATIVE_STOCK"
    issued = api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id=lot_id, quantity=8,
                                                 plan_line_id=plid))
    assert (issued.lot.on_hand, issued.lot.reserved, issued.lot.available) == (0, 0, 0)
    assert [ln.kind for ln in issued.ledger_lines] == ["issue"]
    with pytest.raises(grpc.RpcError) as exc:
        api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id=lot_id, quantity=0,
                                            plan_line_id=plid))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_snapshot_offers_only_available_unexpired_stock(stack):
    api = stack.api
    good = api.receive("D1", "NOODLE-1KG", 40, expiry_days=30).lots[0].lot_id
    soon = api.receive("D1", "NOODLE-1KG", 10, expiry_days=1).lots[0].lot_id
    held = api.receive("D1", "NOODLE-1KG", 7, expiry_days=30).lots[0].lot_id
    api.QuarantineLot(pb.QuarantineLotRequest(idempotency_key=key(), lot_id=held,
                                              inspection_ref="INS-1", reason="包装受潮"))
    snap = api.GetStockSnapshot(pb.GetStockSnapshotRequest(delivery_day=day(3),
                                                           item_codes=["NOODLE-1KG"]))
    assert {(x.lot_id, x.available) for x in snap.lots} == {(good, 40)}
    assert [d.depot_id for d in snap.depots] == ["D1"] and snap.ledger_seq > 0
    assert {x.lot_id for x in api.GetStockSnapshot(pb.GetStockSnapshotRequest(
        delivery_day=day(0), item_codes=["NOODLE-1KG"])).lots} == {good, soon}
    released = api.ReleaseLot(pb.ReleaseLotRequest(idempotency_key=key(), lot_id=held,
                                                   inspection_ref="INS-2", reason="复检合格"))
    assert released.lot.status == pb.LOT_STATUS_AVAILABLE
    stock = api.GetStock(pb.GetStockRequest(item_code="NOODLE-1KG"))
    assert stock.lines[0].available == 57
    supply = api.GetDaysOfSupply(pb.GetDaysOfSupplyRequest(population=1000))
    grain = next(g for g in supply.groups if g.group == "grain_oil")
    assert grain.reserve_days == 15 and grain.below_floor and grain.HasField("days")
    receipts = api.ListReceipts(pb.ListReceiptsRequest(depot_id="D1", status="accepted")).receipts
    assert good in {lot.lot_id for r in receipts for lot in r.lots}


def test_confirm_delivery_once_per_stop(stack):
    api = stack.api
    rid = uid("V")
    stack.seed(sites.apply_requester, requester_payload(rid))
    api.vehicle(uid("T"), "D1")
    lot_id = api.receive("D1", "RICE-10KG", 50).lots[0].lot_id
    plan_id, plid = uid("P"), uid("PL")
    stack.seed(dispatch.apply_plan_approved, plan_payload(plan_id, day(1), [
        plan_line(plid, rid, "RICE-10KG", 12, "D1", "DM-7", lots=[(lot_id, 12)])]))
    assert dispatch.route_plan(stack.ctx, plan_id)
    trips = api.ListTrips(pb.ListTripsRequest(plan_id=plan_id))
    assert len(trips.trips) == 1 and trips.dispatches[0].status == "dispatched"
    trip = trips.trips[0]
    manifest = api.GetManifest(pb.GetManifestRequest(trip_id=trip.trip_id))
    assert [(ln.lot_id, ln.quantity, ln.demand_id) for ln in manifest.lines] == [(lot_id, 12, "DM-7")]
    stop = trip.stops[0]
    request = confirm_all(trip, stop)
    first = api.ConfirmDelivery(request)
    again = api.ConfirmDelivery(request)
    assert again == first and first.lines[0].received == 12 and first.lines[0].demand_id == "DM-7"
    other = confirm_all(trip, stop, receiver="另一个人")
    with pytest.raises(grpc.RpcError) as exc:
        api.ConfirmDelivery(other)
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    bad = confirm_all(trip, stop)
    bad.lines[0].received = 13
    with pytest.raises(grpc.RpcError) as exc:
        api.ConfirmDelivery(bad)
    assert exc.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS)
    lot = api.lot(lot_id)
    assert (lot.on_hand, lot.reserved) == (38, 0)
    assert api.ListTrips(pb.ListTripsRequest(plan_id=plan_id)).trips[0].status == "completed"


def test_export_and_a_tampered_ledger_is_caught(stack):
    api = stack.api
    assert api.ReconcileLedger(pb.ReconcileLedgerRequest()).ok
    chunks = list(api.ExportLedger(pb.ExportLedgerRequest(format=pb.EXPORT_FORMAT_XLSX)))
    assert chunks[0].filename.endswith(".xlsx") and chunks[-1].last
    rows = list(load_workbook(io.BytesIO(b"".join(c.data for c in chunks))).active.values)
    assert len(rows) - 1 == chunks[-1].lines > 0
    csv_text = b"".join(c.data for c in api.ExportLedger(
        pb.ExportLedgerRequest(format=pb.EXPORT_FORMAT_CSV))).decode("utf-8-sig")
    assert len(csv_text.strip().splitlines()) == len(rows)
    cli = [sys.executable, "-m", "services.logistics.reconcile"]
    ok = subprocess.run(cli, cwd=ROOT, env=_env(stack),
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with stack.ctx.engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET quantity = quantity + 1 WHERE seq = 2"))
    report = api.ReconcileLedger(pb.ReconcileLedgerRequest())
    assert not report.ok and [(b.seq, b.problem) for b in report.chain_breaks] == [(2, "hash")]
    bad = subprocess.run(cli, cwd=ROOT, env=_env(stack), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "hash" in bad.stdout, bad.stdout + bad.stderr
    with stack.ctx.engine.begin() as conn:  # put it back for the other tests of the module
        conn.execute(text("UPDATE ledger SET quantity = quantity - 1 WHERE seq = 2"))
    assert api.ReconcileLedger(pb.ReconcileLedgerRequest()).ok


def _env(stack) -> dict[str, str]:
    import os

    return {**os.environ, **stack.env}


def test_the_python_example_in_the_docs_runs(stack, tmp_path, monkeypatch):
    doc = (ROOT / "docs" / "logistics.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    from tests.support.intake import ADMIN

    exec(compile(code, "docs/logistics.md", "exec"),
         {"target": f"127.0.0.1:{stack.env['LOGISTICS_GRPC_PORT']}", "token": ADMIN})
    assert (tmp_path / "ledger.csv").read_bytes().startswith(b"\xef\xbb\xbfseq,")


def test_list_depots_gives_each_depot_its_location_and_zones_and_refuses_a_village(stack):
    depots = {d.depot.id: d for d in stack.api.ListDepots(pb.ListDepotsRequest()).depots}
    d1 = depots["D1"]
    assert (round(d1.depot.location.lat, 2), round(d1.depot.location.lon, 2)) == (30.30, 120.10)
    assert d1.zones and all(z.depot_id == "D1" and z.storage_class and z.capacity_l > 0 for z in d1.zones)
    with pytest.raises(grpc.RpcError) as refused:
        stack.api.ListDepots(pb.ListDepotsRequest(), token=VILLAGE)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_approved_lines_are_picked_in_the_policys_order_not_by_tier(stack):
    """HQ's policy puts tier 3 before tier 2 (priority_rank 1 vs 2); with stock for only one
    line, the rank-1 line gets it (issue #15, item 3)."""
    api = stack.api
    lot_id = api.receive("D1", "MASK-N95", 10).lots[0].lot_id
    plan_id, first, second = uid("P"), uid("PL") + "-b", uid("PL") + "-a"
    tier3 = {**plan_line(first, "V-none", "MASK-N95", 10, "D1", "DM-3"), "tier": 3, "priority_rank": 1}
    tier2 = {**plan_line(second, "V-none", "MASK-N95", 10, "D1", "DM-2"), "tier": 2, "priority_rank": 2}
    stack.seed(dispatch.apply_plan_approved, plan_payload(plan_id, day(1), [tier2, tier3]))
    assert api.lot(lot_id).reserved == 10
    issued = api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id=lot_id, quantity=10,
                                                 plan_line_id=first))
    assert issued.lot.on_hand == 0
    with pytest.raises(grpc.RpcError) as exc:  # nothing was reserved for the rank-2 line
        api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id=lot_id, quantity=1,
                                            plan_line_id=second))
    assert rule_of(exc.value) == "NEGATIVE_STOCK"


def test_snapshot_lists_lots_expiring_before_the_delivery_day_as_excluded(stack):
    api = stack.api
    good = api.receive("D1", "ADULT-DIAPER-10", 30, expiry_days=30).lots[0].lot_id
    soon = api.receive("D1", "ADULT-DIAPER-10", 12, expiry_days=1).lots[0].lot_id
    snap = api.GetStockSnapshot(pb.GetStockSnapshotRequest(delivery_day=day(3),
                                                           item_codes=["ADULT-DIAPER-10"]))
    assert [x.lot_id for x in snap.lots] == [good]
    assert [(x.lot.lot_id, x.lot.available, x.lot.expiry, x.reason) for x in snap.excluded_lots] == [
        (soon, 12, day(1), "EXPIRED")]
    on_day = api.GetStockSnapshot(pb.GetStockSnapshotRequest(delivery_day=day(1),
                                                             item_codes=["ADULT-DIAPER-10"]))
    assert {x.lot_id for x in on_day.lots} == {good, soon} and not on_day.excluded_lots


def test_issue_accepts_the_plan_line_id_getplan_shows(stack):
    """plan_approved splits a GetPlan line `<line>` into parts `<line>/<k>`, one per depot and
    item; IssueStock takes either: `<line>` is the part holding the lot's depot and item
    (issue #15, item 8)."""
    api = stack.api
    flour = api.receive("D1", "FLOUR-5KG", 6).lots[0].lot_id
    oil = api.receive("D1", "OIL-5L", 4).lots[0].lot_id
    line = uid("PL")
    stack.seed(dispatch.apply_plan_approved, plan_payload(uid("P"), day(1), [
        plan_line(f"{line}/1", "V-none", "FLOUR-5KG", 6, "D1", "DM-8", lots=[(flour, 6)]),
        plan_line(f"{line}/2", "V-none", "OIL-5L", 4, "D1", "DM-8", lots=[(oil, 4)])]))
    issued = api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id=oil, quantity=3,
                                                 plan_line_id=line))
    assert issued.lot.on_hand == 1
    assert [ln.plan_line_id for ln in issued.ledger_lines] == [f"{line}/2"]
    assert api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id=flour, quantity=6,
                                               plan_line_id=f"{line}/1")).lot.on_hand == 0
    rice = api.receive("D1", "RICE-10KG", 5).lots[0].lot_id
    with pytest.raises(grpc.RpcError) as exc:  # the line has no part for this lot's item
        api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id=rice, quantity=1,
                                            plan_line_id=line))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"{line}/1" in exc.value.details() and f"{line}/2" in exc.value.details()
    with pytest.raises(grpc.RpcError) as exc:
        api.IssueStock(pb.IssueStockRequest(idempotency_key=key(), lot_id=rice, quantity=1,
                                            plan_line_id=uid("PL")))
    assert rule_of(exc.value) == "PLAN_LINE_NOT_APPROVED"
