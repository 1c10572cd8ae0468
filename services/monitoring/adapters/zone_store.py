"""The zone map (table zones) as the ingest reads it, and the zones' evaluation-state rows
(table zone_state): created on first use, locked in sorted order (ADR 0002)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from services.monitoring.adapters import schema
from services.monitoring.adapters.schema import dialect_insert


@dataclass(frozen=True)
class ZoneRow:
    zone_key: str
    depot: str
    zone: str
    storage_class: str
    interval_s: float | None
    source: str


def zone_map(conn: Connection) -> dict[str, ZoneRow]:
    z = schema.zones
    rows = conn.execute(select(z.c.zone_key, z.c.depot, z.c.zone, z.c.storage_class,
                               z.c.interval_s, z.c.source)).all()
    return {r.zone_key: ZoneRow(*r) for r in rows}


def ensure_state_rows(conn: Connection, keys: Iterable[str], now: datetime) -> None:
    rows = [{"zone_key": k, "version": 0, "thermal": {}, "open_rules": {}, "updated_at": now}
            for k in keys]
    if rows:
        conn.execute(dialect_insert(conn, schema.zone_state).on_conflict_do_nothing(), rows)


def lock_state(conn: Connection, keys: Sequence[str]) -> dict[str, int]:
    """Lock the zones' state rows (sorted order: no deadlock between processes); their versions."""
    zs = schema.zone_state
    rows = conn.execute(select(zs.c.zone_key, zs.c.version)
                        .where(zs.c.zone_key.in_(sorted(keys)))
                        .order_by(zs.c.zone_key).with_for_update()).all()
    return {r.zone_key: r.version for r in rows}


def named(conn: Connection, zone_ids: Iterable[str]) -> dict[str, list[ZoneRow]]:
    """Every registered zone with one of these zone ids, by zone id (any depot)."""
    ids = sorted(set(zone_ids))
    out: dict[str, list[ZoneRow]] = defaultdict(list)
    if not ids:
        return out
    z = schema.zones
    for r in conn.execute(select(z.c.zone_key, z.c.depot, z.c.zone, z.c.storage_class, z.c.interval_s,
                                 z.c.source).where(z.c.zone.in_(ids))).all():
        out[r.zone].append(ZoneRow(*r))
    return out




def get(conn: Connection, key: str) -> ZoneRow | None:
    z = schema.zones
    r = conn.execute(select(z.c.zone_key, z.c.depot, z.c.zone, z.c.storage_class, z.c.interval_s,
                            z.c.source).where(z.c.zone_key == key)).first()
    return None if r is None else ZoneRow(*r)


def zone_record(conn: Connection, key: str, *, must_exist: bool = False):
    """The zone's whole row (capacity and source too); None when not registered, unless must_exist."""
    q = select(schema.zones).where(schema.zones.c.zone_key == key)
    return conn.execute(q).one() if must_exist else conn.execute(q).first()


def insert_zone(conn: Connection, **values: Any) -> bool:
    """Register a zone unless its key is already there (a concurrent insert); True if inserted."""
    return bool(conn.execute(dialect_insert(conn, schema.zones).values(**values)
                             .on_conflict_do_nothing()).rowcount)


def update_zone(conn: Connection, key: str, changes: dict[str, Any], at: datetime) -> None:
    z = schema.zones
    conn.execute(update(z).where(z.c.zone_key == key).values(**changes, updated_at=at))


def thermal_of(conn: Connection, key: str) -> dict[str, Any] | None:
    """The zone's stored thermal history; None before its first reading."""
    zs = schema.zone_state
    row = conn.execute(select(zs.c.thermal).where(zs.c.zone_key == key)).first()
    return row.thermal if row else None


def state_rows(conn: Connection, keys: Sequence[str]) -> dict[str, Any]:
    """{zone key: (version, thermal, open_rules)} of the zones' state rows, which must exist."""
    zs = schema.zone_state
    rows = conn.execute(select(zs.c.zone_key, zs.c.version, zs.c.thermal, zs.c.open_rules)
                        .where(zs.c.zone_key.in_(sorted(keys)))).all()
    return {r.zone_key: r for r in rows}


def state_row(conn: Connection, key: str):
    """(version, thermal, open_rules) of the zone's state row, which must exist."""
    zs = schema.zone_state
    return conn.execute(select(zs.c.version, zs.c.thermal, zs.c.open_rules)
                        .where(zs.c.zone_key == key)).one()


def save_thermal(conn: Connection, key: str, version: int, thermal: dict[str, Any],
                 at: datetime) -> None:
    """The zone's thermal history, as the next version of its state row."""
    zs = schema.zone_state
    conn.execute(update(zs).where(zs.c.zone_key == key).values(
        version=version + 1, thermal=thermal, updated_at=at))


def save_states(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Zone state rows after an ingest group, in one executemany: each row's k (zone key),
    v (new version), thermal, open_rules and at (updated_at)."""
    zs = schema.zone_state
    conn.execute(update(zs).where(zs.c.zone_key == bindparam("k")).values(
        version=bindparam("v"), thermal=bindparam("thermal"), open_rules=bindparam("open_rules"),
        updated_at=bindparam("at")), rows)
