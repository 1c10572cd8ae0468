"""Allocation use cases: load, call the domain, save, record events — in one unit of work.

Functions that change state take an open UnitOfWork and do not commit: the caller (the gRPC
servicer through run_idempotent, the worker through consume, the cut-off runner) commits, so
the idempotency key or the processed-event record lands in the same transaction as the effect.

Making a plan has two steps: draft_plan() reads the day's demands, asks logistics for stock
(network) and runs the engine (CPU) outside any transaction; save_plan() then applies the plan
state rules and stores the plan, its lines and the plan_proposed event in one short one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.allocation import plans as pv
from services.allocation.adapters import schema
from services.allocation.adapters.stock import DepotInfo, StockSnapshot, StockSource
from services.allocation.domain import (
    DemandLine,
    Depot,
    ExcludedLot,
    Plan,
    PlanWarning,
    Reason,
    Requester,
    ReserveDraw,
    ReserveFloor,
    TierSummary,
    allocate,
)
from services.allocation.domain import plan_state as ps
from services.allocation.domain.county_policy import CountyPolicy, apply_changes
from services.allocation.domain.forecast import (
    Backtest,
    Forecast,
    classify_plan_items,
    forecast_demand,
    moving_average_backtest,
)
from services.allocation.domain.geo import haversine_km
from services.common.auth import ROLES, SCOPED_ROLES, Caller
from services.common.catalogue import Catalogue
from services.common.clock import Clock
from services.common.days import instant_or, parse_day
from services.common.db import UnitOfWork, new_id
from services.common.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    RuleRefused,
)
from services.common.repository import decode_page_token, encode_page_token
from services.common.serde import from_jsonable, to_jsonable
from services.common.tiers import TIER_NAMES

PLAN_ROLES = ("hq",)
POLICY_ROLES = ("hq",)
# Who reads what (docs/integration.md, access matrix; admin reads everything). Plans name
# villages and units, never people: depot keepers work from them, departments and auditors
# read them county-wide. The policy is the county's published rules (the cut-off …): every
# person may read it, a gateway not.
PLAN_READ_ROLES = ("hq", "depot_keeper", "department", "auditor")  # plans, explanations, forecasts
POLICY_READ_ROLES = tuple(r for r in ROLES if r not in ("admin", "gateway"))
REPORT_ROLES = ("hq", "auditor")  # the daily report reads the other services with the caller's token
DEFAULT_LINES_PAGE = 200
MAX_LINES_PAGE = 1000
OPEN, CANCELLED, CLOSED = "open", "cancelled", "closed"
SNAPSHOT_EXPIRED = "EXPIRED"  # logistics' reason for a lot expiring before the delivery day


CUTOFF_ACTOR = Caller("system:cutoff", "admin")


@dataclass
class AllocationContext:
    engine: Engine
    catalogue: Catalogue
    clock: Clock
    tz: ZoneInfo
    default_policy: CountyPolicy = CountyPolicy()
    stock: StockSource | None = None

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, schema.tables, "allocation", self.clock.now)


# ---- reading intake's events --------------------------------------------------------------
def _required(payload: Mapping[str, Any], name: str) -> Any:
    value = payload.get(name)
    if value is None or value == "":
        raise InvalidInput(f"payload.{name}", "required")
    return value


def _delivery_day(payload: Mapping[str, Any]) -> date:
    return parse_day(payload.get("delivery_day"), "payload.delivery_day", required=True)


def _int(value: Any, field: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise InvalidInput(field, f"must be in {lo} … {hi if hi is not None else '∞'}, got {value}")
    return value


def apply_requester(ctx: AllocationContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> bool:
    """requester_registered / requester_updated: keep the newest snapshot (by version).
    Returns False when ours is as new already (a late or repeated snapshot)."""
    rid = str(_required(payload, "requester_id"))
    version = _int(payload.get("version", 1), "payload.version", 1)
    loc = payload.get("location") or {}
    try:
        lat, lon = float(loc["lat"]), float(loc["lon"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("payload.location", "needs lat and lon") from None
    data = {
        "name": payload.get("name") or "", "kind": str(_required(payload, "kind")),
        "township": payload.get("township") or "", "lat": lat, "lon": lon,
        "drop_points": [{"id": dp.get("id", ""), "name": dp.get("name", "")}
                        for dp in payload.get("drop_points") or ()],
        "population": payload.get("population"), "households": payload.get("households"),
        "risk_level": payload.get("risk_level"), "unit_type": payload.get("unit_type"),
        "headcount": payload.get("headcount"), "beds": payload.get("beds"),
    }
    t = schema.requesters
    row = uow.conn.execute(select(t.c.version).where(t.c.id == rid)).first()
    if row is not None and row.version >= version:
        return False
    values = {"kind": data["kind"], "township": data["township"], "version": version,
              "data": data, "updated_at": ctx.clock.now()}
    if row is None:
        uow.conn.execute(insert(t).values(id=rid, **values))
    else:
        uow.conn.execute(update(t).where(t.c.id == rid).values(**values))
    return True


def apply_demand_registered(ctx: AllocationContext, uow: UnitOfWork,
                            payload: Mapping[str, Any]) -> bool:
    """A new open demand. A demand we already know (or whose cancellation or closing arrived
    first: events of different types travel on different queues) is left as it is."""
    did = str(_required(payload, "demand_id"))
    t = schema.demands
    if uow.conn.execute(select(t.c.id).where(t.c.id == did)).first() is not None:
        return False
    lines = []
    for i, ln in enumerate(payload.get("lines") or ()):
        f = f"payload.lines[{i}]"
        lines.append({
            "line_no": _int(ln.get("line_no"), f"{f}.line_no", 0),
            "item_code": str(_required(ln, "item_code")),
            "quantity": _int(ln.get("quantity"), f"{f}.quantity", 1),
            "tier": _int(ln.get("tier"), f"{f}.tier", 1, 5),
            "flagged": bool(ln.get("flagged")),
            "special_need_id": ln.get("special_need_id"),
        })
    if not lines:
        raise InvalidInput("payload.lines", "a demand needs at least one line")
    uow.conn.execute(insert(t).values(
        id=did, requester_id=str(_required(payload, "requester_id")),
        delivery_day=_delivery_day(payload), status=OPEN,
        top_tier=min(ln["tier"] for ln in lines),
        registered_at=instant_or(payload.get("submitted_at"), ctx.clock.now()), plan_id=None,
        data={"lines": lines, "origin": payload.get("origin"), "township": payload.get("township"),
              "requester_kind": payload.get("requester_kind")}))
    return True


def _close_demand(ctx: AllocationContext, uow: UnitOfWork, payload: Mapping[str, Any],
                  status: str) -> None:
    did = str(_required(payload, "demand_id"))
    t = schema.demands
    if uow.conn.execute(update(t).where(t.c.id == did).values(status=status)).rowcount == 0:
        uow.conn.execute(insert(t).values(  # arrived before its demand_registered: a tombstone
            id=did, requester_id=str(_required(payload, "requester_id")),
            delivery_day=_delivery_day(payload), status=status, top_tier=0,
            registered_at=ctx.clock.now(), plan_id=None, data={"lines": []}))


def apply_demand_cancelled(ctx: AllocationContext, uow: UnitOfWork,
                           payload: Mapping[str, Any]) -> None:
    _close_demand(ctx, uow, payload, CANCELLED)


def apply_demand_closed(ctx: AllocationContext, uow: UnitOfWork,
                        payload: Mapping[str, Any]) -> None:
    """Delivery results: the demand leaves the open set and its delivered quantities become the
    issued history the forecast reads (per item, requester and delivery day)."""
    _close_demand(ctx, uow, payload, CLOSED)
    did = str(payload["demand_id"])
    rid = str(payload["requester_id"])
    day = _delivery_day(payload)
    rows = []
    for i, ln in enumerate(payload.get("lines") or ()):
        f = f"payload.lines[{i}]"
        rows.append({"demand_id": did, "line_no": _int(ln.get("line_no", i), f"{f}.line_no", 0),
                     "requester_id": rid, "item_code": str(_required(ln, "item_code")),
                     "delivery_day": day, "quantity": _int(ln.get("quantity", 0), f"{f}.quantity", 0),
                     "delivered": _int(ln.get("delivered", 0), f"{f}.delivered", 0)})
    t = schema.issued
    uow.conn.execute(delete(t).where(t.c.demand_id == did))
    if rows:
        uow.conn.execute(insert(t), rows)


# ---- policy -------------------------------------------------------------------------------
def current_policy(ctx: AllocationContext, uow: UnitOfWork) -> CountyPolicy:
    t = schema.policies
    row = uow.conn.execute(select(t.c.data).order_by(t.c.version.desc()).limit(1)).first()
    return ctx.default_policy if row is None else from_jsonable(CountyPolicy, row.data)


def set_policy(ctx: AllocationContext, uow: UnitOfWork, actor: Caller, changes: Mapping[str, Any],
               expected_version: int | None) -> CountyPolicy:
    actor.require(*POLICY_ROLES)
    current = current_policy(ctx, uow)
    if expected_version is not None and expected_version != current.version:
        raise RuleRefused("VERSION_MISMATCH", f"policy is at version {current.version}, not "
                                              f"{expected_version}; read it again / 策略已被修改")
    new = apply_changes(current, changes, ctx.catalogue, by=actor.identity, at=ctx.clock.now())
    if new is current:
        return current
    try:
        with uow.conn.begin_nested():
            uow.conn.execute(insert(schema.policies).values(
                version=new.version, data=to_jsonable(new), set_by=actor.identity,
                set_at=new.updated_at))
    except IntegrityError:
        raise RuleRefused("VERSION_MISMATCH", f"policy version {new.version} was written "
                                              f"concurrently; read it again") from None
    uow.record_event(pv.POLICY_CHANGED, pv.policy_changed(new, str(ctx.tz)))
    return new


def announce_policy(ctx: AllocationContext) -> CountyPolicy:
    """At the worker's start: publish the current policy (policy_changed), so that intake knows
    the cut-off before HQ first sets one and after a restore; the first time, version 0 (the
    configured seed) is stored, so that it cannot change under the same version number.
    Publishing a version twice is harmless: consumers apply a version once (docs/adr/0008)."""
    with ctx.uow() as uow:
        current = current_policy(ctx, uow)
        if current is ctx.default_policy:
            try:
                with uow.conn.begin_nested():
                    uow.conn.execute(insert(schema.policies).values(
                        version=current.version, data=to_jsonable(current), set_by="config",
                        set_at=ctx.clock.now()))
            except IntegrityError:  # another worker stored it first
                current = current_policy(ctx, uow)
        uow.record_event(pv.POLICY_CHANGED, pv.policy_changed(current, str(ctx.tz)))
        uow.commit()
    return current


# ---- plans: records -----------------------------------------------------------------------
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


_header_by_id = select(schema.plans.c.header).where(schema.plans.c.id == bindparam("pid"))


def _header(uow: UnitOfWork, plan_id: str, *, lock: bool = False) -> ps.PlanHeader:
    if not plan_id:
        raise InvalidInput("plan_id", "required")
    q = _header_by_id.with_for_update() if lock else _header_by_id
    row = uow.conn.execute(q, {"pid": plan_id}).first()
    if row is None:
        raise NotFound(f"plan_id: no plan {plan_id!r} / 无此方案")
    return from_jsonable(ps.PlanHeader, row.header)


def _day_headers(uow: UnitOfWork, day: date, *, lock: bool = False) -> list[ps.PlanHeader]:
    t = schema.plans
    q = select(t.c.header).where(t.c.delivery_day == day).order_by(t.c.version)
    if lock:
        q = q.with_for_update()
    return [from_jsonable(ps.PlanHeader, r.header) for r in uow.conn.execute(q)]


def _save_header(uow: UnitOfWork, h: ps.PlanHeader) -> None:
    t = schema.plans
    uow.conn.execute(update(t).where(t.c.id == h.plan_id).values(
        status=h.status.value, late=h.late, header=to_jsonable(h)))


def _details(uow: UnitOfWork, plan_id: str) -> pv.PlanDetails:
    t = schema.plans
    row = uow.conn.execute(select(t.c.data).where(t.c.id == plan_id)).first()
    if row is None:
        raise NotFound(f"plan_id: no plan {plan_id!r}")
    return from_jsonable(pv.PlanDetails, row.data)


def _lines_page(uow: UnitOfWork, plan_id: str, page_size: int, page_token: str, requester_id: str = ""
                ) -> tuple[tuple[pv.StoredLine, ...], str]:
    if page_size < 0 or page_size > MAX_LINES_PAGE:
        raise InvalidInput("lines_page.page_size", f"must be 0 … {MAX_LINES_PAGE}")
    size = page_size or DEFAULT_LINES_PAGE
    t = schema.plan_lines
    after = decode_page_token(page_token, [t.c.seq], "lines_page.page_token")
    where = [t.c.plan_id == plan_id, t.c.seq > (after[0] if after else 0)]
    if requester_id:
        where.append(t.c.requester_id == requester_id)
    rows = uow.conn.execute(select(t.c.seq, t.c.data).where(*where).order_by(t.c.seq).limit(size + 1)).all()
    lines = tuple(from_jsonable(pv.StoredLine, r.data) for r in rows[:size])
    return lines, (encode_page_token([rows[size - 1].seq]) if len(rows) > size else "")


def _all_lines(uow: UnitOfWork, plan_id: str) -> list[pv.StoredLine]:
    t = schema.plan_lines
    rows = uow.conn.execute(select(t.c.data).where(t.c.plan_id == plan_id).order_by(t.c.seq))
    return [from_jsonable(pv.StoredLine, r.data) for r in rows]


# ---- plans: making one ----------------------------------------------------------------------
def _engine_requester(rid: str, data: Mapping[str, Any]) -> Requester:
    """Reserve floors count residents of villages and communities; a unit's staff and patients
    live in (or are counted by) those areas already, so units add no population."""
    population = int(data.get("population") or 0) if data.get("kind") != "unit" else 0
    return Requester(rid, data.get("township") or "", float(data["lat"]), float(data["lon"]),
                     population, data.get("kind") or "village")


def _warning(code: str, item_code: str, zh: str, en: str) -> PlanWarning:
    return PlanWarning(code, item_code, zh, en)


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
    d, r = schema.demands, schema.requesters
    with ctx.uow() as uow:
        policy = current_policy(ctx, uow)
        demand_rows = uow.conn.execute(
            select(d.c.id, d.c.requester_id, d.c.data)
            .where(d.c.delivery_day == delivery_day, d.c.status == OPEN).order_by(d.c.id)).all()
        requester_rows = uow.conn.execute(select(r.c.id, r.c.data)).all()
    requesters = {row.id: row.data for row in requester_rows}
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
                warnings.append(_warning(
                    "UNKNOWN_ITEM", ln["item_code"],
                    f"需求{row.id}第{ln['line_no']}行的物资编码不在目录（{ctx.catalogue.version}）中，未分配。",
                    f"demand {row.id} line {ln['line_no']}: item not in catalogue "
                    f"{ctx.catalogue.version}; not allocated."))
                continue
            lines.append(DemandLine(row.id, ln["line_no"], row.requester_id, ln["item_code"],
                                    ln["quantity"], ln["tier"], bool(ln.get("flagged"))))
    if skipped:
        warnings.append(_warning(
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
        warnings.append(_warning("SNAPSHOT_LOT_REJECTED", "",
                                 f"库存快照中{len(rejected)}个批次无法识别，未参与分配。",
                                 f"{len(rejected)} lots of the stock snapshot could not be read "
                                 f"and were not allocated."))
    depots = [Depot(x.id, x.lat, x.lon) for x in snap.depots]
    engine_requesters = [_engine_requester(rid, data) for rid, data in requesters.items()]
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
    if page_size < 0 or page_size > MAX_LINES_PAGE:
        raise InvalidInput("lines_page.page_size", f"must be 0 … {MAX_LINES_PAGE}")
    now = ctx.clock.now()
    header = ps.PlanHeader(
        plan_id="", delivery_day=draft.delivery_day, version=0, status=ps.PlanStatus.PROPOSED,
        trigger=ps.PlanTrigger.MANUAL, created_at=now, created_by="",
        policy_version=draft.policy.version,
        dispatch_deadline=draft.policy.dispatch_deadline_at(draft.delivery_day, ctx.tz))
    lines = draft.stored_lines("DRY")[:page_size or DEFAULT_LINES_PAGE]
    return PlanView(header, draft.details, tuple(lines), "", dry_run=True)


def save_plan(ctx: AllocationContext, uow: UnitOfWork, actor: Caller, draft: Draft,
              trigger: ps.PlanTrigger, page_size: int = 0) -> PlanView | None:
    """Store the draft as the day's next version (superseding a proposed one) with the
    plan_proposed event. At the cut-off, only when the day has no plan yet (else None)."""
    day = draft.delivery_day
    day_plans = _day_headers(uow, day, lock=True)
    if trigger is ps.PlanTrigger.CUTOFF and not ps.cutoff_due(day_plans):
        return None
    now = ctx.clock.now()
    header, superseded = ps.propose(
        day_plans, plan_id=new_id("P"), delivery_day=day, trigger=trigger, at=now,
        by=actor.identity, policy_version=draft.policy.version,
        dispatch_deadline=draft.policy.dispatch_deadline_at(day, ctx.tz))
    try:
        with uow.conn.begin_nested():
            uow.conn.execute(insert(schema.plans).values(
                id=header.plan_id, delivery_day=day, version=header.version,
                status=header.status.value, late=False, created_at=now,
                header=to_jsonable(header), data=to_jsonable(draft.details)))
    except IntegrityError:
        raise Conflict(f"version {header.version} of the plan for {day} was stored by another "
                       f"request at the same moment; read it (GetPlan) or run again") from None
    stored = draft.stored_lines(header.plan_id)
    if stored:
        uow.conn.execute(insert(schema.plan_lines), [{
            "id": s.plan_line_id, "plan_id": header.plan_id, "seq": s.seq,
            "demand_id": s.line.demand_id, "line_no": s.line.line_no,
            "requester_id": s.line.requester_id, "item_code": s.line.item_code,
            "tier": s.line.tier, "allocated": s.line.allocated, "unmet": s.line.unmet,
            "data": to_jsonable(s)} for s in stored])
    for old in superseded:
        _save_header(uow, old)
    d = schema.demands
    ids = list(draft.details.demand_ids)
    for i in range(0, len(ids), 500):
        uow.conn.execute(update(d).where(d.c.id.in_(ids[i:i + 500])).values(plan_id=header.plan_id))
    _remember_depots(uow, draft.details.depots, now)
    uow.record_event(pv.PLAN_PROPOSED, pv.plan_proposed(header, draft.details,
                                                        [o.plan_id for o in superseded]),
                     schema_version=pv.SCHEMA_VERSION)
    size = page_size or DEFAULT_LINES_PAGE
    token = encode_page_token([stored[size - 1].seq]) if len(stored) > size else ""
    return PlanView(header, draft.details, tuple(stored[:size]), token)


def _remember_depots(uow: UnitOfWork, depots: Sequence[DepotInfo], now: datetime) -> None:
    """Allocation's view of depots: the latest snapshot's depots (logistics owns them)."""
    t = schema.depots
    for x in depots:
        values = {"name": x.name, "lat": x.lat, "lon": x.lon, "seen_at": now}
        if uow.conn.execute(update(t).where(t.c.id == x.id).values(**values)).rowcount == 0:
            uow.conn.execute(insert(t).values(id=x.id, **values))


# ---- the cut-off ----------------------------------------------------------------------------
def cutoff_due_day(ctx: AllocationContext, now: datetime | None = None) -> date | None:
    """The delivery day the cut-off should plan now: its cut-off has passed today, it has open
    demands and no plan yet. Cheap (three small reads): the worker's timer asks every tick."""
    now = now or ctx.clock.now()
    d = schema.demands
    with ctx.uow() as uow:
        policy = current_policy(ctx, uow)
        day = policy.due_day(now, ctx.tz)
        if day is None or not ps.cutoff_due(_day_headers(uow, day)):
            return None
        if uow.conn.execute(select(d.c.id).where(d.c.delivery_day == day, d.c.status == OPEN)
                            .limit(1)).first() is None:
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


