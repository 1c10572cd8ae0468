"""Event contracts between the services (docs/events.md), without a broker.

Each test makes the PRODUCER's real use case record the event (the envelope in its outbox, as
the relay would publish it), hands that JSON to the CONSUMER's real nameko worker method (named
in services/<consumer>/subscriptions.py, wired by services/<consumer>/entrypoints/worker.py, run
through services.common.consumers.consume) on a SQLite database migrated to head, and checks the
consumer's effect in its own tables. A consumer that dead-letters the event fails the test with
its own error (tests/support/contracts.py, ContractBroken).

This is the test that catches a drift like intake numbering demand lines from 0 while allocation
required ≥ 1: nothing here writes a payload by hand.

A test that documents a known mismatch is marked xfail(strict=True, reason="CONTRACT: …"): it
starts failing the suite (XPASS) the day the mismatch is fixed, and the mark then goes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.allocation.handlers.cutoff import cutoff_due_day
from services.allocation.handlers.forecast import forecast
from services.allocation.handlers.policy import set_policy
from services.common.auth import Caller
from services.common.messaging import all_subscriptions
from services.intake.handlers.demands import apply_delivery_results, cancel_demand, get_demand
from services.intake.handlers.donations import inspect_donation_line, register_donation
from services.intake.handlers.policy import county_cutoff, demand_policy
from services.intake.handlers.requesters import update_requester
from services.intake.handlers.special_needs import register_special_need
from services.monitoring.adapters import lot_store
from tests.support import contracts as ct
from tests.support.contracts import DAY, NOW, County

COVERED: set[tuple[str, str, str]] = set()


def contract(*triples: tuple[str, str, str]):
    """(source, event_type, consumer) rows of the subscriptions this test exercises."""

    def mark(fn):
        COVERED.update(triples)
        return fn

    return mark


@pytest.fixture(scope="session")
def templates(tmp_path_factory):
    return ct.migrate_templates(tmp_path_factory.mktemp("contract-templates"))


@pytest.fixture
def make_county(tmp_path, templates):
    made: list[County] = []

    def make(*names: str) -> County:
        for name in names:
            if why := ct.unavailable(name, templates):
                pytest.skip(f"{name} service code is missing or incomplete ({why})")
        county = County(tmp_path / f"county{len(made)}", templates, names)
        made.append(county)
        return county

    yield make
    for county in made:
        for svc in county.services.values():
            svc.engine.dispose()


def lines_of(demand) -> list[tuple]:
    """intake's lines as (line_no, item_code, quantity, tier)."""
    return [(ln.line_no, ln.item_code, ln.quantity, int(ln.tier)) for ln in demand.lines]


def test_every_subscription_has_a_contract_test():
    declared = {(s.source, s.event_type, s.consumer) for s in all_subscriptions()}
    assert declared - COVERED == set(), "subscriptions without a contract test"
    assert COVERED - declared == set(), "contract tests for events nobody subscribes to"


# ---- intake → allocation ---------------------------------------------------------------------

@contract(("intake", "requester_registered", "allocation"),
          ("intake", "requester_updated", "allocation"))
def test_requester_snapshots_become_allocations_view_of_requesters(make_county):
    c = make_county("intake", "allocation")
    ct.register_village(c, "V1")
    ct.register_hospital(c, "U1")
    assert len(c.relay("intake", "requester_registered", to="allocation")) == 2
    c.intake.run(update_requester, ct.intake_hq(), "V1",
                 {"risk_level": "controlled", "population": 1000}, 1)
    assert len(c.relay("intake", "requester_updated", to="allocation")) == 1
    # a late, older snapshot changes nothing
    c.deliver(c.intake.outbox("requester_registered")[0] | {"event_id": str(uuid.uuid4())},
              "allocation")

    rows = {r.id: r for r in c.allocation.rows("requesters")}
    v1, u1 = rows["V1"], rows["U1"]
    assert (v1.kind, v1.township, v1.version) == ("village", "城关镇", 2)
    assert (v1.data["lat"], v1.data["lon"]) == ct.VILLAGE
    assert v1.data["drop_points"] == [{"id": "DP-1", "name": "村委会"}]
    assert (v1.data["population"], v1.data["households"], v1.data["risk_level"]) == (1000, 300, "controlled")
    assert (u1.kind, u1.version, u1.data["unit_type"], u1.data["headcount"], u1.data["beds"]) == (
        "unit", 1, "hospital", 300, 120)
    assert u1.data["drop_points"] == [] and (u1.data["lat"], u1.data["lon"]) == ct.HOSPITAL


@contract(("intake", "demand_registered", "allocation"))
def test_demand_registered_keeps_intakes_line_numbers_tiers_and_special_needs(make_county):
    c = make_county("intake", "allocation")
    ct.register_village(c, "V1")
    ct.register_hospital(c, "U1")
    village = ct.submit_demand(c, "V1", ("RICE-10KG", 30), ("OIL-5L", 10), ("MASK-N95", 50))
    hospital = ct.submit_demand(c, "U1", ("MASK-N95", 200))
    _, special = c.intake.run(
        register_special_need, ct.intake_hq(), requester_id="V1", name="张三",
        phone="13800138000", category="infant_formula",
        lines=[{"item_code": "FORMULA-STAGE1", "quantity": 2}], period_days=None,
        delivery_day=DAY.isoformat(), note="")
    c.pump()

    assert [ln.line_no for ln in village.lines] == [0, 1, 2]  # intake numbers lines from 0
    d = c.allocation.table("demands")
    for demand in (village, hospital, special):
        row = c.allocation.row("demands", d.c.id == demand.id)
        assert (row.requester_id, row.delivery_day, row.status, row.top_tier) == (
            demand.requester_id, demand.delivery_day, "open", int(demand.top_tier))
        assert [(ln["line_no"], ln["item_code"], ln["quantity"], ln["tier"])
                for ln in row.data["lines"]] == lines_of(demand)
    row = c.allocation.row("demands", d.c.id == special.id)
    assert row.data["lines"][0]["special_need_id"] == special.lines[0].special_need_id is not None
    assert (row.data["origin"], row.data["requester_kind"]) == ("special_need", "village")
    assert lines_of(hospital)[0][3] == 1 and lines_of(village)[0][3] == 3  # frontline vs sealed


