"""What the HQ board shows, computed from plain data: demands by tier and township, the day's
deadlines, fill rates. Pure functions (the page handlers fetch, these shape)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Deadline:
    code: str  # cutoff, dispatch, report
    at: datetime
    minutes_left: int  # negative once passed

    @property
    def passed(self) -> bool:
        return self.minutes_left < 0


def parse_hhmm(value: str, default: time) -> time:
    try:
        hh, mm = value.split(":")
        return time(int(hh), int(mm))
    except (ValueError, AttributeError):
        return default


def deadlines(now: datetime, tz: ZoneInfo, day: date, cutoff: str, dispatch: str, report: str) -> list[Deadline]:
    """The county day's three deadlines (RULES §2) and the minutes left to each."""
    out = []
    for code, raw, default in (("cutoff", cutoff, time(11)), ("dispatch", dispatch, time(17)),
                               ("report", report, time(17, 30))):
        at = datetime.combine(day, parse_hhmm(raw, default), tz)
        out.append(Deadline(code, at, int((at - now) // timedelta(minutes=1))))
    return out


@dataclass(frozen=True)
class DemandRow:
    demand_id: str
    requester_id: str
    township: str
    top_tier: int
    lines: int
    flagged: bool
    status: str


def tier_township_table(cells: Iterable[tuple[int, str, int]]
                        ) -> tuple[list[str], dict[int, dict[str, int]], Counter]:
    """(townships in order, demands per tier per township, demands per tier) from counted cells
    (tier, township, demands), as intake's day summary gives them."""
    cells = list(cells)
    townships = sorted({township for _, township, _ in cells})
    table: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(townships, 0))
    per_tier: Counter = Counter()
    for tier, township, n in cells:
        table[tier][township] += n
        per_tier[tier] += n
    return townships, {t: table[t] for t in sorted(table)}, per_tier


def fill_rate(allocated: int, asked: int) -> float | None:
    return None if asked <= 0 else allocated / asked
