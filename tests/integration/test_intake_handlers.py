"""Intake use cases against a real SQLite database: periodic special needs, plans that leave
demands out, deliveries in several stops and by standard packages."""

from datetime import UTC, datetime, timedelta

from services.common.auth import Caller
from services.common.catalogue import load_catalogue
from services.common.clock import FixedClock
from services.common.db import make_engine
from services.common.migrate import upgrade
from services.intake.handlers import base, demands, requesters, special_needs

hq = Caller("hq-1", "hq")


def make_context(tmp_path) -> tuple[base.IntakeContext, FixedClock]:
    """Intake on a fresh SQLite database, at 09:00 Shanghai on 2026-11-28."""
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    upgrade("intake", url)
    clock = FixedClock(datetime(2026, 11, 28, 1, 0, tzinfo=UTC))
    return base.IntakeContext(engine=make_engine(url), catalogue=load_catalogue(), clock=clock,
                           secret=b"test-secret-0123456789"), clock


def register_village(ctx, uow, rid: str, risk: str, name: str = "") -> None:
    requesters.register_requester(ctx, uow, hq, {
        "id": rid, "kind": "village", "name": name or rid, "township": "城关镇",
        "location": {"lat": 30.1, "lon": 120.1}, "population": 800, "households": 300,
        "risk_level": risk})


def test_periodic_special_need_becomes_a_demand_once_per_period(tmp_path):
    ctx, clock = make_context(tmp_path)
    with ctx.uow() as uow:
        register_village(ctx, uow, "V-1", "controlled", name="东风村")
        need, first = special_needs.register_special_need(
            ctx, uow, hq, requester_id="V-1", name="李建国", phone="13987654321",
            category="chronic_medicine", lines=[{"item_code": "MED-INSULIN-PEN", "quantity": 6}],
            period_days=7, delivery_day=None, note="")
        uow.commit()
    start = first.delivery_day
    with ctx.uow() as uow:
        assert special_needs.create_due_special_need_demands(ctx, uow) == []  # the first one exists already
    clock.current += timedelta(days=7)
    with ctx.uow() as uow:
        created = special_needs.create_due_special_need_demands(ctx, uow)
        uow.commit()
    assert [(x.delivery_day, x.lines[0].item_code, int(x.lines[0].tier)) for x in created] == [
        (start + timedelta(days=7), "MED-INSULIN-PEN", 2)]
    assert created[0].origin_ref == need.id
    with ctx.uow() as uow:
        assert special_needs.create_due_special_need_demands(ctx, uow) == []  # not twice
    clock.current += timedelta(days=3)
    with ctx.uow() as uow:
        assert special_needs.create_due_special_need_demands(ctx, uow) == []  # not due mid-period


def test_an_approved_plan_rolls_the_demands_it_left_out(tmp_path):
    ctx, clock = make_context(tmp_path)
    with ctx.uow() as uow:
        for rid in ("V-1", "V-2"):
            register_village(ctx, uow, rid, "controlled")
        planned = demands.submit_demand(ctx, uow, hq, "V-1", [{"item_code": "RICE-10KG", "quantity": 5}], None)
        left_out = demands.submit_demand(ctx, uow, hq, "V-2", [{"item_code": "PORK-KG", "quantity": 9}], None)
        uow.commit()
    payload = {"delivery_day": planned.delivery_day.isoformat(),
               "lines": [{"demand_id": planned.id, "item_code": "RICE-10KG", "quantity": 5}]}
    with ctx.uow() as uow:
        assert demands.roll_unplanned_demands(ctx, uow, payload) == 1
        uow.commit()
    with ctx.uow() as uow:
        assert demands.get_demand(uow, planned.id).status.value == "open"  # waits for its delivery
        rolled = demands.get_demand(uow, left_out.id)
        assert rolled.status.value == "rolled" and rolled.carry_over_demand_id
        carried = demands.get_demand(uow, rolled.carry_over_demand_id)
        assert carried.delivery_day > left_out.delivery_day and carried.lines[0].quantity == 9
        assert demands.roll_unplanned_demands(ctx, uow, payload) == 0  # nothing left to roll


def test_deliveries_in_two_stops_and_by_package_close_the_demand_once_complete(tmp_path):
    ctx, clock = make_context(tmp_path)
    with ctx.uow() as uow:
        register_village(ctx, uow, "V-1", "sealed")
        demand = demands.submit_demand(ctx, uow, hq, "V-1", [{"item_code": "CABBAGE-KG", "quantity": 100},
                                                        {"item_code": "PORK-KG", "quantity": 20}], None)
        uow.commit()
    first_stop = {"lines": [{"demand_id": demand.id, "item_code": "CABBAGE-KG", "received": 60}],
                  "demands_completed": []}
    with ctx.uow() as uow:  # the cold part arrives first; the demand stays open
        demands.apply_delivery_results(ctx, uow, first_stop)
        uow.commit()
    with ctx.uow() as uow:
        assert demands.get_demand(uow, demand.id).status.value == "open"
    second_stop = {"lines": [
        {"demand_id": demand.id, "item_code": "VEG-PACK-STD", "substitute_for": "CABBAGE-KG", "received": 10},
        {"demand_id": demand.id, "item_code": "PORK-KG", "received": 15}],
        "demands_completed": [demand.id]}
    with ctx.uow() as uow:
        demands.apply_delivery_results(ctx, uow, second_stop)
        uow.commit()
    with ctx.uow() as uow:
        closed = demands.get_demand(uow, demand.id)
        delivered = {ln.item_code: ln.delivered for ln in closed.lines}
        assert delivered == {"CABBAGE-KG": 60 + 10 * 2, "PORK-KG": 15}  # a package holds 2 kg cabbage
        assert closed.status.value == "partly_fulfilled"
        rest = demands.get_demand(uow, closed.carry_over_demand_id)
        assert {ln.item_code: ln.quantity for ln in rest.lines} == {"CABBAGE-KG": 20, "PORK-KG": 5}


def test_grouped_submissions_read_each_requester_as_it_stands_now(tmp_path):
    """submit_demands keeps parsed requesters by version: a change of risk level reaches the very
    next demand's tier, and an unknown requester is refused alone."""
    ctx, clock = make_context(tmp_path)
    with ctx.uow() as uow:
        register_village(ctx, uow, "V-1", "prevention", name="东风村")
        uow.commit()

    def submit(key: str, requester_id: str = "V-1"):
        with ctx.uow() as uow:
            [answer] = demands.submit_demands(ctx, uow, [demands.DemandSubmission(
                actor=hq, scope="hq-1:SubmitDemand", idempotency_key=key, fingerprint=key,
                requester_id=requester_id, lines=[{"item_code": "RICE-10KG", "quantity": 1}])],
                lambda demand, _policy: str(int(demand.lines[0].tier)).encode())
            uow.commit()
        return answer

    before = submit("k1")
    with ctx.uow() as uow:
        requesters.update_requester(ctx, uow, hq, "V-1", {"risk_level": "sealed"}, None)
        uow.commit()
    after = submit("k2")
    assert int(after) < int(before)  # sealed areas come before prevention areas
    assert int(submit("k3")) == int(after)
    assert "no requester 'V-404'" in str(submit("k4", "V-404"))