@contract(("intake", "demand_cancelled", "allocation"))
def test_demand_cancelled_takes_the_demand_out_of_allocations_open_set(make_county):
    c = make_county("intake", "allocation")
    ct.register_village(c, "V1")
    first = ct.submit_demand(c, "V1", ("RICE-10KG", 30))
    second = ct.submit_demand(c, "V1", ("OIL-5L", 5))
    c.relay("intake", "demand_registered", to="allocation", where=lambda p: p["demand_id"] == first.id)
    c.intake.run(cancel_demand, ct.intake_hq(), first.id, "报错了")
    c.intake.run(cancel_demand, ct.intake_hq(), second.id, "重复")
    # the second one's cancellation overtakes its registration (different queues)
    c.relay("intake", "demand_cancelled", to="allocation")
    c.relay("intake", "demand_registered", to="allocation")

    d = c.allocation.table("demands")
    assert {r.id: r.status for r in c.allocation.rows("demands")} == {
        first.id: "cancelled", second.id: "cancelled"}
    assert c.allocation.row("demands", d.c.id == first.id).delivery_day == DAY
    assert cutoff_due_day(c.allocation.ctx, NOW.replace(hour=11, minute=5)) is None


@contract(("intake", "demand_closed", "allocation"))
def test_demand_closed_becomes_issued_history_and_the_carry_over_an_open_demand(make_county):
    c = make_county("intake", "allocation")
    ct.register_village(c, "V1")
    demand = ct.submit_demand(c, "V1", ("RICE-10KG", 30), ("OIL-5L", 10))
    c.pump()
    # logistics' delivery results (their own contract is tested below): oil came short
    c.intake.run(apply_delivery_results, {
        "lines": [{"demand_id": demand.id, "item_code": "RICE-10KG", "received": 30},
                  {"demand_id": demand.id, "item_code": "OIL-5L", "received": 4}],
        "demands_completed": [demand.id]})
    closed = c.intake.payloads("demand_closed")
    assert [p["status"] for p in closed] == ["partly_fulfilled"]
    c.pump()

    d, issued = c.allocation.table("demands"), c.allocation.table("issued")
    assert c.allocation.row("demands", d.c.id == demand.id).status == "closed"
    got = [(r.line_no, r.item_code, r.quantity, r.delivered, r.requester_id, r.delivery_day)
           for r in c.allocation.rows("issued", issued.c.demand_id == demand.id, order_by=issued.c.line_no)]
    assert got == [(0, "RICE-10KG", 30, 30, "V1", DAY), (1, "OIL-5L", 10, 4, "V1", DAY)]
    carry = c.allocation.row("demands", d.c.id == closed[0]["carry_over_demand_id"])
    assert carry.status == "open" and carry.delivery_day > DAY
    assert [(ln["line_no"], ln["item_code"], ln["quantity"]) for ln in carry.data["lines"]] == [
        (0, "OIL-5L", 6)]
    with c.allocation.ctx.uow() as uow:
        fc = forecast(c.allocation.ctx, uow, item_code="RICE-10KG", requester_id="V1",
                         until_day=DAY, sample_days=7, coefficient=None, window=0, holdout=0)
    assert fc.series[-1] == (DAY, 30)


# ---- intake → logistics ----------------------------------------------------------------------

@contract(("intake", "requester_registered", "logistics"),
          ("intake", "requester_updated", "logistics"))
def test_requester_snapshots_give_logistics_drop_points_and_households(make_county):
    c = make_county("intake", "logistics")
    lat, lon = ct.VILLAGE
    ct.register_village(c, "V1", households=300)
    ct.register_hospital(c, "U1")
    c.relay("intake", "requester_registered", to="logistics")
    dp = c.logistics.table("drop_points")
    first = c.logistics.row("drop_points", dp.c.requester_id == "V1")
    assert (first.drop_point_id, first.name, first.window_open, first.window_close, first.households) == (
        "DP-1", "村委会", "08:00", "16:30", 300)
    assert (first.lat, first.lon) == (lat + 0.001, lon + 0.001)

    c.intake.run(update_requester, ct.intake_hq(), "V1", {
        "households": 320, "drop_points": [
            {"id": "DP-1", "name": "村委会", "location": {"lat": lat, "lon": lon},
             "window_start": "07:30", "window_end": "11:00"},
            {"id": "DP-2", "name": "二组", "location": {"lat": lat + 0.01, "lon": lon},
             "window_start": "13:00", "window_end": "17:00"}]}, 1)
    c.relay("intake", "requester_updated", to="logistics")

    req = {r.id: r for r in c.logistics.rows("requesters")}
    assert (req["V1"].kind, req["V1"].version, req["V1"].households, req["V1"].population) == (
        "village", 2, 320, 900)
    assert (req["U1"].kind, req["U1"].lat, req["U1"].lon) == ("unit", *ct.HOSPITAL)
    got = [(r.drop_point_id, r.window_open, r.window_close, r.households, r.lat)
           for r in c.logistics.rows("drop_points", dp.c.requester_id == "V1", order_by=dp.c.drop_point_id)]
    assert got == [("DP-1", "07:30", "11:00", 160, lat), ("DP-2", "13:00", "17:00", 160, lat + 0.01)]
    assert c.logistics.rows("drop_points", dp.c.requester_id == "U1") == []


