"""Allocation's use cases (handlers/) on a real SQLite database in a tmp dir, with the
in-memory StockSource and a fixed clock: intake's events build the view, the cut-off proposes
once, HQ approves or rejects, events land in the outbox with the documented payloads."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from services.allocation.adapters import schema
from services.allocation.adapters.stock import DepotInfo, InMemoryStockSource, StockUnavailable
from services.allocation.domain import StockLot
from services.allocation.domain import plan_state as ps
from services.allocation.domain import reasons as rs
from services.allocation.domain.county_policy import CountyPolicy
from services.allocation.entrypoints.worker import CutoffRunner
from services.allocation.handlers.base import AllocationContext
from services.allocation.handlers.cutoff import cutoff_due_day, run_cutoff
from services.allocation.handlers.explain import explain_line
from services.allocation.handlers.forecast import forecast
from services.allocation.handlers.intake_events import (
    apply_demand_cancelled,
    apply_demand_closed,
    apply_demand_registered,
    apply_requester,
)
from services.allocation.handlers.plans import (
    approve_plan,
    check_can_run,
    draft_plan,
    dry_run_view,
    get_plan,
    latest_plan_id,
    list_plans,
    reject_plan,
    save_plan,
)
from services.allocation.handlers.policy import (
    announce_policy,
    current_policy,
    policy_versions,
    set_policy,
)
from services.common.auth import Caller
from services.common.catalogue import load_catalogue
from services.common.clock import FixedClock
from services.common.db import make_engine
from services.common.errors import InvalidInput, NotFound, PermissionDenied, RuleRefused
from services.common.migrate import upgrade
from tests.unit.allocation.allocation_support import at as place

CST = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 1)
CAT = load_catalogue()
HQ = Caller("hq-officer", "hq")
NO_RESERVE = {g: 0 for g in CAT.groups}


def local(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=CST)


@pytest.fixture
def ctx(tmp_path):
    url = f"sqlite:///{tmp_path / 'allocation.db'}"
    upgrade("allocation", url)
    lat, lon = place(0, 0)
    far_lat, far_lon = place(30, 0)
    stock = InMemoryStockSource(
        [DepotInfo("D-NEAR", "城关仓", lat, lon), DepotInfo("D-FAR", "河西仓", far_lat, far_lon)],
        [StockLot("L-RICE-1", "D-NEAR", "RICE-10KG", 60, DAY + timedelta(days=200)),
         StockLot("L-RICE-2", "D-FAR", "RICE-10KG", 100, DAY + timedelta(days=300)),
         StockLot("L-MASK", "D-NEAR", "MASK-N95", 1000, DAY + timedelta(days=500)),
         StockLot("L-OIL", "D-NEAR", "OIL-5L", 4, DAY + timedelta(days=100)),
         StockLot("L-PACK", "D-FAR", "LIVING-PACK-STD", 10, DAY + timedelta(days=90))],
        taken_at=local(10, 59), ledger_seq=42)
    c = AllocationContext(engine=make_engine(url), catalogue=CAT,
                            clock=FixedClock(local(9)), tz=CST,
                            default_policy=CountyPolicy(reserve_days=NO_RESERVE), stock=stock)
    yield c
    c.engine.dispose()


def apply(ctx, fn, payload):
    with ctx.uow() as uow:
        result = fn(ctx, uow, payload)
        uow.commit()
    return result


def write(ctx, fn, *args, **kw):
    with ctx.uow() as uow:
        result = fn(ctx, uow, *args, **kw)
        uow.commit()
    return result


def requester(rid, x_km=0.0, kind="village", population=1000, drop_point="DP-1", version=1,
              risk="sealed"):
    lat, lon = place(x_km, 0)
    return {"requester_id": rid, "kind": kind, "name": "东风村", "township": "城关镇",
            "location": {"lat": lat, "lon": lon},
            "drop_points": [{"id": drop_point, "name": "村委会"}] if drop_point else [],
            "population": population if kind != "unit" else None, "households": 300,
            "risk_level": risk if kind != "unit" else None,
            "unit_type": "hospital" if kind == "unit" else None,
            "headcount": 200 if kind == "unit" else None, "beds": 50 if kind == "unit" else None,
            "vulnerable": None, "version": version}


def demand(did, rid, *lines, day=DAY):
    return {"demand_id": did, "requester_id": rid, "requester_kind": "village",
            "township": "城关镇", "delivery_day": day.isoformat(), "submitted_at": "2026-12-01T01:00:00Z",
            "origin": "direct", "flagged": False, "top_tier": min(t for _, _, t in lines),
            "lines": [{"line_no": i, "item_code": c, "quantity": q, "tier": t, "tier_name": "",
                       "flagged": False, "norm_quantity": None, "special_need_id": None, "note": ""}
                      for i, (c, q, t) in enumerate(lines, start=1)]}


def seed(ctx):
    """A hospital 1 km and a village 2 km from the near depot; rice is short (160 for 200)."""
    apply(ctx, apply_requester, requester("H1", 1, kind="unit", drop_point=None))
    apply(ctx, apply_requester, requester("V1", 2))
    apply(ctx, apply_demand_registered, demand("D-H1", "H1", ("MASK-N95", 100, 1),
                                                 ("RICE-10KG", 50, 1)))
    apply(ctx, apply_demand_registered, demand("D-V1", "V1", ("RICE-10KG", 150, 3),
                                                 ("OIL-5L", 10, 3)))


def outbox(ctx, routing_key):
    t = schema.tables["outbox"]
    with ctx.engine.connect() as conn:
        bodies = conn.execute(select(t.c.body).where(t.c.routing_key == routing_key)
                              .order_by(t.c.id)).scalars()
        return [json.loads(b)["payload"] for b in bodies]


def count(ctx, table):
    with ctx.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.tables[table])).scalar_one()


def cutoff(ctx):
    ctx.clock.current = local(11, 0)
    return run_cutoff(ctx)


def manual(ctx, actor=HQ):
    draft = draft_plan(ctx, DAY)
    return write(ctx, save_plan, actor, draft, ps.PlanTrigger.MANUAL)


# ---- the view from intake's events ---------------------------------------------------------
def test_newer_requester_snapshot_wins_and_a_late_older_one_is_ignored(ctx):
    assert apply(ctx, apply_requester, requester("V1", 2, population=1000, version=2))
    assert not apply(ctx, apply_requester, requester("V1", 2, population=5, version=1))
    with ctx.engine.connect() as conn:
        row = conn.execute(select(schema.requesters.c.version, schema.requesters.c.data)).one()
    assert (row.version, row.data["population"]) == (2, 1000)


def test_cancelled_and_closed_demands_leave_the_open_set_even_when_they_arrive_first(ctx):
    seed(ctx)
    apply(ctx, apply_demand_cancelled, {"demand_id": "D-V1", "requester_id": "V1",
                                          "delivery_day": DAY.isoformat(), "reason": "no longer"})
    # the cancellation of D-X overtakes its registration (different queues)
    apply(ctx, apply_demand_cancelled, {"demand_id": "D-X", "requester_id": "V1",
                                          "delivery_day": DAY.isoformat(), "reason": "dup"})
    assert not apply(ctx, apply_demand_registered, demand("D-X", "V1", ("RICE-10KG", 5, 3)))
    view = cutoff(ctx)
    assert {pl.line.demand_id for pl in view.lines} == {"D-H1"}
    assert view.details.demand_ids == ("D-H1",)


def test_bad_event_payloads_are_refused_naming_the_field(ctx):
    bad = demand("D-1", "V1", ("RICE-10KG", 5, 3))
    bad["lines"][0]["quantity"] = 0
    with pytest.raises(InvalidInput) as exc:
        apply(ctx, apply_demand_registered, bad)
    assert exc.value.field == "payload.lines[0].quantity"
    with pytest.raises(InvalidInput) as exc:
        apply(ctx, apply_requester, {**requester("V1"), "location": {}})
    assert exc.value.field == "payload.location"


# ---- the cut-off -------------------------------------------------------------------------------
def test_the_cutoff_proposes_one_plan_for_the_day_with_reasons_lots_and_the_event(ctx):
    seed(ctx)
    ctx.clock.current = local(10, 59)
    assert cutoff_due_day(ctx) is None and run_cutoff(ctx) is None
    view = cutoff(ctx)
    header = view.header
    assert (header.version, header.status, header.trigger, header.created_by) == (
        1, ps.PlanStatus.PROPOSED, ps.PlanTrigger.CUTOFF, "system:cutoff")
    assert header.dispatch_deadline == local(17)
    lines = {(s.line.demand_id, s.line.item_code): s for s in view.lines}
    hospital_rice = lines[("D-H1", "RICE-10KG")].line
    village_rice = lines[("D-V1", "RICE-10KG")].line
    assert hospital_rice.allocated == 50 and village_rice.allocated == 110
    assert rs.TIER_ORDER in village_rice.codes and village_rice.unmet > 0
    assert [(p.depot_id, p.lot_id) for p in hospital_rice.picks][0] == ("D-NEAR", "L-RICE-1")
    assert all(r.zh and r.en for s in view.lines for r in s.line.reasons)
    assert lines[("D-V1", "RICE-10KG")].drop_point_id == "DP-1"
    assert lines[("D-H1", "MASK-N95")].drop_point_id == ""  # the unit has no drop point
    # the stock source was asked for the day's items and the packages that may stand in
    (called_day, codes), = ctx.stock.calls
    assert called_day == DAY and {"RICE-10KG", "OIL-5L", "MASK-N95", "LIVING-PACK-STD"} <= set(codes)
    assert (view.details.stock_ledger_seq, view.details.stock_taken_at) == (42, local(10, 59))
    (event,) = outbox(ctx, "plan_proposed")
    assert (event["plan_id"], event["version"], event["trigger"], event["lines_count"]) == (
        header.plan_id, 1, "cutoff", 4)
    assert event["unmet_count"] == view.details.totals.unmet_lines >= 1
    assert {t["tier"] for t in event["totals_per_tier"]} == {1, 3}
    # later ticks of the same day (any process) do nothing
    ctx.clock.current = local(15)
    assert cutoff_due_day(ctx) is None and run_cutoff(ctx) is None
    assert count(ctx, "plans") == 1 and len(ctx.stock.calls) == 1


def test_the_cutoff_follows_the_stored_policy(ctx):
    seed(ctx)
    write(ctx, set_policy, HQ, {"cutoff": "09:30"}, None)
    ctx.clock.current = local(9, 29)
    assert cutoff_due_day(ctx) is None
    ctx.clock.current = local(9, 30)
    assert cutoff_due_day(ctx) == DAY
    assert run_cutoff(ctx).header.policy_version == 1


def test_stock_unavailable_stores_nothing(ctx):
    seed(ctx)
    ctx.stock.fail_with = "logistics down"
    ctx.clock.current = local(11)
    with pytest.raises(StockUnavailable):
        run_cutoff(ctx)
    assert count(ctx, "plans") == 0 and outbox(ctx, "plan_proposed") == []
    assert cutoff_due_day(ctx) == DAY  # still due: the next tick tries again


def test_demands_of_unknown_requesters_are_left_out_with_a_warning(ctx):
    seed(ctx)
    apply(ctx, apply_demand_registered, demand("D-NEW", "V-NEW", ("RICE-10KG", 5, 3)))
    view = cutoff(ctx)
    assert view.details.skipped_demands == ("D-NEW",)
    assert "REQUESTER_UNKNOWN" in {w.code for w in view.details.warnings}
    assert "D-NEW" not in {s.line.demand_id for s in view.lines}


def test_a_day_without_demands_gets_no_plan_until_a_demand_arrives(ctx):
    assert cutoff(ctx) is None and ctx.stock.calls == [] and count(ctx, "plans") == 0
    apply(ctx, apply_requester, requester("V1", 2))
    # registered before the cut-off, delivered late by the broker: still planned that day
    apply(ctx, apply_demand_registered, demand("D-LATE", "V1", ("RICE-10KG", 5, 3)))
    ctx.clock.current = local(11, 30)
    assert cutoff_due_day(ctx) == DAY
    assert [s.line.demand_id for s in run_cutoff(ctx).lines] == ["D-LATE"]


def test_an_empty_dry_run_does_not_ask_logistics(ctx):
    view = dry_run_view(ctx, draft_plan(ctx, DAY), page_size=0)
    assert view.details.totals.lines == 0 and view.lines == () and ctx.stock.calls == []


def test_cutoff_runner_runs_the_process_when_due_and_backs_off_after_a_failure(ctx, tmp_path):
    seed(ctx)
    marker = tmp_path / "ran"
    cmd = [sys.executable, "-c",
           f"import pathlib,sys; p=pathlib.Path({str(marker)!r}); "
           f"p.write_text(p.read_text()+'x' if p.exists() else 'x'); sys.exit(75)"]
    runner = CutoffRunner(ctx, command=cmd)
    ctx.clock.current = local(10)
    runner.tick()
    assert not marker.exists()  # before the cut-off nothing runs
    ctx.clock.current = local(11)
    runner.tick()
    assert marker.read_text() == "x" and runner.failures == 1
    runner.tick()  # within the back-off: not again
    assert marker.read_text() == "x"
    runner.not_before = 0
    runner.command = [sys.executable, "-c", "pass"]
    runner.tick()
    assert runner.failures == 0


# ---- runs and decisions ------------------------------------------------------------------------
def test_dry_run_computes_without_storing(ctx):
    seed(ctx)
    ctx.clock.current = local(9)  # before the cut-off a dry run is fine
    check_can_run(ctx, DAY, dry_run=True)
    with pytest.raises(RuleRefused) as exc:
        check_can_run(ctx, DAY, dry_run=False)
    assert exc.value.rule == ps.BEFORE_CUTOFF
    view = dry_run_view(ctx, draft_plan(ctx, DAY), page_size=2)
    assert view.dry_run and view.header.plan_id == "" and len(view.lines) == 2
    assert view.details.totals.lines == 4
    assert count(ctx, "plans") == 0 and count(ctx, "outbox") == 0


def test_reject_then_replan_gives_the_next_version_and_approve_publishes_lines(ctx):
    seed(ctx)
    v1 = cutoff(ctx).header
    ctx.clock.current = local(12)
    with pytest.raises(PermissionDenied):
        write(ctx, reject_plan, Caller("v", "village"), v1.plan_id, "no")
    rejected = write(ctx, reject_plan, HQ, v1.plan_id, "医院需求需复核")
    assert outbox(ctx, "plan_rejected") == [{
        "plan_id": v1.plan_id, "delivery_day": "2026-12-01", "version": 1,
        "rejected_by": "hq-officer", "rejected_at": "2026-12-01T04:00:00Z",
        "reason": "医院需求需复核"}]
    with pytest.raises(RuleRefused) as exc:
        write(ctx, approve_plan, HQ, rejected.plan_id)
    assert exc.value.rule == ps.PLAN_REJECTED
    v2 = manual(ctx).header
    assert (v2.version, v2.trigger) == (2, ps.PlanTrigger.MANUAL)
    v3 = manual(ctx).header
    with pytest.raises(RuleRefused) as exc:
        write(ctx, approve_plan, HQ, v2.plan_id)
    assert exc.value.rule == ps.PLAN_SUPERSEDED
    approved = write(ctx, approve_plan, HQ, v3.plan_id)
    assert approved.status is ps.PlanStatus.APPROVED and not approved.late
    with ctx.uow() as uow:
        assert [x.status for x, _ in list_plans(uow, DAY)] == [
            ps.PlanStatus.REJECTED, ps.PlanStatus.SUPERSEDED, ps.PlanStatus.APPROVED]
    with pytest.raises(RuleRefused) as exc:
        manual(ctx)
    assert exc.value.rule == ps.DAY_ALREADY_APPROVED

    (event,) = outbox(ctx, "plan_approved")
    assert (event["plan_id"], event["version"], event["approved_by"], event["late"]) == (
        v3.plan_id, 3, "hq-officer", False)
    assert event["approved_at"] == "2026-12-01T04:00:00Z"
    keys = {"plan_line_id", "demand_id", "demand_line_no", "requester_id", "drop_point_id",
            "item_code", "quantity", "depot_id", "lots", "tier", "priority_rank", "substitute_for",
            "reasons"}
    assert all(set(x) == keys for x in event["lines"])
    ids = [x["plan_line_id"] for x in event["lines"]]
    assert len(ids) == len(set(ids))
    village_rice = [x for x in event["lines"] if x["demand_id"] == "D-V1" and x["demand_line_no"] == 1]
    # the village's rice comes from two depots, then packages stand in for the short part
    assert [(x["item_code"], x["depot_id"], x["substitute_for"]) for x in village_rice] == [
        ("RICE-10KG", "D-NEAR", None), ("RICE-10KG", "D-FAR", None),
        ("LIVING-PACK-STD", "D-FAR", "RICE-10KG")]
    assert [x["plan_line_id"].rsplit("/", 1)[1] for x in village_rice] == ["1", "2", "3"]
    assert sum(x["quantity"] for x in village_rice[:2]) == 110
    assert all(sum(lot["quantity"] for lot in x["lots"]) == x["quantity"] for x in event["lines"])
    assert village_rice[0]["drop_point_id"] == "DP-1" and village_rice[0]["tier"] == 3
    assert {"code": rs.TIER_ORDER} in village_rice[0]["reasons"]


def test_approval_after_the_dispatch_deadline_is_flagged_late(ctx):
    seed(ctx)
    v1 = cutoff(ctx).header
    ctx.clock.current = local(17, 30)
    assert write(ctx, approve_plan, HQ, v1.plan_id).late
    assert outbox(ctx, "plan_approved")[0]["late"] is True
    with ctx.uow() as uow:
        assert get_plan(uow, v1.plan_id).header.late


def test_plans_are_read_back_whole_and_paged(ctx):
    seed(ctx)
    made = cutoff(ctx)
    seen, token = [], ""
    with ctx.uow() as uow:
        while True:
            page = get_plan(uow, made.header.plan_id, page_size=3, page_token=token)
            seen.extend(page.lines)
            token = page.next_page_token
            if not token:
                break
        assert latest_plan_id(uow, DAY) == made.header.plan_id
        with pytest.raises(NotFound):
            get_plan(uow, "P-nope")
        with pytest.raises(NotFound):
            latest_plan_id(uow, DAY + timedelta(days=1))
    assert seen == list(made.lines) and len(seen) == 4
    assert page.details == made.details


def test_explain_line_gives_the_numbers_behind_the_reasons(ctx):
    seed(ctx)
    view = cutoff(ctx)
    rice = next(s for s in view.lines if s.line.demand_id == "D-V1" and s.line.item_code == "RICE-10KG")
    with ctx.uow() as uow:
        e = explain_line(ctx, uow, plan_id="", plan_line_id=rice.plan_line_id + "/2",
                           demand_id="", line_no=0)
        same = explain_line(ctx, uow, plan_id=view.header.plan_id, plan_line_id="",
                              demand_id="D-V1", line_no=1)
        with pytest.raises(NotFound):
            explain_line(ctx, uow, plan_id=view.header.plan_id, plan_line_id="",
                           demand_id="D-V1", line_no=9)
        with pytest.raises(InvalidInput):
            explain_line(ctx, uow, plan_id="", plan_line_id="", demand_id="D-V1", line_no=1)
    assert e == same
    assert e.line == rice and e.tier_name_en == "sealed / high-risk area" and e.township == "城关镇"
    assert (e.tier_summary.tier, e.tier_summary.asked, e.tier_summary.allocated) == (3, 150, 110)
    assert e.drawn_by_higher_tiers == 50  # the hospital (tier 1) drew 50 bags first
    assert [s.tier for s in e.item_by_tier] == [1, 3]
    legs = {(g.depot_id, g.item_code): g for g in e.legs}
    assert legs[("D-NEAR", "RICE-10KG")].distance_km == pytest.approx(2.0, abs=0.01)
    assert legs[("D-FAR", "RICE-10KG")].distance_km == pytest.approx(28.0, abs=0.05)
    assert ("D-FAR", "LIVING-PACK-STD") in legs


# ---- policy --------------------------------------------------------------------------------------
def test_set_policy_versions_and_refuses_stale_or_unauthorised_changes(ctx):
    with ctx.uow() as uow:
        assert current_policy(ctx, uow).version == 0
    p1 = write(ctx, set_policy, HQ, {"dispatch_deadline": "16:30"}, 0)
    assert (p1.version, p1.dispatch_deadline, p1.updated_by) == (1, "16:30", "hq-officer")
    assert write(ctx, set_policy, HQ, {"dispatch_deadline": "16:30"}, None).version == 1
    with pytest.raises(RuleRefused) as exc:
        write(ctx, set_policy, HQ, {"cutoff": "10:00"}, 0)
    assert exc.value.rule == "VERSION_MISMATCH"
    with pytest.raises(PermissionDenied):
        write(ctx, set_policy, Caller("keeper", "depot_keeper"), {"cutoff": "10:00"}, None)
    with pytest.raises(InvalidInput) as exc:
        write(ctx, set_policy, HQ, {"tier_order": [5, 4, 3]}, None)
    assert exc.value.field == "policy.tier_order"
    with ctx.uow() as uow:
        assert current_policy(ctx, uow) == p1


def policy_events(ctx) -> list[dict]:
    t = schema.tables["outbox"]
    with ctx.engine.connect() as conn:
        bodies = conn.execute(select(t.c.body).where(t.c.routing_key == "policy_changed")
                              .order_by(t.c.id)).scalars()
        return [json.loads(b)["payload"] for b in bodies]


def test_every_policy_version_is_announced_and_the_seed_is_stored_once(ctx):
    seeded = announce_policy(ctx)
    assert seeded.version == 0 and announce_policy(ctx) == seeded  # a restart: the same seed
    write(ctx, set_policy, HQ, {"cutoff": "09:00"}, 0)
    write(ctx, set_policy, HQ, {"cutoff": "09:00"}, None)  # no change, no event
    assert [(p["version"], p["cutoff"]) for p in policy_events(ctx)] == [
        (0, "11:00"), (0, "11:00"), (1, "09:00")]
    latest = policy_events(ctx)[-1]
    assert "updated_by" not in latest and latest["updated_at"].endswith("Z")
    with ctx.uow() as uow:
        assert [p.version for p in policy_versions(ctx, uow)] == [1, 0]


def test_a_new_policy_changes_the_next_plan(ctx):
    seed(ctx)
    write(ctx, set_policy, HQ, {"allow_package_substitution": False}, None)
    view = cutoff(ctx)
    assert all(s.line.substitution is None for s in view.lines)
    assert view.header.policy_version == 1 and view.details.policy.version == 1


# ---- forecast ------------------------------------------------------------------------------------
def closed(did, rid, day, delivered):
    return {"demand_id": did, "requester_id": rid, "delivery_day": day.isoformat(),
            "status": "fulfilled", "carry_over_demand_id": None,
            "lines": [{"line_no": 1, "item_code": "RICE-10KG", "quantity": delivered,
                       "delivered": delivered, "remainder": 0}]}


def test_forecast_reads_issued_history_with_the_baseline_and_its_error(ctx):
    start = DAY - timedelta(days=20)
    for i in range(20):
        if i == 5:
            continue  # a day without deliveries counts as 0
        qty = 200 if i == 12 else 10 + i % 3
        apply(ctx, apply_demand_closed, closed(f"D{i}", "V1", start + timedelta(days=i), qty))
        apply(ctx, apply_demand_closed, closed(f"E{i}", "V2", start + timedelta(days=i), 5))
    ctx.clock.current = local(9)
    with ctx.uow() as uow:
        county = forecast(ctx, uow, item_code="RICE-10KG", requester_id="", until_day=None,
                            sample_days=28, coefficient=None, window=7, holdout=7)
        v1 = forecast(ctx, uow, item_code="RICE-10KG", requester_id="V1", until_day=None,
                        sample_days=28, coefficient=2.0, window=7, holdout=7)
        short = forecast(ctx, uow, item_code="RICE-10KG", requester_id="V1", until_day=None,
                           sample_days=10, coefficient=None, window=7, holdout=7)
        with pytest.raises(RuleRefused) as exc:
            forecast(ctx, uow, item_code="OIL-5L", requester_id="", until_day=None,
                       sample_days=28, coefficient=None, window=7, holdout=7)
        assert exc.value.rule == "NO_HISTORY"
        with pytest.raises(InvalidInput) as bad:
            forecast(ctx, uow, item_code="GOLD", requester_id="", until_day=None,
                       sample_days=28, coefficient=None, window=7, holdout=7)
        assert bad.value.field == "item_code"
    assert len(county.series) == 20 and county.series[-1][0] == DAY - timedelta(days=1)
    assert dict(county.series)[start + timedelta(days=5)] == 0
    assert dict(v1.series)[start + timedelta(days=12)] == 200
    assert start + timedelta(days=12) in v1.outlier_days  # the spike is removed
    assert v1.forecast.coefficient == 2.0 and v1.forecast.mean < 13
    assert v1.forecast.demand == pytest.approx((v1.forecast.mean + v1.forecast.safety_stock) * 2)
    assert v1.baseline is not None and len(v1.baseline.predictions) == 7 and v1.baseline.mae >= 0
    assert short.baseline is None and "14 days" in short.baseline_note
