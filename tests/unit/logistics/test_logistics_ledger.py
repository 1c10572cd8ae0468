"""Ledger (台账): rules on every line, derived balances, reconciliation, tamper evidence."""

import dataclasses
from datetime import UTC, timedelta

import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.logistics.domain.ledger import (
    GENESIS_HASH,
    Bucket,
    Ledger,
    LedgerKind,
    Posting,
    line_hash,
)
from services.logistics.domain.ledger_audit import reconcile, verify_chain
from services.logistics.domain.model import DocRef, LotStatus
from services.logistics.domain.picking import quarantine_lot
from tests.unit.logistics.logistics_support import TODAY, at, receive, reserve

K = LedgerKind
PLAN = DocRef("plan_line", "PL-1")


def issue(lot, qty, plan="PL-1", when=None):
    return Posting(K.ISSUE, lot, -qty, "keeper-1", when or at(15), "deliver",
                   DocRef("delivery", "DLV-1"), plan_line_id=plan)


def _ledger_with_history():
    led = Ledger()
    rice = receive(led, "RICE-10KG", 100)
    oil = receive(led, "OIL-5L", 40)
    reserve(led, rice, 30, "PL-1")
    reserve(led, oil, 10, "PL-2")
    led.post(issue(rice, 20), approved_plan_lines={"PL-1"})
    led.post(Posting(K.ADJUSTMENT, oil, -2, "keeper-1", at(16), "stocktake: 2 bottles missing",
                     DocRef("stocktake", "ST-1")))
    return led, rice, oil


def test_balances_derive_from_lines():
    led, rice, oil = _ledger_with_history()
    b = led.balance(rice)
    assert (b.on_hand, b.reserved, b.quarantined, b.available) == (80, 10, 0, 70)
    assert led.balance(oil).available == 40 - 10 - 2
    assert [ln.seq for ln in led.lines] == list(range(1, 7))
    assert led.lines[0].prev_hash == GENESIS_HASH
    assert all(a.hash == b.prev_hash for a, b in zip(led.lines, led.lines[1:], strict=False))


def test_never_below_zero():
    led = Ledger()
    lot = receive(led, "RICE-10KG", 10)
    reserve(led, lot, 8, "PL-1")
    with pytest.raises(RuleRefused) as e:
        reserve(led, lot, 3, "PL-2")  # only 2 available
    assert e.value.rule == "NEGATIVE_STOCK"
    with pytest.raises(RuleRefused) as e:
        led.post(Posting(K.TRANSFER_OUT, lot, -3, "k", at(13), "move", DocRef("transfer", "T1")))
    assert e.value.rule == "NEGATIVE_STOCK"
    with pytest.raises(RuleRefused):
        led.post(Posting(K.ADJUSTMENT, lot, -11, "k", at(13), "count", DocRef("stocktake", "S")))
    assert led.balance(lot).on_hand == 10 and led.head_seq == 2


def test_issue_without_plan_line_is_refused():
    led = Ledger()
    lot = receive(led, "RICE-10KG", 10)
    with pytest.raises(RuleRefused) as e:
        led.post(Posting(K.ISSUE, lot, -1, "k", at(13), "hand out", DocRef("delivery", "D")))
    assert e.value.rule == "PLAN_LINE_REQUIRED"
    with pytest.raises(RuleRefused) as e:
        led.post(Posting(K.RESERVATION, lot, 1, "k", at(13), "hold", PLAN))
    assert e.value.rule == "PLAN_LINE_REQUIRED"


def test_issue_needs_an_approved_plan_line_and_its_own_reservation():
    led = Ledger()
    lot = receive(led, "RICE-10KG", 10)
    reserve(led, lot, 4, "PL-1")
    reserve(led, lot, 4, "PL-2")
    with pytest.raises(RuleRefused) as e:
        led.post(issue(lot, 2), approved_plan_lines=set())
    assert e.value.rule == "PLAN_LINE_NOT_APPROVED"
    with pytest.raises(RuleRefused) as e:  # PL-1 may not eat PL-2's reservation (不得挤占)
        led.post(issue(lot, 5), approved_plan_lines={"PL-1", "PL-2"})
    assert e.value.rule == "EXCEEDS_RESERVATION"
    led.post(issue(lot, 4), approved_plan_lines={"PL-1"})
    b = led.balance(lot)
    assert (b.on_hand, b.reserved, b.reserved_by_plan) == (6, 4, {"PL-2": 4})


