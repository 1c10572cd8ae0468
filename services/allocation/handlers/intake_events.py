"""Allocation's view of requesters and demands, kept from intake's events (docs/events.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from services.allocation.adapters import demand_store as store
from services.allocation.adapters.demand_store import CANCELLED, CLOSED, OPEN
from services.allocation.handlers.base import AllocationContext
from services.common.days import instant_or, parse_day
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput


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
    ours = store.requester_version(uow.conn, rid)
    if ours is not None and ours >= version:
        return False
    store.save_requester(uow.conn, rid, {
        "kind": data["kind"], "township": data["township"], "version": version, "data": data,
        "updated_at": ctx.clock.now()}, new=ours is None)
    return True


def apply_demand_registered(ctx: AllocationContext, uow: UnitOfWork,
                            payload: Mapping[str, Any]) -> bool:
    """A new open demand. A demand we already know (or whose cancellation or closing arrived
    first: events of different types travel on different queues) is left as it is."""
    did = str(_required(payload, "demand_id"))
    if store.demand_known(uow.conn, did):
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
    store.add_demand(
        uow.conn, id=did, requester_id=str(_required(payload, "requester_id")),
        delivery_day=_delivery_day(payload), status=OPEN,
        top_tier=min(ln["tier"] for ln in lines),
        registered_at=instant_or(payload.get("submitted_at"), ctx.clock.now()), plan_id=None,
        data={"lines": lines, "origin": payload.get("origin"), "township": payload.get("township"),
              "requester_kind": payload.get("requester_kind")})
    return True


def _close_demand(ctx: AllocationContext, uow: UnitOfWork, payload: Mapping[str, Any],
                  status: str) -> None:
    did = str(_required(payload, "demand_id"))
    if not store.set_status(uow.conn, did, status):
        store.add_demand(  # arrived before its demand_registered: a tombstone
            uow.conn, id=did, requester_id=str(_required(payload, "requester_id")),
            delivery_day=_delivery_day(payload), status=status, top_tier=0,
            registered_at=ctx.clock.now(), plan_id=None, data={"lines": []})


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
    store.replace_issued(uow.conn, did, rows)