@contract(("intake", "donation_inspected", "logistics"))
def test_accepted_donation_lines_are_received_into_a_depot_and_others_are_not(make_county):
    c = make_county("intake", "logistics")
    ct.setup_depot(c, "D1", vehicle=False)
    donation = c.intake.run(
        register_donation, Caller("keeper-1", "depot_keeper"),  # another person inspects
        donor={"name": "爱心企业有限公司", "contact": "0571-88888888", "kind": "organization"},
        lines=[{"item_code": "RICE-10KG", "quantity": 20, "lot": "R-2611", "expiry": "2027-05-01"},
               {"item_code": "MILK-1L", "quantity": 12, "lot": "M-1", "expiry": "2026-12-05"},
               {"item_code": "MASK-N95", "quantity": 500, "lot": "N-7", "expiry": "2028-01-01"}],
        target_requester_id="", target_use="", note="")
    for line_no, decision, grade in ((0, "accept", None), (1, "return", None), (2, "accept", True)):
        c.intake.run(inspect_donation_line, ct.intake_hq(), donation_id=donation.id,
                     line_no=line_no, decision=decision, reason="检验", medical_grade=grade,
                     redirect_to="")
    assert len(c.relay("intake", "donation_inspected", to="logistics")) == 3

    rc, lots = c.logistics.table("receipts"), c.logistics.table("lots")
    receipts = {r.id: r for r in c.logistics.rows("receipts")}
    assert set(receipts) == {f"RC-{donation.id}-0", f"RC-{donation.id}-2"}
    assert {r.status for r in receipts.values()} == {"accepted"}
    got = {(r.item_code, r.lot_number, r.expiry.isoformat(), r.source_kind, r.source_ref, r.zone_id)
           for r in c.logistics.rows("lots", lots.c.receipt_id.in_(list(receipts)))}
    assert got == {("RICE-10KG", "R-2611", "2027-05-01", "donation", f"{donation.id}#0", "D1-AMB"),
                   ("MASK-N95", "N-7", "2028-01-01", "donation", f"{donation.id}#2", "D1-AMB")}
    on_hand = {r.item_code: r.on_hand for r in c.logistics.rows("lot_balances")}
    assert on_hand == {"RICE-10KG": 20, "MASK-N95": 500}
    assert c.logistics.rows("receipts", rc.c.status == "refused") == []


# ---- allocation → logistics, allocation → intake, logistics → intake -------------------------

def planned_county(make_county, *, substitution: bool = False):
    """A county with two depots (rice in D1, masks in D2), a village V1 (drop point DP-1) and a
    hospital U1 (no drop point); intake's demands reached allocation, which made the day's plan
    from logistics' stock and HQ approved it. Returns (county, demands by name, plan id)."""
    c = make_county("intake", "logistics", "allocation")
    ct.setup_depot(c, "D1")
    ct.setup_depot(c, "D2", ct.DEPOT_2, zones=(("AMB", "ambient", 100_000),))
    if substitution:
        ct.receive(c, "RICE-10KG", 10, depot="D1")
        ct.receive(c, "LIVING-PACK-STD", 50, depot="D1")
    else:
        ct.receive(c, "RICE-10KG", 100, depot="D1")
    ct.receive(c, "MASK-N95", 1000, depot="D2")
    ct.register_village(c, "V1")
    ct.register_hospital(c, "U1")
    demands = {
        "village": ct.submit_demand(c, "V1", ("RICE-10KG", 30), ("MASK-N95", 100)),
        "hospital": ct.submit_demand(c, "U1", ("MASK-N95", 200)),
        "no_stock": ct.submit_demand(c, "V1", ("FLOUR-5KG", 5)),
    }
    c.pump()
    plan_id = ct.propose_and_approve(c)
    return c, demands, plan_id


@contract(("allocation", "plan_approved", "logistics"))
def test_plan_approved_is_reserved_on_the_named_lots_and_routed_to_the_drop_points(make_county):
    c, demands, plan_id = planned_county(make_county)
    (env,) = c.relay("allocation", "plan_approved", to="logistics")
    assert env["payload"]["plan_id"] == plan_id
    # each line's place in HQ's tier order (default 1 … 5), for logistics to re-pick by
    assert {(ln["tier"], ln["priority_rank"]) for ln in env["payload"]["lines"]} == {(1, 1), (3, 3)}

    lg = c.logistics
    plan = lg.row("plans", lg.table("plans").c.id == plan_id)
    assert plan.status == "dispatched"  # reserved and picked by the handler, routed by the worker
    assert plan.data["unmet"] == []  # no BAD_PLAN_LINE, INSUFFICIENT_STOCK, DROP_POINT_UNKNOWN
    village, hospital = demands["village"], demands["hospital"]
    got = sorted((r.demand_id, r.demand_line_no, r.item_code, r.quantity, r.depot_id, r.tier,
                  r.requester_id, r.drop_point_id) for r in lg.rows("plan_lines"))
    assert got == sorted([(village.id, 0, "RICE-10KG", 30, "D1", 3, "V1", "DP-1"),
                          (village.id, 1, "MASK-N95", 100, "D2", 3, "V1", "DP-1"),
                          (hospital.id, 0, "MASK-N95", 200, "D2", 1, "U1", "")])
    reserved = {r.item_code: (r.reserved, r.reserved_by_plan) for r in lg.rows("lot_balances")}
    assert reserved["RICE-10KG"][0] == 30 and reserved["MASK-N95"][0] == 300
    named = {(ln["plan_line_id"], lot["lot_id"]): lot["quantity"]
             for ln in env["payload"]["lines"] for lot in ln["lots"]}
    picked = {(p.plan_line_id, p.lot_id): p.quantity for p in lg.rows("picks")}
    assert picked == named  # the lots allocation named are the lots reserved

    (sent,) = lg.payloads("dispatch_scheduled")
    stops = sorted((t["depot_id"], s["requester_id"], s["drop_point_id"],
                    sorted((ln["demand_id"], ln["item_code"], ln["quantity"]) for ln in s["lines"]))
                   for t in sent["trips"] for s in t["stops"])
    assert stops == [("D1", "V1", "DP-1", [(village.id, "RICE-10KG", 30)]),
                     ("D2", "U1", "", [(hospital.id, "MASK-N95", 200)]),
                     ("D2", "V1", "DP-1", [(village.id, "MASK-N95", 100)])]


