"""Explaining one plan line: the numbers behind its reasons (tiers, reserve, depots)."""

from __future__ import annotations

from dataclasses import dataclass

from services.allocation import plans as pv
from services.allocation.adapters import demand_store, plan_store
from services.allocation.domain import ReserveDraw, ReserveFloor, TierSummary
from services.allocation.domain import plan_state as ps
from services.allocation.domain.geo import haversine_km
from services.allocation.handlers.base import AllocationContext
from services.allocation.handlers.plans import plan_details, plan_header
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, NotFound
from services.common.tiers import TIER_NAMES


@dataclass(frozen=True)
class DepotLeg:
    depot_id: str
    name: str
    item_code: str
    quantity: int
    distance_km: float | None


@dataclass(frozen=True)
class Explanation:
    """A plan line with the numbers behind its reasons."""

    header: ps.PlanHeader
    line: pv.StoredLine
    township: str
    tier_summary: TierSummary | None
    item_by_tier: tuple[TierSummary, ...]
    drawn_by_higher_tiers: int
    reserve_floor: ReserveFloor | None
    reserve_draws: tuple[ReserveDraw, ...]
    legs: tuple[DepotLeg, ...]
    tier_name_zh: str
    tier_name_en: str
    priority_rank: int = 0
    material_class: str | None = None


def explain_line(ctx: AllocationContext, uow: UnitOfWork, *, plan_id: str, plan_line_id: str,
                 demand_id: str, line_no: int) -> Explanation:
    if plan_line_id:
        pl_id = pv.split_dispatch_id(plan_line_id)
        owner = pl_id.rsplit("-", 1)[0]
        if plan_id and plan_id != owner:
            raise InvalidInput("plan_line_id", f"{plan_line_id!r} is not a line of {plan_id!r}")
        plan_id = owner
        which = {"plan_line_id": pl_id}
        what = f"plan_line_id: no line {plan_line_id!r}"
    elif demand_id:
        if not plan_id:
            raise InvalidInput("plan_id", "required with demand_id (which version to explain)")
        if line_no < 0:
            raise InvalidInput("demand_line_no", "must be ≥ 0 (0-based, as intake numbers lines)")
        which = {"plan_id": plan_id, "demand_id": demand_id, "line_no": line_no}
        what = f"demand_id: no line {demand_id!r} #{line_no} in plan {plan_id!r}"
    else:
        raise InvalidInput("plan_line_id", "give plan_line_id, or plan_id with demand_id and "
                                           "demand_line_no")
    header = plan_header(uow, plan_id)
    stored = plan_store.line(uow.conn, **which)
    if stored is None:
        raise NotFound(what)
    details = plan_details(uow, plan_id)
    pl = stored.line
    order = {tier: i for i, tier in enumerate(details.policy.tier_order)}
    by_tier = tuple(sorted((s for s in details.summaries if s.item_code == pl.item_code),
                           key=lambda s: order.get(s.tier, s.tier)))
    mine = next((s for s in by_tier if s.tier == pl.tier), None)
    higher = sum(s.allocated + s.substituted_packages for s in by_tier
                 if order.get(s.tier, s.tier) < order.get(pl.tier, pl.tier))
    floor = next((f for f in details.floors if f.item_code == pl.item_code), None)
    draws = tuple(x for x in details.reserve_draws if x.item_code == pl.item_code)
    req = demand_store.requester(uow.conn, pl.requester_id)
    depots = {x.id: x for x in details.depots}
    legs = []
    for item_code, picks in ((pl.item_code, pl.picks),
                             (pl.substitution.package_code if pl.substitution else "",
                              pl.substitution.picks if pl.substitution else ())):
        per_depot: dict[str, int] = {}
        for p in picks:
            per_depot[p.depot_id] = per_depot.get(p.depot_id, 0) + p.quantity
        for depot_id, qty in per_depot.items():
            dep = depots.get(depot_id)
            km = None
            if dep is not None and req is not None:
                km = round(float(haversine_km([req["lat"]], [req["lon"]],
                                              [dep.lat], [dep.lon])[0, 0]), 3)
            legs.append(DepotLeg(depot_id, dep.name if dep else "", item_code, qty, km))
    zh, en = TIER_NAMES.get(pl.tier, ("", ""))
    return Explanation(header, stored, (req.get("township") or "") if req else "", mine,
                       by_tier, higher, floor, draws, tuple(legs), zh, en,
                       details.policy.priority_rank(pl.tier), details.class_of(pl.item_code))
