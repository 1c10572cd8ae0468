from datetime import timedelta

import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.market.domain.aggregation import aggregate, allocate, apply_confirmation
from services.market.domain.orders import HouseholdOrder, OrderLine
from tests.unit.market.market_support import DAY, ESSENTIAL, at

A, B = ESSENTIAL[:2]
EVE = DAY - timedelta(days=1)


def order(oid, minute, lines, version=1, community="C1", status="placed"):
    return HouseholdOrder(oid, community, "O1", DAY, f"H-{oid:0>10}", "gw1", "collected",
                          tuple(OrderLine(c, q, p) for c, q, p in lines), at(EVE, 9, minute), version, status)


def three():
    # placed out of id order: o3 first, then o1, then o2
    return [order("o1", 10, [(A, 3, 100), (B, 1, 500)]), order("o2", 20, [(A, 2, 100)]),
            order("o3", 5, [(A, 4, 100)], version=2)]


def test_aggregate_sums_per_item_with_drop_point():
    co = aggregate("co1", three(), "DP1")
    assert [(ln.item_code, ln.quantity) for ln in co.lines] == sorted([(A, 9), (B, 1)])
    assert co.household_order_ids == ("o3", "o1", "o2") and co.drop_point_id == "DP1" and co.status == "sent"


def test_aggregate_price_is_the_latest_version():
    orders = [order("o1", 10, [(A, 1, 100)], version=1), order("o2", 5, [(A, 1, 120)], version=2)]
    assert aggregate("co1", orders, "DP1").lines[0].price_fen == 120


def test_aggregate_skips_cancelled_and_refuses_mixed_communities_and_empty():
    orders = three() + [order("o4", 1, [(A, 50, 100)], status="cancelled")]
    assert "o4" not in aggregate("co1", orders, "DP1").household_order_ids
    with pytest.raises(InvalidInput):
        aggregate("co1", three() + [order("x", 1, [(A, 1, 100)], community="C2")], "DP1")
    with pytest.raises(RuleRefused):
        aggregate("co1", [], "DP1")


def test_partial_is_shared_first_come_first_served():
    orders = three()
    co = aggregate("co1", orders, "DP1")
    done, changed = apply_confirmation(co, orders, {A: ("partial", 5), B: ("full", None)})
    got = {o.order_id: o.lines[0].confirmed for o in allocate(done, orders)}
    assert got == {"o3": 4, "o1": 1, "o2": 0}
    assert sorted(o.order_id for o in changed) == ["o1", "o2"]
    o1 = next(o for o in changed if o.order_id == "o1")
    assert o1.confirmed_amount_fen == 100 + 500 and o1.status == "confirmed"
    assert done.status == "confirmed" and {ln.item_code: ln.answer for ln in done.lines} == {A: "partial", B: "full"}


def test_out_of_stock_and_full():
    orders = three()
    done, changed = apply_confirmation(aggregate("co1", orders, "DP1"), orders,
                                       {A: ("full", None), B: ("out_of_stock", None)})
    assert [o.order_id for o in changed] == ["o1"] and changed[0].lines[1].confirmed == 0
    assert changed[0].lines[0].confirmed == 3


def test_every_line_answered_once_and_partial_range():
    orders = three()
    co = aggregate("co1", orders, "DP1")
    with pytest.raises(InvalidInput) as e:
        apply_confirmation(co, orders, {A: ("full", None)})
    assert e.value.field == f"answers.{B}"
    with pytest.raises(InvalidInput):
        apply_confirmation(co, orders, {A: ("full", None), B: ("full", None), ESSENTIAL[2]: ("full", None)})
    for q in (0, 9, None):
        with pytest.raises(InvalidInput):
            apply_confirmation(co, orders, {A: ("partial", q), B: ("full", None)})
    with pytest.raises(InvalidInput):
        apply_confirmation(co, orders, {A: ("maybe", None), B: ("full", None)})


def test_confirmed_twice_is_refused():
    orders = three()
    done, _ = apply_confirmation(aggregate("co1", orders, "DP1"), orders, {A: ("full", None), B: ("full", None)})
    with pytest.raises(RuleRefused):
        apply_confirmation(done, orders, {A: ("full", None), B: ("full", None)})
