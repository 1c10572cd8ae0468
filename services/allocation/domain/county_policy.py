"""The county's allocation policy as HQ edits it (SetPolicy): validated, versioned.

It holds the rules of the engine that a county changes (tier order, reserve days per item
group, package substitution, reserve-drawing tiers, days to expiry) and the daily cycle
(cut-off, dispatch deadline). Version 0 is the configured default; every accepted change makes
the next version, and each plan records the version it was made with.

Pure: times are arguments; the county time zone comes from configuration, not from HQ.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput

from .policy import Policy

TIERS = (1, 2, 3, 4, 5)
EDITABLE = ("tier_order", "reserve_days", "reserve_floors", "cutoff", "cutoff_days_before",
            "dispatch_deadline", "allow_package_substitution", "below_reserve_tiers",
            "min_days_to_expiry")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_RESERVE_DAYS = 3650
MAX_DAYS_BEFORE = 7
MAX_DAYS_TO_EXPIRY = 365
MAX_FLOOR_UNITS = 100_000_000


@dataclass(frozen=True)
class CountyPolicy:
    """tier_order: tiers served strictly in this order, each of 1..5 once (RULES.md §3).
    reserve_days: item group → days of reserve, overriding the catalogue's default (§4).
    reserve_floors: item group (its items share one unit) or item code → absolute floor in
      units; an item keeps max(days floor, absolute floor), its code's before its group's.
    cutoff: "HH:MM" local time at which the demands for a delivery day close (篇6: 11:00).
    cutoff_days_before: the cut-off for day D is on D minus this many days (篇5: 1).
    dispatch_deadline: "HH:MM" on the cut-off's day; a plan approved later is late (17:00).
    allow_package_substitution: serve the short part of an item as standard packages (§3.7).
    below_reserve_tiers: tiers that may draw below an item's reserve floor (frontline,
      vulnerable); such draws are recorded and warned.
    min_days_to_expiry: a lot is usable only if its expiry ≥ delivery day + this many days.
    """

    tier_order: tuple[int, ...] = TIERS
    reserve_days: dict[str, float] = field(default_factory=dict)
    reserve_floors: dict[str, int] = field(default_factory=dict)
    cutoff: str = "11:00"
    cutoff_days_before: int = 0
    dispatch_deadline: str = "17:00"
    allow_package_substitution: bool = True
    below_reserve_tiers: tuple[int, ...] = (1, 2)
    min_days_to_expiry: int = 1
    version: int = 0
    updated_at: datetime | None = None
    updated_by: str = ""

    # ---- the engine's rules
    def engine_policy(self) -> Policy:
        return Policy(tier_order=tuple(self.tier_order), reserve_days=dict(self.reserve_days),
                      absolute_floors=dict(self.reserve_floors),
                      below_reserve_tiers=frozenset(self.below_reserve_tiers),
                      allow_package_substitution=self.allow_package_substitution,
                      min_days_to_expiry=self.min_days_to_expiry)

    def priority_rank(self, tier: int) -> int:
        """The tier's place in the serving order, 1 first (0 for a tier not in it)."""
        return self.tier_order.index(tier) + 1 if tier in self.tier_order else 0

    # ---- the daily cycle
    def cutoff_day(self, delivery_day: date) -> date:
        return delivery_day - timedelta(days=self.cutoff_days_before)

    def cutoff_at(self, delivery_day: date, tz: ZoneInfo) -> datetime:
        return datetime.combine(self.cutoff_day(delivery_day), _hhmm(self.cutoff), tzinfo=tz)

    def dispatch_deadline_at(self, delivery_day: date, tz: ZoneInfo) -> datetime:
        return datetime.combine(self.cutoff_day(delivery_day), _hhmm(self.dispatch_deadline),
                                tzinfo=tz)

    def planning_day(self, now: datetime, tz: ZoneInfo) -> date:
        """The delivery day whose cut-off falls on now's county-local date."""
        return now.astimezone(tz).date() + timedelta(days=self.cutoff_days_before)

    def due_day(self, now: datetime, tz: ZoneInfo) -> date | None:
        """The delivery day whose cut-off has passed today, or None before today's cut-off."""
        day = self.planning_day(now, tz)
        return day if now >= self.cutoff_at(day, tz) else None


def _hhmm(value: str) -> time:
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


