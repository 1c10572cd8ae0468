"""Reads: the stock snapshot for allocation, lots, stock, receipts, trips and manifests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from types import SimpleNamespace

from sqlalchemy.engine import Connection

from services.common.auth import Caller
from services.common.errors import InvalidInput, NotFound, PermissionDenied
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import plans_store, read_store, sites_store
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
    usable, expired = read_store.snapshot_lots(conn, delivery_day, item_codes)
    return seq, depots, usable, expired


def list_lots(conn: Connection, *, page_size: int = 0, page_token: str = "", **filters):
    if page_size < 0 or page_size > 500:
        raise InvalidInput("page.page_size", "must be 0 … 500")
    return read_store.lots_page(conn, page_size or 100, page_token, **filters)


def lot_row(conn: Connection, lot_id: str):
    row = read_store.lot(conn, lot_id)
    if row is None:
        raise NotFound(f"lot_id: no lot {lot_id!r}")
    return row


def stock_summary(ctx: LogisticsContext, conn: Connection, *, depot_id: str = "", zone_id: str = "",
                  item_code: str = "") -> tuple[int, list[dict]]:
    seq, _ = store.read_head(conn)
    today = ctx.today()
    out: dict[tuple[str, str, str], dict] = {}
    for r in read_store.lots_with_stock(conn, depot_id=depot_id, zone_id=zone_id, item_code=item_code):
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
    if status and status not in ("accepted", "refused"):
        raise InvalidInput("status", "accepted or refused")
    return read_store.receipts_page(conn, page_size or 100, page_token, depot_id=depot_id,
                                    status=status)


def receipt_row(conn: Connection, receipt_id: str):
    row = read_store.receipt(conn, receipt_id)
    if row is None:
        raise NotFound(f"receipt_id: no receipt {receipt_id!r}")
    return row


def receipt_lots(conn: Connection, receipt_id: str):
    return read_store.receipt_lots(conn, receipt_id)


def list_trips(conn: Connection, *, delivery_day: date | None = None, plan_id: str = "",
               depot_id: str = "", vehicle_id: str = ""):
    return read_store.trips_and_plans(conn, delivery_day=delivery_day, plan_id=plan_id,
                                      depot_id=depot_id, vehicle_id=vehicle_id)


def trip_row(conn: Connection, trip_id: str):
    if not trip_id:
        raise InvalidInput("trip_id", "required")
    row = plans_store.trip_row(conn, trip_id)
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
    return read_store.demand_ids(conn, plan_line_ids)

