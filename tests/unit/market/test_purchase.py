from datetime import timedelta

import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.market.domain.purchase import (
    answer_readiness,
    book_pickup,
    record_collection,
    submit_purchase_list,
)
from tests.unit.market.market_support import CATALOGUE, DAY, ESSENTIAL, NON_ESSENTIAL, TZ, at

A, B = ESSENTIAL[:2]
EVE = DAY - timedelta(days=1)
SLOTS = [(at(DAY, 9), at(DAY, 10)), (at(DAY, 14), at(DAY, 15))]


def submit(**kw):
    args = dict(list_id="pl1", village_id="V1", supply_point_id="SP1", pickup_day=DAY,
                raw_lines=[{"item_code": A, "quantity": 10}, {"item_code": B, "quantity": 5}],
                now=at(EVE, 17), tz=TZ, catalogue=CATALOGUE)
    args.update(kw)
    return submit_purchase_list(**args)


def test_submit_before_cutoff_the_day_before():
    assert submit(now=at(EVE, 18)).status == "sent"
    with pytest.raises(RuleRefused) as e:
        submit(now=at(EVE, 18, 1))
    assert e.value.rule == "market_after_cutoff"


def test_necessities_only():
    with pytest.raises(RuleRefused) as e:
        submit(raw_lines=[{"item_code": NON_ESSENTIAL[0], "quantity": 1}])
    assert e.value.rule == "market_non_essential"
    with pytest.raises(InvalidInput):
        submit(raw_lines=[{"item_code": A, "quantity": 0}])


def test_interval_between_pickups():
    with pytest.raises(RuleRefused) as e:
        submit(previous_pickup_days=[DAY - timedelta(days=2)])
    assert e.value.rule == "market_purchase_interval"
    submit(previous_pickup_days=[DAY - timedelta(days=3)])


def test_readiness_every_line_within_asked():
    pl = submit()
    with pytest.raises(InvalidInput):
        answer_readiness(pl, {A: 10})
    with pytest.raises(InvalidInput):
        answer_readiness(pl, {A: 11, B: 5})
    ready = answer_readiness(pl, {A: 8, B: 5})
    assert ready.status == "ready" and [ln.ready for ln in ready.lines] == [8, 5]
    with pytest.raises(RuleRefused):
        answer_readiness(ready, {A: 8, B: 5})


def test_pickup_in_the_village_slot_with_two_people():
    ready = answer_readiness(submit(), {A: 8, B: 5})
    booked = book_pickup(ready, at(DAY, 9), at(DAY, 9, 30), "老王", "小李", SLOTS)
    assert (booked.status, booked.driver, booked.clerk) == ("booked", "老王", "小李")
    with pytest.raises(RuleRefused) as e:
        book_pickup(ready, at(DAY, 11), at(DAY, 11, 30), "老王", "小李", SLOTS)
    assert e.value.rule == "market_slot_not_village"
    with pytest.raises(RuleRefused) as e:
        book_pickup(ready, at(DAY, 9), at(DAY, 9, 30), "老王", " 老王 ", SLOTS)
    assert e.value.rule == "market_same_person"
    for driver, clerk, field in (("", "小李", "driver"), ("老王", None, "clerk")):
        with pytest.raises(InvalidInput) as e:
            book_pickup(ready, at(DAY, 9), at(DAY, 9, 30), driver, clerk, SLOTS)
        assert e.value.field == field
    with pytest.raises(RuleRefused):
        book_pickup(submit(), at(DAY, 9), at(DAY, 9, 30), "老王", "小李", SLOTS)  # not ready yet


def test_collection_against_the_agreed_quantities():
    booked = book_pickup(answer_readiness(submit(), {A: 8, B: 5}), at(DAY, 9), at(DAY, 10), "d", "c", SLOTS)
    done, gaps = record_collection(booked, {A: 8, B: 4})
    assert done.status == "collected"
    assert [(g.item_code, g.agreed, g.collected, g.difference) for g in gaps] == [(B, 5, 4, -1)]
    _, gaps = record_collection(booked, {A: 8})
    assert [(g.item_code, g.collected) for g in gaps] == [(B, 0)]
    with pytest.raises(InvalidInput):
        record_collection(booked, {"X": 1})
