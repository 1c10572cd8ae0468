"""Reads: the stock snapshot for allocation, lots, stock, receipts, trips and manifests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from types import SimpleNamespace

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from services.common.auth import Caller
from services.common.errors import InvalidInput, NotFound, PermissionDenied
from services.common.repository import decode_page_token, encode_page_token
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import schema, sites_store
from services.logistics.domain.model import (
    LotStatus,
)
from services.logistics.handlers.base import TRIP_READ_ROLES, LogisticsContext

SNAPSHOT_EXPIRED = "EXPIRED"  # StockSnapshot.excluded_lots[].reason


def snapshot(ctx: LogisticsContext, conn: Connection, delivery_day: date,
             item_codes: Sequence[str]) -> tuple[int, list, list, list]:
    """The ledger head, the depots, the lots allocation may plan with and the lots with stock
    it may not because they expire before the delivery day (reported, not silently dropped)."""
    seq, _ = store.read_head(conn)
    depots = sites_store.depot_rows(conn)
    t = schema.lot_balances
    available = t.c.on_hand - t.c.reserved - t.c.quarantined
    q = (select(t.c.lot_id, t.c.depot_id, t.c.zone_id, t.c.item_code, t.c.expiry,
                available.label("available"))
         .where(t.c.status == LotStatus.AVAILABLE.value, available > 0)
         .order_by(t.c.item_code, t.c.expiry, t.c.lot_id))
    if item_codes:
        q = q.where(t.c.item_code.in_(list(item_codes)))
    usable = conn.execute(q.where(t.c.expiry >= delivery_day)).all()
    expired = conn.execute(q.where(t.c.expiry < delivery_day)).all()
    return seq, depots, usable, expired


def lot_query(*, depot_id: str = "", zone_id: str = "", item_code: str = "", lot_id: str = "",
              status: str = "", include_empty: bool = False):
    b, lt = schema.lot_balances, schema.lots
    q = select(b, lt.c.lot_number, lt.c.receipt_id, lt.c.source_kind, lt.c.received_at).join(
        lt, lt.c.lot_id == b.c.lot_id)
    for col, value in ((b.c.depot_id, depot_id), (b.c.zone_id, zone_id), (b.c.item_code, item_code),
                       (b.c.lot_id, lot_id), (b.c.status, status)):
        if value:
            q = q.where(col == value)
    if not include_empty and not lot_id:
        q = q.where(b.c.on_hand > 0)
    return q


def list_lots(conn: Connection, *, page_size: int = 0, page_token: str = "", **filters):
    if page_size < 0 or page_size > 500:
        raise InvalidInput("page.page_size", "must be 0 … 500")
    size = page_size or 100
    q = lot_query(**filters)
    b = schema.lot_balances
    after = decode_page_token(page_token, [b.c.lot_id])
    if after is not None:
        q = q.where(b.c.lot_id > after[0])
    rows = conn.execute(q.order_by(b.c.lot_id).limit(size + 1)).all()
    token = encode_page_token([rows[size - 1].lot_id]) if len(rows) > size else ""
    total = conn.execute(select(func.count()).select_from(lot_query(**filters).subquery())).scalar_one()
    return rows[:size], token, int(total)


def lot_row(conn: Connection, lot_id: str):
    row = conn.execute(lot_query(lot_id=lot_id, include_empty=True)).first()
    if row is None:
        raise NotFound(f"lot_id: no lot {lot_id!r}")
    return row


def stock_summary(ctx: LogisticsContext, conn: Connection, *, depot_id: str = "", zone_id: str = "",
                  item_code: str = "") -> tuple[int, list[dict]]:
    seq, _ = store.read_head(conn)
    today = ctx.today()
    out: dict[tuple[str, str, str], dict] = {}
    for r in conn.execute(lot_query(depot_id=depot_id, zone_id=zone_id, item_code=item_code)
                          .order_by(schema.lot_balances.c.lot_id)):
        k = (r.depot_id, r.zone_id, r.item_code)
        s = out.setdefault(k, {"depot_id": k[0], "zone_id": k[1], "item_code": k[2], "on_hand": 0,
                               "reserved": 0, "quarantined": 0, "available": 0, "expired": 0,
                               "lots": 0})
        s["on_hand"] += r.on_hand
        s["reserved"] += r.reserved
        s["quarantined"] += r.quarantined
        s["lots"] += 1
        if r.expiry < today:
            s["expired"] += r.on_hand
        elif r.status == LotStatus.AVAILABLE.value:
            s["available"] += r.on_hand - r.reserved - r.quarantined
    return seq, [out[k] for k in sorted(out)]


def list_receipts(conn: Connection, *, depot_id: str = "", status: str = "", page_size: int = 0,
                  page_token: str = ""):
    if page_size < 0 or page_size > 500:
        raise InvalidInput("page.page_size", "must be 0 … 500")
    size = page_size or 100
    t = schema.receipts
    q = select(t)
    if depot_id:
        q = q.where(t.c.depot_id == depot_id)
    if status:
        if status not in ("accepted", "refused"):
            raise InvalidInput("status", "accepted or refused")
        q = q.where(t.c.status == status)
    after = decode_page_token(page_token, [t.c.id])
    if after is not None:
        q = q.where(t.c.id > after[0])
    rows = conn.execute(q.order_by(t.c.id).limit(size + 1)).all()
    token = encode_page_token([rows[size - 1].id]) if len(rows) > size else ""
    return rows[:size], token


def receipt_row(conn: Connection, receipt_id: str):
    row = conn.execute(select(schema.receipts).where(schema.receipts.c.id == receipt_id)).first()
    if row is None:
        raise NotFound(f"receipt_id: no receipt {receipt_id!r}")
    return row


def receipt_lots(conn: Connection, receipt_id: str):
    return conn.execute(lot_query(include_empty=True).where(schema.lots.c.receipt_id == receipt_id)
                        .order_by(schema.lot_balances.c.lot_id)).all()


def list_trips(conn: Connection, *, delivery_day: date | None = None, plan_id: str = "",
               depot_id: str = "", vehicle_id: str = ""):
    t = schema.trips
    q = select(t)
    for col, value in ((t.c.delivery_day, delivery_day), (t.c.plan_id, plan_id),
                       (t.c.depot_id, depot_id), (t.c.vehicle_id, vehicle_id)):
        if value:
            q = q.where(col == value)
    trips = conn.execute(q.order_by(t.c.delivery_day, t.c.depot_id, t.c.id)).all()
    p = schema.plans
    pq = select(p)
    if plan_id:
        pq = pq.where(p.c.id == plan_id)
    if delivery_day:
        pq = pq.where(p.c.delivery_day == delivery_day)
    plans = conn.execute(pq.order_by(p.c.delivery_day, p.c.id)).all() if (plan_id or delivery_day) else []
    return trips, plans


def trip_row(conn: Connection, trip_id: str):
    if not trip_id:
        raise InvalidInput("trip_id", "required")
    row = conn.execute(select(schema.trips).where(schema.trips.c.id == trip_id)).first()
    if row is None:
        raise NotFound(f"trip_id: no trip {trip_id!r}")
    return row


def _stops_at(row, requester_id: str):
    """The trip row with only its stops at `requester_id`; None when it has none."""
    trip = row.data["trip"]
    stops = [s for s in trip["stops"] if s["requester_id"] == requester_id]
    if not stops:
        return None
    return SimpleNamespace(**{**row._asdict(), "data": {**row.data, "trip": {**trip, "stops": stops}}})


def trips_seen_by(conn: Connection, actor: Caller, **filters):
    """list_trips as `actor` may see them: a village or grid worker gets only the trips that
    stop at its requester, with those stops only, and no dispatch summaries."""
    own = actor.require_for("", *TRIP_READ_ROLES)
    trips, plans = list_trips(conn, **filters)
    if not own:
        return trips, plans
    return [r for r in (_stops_at(t, own) for t in trips) if r is not None], []


def manifest_seen_by(conn: Connection, actor: Caller, trip_id: str):
    """trip_row as `actor` may see it (see trips_seen_by); another village's trip is
    PERMISSION_DENIED."""
    own = actor.require_for("", *TRIP_READ_ROLES)
    row = trip_row(conn, trip_id)
    if not own:
        return row
    mine = _stops_at(row, own)
    if mine is None:
        raise PermissionDenied(f"trip {trip_id} does not stop at {own} / 该车次不经过本村居")
    return mine


def demand_ids(conn: Connection, plan_line_ids: Iterable[str]) -> dict[str, str | None]:
    ids = list(set(plan_line_ids))
    if not ids:
        return {}
    t = schema.plan_lines
    return {r.id: r.demand_id for r in conn.execute(select(t.c.id, t.c.demand_id).where(t.c.id.in_(ids)))}

