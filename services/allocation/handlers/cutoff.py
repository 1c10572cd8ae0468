"""The cut-off: the due day's first plan, made by the system once across processes."""

from __future__ import annotations

from datetime import date, datetime

from services.allocation.adapters import demand_store, plan_store
from services.allocation.domain import plan_state as ps
from services.allocation.handlers.base import AllocationContext
from services.allocation.handlers.plans import PlanView, draft_plan, save_plan
from services.allocation.handlers.policy import current_policy
from services.common.auth import Caller
from services.common.errors import Conflict

CUTOFF_ACTOR = Caller("system:cutoff", "admin")


def cutoff_due_day(ctx: AllocationContext, now: datetime | None = None) -> date | None:
    """The delivery day the cut-off should plan now: its cut-off has passed today, it has open
    demands and no plan yet. Cheap (three small reads): the worker's timer asks every tick."""
    now = now or ctx.clock.now()
    with ctx.uow() as uow:
        policy = current_policy(ctx, uow)
        day = policy.due_day(now, ctx.tz)
        if day is None or not ps.cutoff_due(plan_store.day_headers(uow.conn, day)):
            return None
        if not demand_store.has_open_demand(uow.conn, day):
            return None  # nothing asked (yet): no plan; a demand arriving later starts one
    return day


def run_cutoff(ctx: AllocationContext, now: datetime | None = None) -> PlanView | None:
    """Plan the due day once (idempotent across processes: the day's version 1 is unique)."""
    day = cutoff_due_day(ctx, now)
    if day is None:
        return None
    draft = draft_plan(ctx, day)
    try:
        with ctx.uow() as uow:
            view = save_plan(ctx, uow, CUTOFF_ACTOR, draft, ps.PlanTrigger.CUTOFF)
            if view is not None:
                uow.commit()
    except Conflict:
        return None  # another process stored the day's plan first
    return view
