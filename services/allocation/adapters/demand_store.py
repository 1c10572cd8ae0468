"""Allocation's view of intake (tables requesters, demands, issued): the newest snapshot of each
requester, the demands of each delivery day and what was delivered against them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from services.allocation.adapters import schema

OPEN, CANCELLED, CLOSED = "open", "cancelled", "closed"


def requester_version(conn: Connection, requester_id: str) -> int | None:
    t = schema.requesters
    row = conn.execute(select(t.c.version).where(t.c.id == requester_id)).first()
    return None if row is None else row.version


def save_requester(conn: Connection, requester_id: str, values: Mapping[str, Any], *,
                   new: bool) -> None:
    t = schema.requesters
    if new:
        conn.execute(insert(t).values(id=requester_id, **values))
    else:
        conn.execute(update(t).where(t.c.id == requester_id).values(**values))


def requester(conn: Connection, requester_id: str) -> Mapping[str, Any] | None:
    """The requester's snapshot (its data), None when unknown."""
    r = schema.requesters
    row = conn.execute(select(r.c.data).where(r.c.id == requester_id)).first()
    return None if row is None else row.data


def requesters(conn: Connection) -> dict[str, Mapping[str, Any]]:
    r = schema.requesters
    return {row.id: row.data for row in conn.execute(select(r.c.id, r.c.data))}


def demand_known(conn: Connection, demand_id: str) -> bool:
    t = schema.demands
    return conn.execute(select(t.c.id).where(t.c.id == demand_id)).first() is not None


def add_demand(conn: Connection, **values: Any) -> None:
    conn.execute(insert(schema.demands).values(**values))


def set_status(conn: Connection, demand_id: str, status: str) -> bool:
    """False when the demand is not known (yet)."""
    t = schema.demands
    return conn.execute(update(t).where(t.c.id == demand_id).values(status=status)).rowcount > 0


def open_demands(conn: Connection, day: date) -> list[Row]:
    """The day's open demands (id, requester_id, data), by id."""
    d = schema.demands
    return conn.execute(select(d.c.id, d.c.requester_id, d.c.data)
                        .where(d.c.delivery_day == day, d.c.status == OPEN)
                        .order_by(d.c.id)).all()


def has_open_demand(conn: Connection, day: date) -> bool:
    d = schema.demands
    return conn.execute(select(d.c.id).where(d.c.delivery_day == day, d.c.status == OPEN)
                        .limit(1)).first() is not None


def mark_planned(conn: Connection, demand_ids: Sequence[str], plan_id: str) -> None:
    d = schema.demands
    ids = list(demand_ids)
    for i in range(0, len(ids), 500):
        conn.execute(update(d).where(d.c.id.in_(ids[i:i + 500])).values(plan_id=plan_id))


def replace_issued(conn: Connection, demand_id: str, rows: list[dict[str, Any]]) -> None:
    """The delivered quantities of a closed demand, one row per line (replacing earlier ones)."""
    t = schema.issued
    conn.execute(delete(t).where(t.c.demand_id == demand_id))
    if rows:
        conn.execute(insert(t), rows)


def issued_per_day(conn: Connection, item_code: str, start: date, until: date,
                   requester_id: str = "") -> dict[date, int]:
    """Units of the item delivered per delivery day (one requester's, or everyone's)."""
    t = schema.issued
    q = (select(t.c.delivery_day, func.sum(t.c.delivered))
         .where(t.c.item_code == item_code, t.c.delivery_day >= start, t.c.delivery_day <= until)
         .group_by(t.c.delivery_day))
    if requester_id:
        q = q.where(t.c.requester_id == requester_id)
    return {row[0]: int(row[1] or 0) for row in conn.execute(q)}

