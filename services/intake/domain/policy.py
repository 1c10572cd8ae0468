"""Intake policy: the county's configurable rules (RULES.md §2, §6), and the cut-off calendar.

Every number here is a default a county may change; nothing in the domain hard-codes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from services.common.errors import InvalidInput

from .fields import as_int, as_local_time, require_aware


@dataclass(frozen=True)
class DeliveryTarget:
    """The delivery day a demand is accepted for.

    day: the delivery day it is accepted for. requested_day: what the caller asked for (None
    when the caller left it to the system). rolled_over: the requested day's cut-off had passed,
    so the demand was moved to `day`. cutoff_at: `day`'s cut-off (tz-aware, county local time).
    """

    day: date
    requested_day: date | None
    rolled_over: bool
    cutoff_at: datetime


@dataclass(frozen=True)
class CountyCutoff:
    """The cut-off of allocation's county policy, which owns it (policy_changed, docs/adr/0008).

    version: the policy's version; a lower one never replaces a higher one (events may arrive
    late or twice). updated_at: when HQ set it (None for version 0, the configured seed).
    """

    version: int
    cutoff: time
    cutoff_days_before: int
    updated_at: datetime | None = None

    def supersedes(self, known_version: int | None) -> bool:
        return known_version is None or self.version > known_version


MAX_CUTOFF_DAYS_BEFORE = 7  # allocation's bound (county_policy.MAX_DAYS_BEFORE)


def county_cutoff(payload: Mapping) -> CountyCutoff:
    """The cut-off of a policy_changed payload; InvalidInput names the payload field."""
    raw_at = payload.get("updated_at")
    try:
        updated_at = datetime.fromisoformat(raw_at.replace("Z", "+00:00")) if raw_at else None
    except (AttributeError, ValueError):
        raise InvalidInput("payload.updated_at", f"must be an ISO-8601 instant, got {raw_at!r}") from None
    return CountyCutoff(
        version=as_int(payload.get("version"), "payload.version", min_value=0),
        cutoff=as_local_time(payload.get("cutoff"), "payload.cutoff"),
        cutoff_days_before=as_int(payload.get("cutoff_days_before"), "payload.cutoff_days_before",
                                  min_value=0, max_value=MAX_CUTOFF_DAYS_BEFORE),
        updated_at=updated_at)


@dataclass(frozen=True)
class DemandPolicy:
    """Rules for demands.

    timezone: county time zone; days and cut-offs are local.
    cutoff: local time of the cut-off for a delivery day (篇6: 每日上午11点前报需求).
    cutoff_days_before: the cut-off for day D falls on D minus this many days (篇5 registers
      the day before delivery: 1). Default 0: the cut-off is on D itself.
    cycle_days: days of consumption one demand covers (篇12: every three days). Used by the
      over-norm flag; with `cycle_anchor` it also restricts delivery days.
    cycle_anchor: when set, delivery days are cycle_anchor + k × cycle_days; when None every day
      is a delivery day.
    over_norm_factor: a line is flagged when quantity > factor × per-capita daily norm ×
      basis × cycle_days (按实申领, 不得夸大). Flags inform; they do not refuse.
    unit_basis_includes_beds: a unit's basis is headcount + beds (staff and the patients or
      residents in its beds both consume); False: headcount only.
    max_lines / max_quantity / max_note_chars: input bounds per demand and per line.
    max_days_ahead: how far past today a delivery day may be requested.
    """

    timezone: str = "Asia/Shanghai"
    cutoff: time = time(11, 0)
    cutoff_days_before: int = 0
    cycle_days: int = 1
    cycle_anchor: date | None = None
    over_norm_factor: float = 3.0
    unit_basis_includes_beds: bool = True
    max_lines: int = 200
    max_quantity: int = 1_000_000
    max_note_chars: int = 200
    max_days_ahead: int = 30

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # raises for an unknown zone
        if self.cutoff.tzinfo is not None:
            raise ValueError("cutoff is a local time without tzinfo")
        if self.cutoff_days_before < 0:
            raise ValueError("cutoff_days_before must be >= 0")
        if self.cycle_days < 1:
            raise ValueError("cycle_days must be >= 1")
        if not self.over_norm_factor > 0:
            raise ValueError("over_norm_factor must be > 0")
        if self.max_lines < 1 or self.max_quantity < 1 or self.max_days_ahead < 0:
            raise ValueError("max_lines and max_quantity must be >= 1, max_days_ahead >= 0")

    def following(self, county: CountyCutoff | None) -> DemandPolicy:
        """This policy with the county's cut-off (itself when none is known yet)."""
        if county is None or (county.cutoff, county.cutoff_days_before) == (
                self.cutoff, self.cutoff_days_before):
            return self
        return replace(self, cutoff=county.cutoff, cutoff_days_before=county.cutoff_days_before)

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_day(self, at: datetime) -> date:
        """The county-local calendar day of the instant `at`."""
        return require_aware(at).astimezone(self.tz).date()

    def cutoff_at(self, day: date) -> datetime:
        """The cut-off instant for delivery day `day` (local time, tz-aware)."""
        return datetime.combine(day - timedelta(days=self.cutoff_days_before), self.cutoff,
                                tzinfo=self.tz)

    def is_delivery_day(self, day: date) -> bool:
        if self.cycle_anchor is None or self.cycle_days == 1:
            return True
        return (day - self.cycle_anchor).days % self.cycle_days == 0

    def first_delivery_day_from(self, day: date) -> date:
        """The first delivery day on or after `day`."""
        if self.cycle_anchor is None or self.cycle_days == 1:
            return day
        offset = (day - self.cycle_anchor).days % self.cycle_days
        return day if offset == 0 else day + timedelta(days=self.cycle_days - offset)

    def next_delivery_day(self, day: date) -> date:
        """The first delivery day strictly after `day`."""
        return self.first_delivery_day_from(day + timedelta(days=1))

    def first_open_day_from(self, day: date, at: datetime) -> date:
        """The first delivery day on or after `day` whose cut-off is still after `at`."""
        d = self.first_delivery_day_from(day)
        while not at < self.cutoff_at(d):
            d = self.next_delivery_day(d)
        return d

    def delivery_target(self, at: datetime, requested_day: date | None = None,
                        field: str = "delivery_day") -> DeliveryTarget:
        """Which delivery day a demand submitted at `at` is accepted for.

        A demand for day D is accepted for D when `at` is strictly before D's cut-off;
        otherwise it rolls to the next delivery day whose cut-off is still ahead
        (`rolled_over=True`). Without a requested day the target is the earliest delivery day
        whose cut-off has not passed. A requested day before today (local), too far ahead, or
        not a delivery day of the cycle is InvalidInput on `field`.
        """
        require_aware(at)
        today = self.local_day(at)
        if requested_day is None:
            day = self.first_open_day_from(today, at)
            return DeliveryTarget(day, None, False, self.cutoff_at(day))
        if requested_day < today:
            raise InvalidInput(field, f"{requested_day.isoformat()} is in the past "
                                      f"(today is {today.isoformat()}, {self.timezone})")
        if (requested_day - today).days > self.max_days_ahead:
            raise InvalidInput(field, f"at most {self.max_days_ahead} days ahead, got "
                                      f"{requested_day.isoformat()}")
        if not self.is_delivery_day(requested_day):
            raise InvalidInput(field, f"{requested_day.isoformat()} is not a delivery day; "
                                      f"next is {self.first_delivery_day_from(requested_day)}")
        day = self.first_open_day_from(requested_day, at)
        return DeliveryTarget(day, requested_day, day != requested_day, self.cutoff_at(day))

    def norm(self, per_capita_daily: float, basis: int, days: int | None = None) -> float:
        """Expected consumption: per-capita daily norm × people × days (the cycle by default)."""
        return per_capita_daily * basis * (self.cycle_days if days is None else days)

    def is_over_norm(self, quantity: int, per_capita_daily: float, basis: int,
                     days: int | None = None) -> bool:
        """True when `quantity` exceeds factor × norm. Items without a norm are never flagged."""
        expected = self.norm(per_capita_daily, basis, days)
        # rounded so that float noise (0.29 × 100 = 28.999999999999996) does not flag the limit
        return expected > 0 and quantity > round(self.over_norm_factor * expected, 6)


