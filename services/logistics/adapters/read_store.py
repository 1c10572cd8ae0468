"""Logistics' reads in the database: the stock snapshot's lots, lots with their receipt,
receipts, trips and plans, keyset-paged where the API pages (rows out; the handlers check
the request and shape the answer)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from services.common.repository import decode_page_token, encode_page_token
from services.logistics.adapters.schema import (
    lot_balances,
    lots,
    plan_lines,
    plans,
    receipts,
    trips,
)
from services.logistics.domain.model import LotStatus


def _matching(q, filters: Iterable[tuple[Any, Any]]):
    """q where each column equals its value, for the values given (empty or None: any)."""
    for col, value in filters:
        if value:
            q = q.where(col == value)
    return q


def snapshot_lots(conn: Connection, delivery_day: date, item_codes: Sequence[str]) -> tuple[list, list]:
    """Available lots with stock (of these items; all when none named), in item, expiry, lot
    order: those good on the delivery day, and those that expire before it."""
    t = lot_balances
    available = t.c.on_hand - t.c.reserved - t.c.quarantined
    q = (select(t.c.lot_id, t.c.depot_id, t.c.zone_id, t.c.item_code, t.c.expiry,
                available.label("available"))
         .where(t.c.status == LotStatus.AVAILABLE.value, available > 0)
         .order_by(t.c.item_code, t.c.expiry, t.c.lot_id))
    if item_codes:
        q = q.where(t.c.item_code.in_(list(item_codes)))
    usable = conn.execute(q.where(t.c.expiry >= delivery_day)).all()
    expired = conn.execute(q.where(t.c.expiry < delivery_day)).all()
    return usable, expired


def lot_query(*, depot_id: str = "", zone_id: str = "", item_code: str = "", lot_id: str = "",
              status: str = "", include_empty: bool = False):
    """Lot balances with their lot number and receipt; empty lots only when asked (or named)."""
    b, lt = lot_balances, lots
    q = select(b, lt.c.lot_number, lt.c.receipt_id, lt.c.source_kind, lt.c.received_at).join(
        lt, lt.c.lot_id == b.c.lot_id)
    q = _matching(q, ((b.c.depot_id, depot_id), (b.c.zone_id, zone_id), (b.c.item_code, item_code),
                      (b.c.lot_id, lot_id), (b.c.status, status)))
    if not include_empty and not lot_id:
        q = q.where(b.c.on_hand > 0)
    return q


def lots_page(conn: Connection, size: int, page_token: str, **filters) -> tuple[list, str, int]:
    """One page of lots in id order, the next page's token and how many match in all."""
    b = lot_balances
    q = lot_query(**filters)
    after = decode_page_token(page_token, [b.c.lot_id])
    if after is not None:
        q = q.where(b.c.lot_id > after[0])
    rows = conn.execute(q.order_by(b.c.lot_id).limit(size + 1)).all()
    token = encode_page_token([rows[size - 1].lot_id]) if len(rows) > size else ""
    total = conn.execute(select(func.count()).select_from(lot_query(**filters).subquery())).scalar_one()
    return rows[:size], token, int(total)


def lot(conn: Connection, lot_id: str):
    return conn.execute(lot_query(lot_id=lot_id, include_empty=True)).first()


def lots_with_stock(conn: Connection, *, depot_id: str = "", zone_id: str = "", item_code: str = ""):
    return conn.execute(lot_query(depot_id=depot_id, zone_id=zone_id, item_code=item_code)
                        .order_by(lot_balances.c.lot_id))


def receipts_page(conn: Connection, size: int, page_token: str, *, depot_id: str = "",
                  status: str = "") -> tuple[list, str]:
    t = receipts
    q = _matching(select(t), ((t.c.depot_id, depot_id), (t.c.status, status)))
    after = decode_page_token(page_token, [t.c.id])
    if after is not None:
        q = q.where(t.c.id > after[0])
    rows = conn.execute(q.order_by(t.c.id).limit(size + 1)).all()
    token = encode_page_token([rows[size - 1].id]) if len(rows) > size else ""
    return rows[:size], token


def receipt(conn: Connection, receipt_id: str):
    return conn.execute(select(receipts).where(receipts.c.id == receipt_id)).first()


def receipt_lots(conn: Connection, receipt_id: str) -> list:
    return conn.execute(lot_query(include_empty=True).where(lots.c.receipt_id == receipt_id)
                        .order_by(lot_balances.c.lot_id)).all()


def trips_and_plans(conn: Connection, *, delivery_day: date | None = None, plan_id: str = "",
                    depot_id: str = "", vehicle_id: str = "") -> tuple[list, list]:
    """The trips that match, and the plans of that plan or day (none when neither is named)."""
    t = trips
    q = _matching(select(t), ((t.c.delivery_day, delivery_day), (t.c.plan_id, plan_id),
                              (t.c.depot_id, depot_id), (t.c.vehicle_id, vehicle_id)))
    trip_rows = conn.execute(q.order_by(t.c.delivery_day, t.c.depot_id, t.c.id)).all()
    p = plans
    pq = _matching(select(p), ((p.c.id, plan_id), (p.c.delivery_day, delivery_day)))
    plan_rows = conn.execute(pq.order_by(p.c.delivery_day, p.c.id)).all() if (plan_id or delivery_day) else []
    return trip_rows, plan_rows


def demand_ids(conn: Connection, plan_line_ids: Iterable[str]) -> dict[str, str | None]:
    ids = list(set(plan_line_ids))
    if not ids:
        return {}
    t = plan_lines
    return {r.id: r.demand_id for r in conn.execute(select(t.c.id, t.c.demand_id).where(t.c.id.in_(ids)))}
