"""Plans: making one (draft, then save), HQ's decision on it, and reading plans."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.allocation import plans as pv
from services.allocation.adapters import demand_store, plan_store
from services.allocation.adapters.stock import StockSnapshot
from services.allocation.domain import (
    DemandLine,
    Depot,
    ExcludedLot,
    Plan,
    PlanWarning,
    Reason,
    Requester,
)
from services.allocation.domain import plan_state as ps
from services.allocation.domain.county_policy import CountyPolicy
from services.allocation.domain.forecast import classify_plan_items
from services.allocation.handlers.base import (
    DEFAULT_LINES_PAGE,
    MAX_LINES_PAGE,
    PLAN_READ_ROLES,
    PLAN_ROLES,
    AllocationContext,
)
from services.allocation.handlers.policy import current_policy
from services.common.auth import SCOPED_ROLES, Caller
from services.common.db import UnitOfWork, new_id
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.repository import encode_page_token

SNAPSHOT_EXPIRED = "EXPIRED"  # logistics' reason for a lot expiring before the delivery day


@dataclass(frozen=True)
class PlanView:
    """A plan version with one page of its lines. dry_run: computed, not stored (plan_id "")."""

    header: ps.PlanHeader
    details: pv.PlanDetails
    lines: tuple[pv.StoredLine, ...]
    next_page_token: str = ""
    dry_run: bool = False


@dataclass(frozen=True)
class Draft:
    delivery_day: date
    policy: CountyPolicy
    plan: Plan
    details: pv.PlanDetails
    drop_points: dict[str, str]

    def stored_lines(self, plan_id: str) -> list[pv.StoredLine]:
        return [pv.StoredLine(pv.line_id(plan_id, i), i, self.drop_points.get(pl.requester_id, ""),
                              pl) for i, pl in enumerate(self.plan.lines, start=1)]


def plan_header(uow: UnitOfWork, plan_id: str, *, lock: bool = False) -> ps.PlanHeader:
    if not plan_id:
        raise InvalidInput("plan_id", "required")
    header = plan_store.header(uow.conn, plan_id, lock=lock)
    if header is None:
        raise NotFound(f"plan_id: no plan {plan_id!r} / 无此方案")
    return header


def plan_details(uow: UnitOfWork, plan_id: str) -> pv.PlanDetails:
    details = plan_store.details(uow.conn, plan_id)
    if details is None:
        raise NotFound(f"plan_id: no plan {plan_id!r}")
    return details


def _page_size(page_size: int) -> int:
    if page_size < 0 or page_size > MAX_LINES_PAGE:
        raise InvalidInput("lines_page.page_size", f"must be 0 … {MAX_LINES_PAGE}")
    return page_size or DEFAULT_LINES_PAGE


# ---- making a plan --------------------------------------------------------------------------
def _engine_requester(rid: str, data: Mapping[str, Any]) -> Requester:
    """Reserve floors count residents of villages and communities; a unit's staff and patients
    live in (or are counted by) those areas already, so units add no population."""
    population = int(data.get("population") or 0) if data.get("kind") != "unit" else 0
    return Requester(rid, data.get("township") or "", float(data["lat"]), float(data["lon"]),
                     population, data.get("kind") or "village")


def planning_day(ctx: AllocationContext, delivery_day: date | None) -> date:
    """The day asked for, or the day whose cut-off falls today (county time)."""
    if delivery_day is not None:
        return delivery_day
    with ctx.uow() as uow:
        policy = current_policy(ctx, uow)
    return policy.planning_day(ctx.clock.now(), ctx.tz)


def check_can_run(ctx: AllocationContext, delivery_day: date, dry_run: bool) -> None:
    with ctx.uow() as uow:
        policy = current_policy(ctx, uow)
    now = ctx.clock.now()
    ps.check_can_run(delivery_day, now, policy.cutoff_at(delivery_day, ctx.tz),
                     now.astimezone(ctx.tz).date(), dry_run)


def draft_plan(ctx: AllocationContext, delivery_day: date) -> Draft:
    """Compute the plan for the day's open demands against a fresh stock snapshot. No writes.

    Raises StockUnavailable when logistics does not answer."""
    if ctx.stock is None:
        raise RuntimeError("this process has no stock source (the nameko worker never plans)")
    with ctx.uow() as uow:
        policy = current_policy(ctx, uow)
        demand_rows = demand_store.open_demands(uow.conn, delivery_day)
        requesters = demand_store.requesters(uow.conn)
    lines: list[DemandLine] = []
    demand_ids: list[str] = []
    skipped: list[str] = []
    warnings: list[PlanWarning] = []
    for row in demand_rows:
        if row.requester_id not in requesters:
            skipped.append(row.id)
            continue
        demand_ids.append(row.id)
        for ln in row.data["lines"]:
            if ln["item_code"] not in ctx.catalogue.items:
                warnings.append(PlanWarning(
                    "UNKNOWN_ITEM", ln["item_code"],
                    f"需求{row.id}第{ln['line_no']}行的物资编码不在目录（{ctx.catalogue.version}）中，未分配。",
                    f"demand {row.id} line {ln['line_no']}: item not in catalogue "
                    f"{ctx.catalogue.version}; not allocated."))
                continue
            lines.append(DemandLine(row.id, ln["line_no"], row.requester_id, ln["item_code"],
                                    ln["quantity"], ln["tier"], bool(ln.get("flagged"))))
    if skipped:
        warnings.append(PlanWarning(
            "REQUESTER_UNKNOWN", "",
            f"{len(skipped)}个需求的需求方信息尚未同步到调配服务，未纳入本方案；同步后可重新生成。",
            f"{len(skipped)} demands left out: their requester is not known here yet; "
            f"run the allocation again once it is."))
    codes = {ln.item_code for ln in lines}
    if policy.allow_package_substitution:
        codes |= {p.code for c in list(codes) for p in ctx.catalogue.packages_containing(c)}
    snap = ctx.stock.snapshot(delivery_day, sorted(codes)) if lines else StockSnapshot((), ())
    depot_ids = {x.id for x in snap.depots}
    lots, rejected = [], [f"{lot}: {why}" for lot, why in snap.rejected]
    left_out: list[ExcludedLot] = []
    # expired lots go to the engine, which leaves them out and says so on the lines they leave short
    given = [(lot, "") for lot in snap.lots] + list(snap.excluded)
    for lot, why in given:
        if lot.item_code not in ctx.catalogue.items:
            rejected.append(f"{lot.lot_id}: item {lot.item_code!r} not in the catalogue")
        elif lot.depot_id not in depot_ids:
            rejected.append(f"{lot.lot_id}: depot {lot.depot_id!r} not in the snapshot")
        elif why not in ("", SNAPSHOT_EXPIRED):
            left_out.append(ExcludedLot(lot.lot_id, lot.depot_id, lot.item_code, lot.available,
                                        lot.expiry, Reason(why, f"物流未列入库存快照（{why}）",
                                                           f"left out by logistics ({why})")))
        elif lot.available > 0:
            lots.append(lot)
    if rejected:
        warnings.append(PlanWarning("SNAPSHOT_LOT_REJECTED", "",
                                    f"库存快照中{len(rejected)}个批次无法识别，未参与分配。",
                                    f"{len(rejected)} lots of the stock snapshot could not be read "
                                    f"and were not allocated."))
    depots = [Depot(x.id, x.lat, x.lon) for x in snap.depots]
    engine_requesters = [_engine_requester(rid, data) for rid, data in requesters.items()]
    from services.allocation.domain.engine import allocate  # numpy, ortools: on the first plan

    plan = allocate(lines, lots, engine_requesters, depots, policy.engine_policy(), ctx.catalogue,
                    delivery_day)
    asked: dict[str, int] = {}
    for ln in lines:
        asked[ln.item_code] = asked.get(ln.item_code, 0) + ln.quantity
    classes = classify_plan_items(asked, sum(r.population for r in engine_requesters),
                                  ctx.catalogue)
    details = pv.details_of(plan, policy, demand_ids=demand_ids, skipped_demands=skipped,
                            rejected_lots=rejected, extra_warnings=warnings, depots=snap.depots,
                            stock_taken_at=snap.taken_at, stock_ledger_seq=snap.ledger_seq,
                            left_out=left_out, material_classes=classes)
    drop_points = {rid: (data.get("drop_points") or [{}])[0].get("id", "")
                   for rid, data in requesters.items()}
    return Draft(delivery_day, policy, plan, details, drop_points)


def dry_run_view(ctx: AllocationContext, draft: Draft, page_size: int) -> PlanView:
    size = _page_size(page_size)
    now = ctx.clock.now()
    header = ps.PlanHeader(
        plan_id="", delivery_day=draft.delivery_day, version=0, status=ps.PlanStatus.PROPOSED,
        trigger=ps.PlanTrigger.MANUAL, created_at=now, created_by="",
        policy_version=draft.policy.version,
        dispatch_deadline=draft.policy.dispatch_deadline_at(draft.delivery_day, ctx.tz))
    lines = draft.stored_lines("DRY")[:size]
    return PlanView(header, draft.details, tuple(lines), "", dry_run=True)


def save_plan(ctx: AllocationContext, uow: UnitOfWork, actor: Caller, draft: Draft,
              trigger: ps.PlanTrigger, page_size: int = 0) -> PlanView | None:
    """Store the draft as the day's next version (superseding a proposed one) with the
    plan_proposed event. At the cut-off, only when the day has no plan yet (else None)."""
    day = draft.delivery_day
    day_plans = plan_store.day_headers(uow.conn, day, lock=True)
    if trigger is ps.PlanTrigger.CUTOFF and not ps.cutoff_due(day_plans):
        return None
    now = ctx.clock.now()
    header, superseded = ps.propose(
        day_plans, plan_id=new_id("P"), delivery_day=day, trigger=trigger, at=now,
        by=actor.identity, policy_version=draft.policy.version,
        dispatch_deadline=draft.policy.dispatch_deadline_at(day, ctx.tz))
    if not plan_store.add_plan(uow.conn, header, draft.details, now):
        raise Conflict(f"version {header.version} of the plan for {day} was stored by another "
                       f"request at the same moment; read it (GetPlan) or run again")
    stored = draft.stored_lines(header.plan_id)
    plan_store.add_lines(uow.conn, header.plan_id, stored)
    for old in superseded:
        plan_store.save_header(uow.conn, old)
    demand_store.mark_planned(uow.conn, draft.details.demand_ids, header.plan_id)
    plan_store.remember_depots(uow.conn, draft.details.depots, now)
    uow.record_event(pv.PLAN_PROPOSED, pv.plan_proposed(header, draft.details,
                                                        [o.plan_id for o in superseded]),
                     schema_version=pv.SCHEMA_VERSION)
    size = page_size or DEFAULT_LINES_PAGE
    token = encode_page_token([stored[size - 1].seq]) if len(stored) > size else ""
    return PlanView(header, draft.details, tuple(stored[:size]), token)


# ---- decisions --------------------------------------------------------------------------------
def approve_plan(ctx: AllocationContext, uow: UnitOfWork, actor: Caller, plan_id: str
                 ) -> ps.PlanHeader:
    actor.require(*PLAN_ROLES)
    plan = plan_header(uow, plan_id, lock=True)
    approved = ps.approve(plan, plan_store.day_headers(uow.conn, plan.delivery_day, lock=True),
                          by=actor.identity, at=ctx.clock.now())
    plan_store.save_header(uow.conn, approved)
    uow.record_event(pv.PLAN_APPROVED,
                     pv.plan_approved(approved, plan_store.all_lines(uow.conn, plan_id),
                                      plan_details(uow, plan_id).policy),
                     schema_version=pv.SCHEMA_VERSION)
    return approved


def reject_plan(ctx: AllocationContext, uow: UnitOfWork, actor: Caller, plan_id: str,
                reason: str) -> ps.PlanHeader:
    actor.require(*PLAN_ROLES)
    reason = ps.check_reason(reason)
    plan = plan_header(uow, plan_id, lock=True)
    rejected = ps.reject(plan, plan_store.day_headers(uow.conn, plan.delivery_day, lock=True),
                         by=actor.identity, at=ctx.clock.now(), reason=reason)
    plan_store.save_header(uow.conn, rejected)
    uow.record_event(pv.PLAN_REJECTED, pv.plan_rejected(rejected),
                     schema_version=pv.SCHEMA_VERSION)
    return rejected


# ---- reading plans ------------------------------------------------------------------------------
def get_plan(uow: UnitOfWork, plan_id: str, page_size: int = 0, page_token: str = "",
             requester_id: str = "") -> PlanView:
    header = plan_header(uow, plan_id)
    lines, token = plan_store.lines_page(uow.conn, plan_id, _page_size(page_size), page_token,
                                         requester_id)
    return PlanView(header, plan_details(uow, plan_id), lines, token)


def plan_reader(actor: Caller, requester_id: str) -> str:
    """The requester whose lines the caller reads ('' = every line): the plan's readers see all,
    or narrow to one; a scoped caller (village, unit) reads its own requester's lines only."""
    if actor.role in SCOPED_ROLES:
        return actor.require_for(requester_id, *SCOPED_ROLES)
    actor.require(*PLAN_READ_ROLES)
    return requester_id


def latest_plan_id(uow: UnitOfWork, day: date) -> str:
    plans_of_day = plan_store.day_headers(uow.conn, day)
    if not plans_of_day:
        raise NotFound(f"delivery_day: no plan for {day} yet / 当日尚无方案")
    return plans_of_day[-1].plan_id


def list_plans(uow: UnitOfWork, day: date) -> list[tuple[ps.PlanHeader, pv.PlanDetails]]:
    return plan_store.day_versions(uow.conn, day)
