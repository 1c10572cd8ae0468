"""Readings of zones nobody registered yet (table held_readings): held, bounded by the hold's
policy, judged and deleted once their zone is registered (domain/zones.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from services.monitoring.adapters import schema
from services.monitoring.adapters.schema import aware
from services.monitoring.domain.readings import Reading
from services.monitoring.domain.zones import HoldPolicy


@dataclass(frozen=True)
class HeldReading:
    id: int
    reading: Reading
    gateway: str | None


def hold(conn: Connection, readings: Sequence[Reading], gateway_of: Mapping[str, str],
         now: datetime) -> None:
    if readings:
        conn.execute(schema.held_readings.insert(), [
            {"zone_key": r.zone_key, "sensor_key": r.sensor_key, "depot": r.depot, "zone": r.zone,
             "sensor": r.sensor, "gateway": gateway_of.get(r.sensor_key), "ts": r.ts, "seq": r.seq,
             "temp_c": r.temp_c, "rh": r.rh, "received_at": now} for r in readings])


def of_zones(conn: Connection, keys: Iterable[str], limit: int = 100_000) -> list[HeldReading]:
    """The held readings of these zones, oldest first."""
    keys = sorted(set(keys))
    if not keys:
        return []
    hr = schema.held_readings
    rows = conn.execute(select(hr).where(hr.c.zone_key.in_(keys)).order_by(hr.c.ts, hr.c.id)
                        .limit(limit)).all()
    return [HeldReading(r.id, Reading(r.depot, r.zone, r.sensor, aware(r.ts), r.seq, r.temp_c, r.rh),
                        r.gateway) for r in rows]


def registered_zones(conn: Connection, limit: int = 100) -> list[str]:
    """Zones with held readings that are registered now: theirs are to be judged."""
    hr, z = schema.held_readings, schema.zones
    return list(conn.execute(select(hr.c.zone_key).distinct()
                             .select_from(hr.join(z, z.c.zone_key == hr.c.zone_key))
                             .order_by(hr.c.zone_key).limit(limit)).scalars())


def delete(conn: Connection, ids: Sequence[int]) -> None:
    hr = schema.held_readings
    for i in range(0, len(ids), 1000):
        conn.execute(hr.delete().where(hr.c.id.in_(list(ids[i:i + 1000]))))


def trim(conn: Connection, policy: HoldPolicy, now: datetime) -> int:
    """Enforce the hold's bounds: retention, newest `per_sensor` per sensor, `max_rows` in all."""
    hr = schema.held_readings
    n = conn.execute(hr.delete().where(hr.c.received_at < now - policy.retention)).rowcount
    rank = func.row_number().over(partition_by=hr.c.sensor_key,
                                  order_by=(hr.c.ts.desc(), hr.c.id.desc())).label("rank")
    ranked = select(hr.c.id, rank).subquery()
    n += conn.execute(hr.delete().where(hr.c.id.in_(
        select(ranked.c.id).where(ranked.c.rank > policy.per_sensor)))).rowcount
    floor = conn.execute(select(hr.c.id).order_by(hr.c.id.desc())
                         .offset(policy.max_rows).limit(1)).scalar()
    if floor is not None:
        n += conn.execute(hr.delete().where(hr.c.id <= floor)).rowcount
    return n
