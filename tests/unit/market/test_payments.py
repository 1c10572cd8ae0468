from dataclasses import replace
from datetime import timedelta

import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.market.domain.aggregation import aggregate, allocate, apply_confirmation
from services.market.domain.orders import HouseholdOrder, OrderLine
from services.market.domain.parcels import confirm_delivery, pack
from services.market.domain.payments import (
    RecordingPaymentPort,
    account_ledger,
    cash_book,
    make_payment,
    settle_delivery,
    settlement_report,
)
from tests.unit.market.market_support import DAY, ESSENTIAL, at

A, B = ESSENTIAL[:2]
EVE = DAY - timedelta(days=1)
T = at(EVE, 12)


def order(oid, minute, lines, mode="collected", gw="gw1", outlet="O1"):
    return HouseholdOrder(oid, "C1", outlet, DAY, f"H-{oid:0>10}", gw, mode,
                          tuple(OrderLine(c, q, p) for c, q, p in lines), at(EVE, 9, minute), 1)


def pay(o, amount=None, mode=None, ref=""):
    return make_payment(o, mode=mode or o.payment_mode, amount_fen=amount or o.amount_fen, reference=ref,
                        grid_worker=o.grid_worker, recorded_at=T)


def delivered_day():
    """o1 collected (received in full), o2 collected (short by 1 A), o3 collected (refused),
    o4 on account (received), o5 online (B out of stock: confirmation refund)."""
    orders = [order("o1", 1, [(A, 1, 100)]), order("o2", 2, [(A, 2, 100)]), order("o3", 3, [(A, 1, 100)]),
              order("o4", 4, [(A, 1, 100)], mode="on_account"),
              order("o5", 5, [(A, 1, 100), (B, 1, 500)], mode="online")]
    payments = [pay(orders[0]), pay(orders[1]), pay(orders[2]), pay(orders[4], ref="WX-123")]
    co, _ = apply_confirmation(aggregate("co1", orders, "DP1"), orders, {A: ("full", None), B: ("out_of_stock", None)})
    orders = allocate(co, orders)
    parcels = {p.household_order_id: p for p in pack(co, orders)}
    by = {o.order_id: o for o in orders}
    outcomes = {"o1": ("received", None, ""), "o2": ("short", {A: 1}, ""), "o3": ("refused", None, "不要了 / unwanted"),
                "o4": ("received", None, ""), "o5": ("received", None, "")}
    closed = []
    for oid, (outcome, short, reason) in outcomes.items():
        closed.append(confirm_delivery(parcels[oid], by[oid], outcome, short, reason)[1])
    return co, closed, payments


def test_make_payment_checks():
    o = order("o1", 1, [(A, 1, 100)])
    assert pay(o).reference == "MKT-o1"
    with pytest.raises(RuleRefused):
        pay(o, mode="online", ref="x")
    with pytest.raises(InvalidInput):
        make_payment(o, mode="collected", amount_fen=0, reference="", grid_worker="gw1", recorded_at=T)
    with pytest.raises(InvalidInput) as e:
        pay(order("o2", 1, [(A, 1, 100)], mode="online"))
    assert e.value.field == "reference"



def test_a_payment_never_exceeds_what_is_left_to_pay():
    o = order("o1", 1, [(A, 2, 100)])
    make_payment(o, mode="collected", amount_fen=150, reference="", grid_worker="gw1", recorded_at=T, paid_so_far=50)
    with pytest.raises(InvalidInput) as e:
        make_payment(o, mode="collected", amount_fen=51, reference="", grid_worker="gw1", recorded_at=T,
                     paid_so_far=150)
    assert e.value.field == "amount_fen" and "50 fen left" in str(e.value)


def test_cash_book_explains_each_difference():
    _, orders, payments = delivered_day()
    book = cash_book("gw1", payments, orders)
    assert [e.order_id for e in book.entries] == ["o1", "o2", "o3"]  # collected orders only
    assert book.reasons == {"o2": "short_refund", "o3": "refused_refund"}
    assert (book.collected_fen, book.delivered_fen, book.difference_fen) == (400, 200, 200)


def test_cash_book_uncollected_and_not_delivered():
    o = order("o1", 1, [(A, 2, 100)])
    assert cash_book("gw1", [], [o]).reasons == {"o1": "not_delivered"}
    delivered = replace(o, status="delivered", lines=(replace(o.lines[0], delivered=2),))
    assert cash_book("gw1", [pay(o, amount=150)], [delivered]).reasons == {"o1": "uncollected"}
    assert cash_book("gw2", [], [o]).entries == ()


def test_account_ledger_is_the_on_account_orders():
    _, orders, payments = delivered_day()
    ledger = account_ledger("gw1", payments, orders)
    assert [(e.order_id, e.owed_fen, e.settled_fen) for e in ledger] == [("o4", 100, 0)]


def test_settle_delivery():
    co, orders, payments = delivered_day()
    s = settle_delivery(co, orders, payments)
    reasons = {ln.order_id: ln.reason for ln in s.lines}
    assert reasons == {"o1": "", "o2": "short_refund", "o3": "refused_refund", "o4": "on_account",
                       "o5": "confirmation_refund"}
    assert s.collected_fen == 400 and s.refund_fen == 100 + 100 + 500 and s.to_collect_fen == 0


def test_settle_delivery_needs_every_parcel_closed():
    orders = [order("o1", 1, [(A, 1, 100)])]
    co, _ = apply_confirmation(aggregate("co1", orders, "DP1"), orders, {A: ("full", None)})
    with pytest.raises(RuleRefused):
        settle_delivery(co, allocate(co, orders), [])


def test_settlement_report_per_household_worker_outlet():
    _, orders, payments = delivered_day()
    r = settlement_report(orders, payments)
    t = r.total
    assert (t.ordered_fen, t.delivered_fen, t.paid_online_fen, t.collected_fen, t.on_account_owed_fen) == \
        (1100, 400, 600, 400, 100)
    assert t.balance_fen == 600 + 400 + 100 - 400
    assert [row.key for row in r.grid_workers] == ["gw1"] and [row.key for row in r.outlets] == ["O1"]
    h4 = next(row for row in r.households if row.key == "H-00000000o4")
    assert h4.on_account_owed_fen == 100 and h4.balance_fen == 0
    settled = settlement_report(orders, payments + [pay(orders[3], amount=100, mode="on_account")])
    h4 = next(row for row in settled.households if row.key == "H-00000000o4")
    assert (h4.on_account_owed_fen, h4.on_account_settled_fen, h4.balance_fen) == (0, 100, 0)


def test_recording_port_records_and_never_duplicates():
    port = RecordingPaymentPort()
    assert port.record("o1", 100, "") == "MKT-o1"
    assert port.record("o1", 100, "WX-1") == "WX-1"
    port.record("o1", 100, "WX-1")
    assert port.records == [("o1", 100, "MKT-o1"), ("o1", 100, "WX-1")]