@contract(("allocation", "plan_approved", "intake"))
def test_plan_approved_rolls_the_demands_it_left_out_and_leaves_the_planned_ones_open(make_county):
    c, demands, plan_id = planned_county(make_county)
    c.relay("allocation", "plan_approved", to="intake")

    d = c.intake.table("demands")
    status = {r.id: r.status for r in c.intake.rows("demands", d.c.delivery_day == DAY)}
    assert status == {demands["village"].id: "open", demands["hospital"].id: "open",
                      demands["no_stock"].id: "rolled"}
    (closed,) = c.intake.payloads("demand_closed")
    assert (closed["demand_id"], closed["status"]) == (demands["no_stock"].id, "rolled")
    with c.intake.ctx.uow() as uow:
        new = get_demand(uow, closed["carry_over_demand_id"])
    assert new.delivery_day > DAY and lines_of(new) == [(0, "FLOUR-5KG", 5, 3)]


@contract(("allocation", "policy_changed", "intake"))
def test_policy_changed_gives_intake_hqs_cut_off_and_an_older_version_never_wins(make_county):
    from services.common.errors import RuleRefused

    c = make_county("intake", "allocation")
    # allocation's worker announced its policy when it started: version 0, the configured seed
    (seed,) = c.relay("allocation", "policy_changed", to="intake")
    assert (seed["payload"]["version"], seed["payload"]["cutoff"]) == (0, "11:00")
    ct.register_village(c, "V1")
    early = ct.submit_demand(c, "V1", ("RICE-10KG", 3))  # at 09:00, before 11:00
    assert early.delivery_day == DAY

    c.allocation.run(set_policy, Caller("hq-officer", "hq"), {"cutoff": "08:30"}, 0)
    (changed,) = c.relay("allocation", "policy_changed", to="intake",
                         where=lambda p: p["version"] == 1)
    p = changed["payload"]
    assert (p["cutoff"], p["cutoff_days_before"], p["dispatch_deadline"], p["tier_order"]) == (
        "08:30", 0, "17:00", [1, 2, 3, 4, 5])
    assert "updated_by" not in p and p["timezone"] == "Asia/Shanghai"

    late = ct.submit_demand(c, "V1", ("RICE-10KG", 3))  # 09:00 is past the new 08:30
    assert (late.delivery_day, late.rolled_over) == (DAY + timedelta(days=1), True)
    with c.intake.ctx.uow() as uow:
        moved = get_demand(uow, early.id)
    assert moved.cutoff_at == datetime(2026, 11, 28, 8, 30, tzinfo=ct.CST)
    with pytest.raises(RuleRefused) as refused:
        c.intake.run(cancel_demand, ct.intake_hq(), early.id, "不要了")
    assert refused.value.rule == "CUTOFF_PASSED"

    c.deliver(seed | {"event_id": str(uuid.uuid4())}, "intake")  # version 0 again, late
    with c.intake.ctx.uow() as uow:
        assert demand_policy(c.intake.ctx, uow).cutoff.strftime("%H:%M") == "08:30"
        assert county_cutoff(uow).version == 1


def stop_lines(c: County, requester_id: str) -> list[tuple[str, list]]:
    """(trip id, manifest lines) of every trip stop at the requester."""
    out = []
    for trip in c.logistics.rows("trips"):
        for s in trip.data["trip"]["stops"]:
            if s["requester_id"] == requester_id:
                out.append((trip.id, s["lines"]))
    return sorted(out)


def confirm(c: County, trip_id: str, requester_id: str, drop_point_id: str, lines, short=None):
    """Proof of delivery at one stop: everything received, except `short` {item_code: (kind, n)}."""
    from services.logistics.handlers import delivery

    specs = []
    for ln in lines:
        kind, n = (short or {}).get(ln["item_code"], (None, 0))
        specs.append(delivery.ReceivedSpec(ln["plan_line_id"], ln["lot_id"], ln["quantity"] - n,
                                           ((kind, n, "破损"),) if kind else ()))
    return c.logistics.run(delivery.confirm_delivery, ct.logistics_keeper(), trip_id=trip_id,
                           requester_id=requester_id, drop_point_id=drop_point_id, receiver="村专班",
                           received_at=datetime(2026, 11, 28, 6, 0, tzinfo=UTC), proof_ref=ct.PROOF,
                           lines=specs)


