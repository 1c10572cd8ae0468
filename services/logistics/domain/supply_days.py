"""Days of supply (RULES.md §4): usable stock ÷ expected daily consumption, per item group,
compared with the group's reserve floor from the catalogue (grain and oil 15 days, pork 3,
storable vegetables 7, medicine / PPE / disinfectant 30).

Usable stock: on hand, minus quarantined, of lots neither written off nor expired on `day`.
A standard package counts as its components (a vegetable package is vegetables).
Items of one group have different units (bags, bottles, kg), so a group's stock and
consumption are summed by weight by default (policy.measure).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput

from .ledger import LotBalance
from .policy import SupplyDaysPolicy


@dataclass(frozen=True, slots=True)
class ItemSupply:
    item_code: str
    usable: int
    daily: float
    days: float | None  # None: no consumption expected


@dataclass(frozen=True, slots=True)
class GroupSupply:
    group: str
    name_zh: str
    name_en: str
    usable: float  # in the policy's measure (kg or units)
    daily: float
    days: float | None
    reserve_days: float | None
    below_floor: bool
    items: tuple[ItemSupply, ...]


def days_of_supply(
    balances: Iterable[LotBalance],
    catalogue: Catalogue,
    *,
    population: int,
    day: date,
    policy: SupplyDaysPolicy | None = None,
    daily_consumption: Mapping[str, float] | None = None,
    depot_ids: Iterable[str] | None = None,
) -> list[GroupSupply]:
    """Days of supply per group.

    population: people the stock serves. daily_consumption: a forecast per item (units/day)
    that replaces population × per_capita_daily for that item. depot_ids: only these depots.
    """
    policy = policy or SupplyDaysPolicy()
    if policy.measure not in ("weight", "units"):
        raise InvalidInput("policy.measure", "must be 'weight' or 'units'")
    if not isinstance(population, int) or population < 0:
        raise InvalidInput("population", "must be an integer >= 0")
    depots = set(depot_ids) if depot_ids is not None else None
    forecast = daily_consumption or {}

    usable: dict[str, int] = {}
    for b in balances:
        if depots is not None and b.depot_id not in depots:
            continue
        if b.written_off or b.is_expired(day):
            continue
        q = b.on_hand - b.quarantined - (0 if policy.include_reserved else b.reserved)
        if q <= 0:
            continue
        item = catalogue.item(b.item_code)
        if item.is_package:
            for comp in item.components:
                usable[comp.item_code] = usable.get(comp.item_code, 0) + q * comp.quantity
        else:
            usable[item.code] = usable.get(item.code, 0) + q

    by_group: dict[str, list[ItemSupply]] = {}
    for item in catalogue.items.values():
        if item.is_package:
            continue
        pop = policy.population_by_group.get(item.group, population)
        daily = float(forecast[item.code]) if item.code in forecast else pop * item.per_capita_daily
        have = usable.get(item.code, 0)
        if daily <= 0 and have == 0:
            continue
        by_group.setdefault(item.group, []).append(
            ItemSupply(item.code, have, daily, have / daily if daily > 0 else None))

    out = []
    for code, group in catalogue.groups.items():
        items = by_group.get(code)
        if not items and group.reserve_days is None:
            continue
        items = items or []

        def measure(item_code: str) -> float:
            return catalogue.items[item_code].weight_kg if policy.measure == "weight" else 1.0

        stock = sum(i.usable * measure(i.item_code) for i in items)
        daily = sum(i.daily * measure(i.item_code) for i in items)
        days = stock / daily if daily > 0 else None
        below = group.reserve_days is not None and days is not None and days < group.reserve_days
        out.append(GroupSupply(code, group.name_zh, group.name_en, stock, daily, days,
                               group.reserve_days, below,
                               tuple(sorted(items, key=lambda i: i.item_code))))
    return out