# ---- decisions --------------------------------------------------------------------------------
def approve_plan(ctx: AllocationContext, uow: UnitOfWork, actor: Caller, plan_id: str
                 ) -> ps.PlanHeader:
    actor.require(*PLAN_ROLES)
    plan = _header(uow, plan_id, lock=True)
    approved = ps.approve(plan, _day_headers(uow, plan.delivery_day, lock=True),
                          by=actor.identity, at=ctx.clock.now())
    _save_header(uow, approved)
    uow.record_event(pv.PLAN_APPROVED, pv.plan_approved(approved, _all_lines(uow, plan_id),
                                                        _details(uow, plan_id).policy),
                     schema_version=pv.SCHEMA_VERSION)
    return approved


def reject_plan(ctx: AllocationContext, uow: UnitOfWork, actor: Caller, plan_id: str,
                reason: str) -> ps.PlanHeader:
    actor.require(*PLAN_ROLES)
    reason = ps.check_reason(reason)
    plan = _header(uow, plan_id, lock=True)
    rejected = ps.reject(plan, _day_headers(uow, plan.delivery_day, lock=True),
                         by=actor.identity, at=ctx.clock.now(), reason=reason)
    _save_header(uow, rejected)
    uow.record_event(pv.PLAN_REJECTED, pv.plan_rejected(rejected),
                     schema_version=pv.SCHEMA_VERSION)
    return rejected


