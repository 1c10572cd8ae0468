"""FEFO picking against plan lines, named lots, and lot transitions with their documents."""

from datetime import timedelta

import pytest

from services.common.errors import InvalidInput, NotFound, RuleRefused
from services.logistics.domain.ledger import Ledger
from services.logistics.domain.model import DocRef, LotStatus
from services.logistics.domain.picking import (
    PickRequest,
    pick,
    pick_many,
    quarantine_lot,
    release_lot,
    write_off_lot,
)
from services.logistics.domain.policy import PickPolicy
from tests.unit.logistics.logistics_support import TODAY, at, receive, reserve

DAY = TODAY + timedelta(days=1)  # delivery day


def stocked():
    led = Ledger()
    lots = {
        "late": receive(led, "PORK-KG", 40, zone="Z-CHL", expiry=TODAY + timedelta(days=6)),
        "early": receive(led, "PORK-KG", 30, zone="Z-CHL", expiry=TODAY + timedelta(days=3)),
        "too_soon": receive(led, "PORK-KG", 99, zone="Z-CHL", expiry=TODAY),  # gone by DAY
        "quarantined": receive(led, "PORK-KG", 99, zone="Z-CHL", expiry=TODAY + timedelta(days=2)),
        "other_depot": receive(led, "PORK-KG", 99, zone="Z-D2C", depot="D2",
                               expiry=TODAY + timedelta(days=2)),
    }
    t = quarantine_lot(led.balance(lots["quarantined"]), doc=DocRef("alert", "A-1"), actor="mon",
                       at=at(10), reason="spoilage alarm")
    led.post_all(t.postings)
    return led, lots


def req(qty, plan="PL-1", lots=()):
    return PickRequest(plan, "D1", "PORK-KG", qty, DAY, lots)


def test_fefo_takes_the_earliest_expiry_first_and_skips_unusable_lots():
    led, lots = stocked()
    p = pick(req(50), led.balances, actor="planner", at=at(12))
    assert [(x.lot_id, x.quantity) for x in p.picked] == [(lots["early"], 30), (lots["late"], 20)]
    assert p.short == 0
    led.post_all(p.postings)
    assert led.balance(lots["early"]).reserved_by_plan == {"PL-1": 30}
    assert led.balance(lots["late"]).available == 20


def test_fefo_respects_days_left_at_delivery():
    led, lots = stocked()
    p = pick(req(10), led.balances, actor="planner", at=at(12),
             policy=PickPolicy(min_days_left_at_delivery=3))
    assert [x.lot_id for x in p.picked] == [lots["late"]]


def test_not_enough_usable_stock_is_refused_or_partial():
    led, lots = stocked()
    with pytest.raises(RuleRefused) as e:
        pick(req(71), led.balances, actor="planner", at=at(12))
    assert e.value.rule == "INSUFFICIENT_STOCK" and "70" in e.value.message
    p = pick(req(71), led.balances, actor="planner", at=at(12), allow_partial=True)
    assert p.short == 1 and sum(x.quantity for x in p.picked) == 70


def test_pick_many_sees_the_stock_earlier_lines_took():
    led, lots = stocked()
    a, b = pick_many([req(25, "PL-1"), req(25, "PL-2")], led.balances, actor="p", at=at(12))
    assert [(x.lot_id, x.quantity) for x in a.picked] == [(lots["early"], 25)]
    assert [(x.lot_id, x.quantity) for x in b.picked] == [(lots["early"], 5), (lots["late"], 20)]
    led.post_all(a.postings + b.postings)
    assert led.balance(lots["early"]).available == 0


def test_named_lots_are_reserved_exactly():
    led, lots = stocked()
    p = pick(req(35, lots=((lots["late"], 35),)), led.balances, actor="p", at=at(12))
    assert [(x.lot_id, x.quantity) for x in p.picked] == [(lots["late"], 35)]


@pytest.mark.parametrize("name,qty,rule", [
    ("quarantined", 5, "LOT_QUARANTINED"),
    ("too_soon", 5, "LOT_EXPIRES_BEFORE_DELIVERY"),
    ("other_depot", 5, "LOT_MISMATCH"),
    ("early", 31, "INSUFFICIENT_STOCK"),
])
def test_named_lots_are_refused_precisely(name, qty, rule):
    led, lots = stocked()
    with pytest.raises(RuleRefused) as e:
        pick(req(qty, lots=((lots[name], qty),)), led.balances, actor="p", at=at(12))
    assert e.value.rule == rule and lots[name] in e.value.message


def test_named_lots_must_exist_and_add_up():
    led, lots = stocked()
    with pytest.raises(NotFound):
        pick(req(5, lots=(("NOPE", 5),)), led.balances, actor="p", at=at(12))
    with pytest.raises(InvalidInput):
        pick(req(6, lots=((lots["late"], 5),)), led.balances, actor="p", at=at(12))


def test_quarantine_release_and_write_off():
    led = Ledger()
    lot = receive(led, "CABBAGE-KG", 100, zone="Z-CHL", expiry=TODAY + timedelta(days=10))
    reserve(led, lot, 30, "PL-7")
    reserve(led, lot, 20, "PL-8")
    q = quarantine_lot(led.balance(lot), doc=DocRef("alert", "ALM-1"), actor="mon", at=at(13),
                       reason="冷藏超温 / above 4 °C for 30 min")
    assert q.released == (("PL-7", 30), ("PL-8", 20))
    led.post_all(q.postings)
    assert quarantine_lot(led.balance(lot), doc=DocRef("alert", "ALM-2"), actor="mon", at=at(14),
                          reason="again").postings == ()
    r = release_lot(led.balance(lot), doc=DocRef("inspection", "INS-1"), actor="qa", at=at(15),
                    reason="检验合格放行 / inspected, fit for use")
    led.post_all(r.postings)
    assert led.balance(lot).status == LotStatus.AVAILABLE and led.balance(lot).available == 100
    led.post_all(quarantine_lot(led.balance(lot), doc=DocRef("inspection", "INS-2"), actor="qa",
                                at=at(16), reason="rot found").postings)
    w = write_off_lot(led.balance(lot), doc=DocRef("inspection", "INS-2"), actor="qa", at=at(16),
                      reason="腐烂报损 / rotten")
    led.post_all(w.postings)
    b = led.balance(lot)
    assert (b.status, b.on_hand, b.quarantined) == (LotStatus.WRITTEN_OFF, 0, 0)


def test_transitions_cite_the_right_document():
    led = Ledger()
    lot = receive(led, "RICE-10KG", 10)
    with pytest.raises(InvalidInput):
        quarantine_lot(led.balance(lot), doc=DocRef("plan_line", "PL-1"), actor="x", at=at(9),
                       reason="r")
    with pytest.raises(InvalidInput):
        release_lot(led.balance(lot), doc=DocRef("alert", "A"), actor="x", at=at(9), reason="r")
    with pytest.raises(RuleRefused) as e:
        release_lot(led.balance(lot), doc=DocRef("inspection", "I"), actor="x", at=at(9), reason="r")
    assert e.value.rule == "NOT_QUARANTINED"
