"""Allocation's storage on the production path, PostgreSQL: the migration, JSONB round trips of
whole plans, row locks on decisions, and the cut-off made once when several processes race."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from services.allocation.adapters import schema
from services.allocation.adapters.stock import DepotInfo, InMemoryStockSource
from services.allocation.domain import StockLot
from services.allocation.domain import plan_state as ps
from services.allocation.domain.county_policy import CountyPolicy
from services.allocation.handlers.base import AllocationContext
from services.allocation.handlers.cutoff import run_cutoff
from services.allocation.handlers.intake_events import apply_demand_registered, apply_requester
from services.allocation.handlers.plans import approve_plan, get_plan
from services.common.auth import Caller
from services.common.catalogue import load_catalogue
from services.common.clock import FixedClock
from services.common.db import make_engine
from services.common.errors import RuleRefused
from services.common.migrate import upgrade
from tests.unit.allocation.allocation_support import at as place

CST = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 1)
CAT = load_catalogue()
HQ = Caller("hq-officer", "hq")


@pytest.fixture
def ctx(pg_url_factory):
    url = pg_url_factory("allocation")
    upgrade("allocation", url)
    near = place(0, 0)
    stock = InMemoryStockSource(
        [DepotInfo("D1", "城关仓", *near)],
        [StockLot("L1", "D1", "RICE-10KG", 100, DAY + timedelta(days=100)),
         StockLot("L2", "D1", "MASK-N95", 50, DAY + timedelta(days=400))])
    c = AllocationContext(engine=make_engine(url), catalogue=CAT,
                            clock=FixedClock(datetime(2026, 12, 1, 11, 5, tzinfo=CST)), tz=CST,
                            default_policy=CountyPolicy(reserve_days={g: 0 for g in CAT.groups}),
                            stock=stock)
    for i, rid in enumerate(("V1", "V2")):
        lat, lon = place(i + 1, 0)
        with c.uow() as uow:
            apply_requester(c, uow, {"requester_id": rid, "kind": "village", "township": "T",
                                       "location": {"lat": lat, "lon": lon}, "population": 100,
                                       "drop_points": [{"id": f"DP-{rid}"}], "version": 1})
            apply_demand_registered(c, uow, {
                "demand_id": f"D-{rid}", "requester_id": rid, "delivery_day": DAY.isoformat(),
                "lines": [{"line_no": 1, "item_code": "RICE-10KG", "quantity": 80, "tier": 3},
                          {"line_no": 2, "item_code": "MASK-N95", "quantity": 10, "tier": 3}]})
            uow.commit()
    yield c
    c.engine.dispose()


def test_the_cutoff_is_made_once_when_processes_race(ctx):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: run_cutoff(ctx), range(4)))
    made = [r for r in results if r is not None]
    assert len(made) == 1
    with ctx.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.plans)).scalar_one() == 1
        bodies = conn.execute(select(schema.tables["outbox"].c.body)).scalars().all()
    assert [json.loads(b)["event_type"] for b in bodies] == ["plan_proposed"]


def test_a_plan_round_trips_through_jsonb_and_decisions_lock_the_day(ctx):
    made = run_cutoff(ctx)
    rice = {s.line.requester_id: s.line.allocated for s in made.lines if s.line.item_code == "RICE-10KG"}
    assert rice == {"V1": 50, "V2": 50}  # one fill rate within the tier
    with ctx.uow() as uow:
        again = get_plan(uow, made.header.plan_id)
    assert again.lines == made.lines and again.details == made.details and again.header == made.header

    def approve(_):
        try:
            with ctx.uow() as uow:
                header = approve_plan(ctx, uow, HQ, made.header.plan_id)
                uow.commit()
            return header.status
        except RuleRefused as exc:
            return exc.rule

    with ThreadPoolExecutor(3) as pool:
        outcomes = sorted(pool.map(approve, range(3)))
    assert outcomes == sorted([ps.PlanStatus.APPROVED, ps.PLAN_ALREADY_APPROVED,
                               ps.PLAN_ALREADY_APPROVED])
    with ctx.engine.connect() as conn:
        events = [json.loads(b) for b in conn.execute(
            select(schema.tables["outbox"].c.body)
            .where(schema.tables["outbox"].c.routing_key == "plan_approved")).scalars()]
    assert len(events) == 1
    assert {x["drop_point_id"] for x in events[0]["payload"]["lines"]} == {"DP-V1", "DP-V2"}
