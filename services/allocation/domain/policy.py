"""Allocation policy: the county's configurable rules (RULES.md §3, §4) and reserve floors."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput

from .model import Requester, ReserveFloor

SOURCING_MODES = ("by_tier", "whole_day")
PACKAGE_ROUNDING = ("up", "down")


@dataclass(frozen=True)
class Policy:
    """Rules of the daily allocation. Every number is a default a county may change.

    tier_order: tiers served strictly in this order (RULES.md §3.1-3.3).
    reserve_days: days of reserve per item group; a group missing here takes the catalogue's
      reserve_days (grain_oil 15, pork 3, vegetables 7, medicine / ppe / disinfectant 30).
    reserve_floor_overrides: item code → floor quantity, replacing the computed floor.
    absolute_floors: item group or item code → units; an item's floor is the larger of its
      days floor and this (its code's, else its group's).
    below_reserve_tiers: tiers that may draw an item below its floor (frontline, vulnerable);
      the draw is recorded on the plan with a warning.
    allow_package_substitution: offer a standard package for the unmet part of a short item.
    package_rounding: packages for an unmet quantity u of an item held N per package:
      "up" = ceil(u / N) (the need is covered), "down" = floor(u / N) (no over-issue).
    distance: "haversine" (great-circle km) or "equirectangular" (flat approximation, km).
    sourcing: "whole_day": one least-distance transport per item for the whole day's
      quantities (least total distance; measured within 0.01 % of the optimum on the bench);
      "by_tier": each tier in turn from what the tiers before it left (frontline gets the
      nearest stock first; total distance grows, 6-7 % on the bench's county day).
    candidate_depots: depots per requester offered to the transport solver (nearest first);
      when they cannot carry the demand, all depots are offered. Fewer is faster; the
      solution is optimal over the offered arcs.
    min_days_to_expiry: a lot is usable only if expiry ≥ delivery day + this many days. The
      default 1 excludes a lot expiring on the delivery day itself: it would reach households
      already at its last day of use.
    allocate_non_essential: non-essentials (tobacco, alcohol) are not handled (篇5) unless set.
    """

    tier_order: tuple[int, ...] = (1, 2, 3, 4, 5)
    reserve_days: Mapping[str, float] = field(default_factory=dict, hash=False)
    reserve_floor_overrides: Mapping[str, int] = field(default_factory=dict, hash=False)
    absolute_floors: Mapping[str, int] = field(default_factory=dict, hash=False)
    below_reserve_tiers: frozenset[int] = frozenset({1, 2})
    allow_package_substitution: bool = True
    package_rounding: str = "up"
    distance: str = "haversine"
    sourcing: str = "whole_day"
    candidate_depots: int = 16
    min_days_to_expiry: int = 1
    allocate_non_essential: bool = False

    def __post_init__(self):
        if len(set(self.tier_order)) != len(self.tier_order) or not self.tier_order:
            raise InvalidInput("policy.tier_order", "must list each tier once")
        if any(not isinstance(t, int) or t < 1 for t in self.tier_order):
            raise InvalidInput("policy.tier_order", "tiers are positive integers")
        if self.package_rounding not in PACKAGE_ROUNDING:
            raise InvalidInput("policy.package_rounding", f"one of {PACKAGE_ROUNDING}")
        if self.sourcing not in SOURCING_MODES:
            raise InvalidInput("policy.sourcing", f"one of {SOURCING_MODES}")
        if self.candidate_depots < 1:
            raise InvalidInput("policy.candidate_depots", "must be ≥ 1")
        if self.min_days_to_expiry < 0:
            raise InvalidInput("policy.min_days_to_expiry", "must be ≥ 0")
        for g, d in self.reserve_days.items():
            if d is not None and d < 0:
                raise InvalidInput(f"policy.reserve_days.{g}", "must be ≥ 0")
        for code, q in self.reserve_floor_overrides.items():
            if not isinstance(q, int) or q < 0:
                raise InvalidInput(f"policy.reserve_floor_overrides.{code}", "integer ≥ 0")
        for key, q in self.absolute_floors.items():
            if not isinstance(q, int) or q < 0:
                raise InvalidInput(f"policy.absolute_floors.{key}", "integer ≥ 0")

    def days_for(self, group: str, catalogue: Catalogue) -> float | None:
        if group in self.reserve_days:
            return self.reserve_days[group]
        g = catalogue.groups.get(group)
        return g.reserve_days if g else None


def reserve_floors(
    requesters: Iterable[Requester], policy: Policy, catalogue: Catalogue,
    item_codes: Iterable[str] | None = None,
) -> dict[str, ReserveFloor]:
    """Floors per item: the larger of ceil(reserve days of its group × population × per-capita
    daily norm) and the policy's absolute floor of the item (or of its group).

    Population is that of all requesters served. Items of groups without reserve days (and
    items whose norm is 0) get no floor unless the policy sets one.
    """
    population = sum(r.population for r in requesters)
    codes = sorted(catalogue.items if item_codes is None else set(item_codes))
    out: dict[str, ReserveFloor] = {}
    for code in codes:
        item = catalogue.item(code)
        days = policy.days_for(item.group, catalogue)
        daily = population * item.per_capita_daily
        absolute = policy.absolute_floors.get(code, policy.absolute_floors.get(item.group, 0))
        if code in policy.reserve_floor_overrides:
            qty = policy.reserve_floor_overrides[code]
        else:
            # round() first so that 15 × 0.04 × 1000 = 600.0000000001 does not become 601
            qty = max(math.ceil(round(days * daily, 6)) if days else 0, absolute)
        if qty > 0:
            out[code] = ReserveFloor(item.group, code, float(days or 0), daily, qty, absolute)
    return out
