"""The county's cut-off as received from allocation (docs/adr/0008): one row per policy version."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.intake import domain as d
from services.intake.adapters import schema

_newest_cutoff = select(schema.county_policy).order_by(schema.county_policy.c.version.desc()).limit(1)


def newest_cutoff(conn: Connection) -> d.CountyCutoff | None:
    row = conn.execute(_newest_cutoff).first()
    if row is None:
        return None
    return d.CountyCutoff(row.version, time.fromisoformat(row.cutoff), row.cutoff_days_before,
                          row.updated_at)


def add_cutoff(conn: Connection, cutoff: d.CountyCutoff, received_at: datetime) -> bool:
    """Store this version; False when another worker stored it first."""
    try:
        with conn.begin_nested():
            conn.execute(insert(schema.county_policy).values(
                version=cutoff.version, cutoff=cutoff.cutoff.strftime("%H:%M"),
                cutoff_days_before=cutoff.cutoff_days_before, updated_at=cutoff.updated_at,
                received_at=received_at))
    except IntegrityError:
        return False
    return True