def ceil_norm(x: float) -> int:
    """A norm as a whole quantity (rounded up, tolerant of float noise such as 12.000000001)."""
    return math.ceil(round(x, 6))


@dataclass(frozen=True)
class SpecialNeedPolicy:
    """Special needs (篇5 §二6, 篇13 §六(二)4).

    max_period_days: longest collection period of a periodic need (chronic medicine).
    max_lines: lines per beneficiary registration.
    one_off_days: the days a one-off need's delivery is meant to last, for its over-norm flag
      (a periodic need's are its period). 14: the window a risk level is judged over (篇1:
      连续14天) and an isolation period (篇11: 观察14天), so one delivery for a closure.
    """

    max_period_days: int = 90
    max_lines: int = 20
    one_off_days: int = 14


@dataclass(frozen=True)
class DonationPolicy:
    """Donations (篇6 §二3, 篇9 §四).

    timezone: county time zone (expiry on arrival and the daily summary use local days).
    medical_grade_groups: item groups whose accepted lines must say whether they meet the
      medical standard (医用标准).
    max_lines / max_quantity / max_certificates: input bounds.
    """

    timezone: str = "Asia/Shanghai"
    medical_grade_groups: frozenset[str] = frozenset({"medicine", "ppe"})
    max_lines: int = 200
    max_quantity: int = 10_000_000
    max_certificates: int = 20

    def local_day(self, at: datetime) -> date:
        return require_aware(at).astimezone(ZoneInfo(self.timezone)).date()


@dataclass(frozen=True)
class ImportPolicy:
    """Spreadsheet import bounds (documented in intake.proto ImportSpreadsheetRequest)."""

    max_bytes: int = 16 * 1024 * 1024
    max_rows: int = 50_000