# ---- reading plans ------------------------------------------------------------------------------
def get_plan(uow: UnitOfWork, plan_id: str, page_size: int = 0, page_token: str = "",
             requester_id: str = "") -> PlanView:
    header = _header(uow, plan_id)
    lines, token = _lines_page(uow, plan_id, page_size, page_token, requester_id)
    return PlanView(header, _details(uow, plan_id), lines, token)


def plan_reader(actor: Caller, requester_id: str) -> str:
    """The requester whose lines the caller reads ('' = every line): the plan's readers see all,
    or narrow to one; a scoped caller (village, unit) reads its own requester's lines only."""
    if actor.role in SCOPED_ROLES:
        return actor.require_for(requester_id, *SCOPED_ROLES)
    actor.require(*PLAN_READ_ROLES)
    return requester_id


def policy_versions(ctx: AllocationContext, uow: UnitOfWork) -> list[CountyPolicy]:
    t = schema.policies
    return [from_jsonable(CountyPolicy, r.data)
            for r in uow.conn.execute(select(t.c.data).order_by(t.c.version.desc()))]


def latest_plan_id(uow: UnitOfWork, day: date) -> str:
    plans_of_day = _day_headers(uow, day)
    if not plans_of_day:
        raise NotFound(f"delivery_day: no plan for {day} yet / 当日尚无方案")
    return plans_of_day[-1].plan_id