def _int(value: Any, field_name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field_name, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidInput(field_name, f"must be between {lo} and {hi}, got {value}")
    return value


def _tiers(value: Any, field_name: str, *, all_tiers: bool) -> tuple[int, ...]:
    tiers = tuple(value or ())
    for i, t in enumerate(tiers):
        if isinstance(t, bool) or not isinstance(t, int) or t not in TIERS:
            raise InvalidInput(f"{field_name}[{i}]", f"must be a tier 1 … 5, got {t!r}")
        if tiers.index(t) != i:
            raise InvalidInput(f"{field_name}[{i}]", f"tier {t} is listed twice")
    if all_tiers and sorted(tiers) != list(TIERS):
        missing = sorted(set(TIERS) - set(tiers))
        raise InvalidInput(field_name, f"must list every tier 1 … 5 once, e.g. [1, 2, 3, 4, 5]; "
                                       f"missing {missing}")
    return tiers


def _clock_time(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not _HHMM.match(value.strip()):
        raise InvalidInput(field_name, f"must be a local time \"HH:MM\" (24-hour), got {value!r}")
    return value.strip()


def _reserve_days(value: Any, catalogue: Catalogue, field_name: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise InvalidInput(field_name, "must map item groups to days")
    out: dict[str, float] = {}
    for group, days in sorted(value.items()):
        f = f"{field_name}[{group}]"
        if group not in catalogue.groups:
            raise InvalidInput(f, f"unknown item group {group!r}; one of "
                                  f"{', '.join(sorted(catalogue.groups))}")
        if isinstance(days, bool) or not isinstance(days, int | float) or not math.isfinite(days):
            raise InvalidInput(f, f"must be a number of days, got {days!r}")
        if not 0 <= days <= MAX_RESERVE_DAYS:
            raise InvalidInput(f, f"must be between 0 and {MAX_RESERVE_DAYS} days, got {days:g}")
        out[group] = float(days)
    return out


def _reserve_floors(value: Any, catalogue: Catalogue, field_name: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise InvalidInput(field_name, "must map item groups or item codes to units")
    out: dict[str, int] = {}
    for key, units in sorted(value.items()):
        f = f"{field_name}[{key}]"
        if key in catalogue.groups:
            used = sorted({i.unit for i in catalogue.items.values() if i.group == key})
            if len(used) > 1:
                raise InvalidInput(f, f"the items of {key} are counted in {', '.join(used)}: set "
                                      f"a floor per item code instead / 该类物资计量单位不一，"
                                      f"请按物资编码设定")
        elif key not in catalogue.items:
            raise InvalidInput(f, f"unknown item group or item code {key!r} / 无此物资类别或编码")
        out[key] = _int(units, f, 0, MAX_FLOOR_UNITS)
    return out


def apply_changes(current: CountyPolicy, changes: Mapping[str, Any], catalogue: Catalogue, *,
                  by: str, at: datetime | None, prefix: str = "policy") -> CountyPolicy:
    """Validate `changes` (field → new value, only the fields to change) against `current`.

    Returns the next version, or `current` itself when nothing changes. Raises InvalidInput
    naming `prefix.<field>` (e.g. "policy.dispatch_deadline") for any bad value.
    """
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"{prefix}.{unknown[0]}", f"not an editable policy field; one of "
                                                     f"{', '.join(EDITABLE)}")
    new: dict[str, Any] = {}
    for name, value in changes.items():
        f = f"{prefix}.{name}"
        if name == "tier_order":
            new[name] = _tiers(value, f, all_tiers=True)
        elif name == "below_reserve_tiers":
            new[name] = tuple(sorted(_tiers(value, f, all_tiers=False)))
        elif name == "reserve_days":
            new[name] = _reserve_days(value, catalogue, f)
        elif name == "reserve_floors":
            new[name] = _reserve_floors(value, catalogue, f)
        elif name in ("cutoff", "dispatch_deadline"):
            new[name] = _clock_time(value, f)
        elif name == "cutoff_days_before":
            new[name] = _int(value, f, 0, MAX_DAYS_BEFORE)
        elif name == "min_days_to_expiry":
            new[name] = _int(value, f, 0, MAX_DAYS_TO_EXPIRY)
        elif name == "allow_package_substitution":
            if not isinstance(value, bool):
                raise InvalidInput(f, f"must be true or false, got {value!r}")
            new[name] = value
    candidate = replace(current, **new)
    if _hhmm(candidate.dispatch_deadline) <= _hhmm(candidate.cutoff):
        field_name = "dispatch_deadline" if "dispatch_deadline" in changes else "cutoff"
        raise InvalidInput(f"{prefix}.{field_name}",
                           f"the dispatch deadline ({candidate.dispatch_deadline}) must be later "
                           f"than the cut-off ({candidate.cutoff}) on the same day")
    if all(getattr(candidate, n) == getattr(current, n) for n in EDITABLE):
        return current
    return replace(candidate, version=current.version + 1, updated_at=at, updated_by=by)