@contract(("logistics", "delivery_confirmed", "intake"))
def test_delivery_confirmed_accumulates_per_stop_and_closes_completed_demands(make_county):
    c, demands, _ = planned_county(make_county)
    c.relay("allocation", "plan_approved", to="logistics")
    village, hospital = demands["village"], demands["hospital"]
    at_village = stop_lines(c, "V1")
    assert len(at_village) == 2  # rice from D1 and masks from D2: two trips, two stops
    (mask_trip, mask_lines), (rice_trip, rice_lines) = sorted(
        at_village, key=lambda t: t[1][0]["item_code"])
    (hospital_trip, hospital_lines), = stop_lines(c, "U1")

    def intake_demand(demand_id):
        with c.intake.ctx.uow() as uow:
            return get_demand(uow, demand_id)

    first = confirm(c, mask_trip, "V1", "DP-1", mask_lines)
    assert first["demands_completed"] == []
    c.relay("logistics", "delivery_confirmed", to="intake")
    got = intake_demand(village.id)
    assert got.status.value == "open"
    assert [(ln.item_code, ln.delivered) for ln in got.lines] == [("RICE-10KG", None), ("MASK-N95", 100)]

    confirm(c, hospital_trip, "U1", "", hospital_lines, short={"MASK-N95": ("damaged", 10)})
    confirm(c, rice_trip, "V1", "DP-1", rice_lines)
    c.relay("logistics", "delivery_confirmed", to="intake")
    got = intake_demand(village.id)
    assert got.status.value == "fulfilled"
    assert [(ln.item_code, ln.delivered) for ln in got.lines] == [("RICE-10KG", 30), ("MASK-N95", 100)]
    got = intake_demand(hospital.id)
    assert (got.status.value, got.lines[0].delivered) == ("partly_fulfilled", 190)
    assert lines_of(intake_demand(got.carry_over_demand_id)) == [(0, "MASK-N95", 10, 1)]
    assert {p["demand_id"]: p["status"] for p in c.intake.payloads("demand_closed")} == {
        village.id: "fulfilled", hospital.id: "partly_fulfilled"}


@contract(("logistics", "delivery_confirmed", "intake"))
def test_standard_packages_delivered_for_a_short_item_count_toward_its_demand_line(make_county):
    c, demands, _ = planned_county(make_county, substitution=True)  # 10 bags of rice, 50 packages
    (env,) = c.relay("allocation", "plan_approved", to="logistics")
    subs = [ln for ln in env["payload"]["lines"] if ln["substitute_for"]]
    assert [(ln["item_code"], ln["quantity"], ln["substitute_for"]) for ln in subs] == [
        ("LIVING-PACK-STD", 20, "RICE-10KG")]
    for trip_id, lines in stop_lines(c, "V1"):
        confirm(c, trip_id, "V1", "DP-1", lines)
    c.relay("logistics", "delivery_confirmed", to="intake")
    with c.intake.ctx.uow() as uow:
        got = get_demand(uow, demands["village"].id)
    # one package holds one bag of rice: 10 bags + 20 packages fulfil the 30 asked
    assert got.status.value == "fulfilled"
    assert [(ln.item_code, ln.delivered) for ln in got.lines] == [("RICE-10KG", 30), ("MASK-N95", 100)]


# ---- logistics → monitoring ------------------------------------------------------------------

@contract(("logistics", "zone_registered", "monitoring"))
def test_zone_registered_gives_monitoring_the_zones_storage_class(make_county):
    c = make_county("logistics", "monitoring")
    ct.setup_depot(c, "D1", vehicle=False)
    assert len(c.relay("logistics", "zone_registered", to="monitoring")) == 2
    zones = {r.zone_key: r for r in c.monitoring.rows("zones")}
    assert {k: (z.depot, z.zone, z.storage_class, z.source) for k, z in zones.items()} == {
        "D1/D1-AMB": ("D1", "D1-AMB", "ambient", "event"),
        "D1/D1-CHL": ("D1", "D1-CHL", "chilled", "event")}


@contract(("logistics", "zone_registered", "monitoring"))
def test_zone_registered_capacity_reaches_monitoring(make_county):
    c = make_county("logistics", "monitoring")
    ct.setup_depot(c, "D1", vehicle=False)
    c.relay("logistics", "zone_registered", to="monitoring")
    zones = {r.zone_key: r.capacity for r in c.monitoring.rows("zones")}
    assert zones == {"D1/D1-AMB": 100_000, "D1/D1-CHL": 20_000}


@contract(("logistics", "stock_received", "monitoring"), ("logistics", "stock_changed", "monitoring"))
def test_stock_received_and_changed_tell_monitoring_what_a_zone_holds(make_county):
    c = make_county("logistics", "monitoring")
    from services.logistics.handlers import stock

    ct.setup_depot(c, "D1", vehicle=False)
    c.relay("logistics", "zone_registered", to="monitoring")
    pork = ct.receive(c, "PORK-KG", 40, expiry=DAY + timedelta(days=5))
    c.relay("logistics", "stock_received", to="monitoring")
    lt = c.monitoring.table("lots")
    row = c.monitoring.row("lots", lt.c.lot_id == pork)
    assert (row.item_code, row.depot, row.zone, row.zone_key, row.on_hand, row.status, row.expiry) == (
        "PORK-KG", "D1", "D1-CHL", "D1/D1-CHL", 40, "available", DAY + timedelta(days=5))
    assert row.account is not None  # its thermal account runs in the zone
    with c.monitoring.ctx.uow() as uow:
        assert lot_store.available_ids(uow.conn, "D1/D1-CHL") == [pork]

    c.logistics.run(stock.write_off, ct.logistics_keeper(), lot_id=pork, quantity=15,
                    doc_type="stocktake", doc_id="ST-1", reason="盘亏")
    c.relay("logistics", "stock_changed", to="monitoring")
    last_seq = c.logistics.payloads("stock_changed")[-1]["ledger_seq"]
    row = c.monitoring.row("lots", lt.c.lot_id == pork)
    assert (row.on_hand, row.status, row.ledger_seq) == (25, "available", last_seq)
    c.logistics.run(stock.write_off, ct.logistics_keeper(), lot_id=pork, quantity=0,
                    doc_type="stocktake", doc_id="ST-2", reason="盘亏")
    c.relay("logistics", "stock_changed", to="monitoring")
    row = c.monitoring.row("lots", lt.c.lot_id == pork)
    assert (row.on_hand, row.status) == (0, "written_off")


