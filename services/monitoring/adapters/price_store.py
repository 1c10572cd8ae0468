"""Market prices by product, market and day (table prices)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from services.monitoring.adapters import schema
from services.monitoring.adapters.schema import dialect_insert
from services.monitoring.domain.prices import PriceObservation


def save(conn: Connection, o: PriceObservation, submitted_by: str, at: datetime) -> None:
    """Store one day's price; a later one for the same product, market and day replaces it."""
    p = schema.prices
    stmt = dialect_insert(conn, p).values(product=o.product, market=o.market, day=o.day,
                                          price_fen=o.price_fen, submitted_by=submitted_by,
                                          submitted_at=at)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[p.c.product, p.c.market, p.c.day],
        set_={"price_fen": o.price_fen, "submitted_by": submitted_by, "submitted_at": at}))


def history(conn: Connection, product: str, market: str, start: date, end: date) -> list[PriceObservation]:
    """The product's prices at the market on the days start ≤ day < end."""
    p = schema.prices
    return [PriceObservation(r.product, r.market, r.day, r.price_fen)
            for r in conn.execute(select(p).where(
                p.c.product == product, p.c.market == market,
                p.c.day >= start, p.c.day < end)).all()]
