"""The HQ policy form's absolute reserve floors (services/console/domain/policy.py): which floors
it offers, what it reads back, and where a SetPolicy refusal is shown."""

from __future__ import annotations

from supply.v1 import intake_pb2

from services.console.domain.policy import error_field, floor_names, floor_rows, parse_floors


def item(code: str, unit: str, group: str, essential: bool = True) -> intake_pb2.CatalogueItem:
    return intake_pb2.CatalogueItem(item_code=code, name_zh=f"{code}中", name_en=f"{code} en", unit=unit,
                                    group=group, group_name_zh=f"{group}类", group_name_en=f"{group} group",
                                    essential=essential)


ITEMS = [item("RICE-10KG", "bag", "grain_oil"), item("OIL-5L", "bottle", "grain_oil"),
         item("PORK-KG", "kg", "pork"), item("PORK-RIBS-KG", "kg", "pork"),
         item("BAIJIU-500ML", "bottle", "non_essential", essential=False),
         item("CABBAGE-KG", "kg", "vegetables")]


def test_the_form_offers_each_group_counted_in_one_unit_and_keeps_item_floors():
    names = floor_names(ITEMS)
    rows = floor_rows(names, {"vegetables": 800, "RICE-10KG": 200})
    assert [(r.key, r.unit, r.units) for r in rows] == [
        ("pork", "kg", None), ("vegetables", "kg", 800),  # grain_oil: bags and bottles, no group floor
        ("RICE-10KG", "bag", 200)]                        # an item code's floor stays in the form
    assert rows[0].name("zh_CN") == "pork类" and rows[0].name("en") == "pork group"
    assert rows[2].name("en") == "RICE-10KG en"
    assert floor_rows(names, {"GONE-1": 5})[-1].name("en") == "GONE-1"  # no longer in the catalogue


def test_floors_read_back_from_the_form():
    floors, bad = parse_floors({"reserve_floors.pork": "1,500", "reserve_floors.vegetables": " ",
                                "reserve_floors.RICE-10KG": "0", "reserve_days.pork": "3"})
    assert floors == {"pork": 1500, "RICE-10KG": 0} and bad == []  # empty: no floor
    floors, bad = parse_floors({"reserve_floors.pork": "-3", "reserve_floors.vegetables": "2.5",
                                "reserve_floors.eggs": "100000001", "reserve_floors.RICE-10KG": "7"})
    assert floors == {"RICE-10KG": 7} and bad == ["pork", "vegetables", "eggs"]


def test_a_refusal_is_shown_next_to_its_field_or_in_the_banner():
    shown = {"policy.tier_order", "policy.reserve_floors.pork", "policy.reserve_days.pork"}
    assert error_field("policy.reserve_floors[pork]", shown) == "policy.reserve_floors.pork"
    assert error_field("policy.reserve_days[pork]", shown) == "policy.reserve_days.pork"
    assert error_field("policy.tier_order[2]", shown) == "policy.tier_order"
    assert error_field("policy.reserve_floors[grain_oil]", shown) == "policy"
    assert error_field("", shown) == "policy"