@contract(("logistics", "lot_quarantined", "monitoring"), ("logistics", "lot_released", "monitoring"))
def test_lot_quarantined_and_released_set_the_lots_status_in_monitoring(make_county):
    c = make_county("logistics", "monitoring")
    from services.logistics.handlers import stock

    ct.setup_depot(c, "D1", vehicle=False)
    pork = ct.receive(c, "PORK-KG", 40)
    c.relay("logistics", "zone_registered", to="monitoring")
    c.relay("logistics", "stock_received", to="monitoring")
    lt = c.monitoring.table("lots")

    c.logistics.run(stock.quarantine_by_person, ct.logistics_keeper(), lot_id=pork,
                    inspection_ref="INS-1", reason="包装破损")
    assert len(c.relay("logistics", "lot_quarantined", to="monitoring")) == 1
    assert c.monitoring.row("lots", lt.c.lot_id == pork).status == "quarantined"
    with c.monitoring.ctx.uow() as uow:
        assert lot_store.available_ids(uow.conn, "D1/D1-CHL") == []

    c.logistics.run(stock.release, ct.logistics_keeper(), lot_id=pork, inspection_ref="INS-2",
                    reason="复检合格")
    assert len(c.relay("logistics", "lot_released", to="monitoring")) == 1
    assert c.monitoring.row("lots", lt.c.lot_id == pork).status == "available"


@contract(("logistics", "lot_released", "monitoring"))
def test_partial_write_off_of_a_quarantined_lot_leaves_it_quarantined_in_monitoring(make_county):
    c = make_county("logistics", "monitoring")
    from services.logistics.handlers import stock

    ct.setup_depot(c, "D1", vehicle=False)
    pork = ct.receive(c, "PORK-KG", 40)
    c.logistics.run(stock.quarantine_by_person, ct.logistics_keeper(), lot_id=pork,
                    inspection_ref="INS-1", reason="包装破损")
    c.pump()
    c.logistics.run(stock.write_off, ct.logistics_keeper(), lot_id=pork, quantity=10,
                    doc_type="inspection", doc_id="INS-1", reason="破损报损")
    b = c.logistics.table("lot_balances")
    assert c.logistics.row("lot_balances", b.c.lot_id == pork).status == "quarantined"
    c.relay("logistics", "stock_changed", to="monitoring")  # the queues may deliver in this order
    (released,) = c.relay("logistics", "lot_released", to="monitoring")
    assert (released["payload"]["outcome"], released["payload"]["status"]) == ("written_off", "quarantined")
    lt = c.monitoring.table("lots")
    assert c.monitoring.row("lots", lt.c.lot_id == pork).status == "quarantined"


@contract(("logistics", "reserve_below_floor", "monitoring"))
def test_reserve_below_floor_opens_a_reserve_alert_in_monitoring(make_county):
    c = make_county("logistics", "monitoring")
    c.logistics.ctx.population = 1000
    ct.setup_depot(c, "D1", vehicle=False)
    ct.receive(c, "RICE-10KG", 10)  # 100 kg for 1000 people eating 0.4 kg of rice a day
    sent = c.relay("logistics", "reserve_below_floor", to="monitoring")
    groups = {e["payload"]["group"]: e["payload"] for e in sent}
    assert "grain_oil" in groups

    a = c.monitoring.table("alerts")
    alerts = {r.subject: r for r in c.monitoring.rows("alerts", a.c.kind == "reserve_below_floor")}
    assert set(alerts) == set(groups)
    grain = alerts["grain_oil"]
    assert (grain.state, grain.rule_code, grain.spoilage) == ("opened", "RESERVE_FLOOR", False)
    evidence = grain.data["evidence"]
    assert evidence["days_of_supply"] == groups["grain_oil"]["days_of_supply"]
    assert evidence["floor_days"] == groups["grain_oil"]["floor_days"] == 15
    raised = [p for p in c.monitoring.payloads("alert_raised") if p["kind"] == "reserve_below_floor"]
    assert {p["subject"] for p in raised} == set(groups)


# ---- monitoring → logistics ------------------------------------------------------------------

def warm_chilled_zone(c: County, depot: str, zone: str) -> None:
    """Sensors of a chilled zone report a compressor failure (2 °C, then warming past 8 °C)
    through monitoring's ingest, ending before the county's clock."""
    from services.monitoring.ingest import Ingest, InMessage

    t0 = NOW.astimezone(UTC) - timedelta(hours=3)
    readings = []
    for m in range(120):
        temp = 2.0 if m < 10 else round(2.0 + 0.15 * (m - 10), 2)
        for sensor in ("s1", "s2"):
            readings.append({"depot": depot, "zone": zone, "sensor": sensor,
                             "ts": int((t0 + timedelta(minutes=m)).timestamp() * 1000), "seq": m,
                             "temp_c": temp, "rh": 85.0})
    root = c.monitoring.ctx.config.mqtt_root
    Ingest(c.monitoring.ctx, [].extend, "contract-ingest").process([InMessage(
        f"{root}/{depot}/gw/gw-1/batch", json.dumps({"gateway": "gw-1", "readings": readings}).encode())])


