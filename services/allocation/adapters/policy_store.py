"""The county policy's versions (table policies): each version stored once, never changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.allocation.adapters import schema


def newest(conn: Connection) -> Any | None:
    """The newest version's data, None when none is stored."""
    t = schema.policies
    row = conn.execute(select(t.c.data).order_by(t.c.version.desc()).limit(1)).first()
    return None if row is None else row.data


def every_version(conn: Connection) -> list[Any]:
    """Every version's data, newest first."""
    t = schema.policies
    return [r.data for r in conn.execute(select(t.c.data).order_by(t.c.version.desc()))]


def add_version(conn: Connection, version: int, data: Any, set_by: str, set_at: datetime | None
                ) -> bool:
    """Store a version; False (and nothing written) when that version is stored already."""
    try:
        with conn.begin_nested():
            conn.execute(insert(schema.policies).values(version=version, data=data,
                                                        set_by=set_by, set_at=set_at))
    except IntegrityError:
        return False
    return True
