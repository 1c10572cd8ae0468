"""Special needs (特殊需求): registering one with its first demand, listing them masked, and the
periodic ones' demands when they fall due."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork, new_id
from services.common.repository import Page
from services.intake import domain as d
from services.intake.adapters import repositories as repo
from services.intake.domain import events as ev
from services.intake.handlers.base import (
    SPECIAL_NEED_READ_ROLES,
    IntakeContext,
    choice,
    record,
    requester,
)
from services.intake.handlers.policy import demand_policy


def register_special_need(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, requester_id: str,
                          name: str, phone: str, category: Any, lines: Sequence[Any],
                          period_days: Any, delivery_day: date | str | None, note: str
                          ) -> tuple[d.SpecialNeed, d.Demand]:
    actor.require_for(requester_id, "hq", "village", "grid_worker")
    found = requester(uow, requester_id)
    now, policy = ctx.clock.now(), demand_policy(ctx, uow)
    need = d.register_special_need(
        need_id=new_id("SN"), requester=found, name=name, phone=phone, category=category,
        lines=lines, catalogue=ctx.catalogue, policy=policy, secret=ctx.secret,
        registered_by=actor.identity, at=now, period_days=period_days or None,
        delivery_day=delivery_day or None, note=note)
    demand = d.special_need_demand(need, found, demand_id=new_id("D"), catalogue=ctx.catalogue,
                                   policy=policy, at=now)
    repo.special_needs.add(uow.conn, need)
    repo.demands.add(uow.conn, demand)
    record(uow, ev.special_need_registered(need))
    record(uow, ev.demand_registered(demand, found))
    return need, demand


def list_special_needs(uow: UnitOfWork, actor: Caller, *, requester_id: str = "",
                       category: str = "", beneficiary: str = "", page_size: int = 0,
                       page_token: str = "") -> Page[d.SpecialNeedView]:
    """hq sees every village's list; a village or grid worker its own village's only."""
    requester_id = actor.require_for(requester_id, *SPECIAL_NEED_READ_ROLES)
    page = repo.special_need_page(
        uow.conn, requester_id=requester_id, pseudonym=beneficiary,
        category=choice("category", category, d.SpecialNeedCategory) if category else "",
        page_size=page_size, page_token=page_token)
    return Page([n.view() for n in page.items], page.next_page_token, page.total)


def create_due_special_need_demands(ctx: IntakeContext, uow: UnitOfWork) -> list[d.Demand]:
    """Periodic needs (chronic medicine every n days, 篇13 §六(二)4) become demands for the next
    open delivery day on which they are due. The demand id is derived from the need and the day,
    so running this again, or in two workers at once, creates nothing twice."""
    now, policy = ctx.clock.now(), demand_policy(ctx, uow)
    day = policy.delivery_target(now).day
    created = []
    for need in repo.all_special_needs(uow.conn):
        if not need.period_days or day == need.start_day or not need.is_due(day):
            continue
        demand_id = f"D-{need.id}-{day:%Y%m%d}"
        if repo.demands.get(uow.conn, demand_id) is not None:
            continue
        found = requester(uow, need.requester_id)
        demand = d.special_need_demand(need, found, demand_id=demand_id,
                                       catalogue=ctx.catalogue, policy=policy, at=now,
                                       delivery_day=day)
        repo.demands.add(uow.conn, demand)
        record(uow, ev.demand_registered(demand, found))
        created.append(demand)
    return created
