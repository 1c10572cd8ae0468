"""Lots as logistics reports them (table lots): where each is, how much, its status and its
thermal account (stored whole as JSON). Held lots are the available and quarantined ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.engine import Connection

from services.common.serde import from_jsonable
from services.monitoring.adapters import schema
from services.monitoring.domain import alerts as al
from services.monitoring.domain import spoilage

HELD = ("available", "quarantined")


def account(data: Any) -> spoilage.LotThermalAccount | None:
    return None if data is None else from_jsonable(spoilage.LotThermalAccount, data)


def for_update(conn: Connection, lot_id: str) -> Row | None:
    lt = schema.lots
    return conn.execute(select(lt).where(lt.c.lot_id == lot_id).with_for_update()).first()


def insert(conn: Connection, lot_id: str, **values: Any) -> None:
    conn.execute(schema.lots.insert().values(lot_id=lot_id, **values))


def save(conn: Connection, lot_id: str, **values: Any) -> None:
    lt = schema.lots
    conn.execute(update(lt).where(lt.c.lot_id == lot_id).values(**values))


def held_in_zone(conn: Connection, key: str) -> list[Row]:
    """The zone's held lots with stock, by lot id (every column)."""
    lt = schema.lots
    return conn.execute(select(lt).where(lt.c.zone_key == key, lt.c.status.in_(HELD), lt.c.on_hand > 0)
                        .order_by(lt.c.lot_id)).all()


def available_in_zone(conn: Connection, key: str) -> list[Row]:
    """The zone's available lots with stock, by lot id (every column)."""
    lt = schema.lots
    return conn.execute(select(lt).where(lt.c.zone_key == key, lt.c.status == "available",
                                         lt.c.on_hand > 0).order_by(lt.c.lot_id)).all()


def available_ids(conn: Connection, key: str) -> list[str]:
    """The lots an alarm in this zone puts at risk (spoilage: they are to be quarantined)."""
    return [r.lot_id for r in available_in_zone(conn, key)]


def zones_with_accounts(conn: Connection) -> list[str]:
    """Zones holding available lots with a thermal account."""
    lt = schema.lots
    return list(conn.execute(select(lt.c.zone_key).where(
        lt.c.status == "available", lt.c.on_hand > 0, lt.c.account.is_not(None)).distinct()).scalars())


def expiring(conn: Connection, lot_ids: Sequence[str] | None = None) -> list[al.LotExpiry]:
    """Available lots with stock and an expiry day (all of them, or `lot_ids`)."""
    lt = schema.lots
    q = select(lt.c.lot_id, lt.c.item_code, lt.c.depot, lt.c.zone, lt.c.expiry).where(
        lt.c.status == "available", lt.c.on_hand > 0, lt.c.expiry.is_not(None))
    if lot_ids is not None:
        q = q.where(lt.c.lot_id.in_(list(lot_ids)))
    return [al.LotExpiry(r.lot_id, r.item_code, r.depot, r.zone, r.expiry) for r in conn.execute(q).all()]
