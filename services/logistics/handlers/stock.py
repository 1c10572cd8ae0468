"""Issues against approved plan lines, quarantine (by alert or person), release and write-off."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, NotFound, RuleRefused
from services.common.serde import from_jsonable, to_jsonable
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import plans_store
from services.logistics.domain.ledger import LedgerKind, LedgerLine, LotBalance, Posting
from services.logistics.domain.model import (
    DocRef,
    positive_int,
)
from services.logistics.domain.picking import (
    PickRequest,
    pick,
    quarantine_lot,
    release_lot,
    write_off_lot,
)
from services.logistics.domain.trips import Trip
from services.logistics.handlers.base import WRITE_ROLES, LogisticsContext, required_text
from services.logistics.handlers.ledger import (
    OpenLedger,
    load_more,
    lot_balance,
    open_ledger,
    save_ledger,
)

log = logging.getLogger(__name__)


def issue_stock(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller, *, lot_id: str,
                quantity: Any, plan_line_id: str, reason: str = "") -> tuple[LotBalance, list[LedgerLine]]:
    """Issue from a lot against an approved plan line (不得擅自分配): from the plan line's
    reservation on the lot first, then from available stock."""
    actor.require(*WRITE_ROLES)
    q = positive_int(quantity, "quantity")
    if not lot_id:
        raise InvalidInput("lot_id", "required")
    if not plan_line_id:
        raise InvalidInput("plan_line_id", "required: every issue cites an approved plan line")
    ol = open_ledger(ctx, uow, lot_ids=[lot_id])
    bal = lot_balance(ol, lot_id)
    pl = plans_store.plan_line_row(uow.conn, plan_line_id) or _part_for_lot(uow, plan_line_id, bal)
    if pl is None:
        raise RuleRefused("PLAN_LINE_NOT_APPROVED",
                          f"计划行 {plan_line_id} 未经批准,不得出库 / plan line {plan_line_id!r} is not "
                          f"part of an approved plan (不得挤占、挪用和擅自分配)")
    plan_line_id = pl.id  # `<line>/<k>` when asked by GetPlan's `<line>`
    if pl.item_code != bal.item_code or pl.depot_id != bal.depot_id:
        raise RuleRefused("LOT_MISMATCH",
                          f"批次 {lot_id} 是 {bal.depot_id} 的 {bal.item_code},计划行要求 {pl.depot_id} 的 {pl.item_code} / "
                          f"lot {lot_id!r} holds {bal.item_code} in {bal.depot_id}; the plan line "
                          f"wants {pl.item_code} from {pl.depot_id}")
    if int(pl.issued) + q > int(pl.quantity):
        raise RuleRefused("EXCEEDS_PLAN_LINE",
                          f"计划行 {plan_line_id} 批准 {pl.quantity},已出库 {pl.issued} / plan line "
                          f"{plan_line_id!r} approves {pl.quantity}, {pl.issued} already issued, asked {q}")
    now = ctx.clock.now()
    doc = DocRef("plan_line", plan_line_id)
    note = reason.strip() or "自提出库 / collected at the depot"
    reserved = bal.reserved_by_plan.get(plan_line_id, 0)
    postings = []
    if reserved < q:
        postings.append(Posting(LedgerKind.RESERVATION, lot_id, q - reserved, actor.identity, now,
                                f"出库前预留 / reserved to issue: {note}", doc,
                                plan_line_id=plan_line_id))
    postings.append(Posting(LedgerKind.ISSUE, lot_id, -q, actor.identity, now, note, doc,
                            plan_line_id=plan_line_id))
    ol.ledger.post_all(postings, approved_plan_lines={plan_line_id})
    plans_store.add_issued(uow.conn, plan_line_id, q)
    plans_store.consume_picks(uow.conn, plan_line_id, lot_id, min(reserved, q))
    lines = save_ledger(ctx, uow, ol)
    return ol.ledger.balances[lot_id], lines


def _part_for_lot(uow: UnitOfWork, plan_line_id: str, bal: LotBalance):
    """GetPlan's line id `<line>` names the part `<line>/<k>` of it that holds the lot's depot
    and item (plan_approved splits a line into one part per depot and item). None when the
    line has no parts here; INVALID_ARGUMENT naming the parts when none or several fit."""
    parts = plans_store.plan_line_parts(uow.conn, plan_line_id)
    if not parts:
        return None
    fits = [p for p in parts if (p.depot_id, p.item_code) == (bal.depot_id, bal.item_code)]
    if len(fits) == 1:
        return fits[0]
    listed = ", ".join(f"{p.id} ({p.item_code} @ {p.depot_id})" for p in parts)
    raise InvalidInput("plan_line_id",
                       f"计划行 {plan_line_id} 分为 {listed},请指明批次 {bal.lot_id}({bal.item_code} @ "
                       f"{bal.depot_id})对应的一项 / plan line {plan_line_id!r} is split into "
                       f"{listed}: name the part for lot {bal.lot_id!r} ({bal.item_code} @ {bal.depot_id})")


@dataclass
class Repick:
    plan_line_id: str
    released: int
    repicked: int
    unmet: int
    lots: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Transitioned:
    lot: LotBalance
    lines: list[LedgerLine]
    repicks: list[Repick] = field(default_factory=list)


def quarantine_lots(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller, lot_ids: Sequence[str],
                    *, doc: DocRef, reason: str, alert_id: str | None = None,
                    must_exist: bool = True) -> list[Transitioned]:
    """Quarantine lots (a spoilage alert, an inspection). Their reservations are released and
    the plan lines re-picked first-expiry-first-out from other lots of the same depot and item;
    what cannot be re-picked is reported unmet on the plan and taken off the trips: a
    quarantined lot is never shipped."""
    ol = open_ledger(ctx, uow, lot_ids=lot_ids)
    now = ctx.clock.now()
    out = []
    for lot_id in lot_ids:
        bal = ol.ledger.balances.get(lot_id)
        if bal is None:
            if must_exist:
                raise NotFound(f"lot_id: no lot {lot_id!r} / 未知批次")
            log.warning("alert names an unknown lot", extra={"lot_id": lot_id, "alert_id": alert_id})
            continue
        if bal.written_off:
            if must_exist:
                raise RuleRefused("LOT_WRITTEN_OFF", f"批次 {lot_id} 已报损 / lot {lot_id!r} is written off")
            continue
        tr = quarantine_lot(bal, doc=doc, actor=actor.identity, at=now, reason=reason)
        if not tr.postings:
            out.append(Transitioned(bal, []))
            continue
        start = len(ol.ledger.lines)
        ol.ledger.post_all(tr.postings)
        repicks = [_repick(ctx, uow, ol, plan_line_id, q, lot_id, actor, now)
                   for plan_line_id, q in tr.released]
        uow.record_event("lot_quarantined", {
            "lot_id": lot_id, "item_code": bal.item_code, "zone_id": bal.zone_id,
            "depot_id": bal.depot_id, "alert_id": alert_id, "quantity": bal.quarantined,
            "reason": reason, "by": actor.identity, "doc_type": doc.doc_type, "doc_id": doc.doc_id,
            "released_reservations": [{"plan_line_id": r.plan_line_id, "quantity": r.released,
                                       "repicked": r.repicked, "unmet": r.unmet} for r in repicks]})
        out.append(Transitioned(bal, list(ol.ledger.lines[start:]), repicks))
    save_ledger(ctx, uow, ol)
    return out


def _repick(ctx: LogisticsContext, uow: UnitOfWork, ol: OpenLedger, plan_line_id: str, q: int,
            bad_lot: str, actor: Caller, now: datetime) -> Repick:
    pl = plans_store.plan_line_row(uow.conn, plan_line_id)
    if pl is None:  # reserved by an issue whose plan line we do not hold: nothing to re-pick
        return Repick(plan_line_id, q, 0, q)
    load_more(uow, ol, depot_items=[(pl.depot_id, pl.item_code)])
    p = pick(PickRequest(plan_line_id, pl.depot_id, pl.item_code, q, pl.delivery_day),
             ol.ledger.balances, actor=actor.identity, at=now, policy=ctx.pick_policy,
             allow_partial=True)
    ol.ledger.post_all(p.postings)
    new_lots = [(x.lot_id, x.quantity) for x in p.picked]
    plans_store.replace_picks(uow.conn, plan_line_id, bad_lot, new_lots)
    swap_on_trips(ctx, uow, pl.plan_id, plan_line_id, bad_lot, new_lots)
    if p.short:
        plans_store.add_unmet(uow.conn, pl.plan_id, {
            "plan_line_id": plan_line_id, "demand_id": pl.demand_id, "item_code": pl.item_code,
            "depot_id": pl.depot_id, "quantity": p.short, "code": "LOT_QUARANTINED_NO_STOCK",
            "zh": f"批次 {bad_lot} 被隔离,同仓无其他可用批次", "en": f"lot {bad_lot} was quarantined and the "
                  f"depot has no other usable lot for the rest"})
    return Repick(plan_line_id, q, q - p.short, p.short, new_lots)


def swap_on_trips(ctx: LogisticsContext, uow: UnitOfWork, plan_id: str, plan_line_id: str,
                   bad_lot: str, new_lots: list[tuple[str, int]]) -> None:
    """Replace a quarantined lot on the manifests of undelivered stops with the re-picked lots
    (a shortfall is left off: the stop gets less, never the quarantined goods)."""
    for row in plans_store.scheduled_trips(uow.conn, plan_id):
        data = dict(row.data)
        trip = from_jsonable(Trip, data["trip"])
        delivered = data.get("delivered", {})
        changed = False
        stops = []
        for s in trip.stops:
            if s.drop_point_id in delivered or not any(
                    ln.plan_line_id == plan_line_id and ln.lot_id == bad_lot for ln in s.lines):
                stops.append(s)
                continue
            lines = []
            for ln in s.lines:
                if ln.plan_line_id == plan_line_id and ln.lot_id == bad_lot:
                    left = ln.quantity
                    for lot_id, qty in new_lots:
                        if left <= 0:
                            break
                        take = min(left, qty)
                        lines.append(dataclasses.replace(ln, lot_id=lot_id, quantity=take))
                        left -= take
                else:
                    lines.append(ln)
            stops.append(dataclasses.replace(s, lines=tuple(lines)))
            changed = True
        if changed:
            trip = dataclasses.replace(trip, stops=tuple(stops))
            data["trip"] = to_jsonable(trip)
            plans_store.set_trip_data(uow.conn, row.id, data)


def apply_alert(ctx: LogisticsContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> list[Transitioned]:
    """`alert_raised` from monitoring: when `spoilage` is true, quarantine the listed lots, or
    every available lot of the alert's depot and zone when the list is empty, citing the
    alert as the document. Other alerts change nothing here."""
    if payload.get("spoilage") is not True:
        return []
    alert_id = payload.get("alert_id")
    if not alert_id:
        raise InvalidInput("payload.alert_id", "required")
    lot_ids = [x for x in (payload.get("lot_ids") or ()) if isinstance(x, str) and x]
    if not lot_ids:
        depot, zone = payload.get("depot"), payload.get("zone")
        if not depot or not zone:
            raise InvalidInput("payload.zone", "a spoilage alert names lot_ids or a depot and zone")
        store.lock_head(uow.conn)
        lot_ids = store.available_lots_in_zone(uow.conn, depot, zone)
    title = " / ".join(x for x in (payload.get("title_zh"), payload.get("title_en")) if x)
    reason = f"告警隔离 / quarantined by alert {payload.get('rule_code') or ''}: {title or alert_id}".strip()
    return quarantine_lots(ctx, uow, Caller(f"monitoring:{payload.get('rule_code') or 'alert'}", "admin"),
                           lot_ids, doc=DocRef("alert", str(alert_id)), reason=reason[:500],
                           alert_id=str(alert_id), must_exist=False)


def quarantine_by_person(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller, *, lot_id: str,
                         inspection_ref: str, reason: str) -> Transitioned:
    actor.require(*WRITE_ROLES)
    required_text(inspection_ref, "inspection_ref")
    required_text(reason, "reason", 500)
    if not lot_id:
        raise InvalidInput("lot_id", "required")
    return quarantine_lots(ctx, uow, actor, [lot_id], doc=DocRef("inspection", inspection_ref.strip()),
                           reason=reason.strip())[0]


def release(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller, *, lot_id: str,
            inspection_ref: str, reason: str) -> Transitioned:
    """A person releases a quarantined lot after inspection (放行)."""
    actor.require(*WRITE_ROLES)
    required_text(inspection_ref, "inspection_ref")
    required_text(reason, "reason", 500)
    if not lot_id:
        raise InvalidInput("lot_id", "required")
    ol = open_ledger(ctx, uow, lot_ids=[lot_id])
    bal = lot_balance(ol, lot_id)
    tr = release_lot(bal, doc=DocRef("inspection", inspection_ref.strip()), actor=actor.identity,
                     at=ctx.clock.now(), reason=reason.strip())
    ol.ledger.post_all(tr.postings)
    _lot_event(uow, "released", bal, reason, actor, inspection_ref)
    return Transitioned(bal, save_ledger(ctx, uow, ol))


def write_off(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller, *, lot_id: str, quantity: int,
              doc_type: str, doc_id: str, reason: str) -> Transitioned:
    """Write off (报损) quarantined stock, or available stock of a lot not in quarantine."""
    actor.require(*WRITE_ROLES)
    if doc_type not in ("inspection", "alert", "stocktake"):
        raise InvalidInput("doc_type", "must be inspection, alert or stocktake")
    required_text(doc_id, "doc_id")
    required_text(reason, "reason", 500)
    if not lot_id:
        raise InvalidInput("lot_id", "required")
    if quantity < 0:
        raise InvalidInput("quantity", "must be >= 0 (0 = all)")
    ol = open_ledger(ctx, uow, lot_ids=[lot_id])
    bal = lot_balance(ol, lot_id)
    tr = write_off_lot(bal, doc=DocRef(doc_type, doc_id.strip()), actor=actor.identity,
                       at=ctx.clock.now(), reason=reason.strip(), quantity=quantity or None)
    ol.ledger.post_all(tr.postings)
    _lot_event(uow, "written_off", bal, reason, actor, doc_id)
    return Transitioned(bal, save_ledger(ctx, uow, ol))


def _lot_event(uow: UnitOfWork, outcome: str, bal: LotBalance, reason: str, actor: Caller,
               doc_id: str) -> None:
    uow.record_event("lot_released", {
        "lot_id": bal.lot_id, "item_code": bal.item_code, "zone_id": bal.zone_id,
        "depot_id": bal.depot_id, "alert_id": None, "reason": reason.strip(), "by": actor.identity,
        "outcome": outcome, "doc_id": doc_id.strip(), "status": bal.status.value,
        "on_hand": bal.on_hand, "quarantined": bal.quarantined})

