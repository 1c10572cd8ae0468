"""Proof of delivery: validation, ledger effects, event payload, idempotency."""

from datetime import timedelta

import pytest

from services.common.errors import Conflict, InvalidInput, NotFound
from services.logistics.domain.delivery import (
    DeliveryConfirmation,
    Discrepancy,
    ReceivedLine,
    confirm_delivery,
)
from services.logistics.domain.ledger import Ledger, LedgerKind
from services.logistics.domain.trips import ManifestLine, Stop, Trip
from tests.unit.logistics.logistics_support import CAT, TODAY, at, receive, reserve

PROOF = "photo:" + "ab" * 32


def setup():
    led = Ledger()
    rice = receive(led, "RICE-10KG", 100)
    pork = receive(led, "PORK-KG", 50, zone="Z-CHL", expiry=TODAY + timedelta(days=4))
    reserve(led, rice, 20, "PL-R")
    reserve(led, pork, 10, "PL-P")

    def ml(plan, lot, code, q):
        it = CAT.item(code)
        return ManifestLine(plan, code, it.name_zh, it.name_en, it.unit, lot, q, it.weight_kg,
                            it.volume_l, it.storage_class == "chilled")

    stop = Stop(1, "P1", "V1", at(9), at(9), at(9, 10), (at(8), at(18)),
                (ml("PL-R", rice, "RICE-10KG", 20), ml("PL-P", pork, "PORK-KG", 10)))
    trip = Trip("20261128-C1-1", TODAY, "D1", "C1", "浙A-通C1", "司机", "押运", True,
                (at(7), at(18)), at(7), at(7, 20), at(11), (stop,), 12_000, 210.0, 290.0, 1500, 8000)
    return led, trip, rice, pork


def conf(*lines, did="DLV-1", **kw):
    base = dict(delivery_id=did, trip_id="20261128-C1-1", drop_point_id="P1",
                receiver="村专班 王芳", received_at=at(9, 20), proof_ref=PROOF, lines=tuple(lines))
    base.update(kw)
    return DeliveryConfirmation(**base)


def test_everything_received_issues_against_the_plan_lines():
    led, trip, rice, pork = setup()
    out = confirm_delivery(conf(ReceivedLine("PL-R", rice, 20), ReceivedLine("PL-P", pork, 10)), trip)
    assert out.new and [ln.status for ln in out.result.lines] == ["delivered", "delivered"]
    assert [(p.kind, p.quantity) for p in out.result.postings] == [
        (LedgerKind.ISSUE, -20), (LedgerKind.ISSUE, -10)]
    led.post_all(out.result.postings, approved_plan_lines={"PL-R", "PL-P"})
    assert (led.balance(rice).on_hand, led.balance(rice).reserved) == (80, 0)
    assert (led.balance(pork).on_hand, led.balance(pork).reserved) == (40, 0)


def test_discrepancies_become_return_and_write_off_lines():
    led, trip, rice, pork = setup()
    out = confirm_delivery(conf(
        ReceivedLine("PL-R", rice, 15, (Discrepancy("damaged", 2, "bags torn"),
                                        Discrepancy("short", 1), Discrepancy("refused", 2))),
        ReceivedLine("PL-P", pork, 0, (Discrepancy("refused", 10, "warm on arrival"),)),
    ), trip)
    r, p = out.result.lines
    assert (r.shipped, r.received, r.damaged, r.short, r.refused, r.status) == (20, 15, 2, 1, 2, "partial")
    assert p.status == "not_delivered"
    kinds = [(x.kind, x.quantity, x.lot_id) for x in out.result.postings]
    assert kinds == [(LedgerKind.ISSUE, -15, rice), (LedgerKind.RETURN, 2, rice),
                     (LedgerKind.WRITE_OFF, -2, rice), (LedgerKind.WRITE_OFF, -1, rice),
                     (LedgerKind.RETURN, 10, pork)]
    led.post_all(out.result.postings, approved_plan_lines={"PL-R", "PL-P"})
    b = led.balance(rice)
    assert (b.on_hand, b.reserved, b.available) == (100 - 15 - 2 - 1, 0, 82)
    b = led.balance(pork)
    assert (b.on_hand, b.reserved, b.available) == (50, 0, 50)  # refused goods are stock again