def test_quarantined_lot_is_never_reserved_or_issued():
    led = Ledger()
    lot = receive(led, "PORK-KG", 50, zone="Z-CHL", expiry=TODAY + timedelta(days=5))
    reserve(led, lot, 20, "PL-1")
    t = quarantine_lot(led.balance(lot), doc=DocRef("alert", "ALM-9"), actor="monitoring",
                       at=at(13), reason="冷藏超温 / chilled above 4 °C for 30 min")
    led.post_all(t.postings)
    assert t.released == (("PL-1", 20),)
    b = led.balance(lot)
    assert (b.status, b.reserved, b.quarantined, b.available) == (LotStatus.QUARANTINED, 0, 50, 0)
    for p in (Posting(K.RESERVATION, lot, 1, "k", at(14), "hold", PLAN, plan_line_id="PL-1"),
              issue(lot, 1)):
        with pytest.raises(RuleRefused) as e:
            led.post(p, approved_plan_lines={"PL-1"})
        assert e.value.rule == "LOT_QUARANTINED"


def test_expired_and_written_off_lots_are_not_reserved():
    led = Ledger()
    lot = receive(led, "MILK-1L", 10, zone="Z-CHL", expiry=TODAY)
    with pytest.raises(RuleRefused) as e:
        reserve(led, lot, 1, "PL-1", when=at(9, day=TODAY + timedelta(days=1)))
    assert e.value.rule == "LOT_EXPIRED"
    led.post(Posting(K.WRITE_OFF, lot, -10, "k", at(10), "spoiled", DocRef("inspection", "I-1"),
                     bucket=Bucket.AVAILABLE))
    assert led.balance(lot).status == LotStatus.WRITTEN_OFF
    with pytest.raises(RuleRefused) as e:
        reserve(led, lot, 1, "PL-1")
    assert e.value.rule == "LOT_WRITTEN_OFF"


def test_quantity_sign_follows_the_kind():
    led = Ledger()
    lot = receive(led, "RICE-10KG", 10)
    with pytest.raises(InvalidInput):
        led.post(Posting(K.ISSUE, lot, 2, "k", at(13), "x", PLAN, plan_line_id="PL-1"))
    with pytest.raises(InvalidInput):
        led.post(Posting(K.ADJUSTMENT, lot, 0, "k", at(13), "x", DocRef("stocktake", "S")))


def test_post_all_is_all_or_nothing():
    led = Ledger()
    lot = receive(led, "RICE-10KG", 10)
    head = (led.head_seq, led.head_hash)
    with pytest.raises(RuleRefused):
        led.post_all([
            Posting(K.RESERVATION, lot, 6, "k", at(12), "a", PLAN, plan_line_id="PL-1"),
            Posting(K.RESERVATION, lot, 6, "k", at(12), "b", PLAN, plan_line_id="PL-2"),
        ])
    assert (led.head_seq, led.head_hash) == head
    assert led.balance(lot).reserved == 0 and led.balance(lot).reserved_by_plan == {}
    assert len(led.lines) == 1


def test_replay_rebuilds_the_same_balances():
    led, rice, oil = _ledger_with_history()
    again = Ledger.replay(led.lines)
    for lot in (rice, oil):
        a, b = led.balance(lot), again.balance(lot)
        assert (a.on_hand, a.reserved, a.quarantined) == (b.on_hand, b.reserved, b.quarantined)
    assert again.head_hash == led.head_hash


def test_replay_refuses_a_line_whose_effects_contradict_its_kind():
    led, rice, _ = _ledger_with_history()
    lines = list(led.lines)
    lines[4] = dataclasses.replace(lines[4], reserved_delta=0)  # an issue that keeps the reservation
    with pytest.raises(RuleRefused) as e:
        Ledger.replay(lines)
    assert e.value.rule == "BAD_EFFECTS"


