import base64
from dataclasses import replace
from datetime import time, timedelta

import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.market.domain.lists import ListLine, SellableList
from services.market.domain.orders import (
    OrderLine,
    household_reference,
    payment_reference,
    place_order,
)
from services.market.domain.policy import MarketPolicy
from tests.unit.market.market_support import (
    CATALOGUE,
    DAY,
    ESSENTIAL,
    NON_ESSENTIAL,
    TZ,
    at,
    community,
    outlet,
)

KEY = b"k" * 32
A, B, C = ESSENTIAL[:3]
LIST = SellableList("O1", DAY, 3, (ListLine(A, "bag", 250, None), ListLine(B, "kg", 1200, None)))
EVE = DAY - timedelta(days=1)


def place(**kw):
    args = dict(order_id="o1", community=community(), outlet=outlet(), day=DAY, household_ref="H-AAAAAAAAAA",
                grid_worker="gw1", payment_mode="collected", raw_lines=[{"item_code": A, "quantity": 2}],
                expected_amount_fen=500, sellable_list=LIST, catalogue=CATALOGUE, now=at(EVE, 10), tz=TZ)
    args.update(kw)
    return place_order(**args)


def test_household_reference_is_stable_under_normalisation_and_keyed():
    r = household_reference(KEY, "C1", "3号楼 2单元 301")
    assert r.startswith("H-") and len(r) == 12
    base64.b32decode(r[2:] + "======")
    assert household_reference(KEY, "C1", " 3号楼  2单元 301 ") == r
    assert household_reference(KEY, "C1", "３号楼 2单元 301") == r  # full-width digit (NFKC)
    assert household_reference(KEY, "C2", "3号楼 2单元 301") != r
    assert household_reference(b"j" * 32, "C1", "3号楼 2单元 301") != r
    with pytest.raises(ValueError):
        household_reference(b"short", "C1", "x")


def test_order_priced_at_the_list_and_amounts():
    o = place(raw_lines=[{"item_code": A, "quantity": 2}, {"item_code": B, "quantity": 1}], expected_amount_fen=1700)
    assert o.amount_fen == 1700 and o.list_version == 3 and o.status == "placed"
    assert o.lines[1] == OrderLine(B, 1, 1200)
    assert o.payment_reference == payment_reference("o1") == "MKT-o1"


def test_confirmed_and_due_amounts():
    o = place(raw_lines=[{"item_code": A, "quantity": 2}, {"item_code": B, "quantity": 1}], expected_amount_fen=1700)

    o2 = replace(o, lines=(replace(o.lines[0], confirmed=1), replace(o.lines[1], confirmed=1, delivered=0)))
    assert o2.amount_fen == 1700 and o2.confirmed_amount_fen == 1450 and o2.due_fen == 250


def test_expected_amount_must_match_and_names_the_computed_amount():
    with pytest.raises(InvalidInput) as e:
        place(expected_amount_fen=499)
    assert e.value.field == "expected_amount_fen" and "500 fen" in e.value.message


def test_after_cutoff_is_refused():
    place(now=at(EVE, 20, 0))
    with pytest.raises(RuleRefused) as e:
        place(now=at(EVE, 20, 1))
    assert e.value.rule == "market_after_cutoff" and "截止" in e.value.message


def test_outlet_cutoff_wins_over_policy():
    with pytest.raises(RuleRefused):
        place(outlet=outlet(cutoff=time(18, 0)), now=at(EVE, 18, 30))
    place(now=at(EVE, 21), policy=MarketPolicy(order_cutoff=time(22, 0)))


def test_non_essential_and_not_on_list():
    with pytest.raises(RuleRefused) as e:
        place(raw_lines=[{"item_code": NON_ESSENTIAL[0], "quantity": 1}])
    assert e.value.rule == "market_non_essential"
    with pytest.raises(RuleRefused) as e:
        place(raw_lines=[{"item_code": C, "quantity": 1}])
    assert e.value.rule == "market_not_on_list"


def test_list_of_another_day_is_refused():
    with pytest.raises(RuleRefused):
        place(day=DAY + timedelta(days=1), now=at(DAY, 8))


def test_quantity_and_line_limits():
    with pytest.raises(InvalidInput) as e:
        place(raw_lines=[{"item_code": A, "quantity": 100}])
    assert e.value.field == "lines[0].quantity"
    with pytest.raises(InvalidInput):
        place(raw_lines=[{"item_code": A, "quantity": 0}])
    place(raw_lines=[{"item_code": A, "quantity": 99}], expected_amount_fen=99 * 250)
    with pytest.raises(InvalidInput) as e:
        place(raw_lines=[{"item_code": A, "quantity": 1}, {"item_code": B, "quantity": 1}], expected_amount_fen=1450,
              policy=MarketPolicy(max_lines=1))
    assert e.value.field == "lines"
    with pytest.raises(InvalidInput) as e:
        place(raw_lines=[{"item_code": A, "quantity": 1}, {"item_code": A, "quantity": 1}])
    assert e.value.field == "lines[1].item_code"


@pytest.mark.parametrize("field,value", [("payment_mode", "cash"), ("household_ref", "张三"), ("grid_worker", " ")])
def test_fields(field, value):
    with pytest.raises(InvalidInput) as e:
        place(**{field: value})
    assert e.value.field == field
