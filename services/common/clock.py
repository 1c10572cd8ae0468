"""The clock port. Every service reads time through a Clock, never datetime.now().

A simulated clock runs at `speed` times real time from `start`, anchored at a wall-clock instant,
so that several processes given the same SUPPLY_CLOCK string agree on the simulated time
without talking to each other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that only moves when told to (unit tests)."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current = self.current + timedelta(**kwargs)


@dataclass(frozen=True)
class SimulatedClock:
    start: datetime
    speed: float
    anchor_wall: float

    def now(self) -> datetime:
        elapsed = (time.time() - self.anchor_wall) * self.speed
        return self.start + timedelta(seconds=elapsed)

    def spec(self) -> str:
        return f"sim:{self.start.isoformat()};speed={self.speed:g};anchor={self.anchor_wall:.3f}"


def parse_clock(spec: str) -> Clock:
    """`real`, or `sim:<ISO start with offset>;speed=<x>;anchor=<unix seconds>`."""
    spec = spec.strip()
    if spec in ("", "real"):
        return RealClock()
    if not spec.startswith("sim:"):
        raise ValueError(f"SUPPLY_CLOCK must be 'real' or 'sim:...', got {spec!r}")
    parts = spec[4:].split(";")
    try:
        start = datetime.fromisoformat(parts[0])
    except ValueError as exc:
        raise ValueError(f"SUPPLY_CLOCK start is not an ISO-8601 time: {parts[0]!r}") from exc
    if start.tzinfo is None:
        raise ValueError("SUPPLY_CLOCK start needs a UTC offset, e.g. 2026-11-28T07:00:00+08:00")
    opts = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    speed = float(opts.get("speed", "1"))
    if speed <= 0:
        raise ValueError("SUPPLY_CLOCK speed must be > 0")
    anchor = float(opts.get("anchor", time.time()))
    return SimulatedClock(start=start.astimezone(UTC), speed=speed, anchor_wall=anchor)