def test_received_more_than_shipped_is_refused():
    _, trip, rice, pork = setup()
    with pytest.raises(InvalidInput) as e:
        confirm_delivery(conf(ReceivedLine("PL-R", rice, 21), ReceivedLine("PL-P", pork, 10)), trip)
    assert e.value.field == "lines[0].received"


def test_less_than_shipped_needs_a_reason_that_adds_up():
    _, trip, rice, pork = setup()
    with pytest.raises(InvalidInput) as e:
        confirm_delivery(conf(ReceivedLine("PL-R", rice, 18), ReceivedLine("PL-P", pork, 10)), trip)
    assert e.value.field == "lines[0].discrepancies"
    with pytest.raises(InvalidInput) as e:
        confirm_delivery(conf(ReceivedLine("PL-R", rice, 18, (Discrepancy("short", 1),)),
                              ReceivedLine("PL-P", pork, 10)), trip)
    assert e.value.field == "lines[0].discrepancies"
    with pytest.raises(InvalidInput) as e:
        confirm_delivery(conf(ReceivedLine("PL-R", rice, 18, (Discrepancy("lost", 2),)),
                              ReceivedLine("PL-P", pork, 10)), trip)
    assert e.value.field == "lines[0].discrepancies[0].reason"


def test_every_manifest_line_and_only_those():
    _, trip, rice, pork = setup()
    with pytest.raises(InvalidInput) as e:
        confirm_delivery(conf(ReceivedLine("PL-R", rice, 20)), trip)
    assert e.value.field == "lines"
    with pytest.raises(InvalidInput):
        confirm_delivery(conf(ReceivedLine("PL-R", rice, 20), ReceivedLine("PL-P", pork, 10),
                              ReceivedLine("PL-X", pork, 1)), trip)
    with pytest.raises(NotFound):
        confirm_delivery(conf(ReceivedLine("PL-R", rice, 20), drop_point_id="P9"), trip)


@pytest.mark.parametrize("field,value", [
    ("proof_ref", "photo:xyz"), ("proof_ref", "video:" + "ab" * 32), ("receiver", " "),
    ("trip_id", "other-trip"),
])
def test_receiver_proof_and_trip_are_checked(field, value):
    _, trip, rice, pork = setup()
    with pytest.raises(InvalidInput) as e:
        confirm_delivery(conf(ReceivedLine("PL-R", rice, 20), ReceivedLine("PL-P", pork, 10),
                              **{field: value}), trip)
    assert e.value.field == field


def test_idempotent_by_delivery_id():
    _, trip, rice, pork = setup()
    c = conf(ReceivedLine("PL-R", rice, 20), ReceivedLine("PL-P", pork, 10))
    first = confirm_delivery(c, trip)
    # the same content, lines in another order, arriving again
    again = confirm_delivery(conf(ReceivedLine("PL-P", pork, 10), ReceivedLine("PL-R", rice, 20)),
                             trip, prior=first.result)
    assert not again.new and again.result == first.result
    with pytest.raises(Conflict):
        confirm_delivery(conf(ReceivedLine("PL-R", rice, 19, (Discrepancy("short", 1),)),
                              ReceivedLine("PL-P", pork, 10)), trip, prior=first.result)


def test_event_payload_for_delivery_confirmed():
    _, trip, rice, pork = setup()
    out = confirm_delivery(conf(ReceivedLine("PL-R", rice, 20),
                                ReceivedLine("PL-P", pork, 9, (Discrepancy("damaged", 1),))), trip)
    body = out.result.event_payload()
    assert body["delivery_id"] == "DLV-1" and body["requester_id"] == "V1"
    assert body["received_at"].endswith("+00:00")
    assert body["lines"][1] == {"plan_line_id": "PL-P", "item_code": "PORK-KG", "lot_id": pork,
                                "shipped": 10, "received": 9, "short": 0, "damaged": 1,
                                "refused": 0, "status": "partial"}
