"""Receipts and the lots they put away in the database (rows in, nothing computed here)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from services.logistics.adapters.schema import lots, receipts
from services.logistics.domain.model import Lot


def receipt_exists(conn: Connection, receipt_id: str) -> bool:
    return conn.execute(select(receipts.c.id).where(receipts.c.id == receipt_id)).first() is not None


def add_lots(conn: Connection, new_lots: Iterable[Lot], *, receipt_id: str, kind: str,
             origin_ref: str, at: datetime) -> None:
    conn.execute(insert(lots), [{
        "lot_id": lot.lot_id, "item_code": lot.item_code, "depot_id": lot.depot_id,
        "zone_id": lot.zone_id, "lot_number": lot.lot_number, "expiry": lot.expiry,
        "receipt_id": receipt_id, "source_kind": kind, "source_ref": origin_ref,
        "received_at": at} for lot in new_lots])


def add_receipt(conn: Connection, *, receipt_id: str, kind: str, depot_id: str, status: str,
                origin_ref: str, received_by: str, received_at: datetime, data: dict[str, Any],
                rule_code: str | None = None, message: str | None = None) -> None:
    conn.execute(insert(receipts).values(
        id=receipt_id, kind=kind, depot_id=depot_id, status=status, rule_code=rule_code,
        message=message, origin_ref=origin_ref, received_by=received_by, received_at=received_at,
        data=data))