@contract(("monitoring", "alert_raised", "logistics"))
def test_spoilage_alert_quarantines_the_lots_it_names_in_logistics(make_county):
    c = make_county("logistics", "monitoring")
    ct.setup_depot(c, "D1", vehicle=False)
    pork = ct.receive(c, "PORK-KG", 40)
    rice = ct.receive(c, "RICE-10KG", 10)
    c.pump()
    warm_chilled_zone(c, "D1", "D1-CHL")
    spoiled = c.relay("monitoring", "alert_raised", to="logistics", where=lambda p: p["spoilage"])
    assert spoiled and all(e["payload"]["lot_ids"] == [pork] for e in spoiled)

    b = c.logistics.table("lot_balances")
    got = c.logistics.row("lot_balances", b.c.lot_id == pork)
    assert (got.status, got.quarantined, got.on_hand) == ("quarantined", 40, 40)
    assert c.logistics.row("lot_balances", b.c.lot_id == rice).status == "available"
    (quarantined,) = c.logistics.payloads("lot_quarantined")
    assert quarantined["alert_id"] == spoiled[0]["payload"]["alert_id"]
    c.pump()  # and back: monitoring stops alerting on the quarantined lot
    lt = c.monitoring.table("lots")
    assert c.monitoring.row("lots", lt.c.lot_id == pork).status == "quarantined"


@contract(("monitoring", "alert_raised", "logistics"))
def test_spoilage_alert_without_lots_quarantines_the_zone_it_names_in_logistics(make_county):
    c = make_county("logistics", "monitoring")
    ct.setup_depot(c, "D1", vehicle=False)
    pork = ct.receive(c, "PORK-KG", 40)
    milk = ct.receive(c, "MILK-1L", 12)
    rice = ct.receive(c, "RICE-10KG", 10)
    c.relay("logistics", "zone_registered", to="monitoring")  # monitoring knows no lots yet
    warm_chilled_zone(c, "D1", "D1-CHL")
    spoiled = c.relay("monitoring", "alert_raised", to="logistics", where=lambda p: p["spoilage"])
    assert spoiled and all(e["payload"]["lot_ids"] == [] for e in spoiled)
    assert {(e["payload"]["depot"], e["payload"]["zone"]) for e in spoiled} == {("D1", "D1-CHL")}

    status = {r.lot_id: r.status for r in c.logistics.rows("lot_balances")}
    assert status == {pork: "quarantined", milk: "quarantined", rice: "available"}


# ---- reports → monitoring --------------------------------------------------------------------

@contract(("reports", "deadline_missed", "monitoring"))
def test_deadline_missed_puts_a_deadline_alert_on_hqs_board(make_county, tmp_path):
    """The reports process's real use case records deadline_missed (no plan approved by 16:30);
    monitoring opens one deadline alert for HQ per kind and day, and clears it after its TTL."""
    from datetime import time as dtime

    from sqlalchemy import select

    from services.common.db import make_engine
    from services.common.migrate import upgrade
    from services.reports import handlers as reports
    from services.reports.adapters.schema import tables as report_tables
    from services.reports.domain import schedule as sc
    from services.reports.domain.facts import DayFacts

    class NoPlanApproved:
        def day_facts(self, day, now):
            return DayFacts(day=day, timezone=str(ct.CST), generated_at=now)

        def policy(self):
            return sc.Policy(dispatch_deadline=dtime(17, 0))

        def plans(self, day):
            return [("P-1", "proposed")]

        def dispatched_plans(self, day):
            return set()

    c = make_county("monitoring")
    url = f"sqlite:///{tmp_path / 'reports.db'}"
    upgrade("reports", url)
    engine = make_engine(url)
    c.clock.advance(hours=7, minutes=31)  # 16:31: no plan approved by 16:30
    ctx = reports.ReportsContext(engine=engine, tables=report_tables, now=c.clock.now, tz=ct.CST,
                                 schedule=sc.Schedule(), out_dir=tmp_path / "out", county=NoPlanApproved())
    reports.tick(ctx)
    with engine.connect() as conn:
        outbox = report_tables["outbox"]
        envelopes = [json.loads(r.body) for r in conn.execute(select(outbox).order_by(outbox.c.id))]
    engine.dispose()
    (missed,) = [e for e in envelopes if e["event_type"] == "deadline_missed"]
    c.deliver(missed, "monitoring")
    c.deliver(missed, "monitoring")  # a redelivery changes nothing

    a = c.monitoring.table("alerts")
    (alert,) = c.monitoring.rows("alerts", a.c.kind == "deadline_missed")
    assert (alert.state, alert.rule_code, alert.subject) == ("opened", "PLAN_NOT_APPROVED", DAY.isoformat())
    assert "16:30" in alert.data["title_zh"] and "not approved" in alert.data["title_en"]
    (raised,) = [p for p in c.monitoring.payloads("alert_raised") if p["kind"] == "deadline_missed"]
    assert raised["severity"] == "warning"

    c.clock.advance(hours=13)  # the evening is over: the alert clears by itself
    from services.monitoring.handlers import lots
    lots.check_spoilage(c.monitoring.ctx)
    assert [p["kind"] for p in c.monitoring.payloads("alert_cleared")] == ["deadline_missed"]


