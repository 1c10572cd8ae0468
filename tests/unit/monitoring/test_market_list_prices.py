"""The market's sellable lists feed the price watch: watched items per product unit, the rest ignored."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from services.common.errors import InvalidInput
from services.monitoring.domain.prices import (
    DEFAULT_PRICE_ITEMS,
    PriceItem,
    PriceObservation,
    observations_from_list,
    parse_price_items,
)

TODAY = date(2026, 12, 7)


def payload(day: str, *lines: tuple[str, int]) -> dict:
    return {"outlet_id": "SM-1", "day": day, "version": 1,
            "lines": [{"item_code": c, "unit": "kg", "price_fen": p} for c, p in lines]}


def test_watched_items_become_prices_per_product_unit_and_the_rest_is_ignored():
    got = observations_from_list(payload("2026-12-07", ("PORK-KG", 2800), ("EGG-30", 2401), ("RICE-10KG", 6500)),
                                 DEFAULT_PRICE_ITEMS, TODAY)
    # a box of 30 eggs is 1.8 kg: 2401 / 1.8 = 1333.9 → 1334 fen per kg
    assert got == [PriceObservation("PORK", "SM-1", TODAY, 2800), PriceObservation("EGG", "SM-1", TODAY, 1334)]


def test_a_list_for_a_later_day_is_a_price_seen_today():
    [o] = observations_from_list(payload("2026-12-09", ("PORK-KG", 3000)), DEFAULT_PRICE_ITEMS, TODAY)
    assert o.day == TODAY


def test_a_bad_price_on_the_event_names_the_line():
    with pytest.raises(InvalidInput) as exc:
        observations_from_list(payload("2026-12-07", ("RICE-10KG", 1), ("PORK-KG", 0)), DEFAULT_PRICE_ITEMS, TODAY)
    assert exc.value.field == "lines[1].price_fen"


def test_the_item_mapping_setting():
    assert parse_price_items("PORK-FROZEN-KG=PORK, EGG-30=EGG:1.8") == (
        PriceItem("PORK-FROZEN-KG", "PORK"), PriceItem("EGG-30", "EGG", Fraction(9, 5)))
    for bad in ("PORK-KG", "PORK-KG=LOBSTER", "EGG-30=EGG:0", "EGG-30=EGG:x"):
        with pytest.raises(ValueError, match="PORK-KG|EGG-30"):
            parse_price_items(bad)