def list_plans(uow: UnitOfWork, day: date) -> list[tuple[ps.PlanHeader, pv.PlanDetails]]:
    t = schema.plans
    rows = uow.conn.execute(select(t.c.header, t.c.data).where(t.c.delivery_day == day)
                            .order_by(t.c.version))
    return [(from_jsonable(ps.PlanHeader, r.header), from_jsonable(pv.PlanDetails, r.data))
            for r in rows]


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
    t = schema.plan_lines
    if plan_line_id:
        pl_id = pv.split_dispatch_id(plan_line_id)
        owner = pl_id.rsplit("-", 1)[0]
        if plan_id and plan_id != owner:
            raise InvalidInput("plan_line_id", f"{plan_line_id!r} is not a line of {plan_id!r}")
        plan_id = owner
        where = [t.c.id == pl_id]
        what = f"plan_line_id: no line {plan_line_id!r}"
    elif demand_id:
        if not plan_id:
            raise InvalidInput("plan_id", "required with demand_id (which version to explain)")
        if line_no < 0:
            raise InvalidInput("demand_line_no", "must be ≥ 0 (0-based, as intake numbers lines)")
        where = [t.c.plan_id == plan_id, t.c.demand_id == demand_id, t.c.line_no == line_no]
        what = f"demand_id: no line {demand_id!r} #{line_no} in plan {plan_id!r}"
    else:
        raise InvalidInput("plan_line_id", "give plan_line_id, or plan_id with demand_id and "
                                           "demand_line_no")
    header = _header(uow, plan_id)
    row = uow.conn.execute(select(t.c.data).where(*where)).first()
    if row is None:
        raise NotFound(what)
    stored = from_jsonable(pv.StoredLine, row.data)
    details = _details(uow, plan_id)
    pl = stored.line
    order = {tier: i for i, tier in enumerate(details.policy.tier_order)}
    by_tier = tuple(sorted((s for s in details.summaries if s.item_code == pl.item_code),
                           key=lambda s: order.get(s.tier, s.tier)))
    mine = next((s for s in by_tier if s.tier == pl.tier), None)
    higher = sum(s.allocated + s.substituted_packages for s in by_tier
                 if order.get(s.tier, s.tier) < order.get(pl.tier, pl.tier))
    floor = next((f for f in details.floors if f.item_code == pl.item_code), None)
    draws = tuple(x for x in details.reserve_draws if x.item_code == pl.item_code)
    r = schema.requesters
    req = uow.conn.execute(select(r.c.data).where(r.c.id == pl.requester_id)).first()
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
                km = round(float(haversine_km([req.data["lat"]], [req.data["lon"]],
                                              [dep.lat], [dep.lon])[0, 0]), 3)
            legs.append(DepotLeg(depot_id, dep.name if dep else "", item_code, qty, km))
    zh, en = TIER_NAMES.get(pl.tier, ("", ""))
    return Explanation(header, stored, (req.data.get("township") or "") if req else "", mine,
                       by_tier, higher, floor, draws, tuple(legs), zh, en,
                       details.policy.priority_rank(pl.tier), details.class_of(pl.item_code))