# ---- intake → market, market → monitoring --------------------------------------------------------

MARKET_HQ = Caller("hq-officer", "hq")
OUTLET_STAFF = Caller("sm-staff", "supermarket", "SM-1")


def market_outlet(c: County, outlet_id: str = "SM-1", kind: str = "supermarket") -> None:
    from services.market.handlers import outlets

    lat, lon = ct.VILLAGE
    c.market.run(lambda ctx, uow: outlets.register_outlet(uow, MARKET_HQ, {
        "outlet_id": outlet_id, "name": "定点超市", "kind": kind, "township": "城关镇",
        "lat": lat + 0.002, "lon": lon + 0.002}))


@contract(("intake", "requester_registered", "market"),
          ("intake", "requester_updated", "market"))
def test_requester_snapshots_become_the_markets_communities(make_county):
    c = make_county("intake", "market")
    ct.register_village(c, "V1", households=300, drop_point="DP-1")
    ct.register_hospital(c, "U1")
    assert len(c.relay("intake", "requester_registered", to="market")) == 2
    c.intake.run(update_requester, ct.intake_hq(), "V1", {"households": 320}, 1)
    assert len(c.relay("intake", "requester_updated", to="market")) == 1
    # a late, older snapshot changes nothing
    c.deliver(c.intake.outbox("requester_registered")[0] | {"event_id": str(uuid.uuid4())}, "market")

    (v1,) = c.market.rows("communities")  # the unit is not the market's
    assert (v1.id, v1.township, v1.version) == ("V1", "城关镇", 2)
    assert (v1.data["lat"], v1.data["lon"], v1.data["households"]) == (*ct.VILLAGE, 320)
    assert v1.data["drop_points"] == [{"drop_point_id": "DP-1", "name": "村委会"}]


@contract(("market", "sellable_list_published", "monitoring"))
def test_a_sellable_lists_watched_prices_reach_the_price_watch(make_county):
    from services.market.handlers import lists
    from services.monitoring.handlers.prices import submit_prices

    c = make_county("market", "monitoring")
    market_outlet(c)
    c.monitoring.run(submit_prices, Caller("supervisor", "market_supervisor"), [
        {"product": "PORK", "market": "SM-1", "day": (DAY - timedelta(days=n)).isoformat(), "price_yuan": "28.00"}
        for n in (1, 2, 3)])
    c.market.run(lists.publish_list, OUTLET_STAFF, "SM-1", (DAY + timedelta(days=1)).isoformat(), [
        {"item_code": "PORK-KG", "price_fen": 9000}, {"item_code": "EGG-30", "price_fen": 2700},
        {"item_code": "RICE-10KG", "price_fen": 6500}])
    c.relay("market", "sellable_list_published", to="monitoring")

    p = c.monitoring.table("prices")
    got = {(r.product, r.market, r.day, r.price_fen) for r in c.monitoring.rows("prices", p.c.day == DAY)}
    assert got == {("PORK", "SM-1", DAY, 9000), ("EGG", "SM-1", DAY, 1500)}  # 27.00 a box of 1.8 kg; rice ignored
    a = c.monitoring.table("alerts")
    (alert,) = c.monitoring.rows("alerts", a.c.kind == "price_rise")
    assert alert.state == "opened" and "PORK@SM-1" in alert.subject


def test_no_market_event_carries_a_household_address(make_county):
    """Addresses stay in the market's own table: every payload names a household by its reference."""
    from services.market.handlers import community_orders, lists, orders, settlement

    c = make_county("intake", "market")
    ct.register_village(c, "V1", drop_point="DP-1")
    c.relay("intake", "requester_registered", to="market")
    market_outlet(c)
    d = (DAY + timedelta(days=1)).isoformat()
    worker = Caller("gw-wang", "grid_worker", "V1")
    c.market.run(lists.publish_list, OUTLET_STAFF, "SM-1", d, [{"item_code": "PORK-KG", "price_fen": 2800}])
    placed = c.market.run(orders.place, worker, community_id="V1", day_text=d, address="东风村七组18号",
                          payment_mode="collected", raw_lines=[{"item_code": "PORK-KG", "quantity": 2}],
                          expected_amount_fen=5600)
    c.market.run(settlement.record_payment, worker, placed.order_id, "collected", 5600, "")
    (co,) = c.market.run(lambda ctx, uow: community_orders.aggregate_day(uow, worker, "V1", d, ""))
    c.market.run(lambda ctx, uow: community_orders.confirm(uow, OUTLET_STAFF, co.community_order_id,
                                                           [("PORK-KG", "full", 0)]))
    _, (parcel,) = c.market.run(lambda ctx, uow: community_orders.pack_order(uow, OUTLET_STAFF,
                                                                             co.community_order_id))
    c.market.run(settlement.confirm_parcel, worker, parcel.parcel_id, "received", {}, "")
    c.market.run(settlement.settle, Caller("clerk-zhao", "clerk"), co.community_order_id)
    bodies = [json.dumps(e, ensure_ascii=False) for e in c.market.outbox()]
    assert {e["event_type"] for e in c.market.outbox()} >= {
        "sellable_list_published", "household_order_placed", "payment_recorded", "community_order_sent",
        "community_order_confirmed", "parcels_packed", "parcel_delivered", "delivery_settled"}
    assert all("东风村七组" not in b for b in bodies)
    assert all(placed.household_ref in b for b in bodies if '"household_order_placed"' in b)
