"""Hand-written timelines for the monitoring tests: one reading per minute unless told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.monitoring.domain.readings import Reading

T0 = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def reading(minute: float, temp_c: float, *, rh: float | None = None, sensor: str = "s1",
            zone: str = "z1", depot: str = "d1", seq: int | None = None) -> Reading:
    return Reading(depot=depot, zone=zone, sensor=sensor, ts=at(minute),
                   seq=int(minute) if seq is None else seq, temp_c=temp_c, rh=rh)


def segments(*parts: tuple[int, float], start: int = 0, **kw) -> list[Reading]:
    """(minutes, temp) parts: a part of n minutes is n readings, one a minute, at that temp."""
    out, m = [], start
    for n, temp in parts:
        for _ in range(n):
            out.append(reading(m, temp, **kw))
            m += 1
    return out