# ---- forecast ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForecastView:
    item_code: str
    requester_id: str
    series: tuple[tuple[date, int], ...]
    forecast: Forecast
    outlier_days: tuple[date, ...]
    baseline: Backtest | None
    baseline_note: str


def forecast(ctx: AllocationContext, uow: UnitOfWork, *, item_code: str, requester_id: str,
             until_day: date | None, sample_days: int, coefficient: float | None,
             window: int, holdout: int) -> ForecastView:
    """Daily issues of an item (one requester's, or county-wide) from demand_closed events:
    the improved mean-deviation forecast (domain.forecast) and the moving-average baseline with
    its error on the last `holdout` days."""
    if not item_code:
        raise InvalidInput("item_code", "required")
    if item_code not in ctx.catalogue.items:
        raise InvalidInput("item_code", f"unknown item code {item_code!r} "
                                        f"(catalogue {ctx.catalogue.version})")
    sample_days = sample_days or 28
    if not 1 <= sample_days <= 366:
        raise InvalidInput("sample_days", "must be 1 … 366")
    window, holdout = window or 7, holdout or 7
    if not 1 <= window <= 90:
        raise InvalidInput("baseline_window", "must be 1 … 90")
    if not 1 <= holdout <= 90:
        raise InvalidInput("baseline_holdout", "must be 1 … 90")
    coefficient = 1.0 if coefficient is None else coefficient
    if not math.isfinite(coefficient) or coefficient < 0:
        raise InvalidInput("coefficient", "must be a finite number ≥ 0 (1 = no change)")
    until = until_day or (ctx.clock.now().astimezone(ctx.tz).date() - timedelta(days=1))
    start = until - timedelta(days=sample_days - 1)
    t = schema.issued
    q = (select(t.c.delivery_day, func.sum(t.c.delivered))
         .where(t.c.item_code == item_code, t.c.delivery_day >= start, t.c.delivery_day <= until)
         .group_by(t.c.delivery_day))
    if requester_id:
        q = q.where(t.c.requester_id == requester_id)
    per_day = {row[0]: int(row[1] or 0) for row in uow.conn.execute(q)}
    if not per_day:
        who = f"requester {requester_id}" if requester_id else "the county"
        raise RuleRefused("NO_HISTORY", f"no issues of {item_code} to {who} between {start} and "
                                        f"{until} / 该时段无发放记录")
    first = min(per_day)
    days = [first + timedelta(days=i) for i in range((until - first).days + 1)]
    values = [per_day.get(x, 0) for x in days]
    fc = forecast_demand(values, coefficient)
    outliers = tuple(days[i] for i in fc.cleaned.removed)
    baseline, note = None, ""
    if len(values) >= window + holdout:
        baseline = moving_average_backtest(values, window, holdout)
    else:
        note = (f"baseline needs {window + holdout} days of history (window + holdout), "
                f"have {len(values)}")
    return ForecastView(item_code, requester_id, tuple(zip(days, values, strict=True)), fc,
                        outliers, baseline, note)
