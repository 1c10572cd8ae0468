import json
from datetime import timedelta

from services.market.domain import events as ev
from services.market.domain.aggregation import aggregate, allocate, apply_confirmation
from services.market.domain.lists import ListLine, SellableList
from services.market.domain.orders import household_reference, place_order
from services.market.domain.parcels import confirm_delivery, pack
from services.market.domain.payments import make_payment, settle_delivery, settlement_report
from services.market.domain.purchase import (
    answer_readiness,
    book_pickup,
    record_collection,
    submit_purchase_list,
)
from tests.unit.market.market_support import CATALOGUE, DAY, ESSENTIAL, TZ, at, community, outlet

A, B = ESSENTIAL[:2]
EVE = DAY - timedelta(days=1)
ADDRESS = "幸福路 88 号 3 栋 502"
DRIVER, CLERK = "王大力", "李小花"


def every_event():
    sl = SellableList("O1", DAY, 1, (ListLine(A, "bag", 250), ListLine(B, "kg", 800)))
    ref = household_reference(b"k" * 32, "C1", ADDRESS)
    o = place_order(order_id="o1", community=community(), outlet=outlet(), day=DAY, household_ref=ref,
                    grid_worker="gw1", payment_mode="collected", raw_lines=[{"item_code": A, "quantity": 2}],
                    expected_amount_fen=500, sellable_list=sl, catalogue=CATALOGUE, now=at(EVE, 9), tz=TZ)
    co = aggregate("co1", [o], "DP1")
    done, changed = apply_confirmation(co, [o], {A: ("partial", 1)})
    orders = allocate(done, [o])
    parcels = pack(done, orders)
    pay = make_payment(orders[0], mode="collected", amount_fen=500, reference="", grid_worker="gw1",
                       recorded_at=at(EVE, 10))
    p2, o2 = confirm_delivery(parcels[0], orders[0], "received")
    pl = submit_purchase_list(list_id="pl1", village_id="V1", supply_point_id="SP1", pickup_day=DAY,
                              raw_lines=[{"item_code": A, "quantity": 3}], now=at(EVE, 9), tz=TZ, catalogue=CATALOGUE)
    ready = answer_readiness(pl, {A: 3})
    booked = book_pickup(ready, at(DAY, 9), at(DAY, 10), DRIVER, CLERK, [(at(DAY, 9), at(DAY, 10))])
    collected, gaps = record_collection(booked, {A: 2})
    return [ev.sellable_list_published(sl), ev.household_order_placed(o), ev.community_order_sent(co),
            ev.community_order_confirmed(done, changed), ev.parcels_packed(done, parcels),
            ev.parcel_delivered(p2, o2, at(DAY, 11)), ev.payment_recorded(pay, orders[0]),
            ev.delivery_settled(settle_delivery(done, [o2], [pay]), "gw1"),
            ev.accounts_settled(settlement_report([o2], [pay]), at(DAY, 20)),
            ev.purchase_list_sent(pl), ev.purchase_list_ready(ready), ev.pickup_booked(booked),
            ev.purchase_collected(collected, gaps)]


def test_every_event_type_is_built_and_is_plain_json():
    events = every_event()
    assert sorted(e.event_type for e in events) == sorted(ev.EVENT_TYPES)
    for e in events:
        assert json.loads(json.dumps(e.payload)) == e.payload


def test_no_address_or_names_in_any_payload():
    for e in every_event():
        text = json.dumps(e.payload, ensure_ascii=False)
        for secret in (ADDRESS, "幸福路", DRIVER, CLERK, "社区 C1", "超市 O1"):
            assert secret not in text, (e.event_type, secret)
        assert not {"address", "name", "phone", "driver", "clerk"} & _keys(e.payload)


def _keys(obj):
    if isinstance(obj, dict):
        return set(obj) | set().union(*(_keys(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(_keys(v) for v in obj)) if obj else set()
    return set()


def test_published_list_carries_unit_and_prices():
    e = every_event()[0]
    assert e.payload == {"outlet_id": "O1", "day": DAY.isoformat(), "version": 1,
                         "lines": [{"item_code": A, "unit": "bag", "price_fen": 250},
                                   {"item_code": B, "unit": "kg", "price_fen": 800}]}


def test_confirmed_lists_the_changed_orders():
    e = every_event()[3]
    assert e.payload["changed_order_ids"] == ["o1"] and e.payload["changed"][0]["confirmed_amount_fen"] == 250
