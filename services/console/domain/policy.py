"""The HQ policy form's absolute reserve floors (储备底线, RULES §4; issue #15 item 8) as plain
data: which floors the form offers, the floors read back from it, and where a SetPolicy refusal
is shown. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from services.console.domain.forms import whole_number

MAX_FLOOR_UNITS = 100_000_000  # allocation's bound (county_policy.MAX_FLOOR_UNITS)
FLOOR_FIELD = "reserve_floors."


@dataclass(frozen=True)
class FloorRow:
    """One absolute floor of the form: `key` an item group (`group`) or an item code, `units`
    the policy's floor in `unit`, None when it has none."""

    key: str
    name_zh: str
    name_en: str
    unit: str
    group: bool = False
    units: int | None = None

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh_CN" else self.name_en


def floor_names(items: Iterable[Any]) -> dict[str, FloorRow]:
    """Every key a floor may have, from the catalogue's items (item_code, name_zh, name_en,
    unit, group, group_name_zh, group_name_en, essential): each group of essential items that
    share one unit (pork, vegetables: kg; a group counted in bags and bottles, like grain_oil,
    can have floors per item code only), then each item code."""
    items = list(items)
    groups: dict[str, list[Any]] = {}
    for i in items:
        groups.setdefault(i.group, []).append(i)
    out = {}
    for group, members in groups.items():
        units = {i.unit for i in members}
        if len(units) == 1 and any(i.essential for i in members):
            first = members[0]
            out[group] = FloorRow(group, first.group_name_zh, first.group_name_en, units.pop(), True)
    for i in items:
        out.setdefault(i.item_code, FloorRow(i.item_code, i.name_zh, i.name_en, i.unit))
    return out


def floor_rows(names: Mapping[str, FloorRow], floors: Mapping[str, int]) -> list[FloorRow]:
    """The floors the form offers: every group of `names` with the policy's floor or none, then
    every other key the policy holds (an item code's floor set through the API), so that saving
    the form, which replaces the floors as a whole, keeps it."""
    rows = [replace(r, units=floors.get(r.key)) for r in names.values() if r.group]
    shown = {r.key for r in rows}
    rows += [replace(names.get(key, FloorRow(key, key, key, "")), units=floors[key])
             for key in sorted(set(floors) - shown)]
    return rows


def parse_floors(values: Mapping[str, str]) -> tuple[dict[str, int], list[str]]:
    """The form's `reserve_floors.<key>` fields → {key: units}; an empty field sets no floor.
    Also returns the keys whose value is not a whole number 0 … MAX_FLOOR_UNITS."""
    floors: dict[str, int] = {}
    bad = []
    for name, raw in values.items():
        if not name.startswith(FLOOR_FIELD) or not raw.strip():
            continue
        key = name.removeprefix(FLOOR_FIELD)
        units = whole_number(raw, lo=0, hi=MAX_FLOOR_UNITS)
        if units is None:
            bad.append(key)
        else:
            floors[key] = units
    return floors, bad


def error_field(service_field: str, shown: Collection[str]) -> str:
    """The form field a SetPolicy refusal is shown next to: "policy.reserve_floors[pork]" →
    "policy.reserve_floors.pork", "policy.tier_order[2]" → "policy.tier_order"; "policy" (the
    page's banner) for a field the form does not show."""
    m = re.fullmatch(r"(policy\.\w+)\[([^\]]+)\]", service_field)
    candidates = [f"{m[1]}.{m[2]}", m[1]] if m else [service_field]
    return next((c for c in candidates if c in shown), "policy")