def test_reconcile_finds_a_stored_balance_off_by_one():
    led, rice, oil = _ledger_with_history()
    stored = {k: dataclasses.replace(v) for k, v in led.balances.items()}
    assert reconcile(led.lines, stored) == []
    stored[oil].on_hand += 1
    (m,) = reconcile(led.lines, stored)
    assert (m.lot_id, m.field, m.from_lines, m.stored) == (oil, "on_hand", 38, 39)


def test_reconcile_reports_missing_and_unknown_lots():
    led, rice, oil = _ledger_with_history()
    stored = {rice: led.balance(rice), "GHOST": dataclasses.replace(led.balance(rice), lot_id="GHOST")}
    fields = {(m.lot_id, m.field) for m in reconcile(led.lines, stored)}
    assert fields == {(oil, "missing"), ("GHOST", "unknown_lot")}


def test_verify_chain_clean():
    led, *_ = _ledger_with_history()
    assert verify_chain(led.lines, expected_head=(led.head_seq, led.head_hash)) == []


def test_verify_chain_detects_an_edited_quantity():
    led, *_ = _ledger_with_history()
    lines = list(led.lines)
    lines[2] = dataclasses.replace(lines[2], quantity=31, reserved_delta=31)
    breaks = verify_chain(lines)
    assert [(b.seq, b.problem) for b in breaks] == [(3, "hash")]
    # the forger re-hashes the edited line: the next line no longer points at it
    lines[2] = dataclasses.replace(lines[2], hash=line_hash(lines[2]))
    assert [(b.seq, b.problem) for b in verify_chain(lines)] == [(4, "prev_hash")]


def test_verify_chain_detects_a_deleted_line():
    led, *_ = _ledger_with_history()
    lines = led.lines[:3] + led.lines[4:]
    problems = {(b.seq, b.problem) for b in verify_chain(lines)}
    assert problems == {(5, "seq"), (5, "prev_hash")}
    cut = led.lines[:-1]  # the last line removed: only the stored head tells
    assert verify_chain(cut) == []
    assert [b.problem for b in verify_chain(cut, expected_head=(led.head_seq, led.head_hash))] == ["head"]


def test_verify_chain_detects_swapped_lines():
    led, *_ = _ledger_with_history()
    lines = list(led.lines)
    lines[2], lines[3] = lines[3], lines[2]
    problems = {(b.seq, b.problem) for b in verify_chain(lines)}
    assert (4, "seq") in problems and (4, "prev_hash") in problems and (3, "prev_hash") in problems


def test_hash_does_not_depend_on_the_zone_a_time_is_read_back_in():
    led, *_ = _ledger_with_history()
    ln = led.lines[0]
    assert line_hash(dataclasses.replace(ln, at=ln.at.astimezone(UTC))) == ln.hash


def test_corrections_are_new_lines():
    led = Ledger()
    lot = receive(led, "RICE-10KG", 10)
    led.post(Posting(K.ADJUSTMENT, lot, 1, "keeper-2", at(17), "recount: 11 bags, receipt miscounted",
                     DocRef("stocktake", "ST-2")))
    assert [ln.kind for ln in led.lines] == [K.RECEIPT, K.ADJUSTMENT]
    assert led.lines[0].quantity == 10 and led.balance(lot).on_hand == 11


def test_a_line_needs_an_aware_time_an_actor_a_reason_and_a_document():
    led = Ledger()
    lot = receive(led, "RICE-10KG", 10)
    doc = DocRef("stocktake", "S")
    for bad in (dict(at=at(9).replace(tzinfo=None)), dict(actor=" "), dict(reason=""),
                dict(doc=None)):
        args = dict(kind=K.ADJUSTMENT, lot_id=lot, quantity=1, actor="k", at=at(9), reason="r",
                    doc=doc) | bad
        with pytest.raises(InvalidInput):
            led.post(Posting(**args))
    assert led.head_seq == 1
