"""Intake use cases: load, call the domain, save, record events — in one unit of work.

Functions here take an open UnitOfWork and do not commit: the caller (the gRPC servicer through
run_idempotent, or the worker through consume) commits, so the idempotency key or the
processed-event record lands in the same transaction as the effect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, case, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.common.auth import Caller
from services.common.catalogue import Catalogue
from services.common.clock import Clock
from services.common.db import UnitOfWork, new_id, run_idempotent_many
from services.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from services.common.repository import JsonRepository, Page
from services.common.serde import from_jsonable
from services.intake import domain as d
from services.intake.adapters import schema
from services.intake.domain import events as ev
from services.intake.spreadsheet.parse import parse_spreadsheet
from services.intake.spreadsheet.policy import DEFAULT_POLICY, SpreadsheetPolicy
from services.intake.spreadsheet.rows import DemandRow, RequesterRow

DEMAND_ROLES = ("hq", "village", "unit", "unit_head", "grid_worker")
# Who reads what (docs/integration.md, access matrix). admin and hq read everything; village,
# grid_worker, unit and unit_head only what belongs to their own requester (their scope: lists
# are narrowed to it, another requester's record is PERMISSION_DENIED). department and auditor
# read county-wide records without personal data; gateway reads nothing here.
REQUESTER_READ_ROLES = ("hq", "village", "grid_worker", "unit", "unit_head", "depot_keeper",
                        "inspector", "department", "auditor")
DEMAND_READ_ROLES = ("hq", "village", "grid_worker", "unit", "unit_head", "department", "auditor")
SPECIAL_NEED_READ_ROLES = ("hq", "village", "grid_worker")  # names and phones, masked
REQUISITION_READ_ROLES = ("hq", "unit", "unit_head", "auditor")
DONATION_READ_ROLES = ("hq", "inspector", "depot_keeper", "auditor")
DONATION_SUMMARY_ROLES = (*DONATION_READ_ROLES, "department")


def domain_actor(actor: Caller) -> d.Actor:
    return d.Actor(id=actor.identity, role=actor.role, unit_id=actor.scope or None)


@dataclass
class IntakeContext:
    engine: Engine
    catalogue: Catalogue
    clock: Clock
    secret: bytes
    policy: d.DemandPolicy = d.DemandPolicy()
    donation_policy: d.DonationPolicy = d.DonationPolicy()
    spreadsheet_policy: SpreadsheetPolicy = DEFAULT_POLICY

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, schema.tables, "intake", self.clock.now)


def tier_mask(demand: d.Demand) -> int:
    """Bit n set when some line has tier n (ListDemands' tier filter: any line of that tier)."""
    return sum({1 << int(ln.tier) for ln in demand.lines})


requesters = JsonRepository(schema.requesters, d.Requester, lambda r: {
    "kind": r.kind.value, "township": r.township,
    "risk_level": r.risk_level.value if r.risk_level else None, "version": r.version,
    "updated_at": r.updated_at or r.registered_at})
demands = JsonRepository(schema.demands, d.Demand, lambda x: {
    "requester_id": x.requester_id, "delivery_day": x.delivery_day, "status": x.status.value,
    "top_tier": int(x.top_tier), "flagged": x.flagged, "origin": x.origin.value,
    "submitted_at": x.submitted_at, "tier_mask": tier_mask(x)})
special_needs = JsonRepository(schema.special_needs, d.SpecialNeed, lambda n: {
    "requester_id": n.requester_id, "pseudonym": n.beneficiary.pseudonym,
    "category": n.category.value, "registered_at": n.registered_at})
requisitions = JsonRepository(schema.requisitions, d.Requisition, lambda r: {
    "unit_id": r.unit_id, "status": r.status.value, "updated_at": r.approvals[-1].at})
donations = JsonRepository(schema.donations, d.Donation, lambda x: {
    "status": x.status.value, "updated_at": x.received_at})  # received_day: county day, by the handler


def _record(uow: UnitOfWork, event: ev.DomainEvent) -> None:
    uow.record_event(event.event_type, event.payload, schema_version=event.schema_version)


_requester_versions = select(schema.requesters.c.id, schema.requesters.c.version,
                             schema.requesters.c.data)
_requester_by_id = _requester_versions.where(schema.requesters.c.id == bindparam("key"))
_requesters_in = _requester_versions.where(schema.requesters.c.id.in_(bindparam("ids", expanding=True)))
_versions_in = select(schema.requesters.c.id, schema.requesters.c.version).where(
    schema.requesters.c.id.in_(bindparam("ids", expanding=True)))
_requester_cache: dict[tuple[str, int], d.Requester] = {}


def _parsed(row) -> d.Requester:
    """The requester of a row, parsed once per version (the hot path of every demand)."""
    key = (row.id, row.version)
    found = _requester_cache.get(key)
    if found is None:
        if len(_requester_cache) > 100_000:
            _requester_cache.clear()
        found = _requester_cache[key] = from_jsonable(d.Requester, row.data)
    return found


def _known(requester_id: str, found: d.Requester | None, field: str = "requester_id") -> d.Requester:
    """`found`, the requester looked up for `requester_id`; the caller's error if there is none."""
    if not requester_id:
        raise InvalidInput(field, "required")
    if found is None:
        raise NotFound(f"{field}: no requester {requester_id!r} / 未登记的需求方")
    return found


def _requester(uow: UnitOfWork, requester_id: str, field: str = "requester_id") -> d.Requester:
    row = uow.conn.execute(_requester_by_id, {"key": requester_id}).first() if requester_id else None
    return _known(requester_id, None if row is None else _parsed(row), field)


def _requesters(uow: UnitOfWork, requester_ids: set[str]) -> dict[str, d.Requester]:
    """The requesters that exist among these ids: their versions in one query, and the stored
    documents only of those not parsed at that version yet."""
    ids = sorted(i for i in requester_ids if i)
    if not ids:
        return {}
    versions = uow.conn.execute(_versions_in, {"ids": ids}).all()
    found = {r.id: _requester_cache.get((r.id, r.version)) for r in versions}
    missing = [i for i, r in found.items() if r is None]
    if missing:
        found.update({r.id: _parsed(r) for r in uow.conn.execute(_requesters_in, {"ids": missing})})
    return {i: r for i, r in found.items() if r is not None}


# ---- requesters -------------------------------------------------------------------------
def register_requester(ctx: IntakeContext, uow: UnitOfWork, actor: Caller,
                       data: Mapping[str, Any]) -> d.Requester:
    actor.require("hq")
    r = d.register_requester(data, ctx.clock.now())
    if requesters.get(uow.conn, r.id) is not None:
        raise Conflict(f"requester {r.id!r} is already registered; use UpdateRequester")
    requesters.add(uow.conn, r)
    _record(uow, ev.requester_registered(r))
    return r


def update_requester(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, requester_id: str,
                     changes: Mapping[str, Any], expected_version: int | None) -> d.Requester:
    actor.require("hq")
    current = _requester(uow, requester_id, "requester_id")
    updated = d.update_requester(current, changes, ctx.clock.now(), expected_version)
    changed = d.changed_fields(current, updated)
    if changed:
        requesters.save(uow.conn, updated)
        _record(uow, ev.requester_updated(updated, changed))
    return updated


def read_requester(uow: UnitOfWork, actor: Caller, requester_id: str) -> d.Requester:
    actor.require_for(requester_id, *REQUESTER_READ_ROLES)
    return _requester(uow, requester_id, "requester_id")


def list_requesters(uow: UnitOfWork, actor: Caller, *, township: str = "", kind: str = "",
                    risk_level: str = "", page_size: int = 0, page_token: str = ""
                    ) -> Page[d.Requester]:
    """A scoped caller's list holds its own requester only."""
    t = schema.requesters
    where = []
    if own := actor.require_for("", *REQUESTER_READ_ROLES):
        where.append(t.c.id == own)
    if township:
        where.append(t.c.township == township)
    if kind:
        where.append(t.c.kind == _choice("kind", kind, d.RequesterKind))
    if risk_level:
        where.append(t.c.risk_level == _choice("risk_level", risk_level, d.RiskLevel))
    return requesters.page(uow.conn, where, page_size, page_token)


def _choice(field: str, value: str, enum) -> str:
    try:
        return enum(value).value
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not one of {', '.join(e.value for e in enum)}") from None


# ---- the county's cut-off: allocation's policy owns it (docs/adr/0008) ---------------------
_newest_cutoff = select(schema.county_policy).order_by(schema.county_policy.c.version.desc()).limit(1)


def county_cutoff(uow: UnitOfWork) -> d.CountyCutoff | None:
    """The newest cut-off received from allocation (None before its first policy_changed)."""
    row = uow.conn.execute(_newest_cutoff).first()
    if row is None:
        return None
    return d.CountyCutoff(row.version, time.fromisoformat(row.cutoff), row.cutoff_days_before,
                          row.updated_at)


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
    try:
        with uow.conn.begin_nested():
            uow.conn.execute(insert(schema.county_policy).values(
                version=incoming.version, cutoff=incoming.cutoff.strftime("%H:%M"),
                cutoff_days_before=incoming.cutoff_days_before, updated_at=incoming.updated_at,
                received_at=ctx.clock.now()))
    except IntegrityError:  # another worker applied this version first
        return False
    policy = _following(ctx.policy, incoming)
    t = schema.demands
    ids = uow.conn.execute(select(t.c.id).where(
        t.c.status == d.DemandStatus.OPEN.value,
        t.c.delivery_day >= policy.local_day(ctx.clock.now()))).scalars().all()
    for demand in demands.get_many(uow.conn, list(ids)).values():
        moved = d.follow_cutoff(demand, policy)
        if moved != demand:
            demands.save(uow.conn, moved)
    return True


# ---- demands ----------------------------------------------------------------------------
def _new_demand(ctx: IntakeContext, policy: d.DemandPolicy, requester: d.Requester,
                lines: Sequence[Any], delivery_day: date | str | None,
                origin: d.DemandOrigin = d.DemandOrigin.DIRECT) -> d.Demand:
    return d.submit_demand(demand_id=new_id("D"), requester=requester, lines=lines,
                           catalogue=ctx.catalogue, policy=policy, at=ctx.clock.now(),
                           delivery_day=delivery_day or None, origin=origin)


def submit_demand(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, requester_id: str,
                  lines: Sequence[Any], delivery_day: date | str | None,
                  origin: d.DemandOrigin = d.DemandOrigin.DIRECT,
                  requester_cache: dict[str, d.Requester] | None = None) -> d.Demand:
    actor.require_for(requester_id, *DEMAND_ROLES)
    requester = (requester_cache or {}).get(requester_id) or _requester(uow, requester_id)
    demand = _new_demand(ctx, demand_policy(ctx, uow), requester, lines, delivery_day, origin)
    demands.add(uow.conn, demand)
    _record(uow, ev.demand_registered(demand, requester))
    return demand


@dataclass(frozen=True)
class DemandSubmission:
    """One demand of submit_demands, with the idempotency key it was sent under."""

    actor: Caller
    scope: str
    idempotency_key: str
    fingerprint: str
    requester_id: str
    lines: Sequence[Any]
    delivery_day: str | None = None


def submit_demands(ctx: IntakeContext, uow: UnitOfWork, submissions: Sequence[DemandSubmission],
                   answer: Callable[[d.Demand, d.DemandPolicy], bytes]) -> list[bytes | Exception]:
    """submit_demand for many demands at once (concurrent single submissions gathered by the
    group commit, or a batch): one requester query, one insert per table. Each gets its own
    result: the stored answer (answer(demand), or the first answer given under its key) or
    its own error; one refused demand does not hold up the others."""
    requesters = _requesters(uow, {s.requester_id for s in submissions})
    policy = demand_policy(ctx, uow)

    def prepare(i: int) -> tuple[bytes, tuple[d.Demand, d.Requester]]:
        s = submissions[i]
        s.actor.require_for(s.requester_id, *DEMAND_ROLES)
        requester = _known(s.requester_id, requesters.get(s.requester_id))
        demand = _new_demand(ctx, policy, requester, s.lines, s.delivery_day)
        return answer(demand, policy), (demand, requester)

    def write(placed: list[tuple[d.Demand, d.Requester]]) -> None:
        demands.add_many(uow.conn, [demand for demand, _ in placed])
        uow.record_events([(e.event_type, e.payload, e.schema_version)
                           for e in (ev.demand_registered(dm, r) for dm, r in placed)])

    return run_idempotent_many(
        uow, [(s.scope, s.idempotency_key, s.fingerprint) for s in submissions], prepare, write)


def cancel_demand(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, demand_id: str,
                  reason: str) -> d.Demand:
    demand = get_demand(uow, demand_id)
    actor.require_for(demand.requester_id, *DEMAND_ROLES)
    cancelled = d.cancel_demand(demand, ctx.clock.now(), reason)
    demands.save(uow.conn, cancelled)
    _record(uow, ev.demand_cancelled(cancelled))
    return cancelled


def get_demand(uow: UnitOfWork, demand_id: str) -> d.Demand:
    if not demand_id:
        raise InvalidInput("demand_id", "required")
    demand = demands.get(uow.conn, demand_id)
    if demand is None:
        raise NotFound(f"demand_id: no demand {demand_id!r}")
    return demand


def read_demand(uow: UnitOfWork, actor: Caller, demand_id: str) -> d.Demand:
    """get_demand for a caller allowed to see it (the role first, so NOT_FOUND tells nothing)."""
    actor.require(*DEMAND_READ_ROLES)
    demand = get_demand(uow, demand_id)
    actor.require_for(demand.requester_id, *DEMAND_READ_ROLES)
    return demand


def list_demands(uow: UnitOfWork, actor: Caller, *, requester_id: str = "",
                 delivery_day: date | None = None, status: str = "", tier: int = 0,
                 flagged: bool | None = None, page_size: int = 0, page_token: str = ""
                 ) -> Page[d.Demand]:
    """Ordered by delivery day, most urgent tier, submission time. A scoped caller's list is
    narrowed to its own requester (asking for another is PERMISSION_DENIED)."""
    requester_id = actor.require_for(requester_id, *DEMAND_READ_ROLES)
    t = schema.demands
    where = []
    if requester_id:
        where.append(t.c.requester_id == requester_id)
    if delivery_day:
        where.append(t.c.delivery_day == delivery_day)
    if status:
        where.append(t.c.status == _choice("status", status, d.DemandStatus))
    if tier:
        if tier not in range(1, 6):
            raise InvalidInput("tier", "must be 1..5")
        where.append(t.c.tier_mask.op("&")(1 << tier) != 0)
    if flagged is not None:
        where.append(t.c.flagged.is_(flagged))
    return demands.page(uow.conn, where, page_size, page_token,
                        order=(t.c.delivery_day, t.c.top_tier, t.c.submitted_at))


def summarize_demands(uow: UnitOfWork, actor: Caller, delivery_day: date) -> dict[str, Any]:
    """The day's demands counted by top tier, township and status, and the flagged ones, from the
    indexed columns (no demand document is read). Scope as list_demands."""
    requester_id = actor.require_for("", *DEMAND_READ_ROLES)
    t, r = schema.demands, schema.requesters
    joined = t.join(r, r.c.id == t.c.requester_id, isouter=True)
    where = [t.c.delivery_day == delivery_day]
    if requester_id:
        where.append(t.c.requester_id == requester_id)
    township = func.coalesce(r.c.township, "")
    counts = uow.conn.execute(
        select(t.c.top_tier, township.label("township"), t.c.status, func.count().label("demands"),
               func.sum(case((t.c.flagged, 1), else_=0)).label("flagged"))
        .select_from(joined).where(*where).group_by(t.c.top_tier, township, t.c.status)
        .order_by(t.c.top_tier, township, t.c.status)).all()
    flagged = uow.conn.execute(
        select(t.c.id, t.c.requester_id, township.label("township"), t.c.top_tier)
        .select_from(joined).where(*where, t.c.flagged.is_(True))
        .order_by(t.c.top_tier, t.c.submitted_at).limit(200)).all()
    return {"counts": [row._asdict() for row in counts], "flagged": [row._asdict() for row in flagged],
            "demands": sum(row.demands for row in counts)}

def apply_delivery_results(ctx: IntakeContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> None:
    """`delivery_confirmed` from logistics: add what each stop delivered to its demands, and close
    the demands logistics says are complete (every plan line of theirs confirmed); the shortfall
    of a closed demand is carried to a new demand. A payload without `demands_completed` (one
    stop serving whole demands) completes every demand it names."""
    results: dict[str, dict[str, int]] = {}
    for i, line in enumerate(payload.get("lines") or ()):
        demand_id = line.get("demand_id")
        if not demand_id:
            raise InvalidInput(f"payload.lines[{i}].demand_id", "required")
        if "received" not in line or "item_code" not in line:
            raise InvalidInput(f"payload.lines[{i}]", "item_code and received are required")
        item, received = line["item_code"], int(line["received"])
        if line.get("substitute_for"):  # a standard package delivered in place of a short item
            item, received = line["substitute_for"], received * _units_per_package(ctx, line)
        per_item = results.setdefault(demand_id, {})
        per_item[item] = per_item.get(item, 0) + received
    completed = set(payload["demands_completed"]) if "demands_completed" in payload else set(results)
    policy = demand_policy(ctx, uow)
    for demand_id in sorted(set(results) | completed):
        demand = get_demand(uow, demand_id)
        if demand.status is not d.DemandStatus.OPEN:
            continue  # closed by an earlier event
        if demand_id in results:
            demand = d.record_delivery(demand, results[demand_id])
        if demand_id not in completed:
            demands.save(uow.conn, demand)
            continue
        outcome = d.apply_delivery_results(demand, d.delivered_so_far(demand), at=ctx.clock.now(),
                                           policy=policy, carry_over_id=new_id("D"))
        demands.save(uow.conn, outcome.demand)
        _record(uow, ev.demand_closed(outcome.demand))
        if outcome.carry_over is not None:
            demands.add(uow.conn, outcome.carry_over)
            _record(uow, ev.demand_registered(outcome.carry_over,
                                              _requester(uow, outcome.carry_over.requester_id)))


def _units_per_package(ctx: IntakeContext, line: Mapping[str, Any]) -> int:
    """How many units of the short item one package covers (its recipe in the catalogue)."""
    package = ctx.catalogue.item(line["item_code"])
    for comp in package.components:
        if comp.item_code == line["substitute_for"]:
            return comp.quantity
    raise InvalidInput("payload.lines.substitute_for",
                       f"{line['item_code']} does not contain {line['substitute_for']}")


def roll_unplanned_demands(ctx: IntakeContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> int:
    """`plan_approved` from allocation: the day's open demands that got nothing in the approved
    plan will see no delivery; they are rolled to the next open day now (a new demand carries
    them), so that no demand is left open and forgotten."""
    if "delivery_day" not in payload or "lines" not in payload:
        raise InvalidInput("payload", "delivery_day and lines are required")
    day = date.fromisoformat(payload["delivery_day"])
    planned = {ln.get("demand_id") for ln in payload["lines"] if int(ln.get("quantity", 0)) > 0}
    t = schema.demands
    rows = uow.conn.execute(select(t.c.id).where(t.c.delivery_day == day,
                                                 t.c.status == d.DemandStatus.OPEN.value)).all()
    rolled, policy = 0, demand_policy(ctx, uow)
    for row in rows:
        if row.id in planned:
            continue
        demand = get_demand(uow, row.id)
        outcome = d.apply_delivery_results(demand, {}, at=ctx.clock.now(), policy=policy,
                                           carry_over_id=new_id("D"))
        demands.save(uow.conn, outcome.demand)
        _record(uow, ev.demand_closed(outcome.demand))
        if outcome.carry_over is not None:
            demands.add(uow.conn, outcome.carry_over)
            _record(uow, ev.demand_registered(outcome.carry_over, _requester(uow, demand.requester_id)))
        rolled += 1
    return rolled


# ---- special needs ----------------------------------------------------------------------
def register_special_need(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, requester_id: str,
                          name: str, phone: str, category: Any, lines: Sequence[Any],
                          period_days: Any, delivery_day: date | str | None, note: str
                          ) -> tuple[d.SpecialNeed, d.Demand]:
    actor.require_for(requester_id, "hq", "village", "grid_worker")
    requester = _requester(uow, requester_id)
    now, policy = ctx.clock.now(), demand_policy(ctx, uow)
    need = d.register_special_need(
        need_id=new_id("SN"), requester=requester, name=name, phone=phone, category=category,
        lines=lines, catalogue=ctx.catalogue, policy=policy, secret=ctx.secret,
        registered_by=actor.identity, at=now, period_days=period_days or None,
        delivery_day=delivery_day or None, note=note)
    demand = d.special_need_demand(need, requester, demand_id=new_id("D"), catalogue=ctx.catalogue,
                                   policy=policy, at=now)
    special_needs.add(uow.conn, need)
    demands.add(uow.conn, demand)
    _record(uow, ev.special_need_registered(need))
    _record(uow, ev.demand_registered(demand, requester))
    return need, demand


def list_special_needs(uow: UnitOfWork, actor: Caller, *, requester_id: str = "",
                       category: str = "", beneficiary: str = "", page_size: int = 0,
                       page_token: str = "") -> Page[d.SpecialNeedView]:
    """hq sees every village's list; a village or grid worker its own village's only."""
    requester_id = actor.require_for(requester_id, *SPECIAL_NEED_READ_ROLES)
    t = schema.special_needs
    where = []
    if beneficiary:
        where.append(t.c.pseudonym == beneficiary)
    if requester_id:
        where.append(t.c.requester_id == requester_id)
    if category:
        where.append(t.c.category == _choice("category", category, d.SpecialNeedCategory))
    page = special_needs.page(uow.conn, where, page_size, page_token)
    return Page([n.view() for n in page.items], page.next_page_token, page.total)


def create_due_special_need_demands(ctx: IntakeContext, uow: UnitOfWork) -> list[d.Demand]:
    """Periodic needs (chronic medicine every n days, 篇13 §六(二)4) become demands for the next
    open delivery day on which they are due. The demand id is derived from the need and the day,
    so running this again, or in two workers at once, creates nothing twice."""
    now, policy = ctx.clock.now(), demand_policy(ctx, uow)
    day = policy.delivery_target(now).day
    t = schema.special_needs
    rows = uow.conn.execute(select(t.c.id)).all()
    created = []
    for need in special_needs.get_many(uow.conn, [r.id for r in rows]).values():
        if not need.period_days or day == need.start_day or not need.is_due(day):
            continue
        demand_id = f"D-{need.id}-{day:%Y%m%d}"
        if demands.get(uow.conn, demand_id) is not None:
            continue
        requester = _requester(uow, need.requester_id)
        demand = d.special_need_demand(need, requester, demand_id=demand_id,
                                       catalogue=ctx.catalogue, policy=policy, at=now,
                                       delivery_day=day)
        demands.add(uow.conn, demand)
        _record(uow, ev.demand_registered(demand, requester))
        created.append(demand)
    return created


# ---- unit requisitions ------------------------------------------------------------------
def file_requisition(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, unit_id: str,
                     lines: Sequence[Any], purpose: str, headcount_basis: Any,
                     delivery_day: date | str | None) -> d.Requisition:
    unit = _requester(uow, unit_id, "unit_id")
    req = d.file_requisition(requisition_id=new_id("RQ"), unit=unit, lines=lines, purpose=purpose,
                             headcount_basis=headcount_basis, actor=domain_actor(actor),
                             catalogue=ctx.catalogue, policy=demand_policy(ctx, uow), at=ctx.clock.now(),
                             delivery_day=delivery_day or None)
    requisitions.add(uow.conn, req)
    _record(uow, ev.requisition_submitted(req, unit))
    return req


def get_requisition(uow: UnitOfWork, requisition_id: str) -> d.Requisition:
    req = requisitions.get(uow.conn, requisition_id) if requisition_id else None
    if req is None:
        raise NotFound(f"requisition_id: no requisition {requisition_id!r}")
    return req


def read_requisition(uow: UnitOfWork, actor: Caller, requisition_id: str) -> d.Requisition:
    """A unit's staff and head see their own unit's requisitions; hq and auditors every one."""
    actor.require(*REQUISITION_READ_ROLES)
    req = get_requisition(uow, requisition_id)
    actor.require_for(req.unit_id, *REQUISITION_READ_ROLES)
    return req


def list_requisitions(uow: UnitOfWork, actor: Caller, *, unit_id: str = "",
                      statuses: Sequence[str] = (), page_size: int = 0, page_token: str = ""
                      ) -> Page[d.Requisition]:
    """Ordered by the last step (filing or approval), the one waiting longest first. A unit's
    staff and head see their own unit's only (asking for another is PERMISSION_DENIED)."""
    unit_id = actor.require_for(unit_id, *REQUISITION_READ_ROLES)
    t = schema.requisitions
    where = []
    if unit_id:
        where.append(t.c.unit_id == unit_id)
    if statuses:
        where.append(t.c.status.in_(
            [_choice(f"statuses[{i}]", s, d.RequisitionStatus) for i, s in enumerate(statuses)]))
    return requisitions.page(uow.conn, where, page_size, page_token, order=(t.c.updated_at,))


def approve_requisition(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, requisition_id: str,
                        step: str, reason: str) -> tuple[d.Requisition, d.Demand | None]:
    req = get_requisition(uow, requisition_id)
    now = ctx.clock.now()
    if step == "head":
        req = d.approve_head(req, domain_actor(actor), now, reason)
        requisitions.save(uow.conn, req)
        return req, None
    if step != "hq":
        raise InvalidInput("step", "must be 'head' (一把手审核) or 'hq' (指挥部审批)")
    unit = _requester(uow, req.unit_id, "unit_id")
    req, demand = d.approve_hq(req, domain_actor(actor), now, unit=unit, demand_id=new_id("D"),
                               policy=demand_policy(ctx, uow), reason=reason)
    requisitions.save(uow.conn, req)
    demands.add(uow.conn, demand)
    _record(uow, ev.requisition_approved(req, demand))
    _record(uow, ev.demand_registered(demand, unit))
    return req, demand


def reject_requisition(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, requisition_id: str,
                       reason: str) -> d.Requisition:
    req = d.reject_requisition(get_requisition(uow, requisition_id), domain_actor(actor),
                               ctx.clock.now(), reason)
    requisitions.save(uow.conn, req)
    _record(uow, ev.requisition_rejected(req))
    return req


# ---- donations --------------------------------------------------------------------------
def register_donation(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, donor: Any,
                      lines: Sequence[Any], target_requester_id: str, target_use: str,
                      note: str, received_at: datetime | None = None) -> d.Donation:
    actor.require("hq", "depot_keeper", "inspector")
    if target_requester_id:
        _requester(uow, target_requester_id, "target_requester_id")
    now = ctx.clock.now()
    if received_at is not None and received_at > now:
        raise InvalidInput("received_at", "is in the future")
    donation = d.register_donation(
        donation_id=new_id("DN"), donor=donor, lines=lines, catalogue=ctx.catalogue,
        received_at=received_at or now, registered_by=actor.identity,
        target_requester_id=target_requester_id or None, target_use=target_use, note=note,
        policy=ctx.donation_policy)
    donations.add(uow.conn, donation,
                  received_day=ctx.donation_policy.local_day(donation.received_at))
    _record(uow, ev.donation_registered(donation))
    return donation


def get_donation(uow: UnitOfWork, donation_id: str) -> d.Donation:
    donation = donations.get(uow.conn, donation_id) if donation_id else None
    if donation is None:
        raise NotFound(f"donation_id: no donation {donation_id!r}")
    return donation


def read_donation(uow: UnitOfWork, actor: Caller, donation_id: str) -> d.Donation:
    actor.require(*DONATION_READ_ROLES)
    return get_donation(uow, donation_id)


def list_donations(uow: UnitOfWork, actor: Caller, *, statuses: Sequence[str] = (),
                   received_day: date | None = None, page_size: int = 0, page_token: str = ""
                   ) -> Page[d.Donation]:
    """Ordered by arrival, oldest first (the inspection queue: registered, partly inspected)."""
    actor.require(*DONATION_READ_ROLES)
    t = schema.donations
    where = []
    if statuses:
        where.append(t.c.status.in_(
            [_choice(f"statuses[{i}]", s, d.DonationStatus) for i, s in enumerate(statuses)]))
    if received_day:
        where.append(t.c.received_day == received_day)
    return donations.page(uow.conn, where, page_size, page_token,
                          order=(t.c.received_day, t.c.updated_at))


def inspect_donation_line(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, donation_id: str,
                          line_no: int, decision: Any, reason: str, medical_grade: bool | None,
                          redirect_to: str) -> d.Donation:
    actor.require("hq", "inspector")
    donation = d.inspect_line(get_donation(uow, donation_id), line_no, decision=decision,
                              reason=reason, inspector=actor.identity, at=ctx.clock.now(),
                              catalogue=ctx.catalogue, medical_grade=medical_grade,
                              redirect_to=redirect_to, policy=ctx.donation_policy)
    donations.save(uow.conn, donation)
    _record(uow, ev.donation_inspected(donation, [line_no]))
    return donation


def donation_summary(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, day: date
                     ) -> d.DonationDaySummary:
    actor.require(*DONATION_SUMMARY_ROLES)
    t = schema.donations
    # a donation received on an earlier day may be inspected today: scan a window of days
    rows = uow.conn.execute(select(t.c.id).where(t.c.received_day >= day.fromordinal(day.toordinal() - 31),
                                                 t.c.received_day <= day)).all()
    found = donations.get_many(uow.conn, [r.id for r in rows])
    return d.daily_summary(found.values(), day, ctx.donation_policy)


# ---- spreadsheet import -----------------------------------------------------------------
@dataclass(frozen=True)
class ImportReport:
    rows_total: int
    rows_accepted: int
    errors: tuple[tuple[int, str, str, str], ...]   # (row, column as in the file, reason, code)
    warnings: tuple[str, ...]
    applied: bool
    created_ids: tuple[str, ...] = ()


# domain field (first path segment) -> the row field whose column the error belongs to
_ROW_FIELD = {"location": "lat", "drop_points": "drop_point", "vulnerable": "elderly_alone",
              "lines": "quantity", "item_code": "item_code", "requester_id": "requester_id"}
_ERROR_ZH = {"INVALID_ARGUMENT": "数据有误", "NOT_FOUND": "未找到", "FAILED_PRECONDITION": "不符合规定",
             "ALREADY_EXISTS": "已存在", "PERMISSION_DENIED": "无权限"}


def _row_error(row: int, exc: Exception, columns: Mapping[str, str]) -> tuple[int, str, str, str]:
    """A domain refusal as a spreadsheet row error: the column as written in the file, a
    bilingual reason, the error code (or the rule code for a rule refusal)."""
    from services.common.errors import RuleRefused

    code = {InvalidInput: "INVALID_ARGUMENT", NotFound: "NOT_FOUND", Conflict: "ALREADY_EXISTS",
            PermissionDenied: "PERMISSION_DENIED"}.get(type(exc), "FAILED_PRECONDITION")
    if isinstance(exc, RuleRefused):
        code = exc.rule
    field = getattr(exc, "field", "") or ""
    head = field.split(".")[-1].split("[")[0] if field.startswith("lines") else field.split(".")[0].split("[")[0]
    column = columns.get(_ROW_FIELD.get(head, head), columns.get(head, field))
    reason = exc.message
    if not any("\u4e00" <= ch <= "\u9fff" for ch in reason):
        reason = f"{_ERROR_ZH.get(code, '不符合规定')} / {reason}"
    return (row, column, reason, code)


def import_spreadsheet(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, content: bytes,
                       fmt: str, kind: str, all_or_nothing: bool,
                       progress: Callable[[str, int, int], None] = lambda *a: None) -> ImportReport:
    """Parse, validate every row against intake's state, then apply all (or, when told, the
    good rows). A requester already registered is updated from its row; a row refused by a
    domain rule is reported with its row number and the file's column."""
    from services.common.errors import DomainError

    actor.require("hq", "village", "grid_worker")
    parsed = parse_spreadsheet(content, fmt, kind, ctx.catalogue, policy=ctx.spreadsheet_policy,
                               progress=lambda done, total: progress("parsing", done, total))
    errors = [(e.row, e.column, e.reason, "INVALID_ARGUMENT") for e in parsed.errors]
    created: list[str] = []
    total = len(parsed.rows)
    cache: dict[str, d.Requester] = {}
    for i, row in enumerate(parsed.rows, start=1):
        savepoint = uow.conn.begin_nested()
        try:
            if isinstance(row, RequesterRow):
                data = _requester_data(row)
                if requesters.get(uow.conn, row.id) is None:
                    created.append(register_requester(ctx, uow, actor, data).id)
                else:
                    changes = {k: v for k, v in data.items() if k not in ("id", "kind")}
                    created.append(update_requester(ctx, uow, actor, row.id, changes, None).id)
            else:
                assert isinstance(row, DemandRow)
                if row.requester_id not in cache:
                    cache[row.requester_id] = _requester(uow, row.requester_id)
                demand = submit_demand(ctx, uow, actor, row.requester_id,
                                       [{"item_code": row.item_code, "quantity": row.quantity,
                                         "note": row.note}], row.delivery_day,
                                       origin=d.DemandOrigin.IMPORT, requester_cache=cache)
                created.append(demand.id)
            savepoint.commit()
        except DomainError as exc:
            savepoint.rollback()
            errors.append(_row_error(row.row, exc, parsed.columns))
        if i % 200 == 0 or i == total:
            progress("validating", i, total)
    errors.sort()
    apply = not errors or not all_or_nothing
    if not apply:
        uow.rollback()
        uow.conn.begin()
        created = []
    return ImportReport(rows_total=parsed.rows_total, rows_accepted=len(created),
                        errors=tuple(errors), warnings=tuple(parsed.warnings), applied=apply,
                        created_ids=tuple(created))


def _requester_data(row: RequesterRow) -> dict[str, Any]:
    """A spreadsheet row as a requester spec. A unit row's area columns (risk level, population,
    households, vulnerable counts) mean nothing for a unit and are left out, and the reverse."""
    data: dict[str, Any] = {
        "id": row.id, "name": row.name, "kind": row.kind, "township": row.township,
        "population": row.population, "households": row.households, "risk_level": row.risk_level,
        "headcount": row.headcount, "beds": row.beds,
    }
    if row.lat is not None and row.lon is not None:
        data["location"] = {"lat": row.lat, "lon": row.lon}
    if getattr(row, "drop_point", None):
        data["drop_points"] = [{"id": f"{row.id}-DP1", "name": row.drop_point,
                                "location": {"lat": row.drop_lat, "lon": row.drop_lon}
                                if row.drop_lat is not None else None}]
    vulnerable = {k: getattr(row, k) for k in ("elderly_alone", "disabled", "chronic_patients",
                                               "infants", "pregnant") if hasattr(row, k)}
    if any(vulnerable.values()):
        data["vulnerable"] = vulnerable
    area = row.kind in ("village", "community")
    for f in (("headcount", "beds") if area else ("population", "households", "risk_level", "vulnerable")):
        data.pop(f, None)
    return {k: v for k, v in data.items() if v is not None}


def catalogue_items(catalogue: Catalogue, query: str, essential_only: bool) -> list:
    """Catalogue items matching `query` in code or either name (case-insensitive), by group and code."""
    q = query.strip().casefold()
    found = [i for i in catalogue.items.values()
             if (not essential_only or i.essential)
             and (not q or q in i.code.casefold() or q in i.name_zh or q in i.name_en.casefold())]
    return sorted(found, key=lambda i: (i.group, i.code))
