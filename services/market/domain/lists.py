"""Sellable lists (可售物品清单): an outlet's necessities and prices (fen per catalogue unit) for a day."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from services.common.catalogue import Catalogue, Item

from .policy import DEFAULT_POLICY, MarketPolicy
from .rules import NON_ESSENTIAL, NOT_ON_LIST, invalid, refuse


@dataclass(frozen=True)
class ListLine:
    """available: units the outlet expects to have (None: not stated)."""

    item_code: str
    unit: str
    price_fen: int
    available: int | None = None


@dataclass(frozen=True)
class SellableList:
    outlet_id: str
    day: date
    version: int
    lines: tuple[ListLine, ...]

    @cached_property
    def prices(self) -> dict[str, int]:
        return {ln.item_code: ln.price_fen for ln in self.lines}

    def price_of(self, item_code: str) -> int:
        p = self.prices.get(item_code)
        if p is None:
            raise refuse(NOT_ON_LIST, f"{item_code} 不在 {self.outlet_id} {self.day} 的可售清单上",
                         f"{item_code} is not on {self.outlet_id}'s list for {self.day} (version {self.version})")
        return p


def essential_item(catalogue: Catalogue, code: Any, field_name: str) -> Item:
    """The catalogue item of `code`; InvalidInput when unknown, RuleRefused market_non_essential
    when it is not a necessity (the catalogue's essential flag, the check intake uses)."""
    if not isinstance(code, str) or not code.strip():
        raise invalid(field_name, "须填物品编码", "an item code is required")
    item = catalogue.items.get(code.strip())
    if item is None:
        raise invalid(field_name, f"未知物品 {code[:40]!r}", f"unknown item {code[:40]!r}")
    if not item.essential:
        raise refuse(NON_ESSENTIAL, f"{item.name_zh}({item.code})不是生活必需品，烟酒等非必需品不可售",
                     f"{item.name_en} ({item.code}) is not a necessity; tobacco, alcohol and other "
                     f"non-essentials are not sold in this channel")
    return item


def as_count(value: Any, field_name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise invalid(field_name, f"须为 {lo} 到 {hi} 的整数", f"must be a whole number from {lo} to {hi}")
    return value


def essential_lines(raw_lines: Sequence[Mapping[str, Any]], catalogue: Catalogue, *,
                    empty: tuple[str, str] = ("清单不能为空", "a list needs at least one line"),
                    most: int | None = None, most_text: tuple[str, str] = ("", ""),
                    twice: str = "is listed twice") -> Iterator[tuple[str, Item, Mapping[str, Any]]]:
    """(field prefix "lines[i]", its necessity, the raw line) for each line of a list or an order:
    at least one line, at most `most`, necessities only, no item twice (the channel's one check
    of lines; each caller reads its own quantities)."""
    if not raw_lines:
        raise invalid("lines", *empty)
    if most is not None and len(raw_lines) > most:
        raise invalid("lines", *most_text)
    seen: set[str] = set()
    for i, raw in enumerate(raw_lines):
        f = f"lines[{i}]"
        item = essential_item(catalogue, raw.get("item_code"), f"{f}.item_code")
        if item.code in seen:
            raise invalid(f"{f}.item_code", f"{item.code} 重复", f"{item.code} {twice}")
        seen.add(item.code)
        yield f, item, raw


def validate_list_lines(raw_lines: Sequence[Mapping[str, Any]], catalogue: Catalogue,
                        policy: MarketPolicy = DEFAULT_POLICY) -> tuple[ListLine, ...]:
    """Lines {item_code, price_fen, available?}; the unit is the catalogue's."""
    out = []
    for f, item, raw in essential_lines(raw_lines, catalogue):
        price = as_count(raw.get("price_fen"), f"{f}.price_fen", 1, policy.max_price_fen)
        available = raw.get("available")
        if available is not None:
            available = as_count(available, f"{f}.available", 0, 10**9)
        out.append(ListLine(item.code, item.unit, price, available))
    return tuple(out)


