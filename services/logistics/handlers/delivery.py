"""Proof of delivery at a stop (签收)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, NotFound
from services.common.serde import from_jsonable, to_jsonable
from services.logistics.adapters import plans_store
from services.logistics.domain import delivery as dlv
from services.logistics.domain.model import (
    stop_key,
)
from services.logistics.domain.trips import Trip
from services.logistics.handlers.base import DELIVERY_ROLES, LogisticsContext, iso, utc
from services.logistics.handlers.ledger import load_more, open_ledger, save_ledger


@dataclass(frozen=True)
class ReceivedSpec:
    plan_line_id: str
    lot_id: str
    received: int
    discrepancies: tuple[tuple[str, int, str], ...] = ()


def delivery_id_of(trip_id: str, key: str) -> str:
    return "DLV-" + hashlib.sha256(f"{trip_id}|{key}".encode()).hexdigest()[:16]


def confirm_delivery(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller, *, trip_id: str,
                     requester_id: str, drop_point_id: str, receiver: str, received_at: datetime | None,
                     proof_ref: str, lines: Sequence[ReceivedSpec]) -> dict[str, Any]:
    """Proof of delivery at one stop (签收): issue what was received, return refused goods,
    write off damaged and missing goods, publish delivery_confirmed with per-line results and
    demand ids. One confirmation per stop: the same content again returns the recorded result;
    different content is a Conflict."""
    actor.require_for(requester_id, *DELIVERY_ROLES)  # a village confirms at its own drop points
    if not trip_id:
        raise InvalidInput("trip_id", "required")
    if not requester_id:
        raise InvalidInput("requester_id", "required")
    if received_at is None:
        raise InvalidInput("received_at", "required")
    ol = open_ledger(ctx, uow)
    row = plans_store.trip_row(uow.conn, trip_id)
    if row is None:
        raise NotFound(f"trip_id: no trip {trip_id!r}")
    data = dict(row.data)
    trip = from_jsonable(Trip, data["trip"])
    key = stop_key(requester_id, drop_point_id)
    if not any(s.drop_point_id == key for s in trip.stops):
        raise NotFound(f"drop_point_id: trip {trip_id!r} has no stop at {requester_id}/{drop_point_id!r}")
    delivery_id = delivery_id_of(trip_id, key)
    prior_row = plans_store.delivery_row(uow.conn, delivery_id)
    prior = from_jsonable(dlv.DeliveryResult, prior_row.data["result"]) if prior_row else None
    c = dlv.DeliveryConfirmation(
        delivery_id=delivery_id, trip_id=trip_id, drop_point_id=key, receiver=receiver or "",
        received_at=received_at, proof_ref=proof_ref or "",
        lines=tuple(dlv.ReceivedLine(ln.plan_line_id, ln.lot_id, ln.received,
                                     tuple(dlv.Discrepancy(r, q, n) for r, q, n in ln.discrepancies))
                    for ln in lines))
    outcome = dlv.confirm_delivery(c, trip, prior=prior, policy=ctx.delivery_policy)
    result = outcome.result
    if not outcome.new:
        return prior_row.data["view"]
    plan_lines = plans_store.plan_lines_by_id(uow.conn, [ln.plan_line_id for ln in result.lines])
    load_more(uow, ol, lot_ids=[p.lot_id for p in result.postings])
    ol.ledger.post_all(result.postings, approved_plan_lines=set(plan_lines))
    for ln in result.lines:
        if ln.received:
            plans_store.add_issued(uow.conn, ln.plan_line_id, ln.received)
    notes = {(ln.plan_line_id, ln.lot_id): "; ".join(n for _, _, n in ln.discrepancies if n)
             for ln in lines}
    view_lines = []
    for ln in result.lines:
        pl = plan_lines.get(ln.plan_line_id)
        kinds = [k for k, q in (("short", ln.short), ("damaged", ln.damaged), ("refused", ln.refused)) if q]
        view_lines.append({
            "plan_line_id": ln.plan_line_id, "demand_id": pl.demand_id if pl else None,
            "demand_line_no": pl.demand_line_no if pl else None, "item_code": ln.item_code,
            "substitute_for": (pl.data.get("line") or {}).get("substitute_for") if pl else None,
            "lot_id": ln.lot_id, "shipped": ln.shipped, "received": ln.received,
            "short": ln.short, "damaged": ln.damaged, "refused": ln.refused, "status": ln.status,
            "discrepancy": kinds[0] if len(kinds) == 1 else (",".join(kinds) or None),
            "reason": notes.get((ln.plan_line_id, ln.lot_id)) or (", ".join(kinds) or None)})
    view = {"delivery_id": delivery_id, "trip_id": trip_id, "drop_point_id": drop_point_id,
            "requester_id": requester_id, "receiver": result.receiver,
            "received_at": iso(result.received_at), "proof_ref": result.proof_ref,
            "lines": view_lines,
            "demands_completed": _demands_completed(uow, result.lines, plan_lines)}
    plans_store.add_delivery(uow.conn, delivery_id=delivery_id, trip_id=trip_id,
                             requester_id=requester_id, drop_point_id=drop_point_id,
                             fingerprint=result.fingerprint, received_at=utc(result.received_at),
                             data={"result": to_jsonable(result), "view": view})
    data["delivered"] = {**data.get("delivered", {}), key: delivery_id}
    status = "completed" if all(s.drop_point_id in data["delivered"] for s in trip.stops) else "scheduled"
    plans_store.save_trip_state(uow.conn, trip_id, data, status)
    uow.record_event("delivery_confirmed", view)
    save_ledger(ctx, uow, ol)
    return view


def _demands_completed(uow: UnitOfWork, lines, plan_lines: dict) -> list[str]:
    """Record what this stop confirmed per plan line; a demand is complete once every plan line
    of it has had its whole quantity confirmed at some stop (a line may ride on several trips)."""
    touched: set[str] = set()
    for ln in lines:
        row = plan_lines.get(ln.plan_line_id)
        if row is None:
            continue
        data = dict(row.data)
        data["confirmed_shipped"] = int(data.get("confirmed_shipped", 0)) + ln.shipped
        plans_store.set_plan_line_data(uow.conn, row.id, data)
        if row.demand_id:
            touched.add(row.demand_id)
    done = []
    for demand_id in sorted(touched):
        rows = plans_store.demand_plan_lines(uow.conn, demand_id)
        if all(int(r.data.get("confirmed_shipped", 0)) >= r.quantity for r in rows):
            done.append(demand_id)
    return done

