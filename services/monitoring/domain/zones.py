"""Whose zone a reading names: a reading is judged only under a zone registered for the depot of
its topic. A zone nobody registered may still be registered (a gateway installed before the
zone's paperwork): its readings are held and judged once it is. A zone id registered under
another depot (zone ids are unique in the county) is a gateway writing outside its depot: its
readings are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from services.monitoring.domain.readings import Reading

KNOWN, UNREGISTERED, FOREIGN = "known", "unregistered", "foreign"


def zone_standing(depot: str, registered_depots: Iterable[str]) -> str:
    """`registered_depots`: the depots the reading's zone id is registered under (none, one,
    or — with a hand-written zones file — several)."""
    depots = set(registered_depots)
    if depot in depots:
        return KNOWN
    return FOREIGN if depots else UNREGISTERED


@dataclass(frozen=True)
class HoldPolicy:
    """Bounds of the holding area, so that a flood of readings for unknown zones cannot fill the
    disk: the newest `per_sensor` readings of a sensor, none older than `retention`, at most
    `max_rows` in all (the newest kept)."""

    per_sensor: int = 100
    retention: timedelta = timedelta(hours=72)
    max_rows: int = 100_000


def newest_per_sensor(readings: Sequence[Reading], n: int) -> list[Reading]:
    """The newest `n` readings of each sensor, in their original order."""
    counts: dict[str, int] = {}
    keep = []
    for r in sorted(readings, key=lambda r: r.ts, reverse=True):
        k = r.sensor_key
        if counts.get(k, 0) < n:
            counts[k] = counts.get(k, 0) + 1
            keep.append(r)
    kept = {id(r) for r in keep}
    return [r for r in readings if id(r) in kept]
