from datetime import timedelta

import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.market.domain.aggregation import aggregate, allocate, apply_confirmation
from services.market.domain.orders import HouseholdOrder, OrderLine
from services.market.domain.parcels import confirm_delivery, pack, packing_lists
from tests.unit.market.market_support import DAY, ESSENTIAL, at

A, B = ESSENTIAL[:2]
EVE = DAY - timedelta(days=1)


def order(oid, minute, lines, mode="collected"):
    return HouseholdOrder(oid, "C1", "O1", DAY, f"H-{oid:0>10}", "gw1", mode,
                          tuple(OrderLine(c, q, p) for c, q, p in lines), at(EVE, 9, minute), 1)


def confirmed(answers):
    orders = [order("o1", 1, [(A, 2, 100), (B, 1, 500)]), order("o2", 2, [(A, 2, 100)], mode="on_account")]
    done, _ = apply_confirmation(aggregate("co1", orders, "DP1"), orders, answers)
    return done, allocate(done, orders)


def test_pack_one_parcel_per_order_with_confirmed_lines_only():
    co, orders = confirmed({A: ("partial", 2), B: ("full", None)})
    parcels = pack(co, orders)
    assert [p.household_order_id for p in parcels] == ["o1"]  # o2 got nothing: no parcel
    p = parcels[0]
    assert p.amount_fen == 700 and p.payment_reference == "MKT-o1" and p.drop_point_id == "DP1"
    assert p.household_ref == "H-00000000o1" and p.status == "packed" and p.payment_mode == "collected"


def test_pack_leaves_out_out_of_stock_lines():
    co, orders = confirmed({A: ("full", None), B: ("out_of_stock", None)})
    parcels = pack(co, orders)
    assert [ln.item_code for ln in parcels[0].lines] == [A] and parcels[0].amount_fen == 200
    assert len(parcels) == 2


def test_pack_needs_a_confirmed_order():
    orders = [order("o1", 1, [(A, 1, 100)])]
    with pytest.raises(RuleRefused):
        pack(aggregate("co1", orders, "DP1"), orders)


def test_packing_list_sums_per_drop_point():
    co, orders = confirmed({A: ("full", None), B: ("full", None)})
    lists = packing_lists(pack(co, orders))
    assert len(lists) == 1 and lists[0].parcel_ids == ("P-o1", "P-o2")
    assert {ln.item_code: ln.quantity for ln in lists[0].lines} == {A: 4, B: 1} and lists[0].amount_fen == 900


def test_received_short_refused():
    co, orders = confirmed({A: ("full", None), B: ("full", None)})
    p1, p2 = pack(co, orders)
    parcel, o = confirm_delivery(p1, orders[0], "received")
    assert parcel.status == "received" and o.status == "delivered" and o.due_fen == 700
    parcel, o = confirm_delivery(p1, orders[0], "short", {A: 1})
    assert parcel.status == "short" and o.due_fen == 600 and o.lines[1].delivered == 1
    parcel, o = confirm_delivery(p2, orders[1], "refused", reason="住户不在家 / nobody home")
    assert parcel.status == "refused" and o.status == "refused" and o.due_fen == 0


def test_short_needs_quantities_below_packed():
    co, orders = confirmed({A: ("full", None), B: ("full", None)})
    p1 = pack(co, orders)[0]
    for bad in (None, {}, {A: 2}, {A: -1}, {"X": 0}):
        with pytest.raises(InvalidInput):
            confirm_delivery(p1, orders[0], "short", bad)


def test_refused_needs_a_reason_and_delivery_is_once():
    co, orders = confirmed({A: ("full", None), B: ("full", None)})
    p1 = pack(co, orders)[0]
    with pytest.raises(InvalidInput) as e:
        confirm_delivery(p1, orders[0], "refused", reason="  ")
    assert e.value.field == "reason"
    done, _ = confirm_delivery(p1, orders[0], "received")
    with pytest.raises(RuleRefused):
        confirm_delivery(done, orders[0], "received")
    with pytest.raises(InvalidInput):
        confirm_delivery(p1, orders[1], "received")
