"""The county's cut-off: allocation's policy owns it (docs/adr/0008); intake follows it."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from services.common.db import UnitOfWork
from services.intake import domain as d
from services.intake.adapters import county_policy_store
from services.intake.adapters import repositories as repo
from services.intake.handlers.base import IntakeContext


def county_cutoff(uow: UnitOfWork) -> d.CountyCutoff | None:
    """The newest cut-off received from allocation (None before its first policy_changed)."""
    return county_policy_store.newest_cutoff(uow.conn)


@lru_cache(maxsize=32)
def _following(base: d.DemandPolicy, county: d.CountyCutoff | None) -> d.DemandPolicy:
    return base.following(county)


def demand_policy(ctx: IntakeContext, uow: UnitOfWork) -> d.DemandPolicy:
    """The demand rules with the county's cut-off; the built-in 11:00 until allocation's first
    policy_changed arrives (it publishes one when its worker starts)."""
    return _following(ctx.policy, county_cutoff(uow))


def apply_policy_changed(ctx: IntakeContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> bool:
    """`policy_changed` from allocation: follow its cut-off, unless ours is as new already (a
    late or repeated version: False). Open demands of today and later get their day's new cut-off,
    so that cancelling stops when allocation plans the day."""
    incoming = d.county_cutoff(payload)
    known = county_cutoff(uow)
    if not incoming.supersedes(None if known is None else known.version):
        return False
    if not county_policy_store.add_cutoff(uow.conn, incoming, ctx.clock.now()):
        return False  # another worker applied this version first
    policy = _following(ctx.policy, incoming)
    ids = repo.open_demand_ids(uow.conn, since=policy.local_day(ctx.clock.now()))
    for demand in repo.demands.get_many(uow.conn, ids).values():
        moved = d.follow_cutoff(demand, policy)
        if moved != demand:
            repo.demands.save(uow.conn, moved)
    return True
