"""Receipts and put-away: item, quantity, lot number, expiry, storage class, segregation, capacity."""

from datetime import timedelta

import pytest

from services.common.errors import Conflict, InvalidInput, NotFound, RuleRefused
from services.logistics.domain.ledger import Bucket, Ledger, LedgerKind, Posting
from services.logistics.domain.model import DocRef, LotStatus, Zone
from services.logistics.domain.policy import ReceiptPolicy
from services.logistics.domain.receipts import Receipt, ReceiptLine, accept_receipt, zone_occupancy
from tests.unit.logistics.logistics_support import (
    CAT,
    TODAY,
    ZONES,
    at,
    catalogue_with_acid,
    receive,
)

GOOD = TODAY + timedelta(days=200)
# A county's mixed hazardous-goods store (危化品库) that takes both chemical classes:
MIXED = ReceiptPolicy(zone_accepts={"flammable": frozenset({"oxidizer"}),
                                    "oxidizer": frozenset({"flammable"})})


def receipt(*lines, kind="purchase", origin=None, rid="R-100"):
    return Receipt(rid, kind, "D1", at(8), "keeper-1", tuple(lines), origin)


def accept(r, balances=None, policy=None, catalogue=CAT, zones=ZONES):
    return accept_receipt(r, catalogue=catalogue, zones=zones, balances=balances or {},
                          policy=policy)


def test_a_receipt_creates_lots_and_receipt_lines():
    acc = accept(receipt(ReceiptLine("RICE-10KG", 50, "B-7", GOOD, "Z-AMB"),
                         ReceiptLine("PORK-KG", 80, "P-1", TODAY + timedelta(days=5), "Z-CHL")))
    assert [lot.lot_id for lot in acc.lots] == ["R-100/1", "R-100/2"]
    assert all(lot.status == LotStatus.AVAILABLE and lot.source == DocRef("receipt", "R-100")
               for lot in acc.lots)
    led = Ledger()
    led.post_all(acc.postings)
    assert led.balance("R-100/2").on_hand == 80 and led.lines[0].kind == LedgerKind.RECEIPT
    assert led.lines[0].expiry == GOOD


def test_expired_on_arrival_is_refused_expiring_today_is_not():
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("MILK-1L", 10, "M-1", TODAY - timedelta(days=1), "Z-CHL")))
    assert e.value.rule == "EXPIRED_ON_ARRIVAL"
    accept(receipt(ReceiptLine("MILK-1L", 10, "M-1", TODAY, "Z-CHL")))
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("MILK-1L", 10, "M-1", TODAY + timedelta(days=1), "Z-CHL")),
               policy=ReceiptPolicy(min_shelf_days_on_arrival=2))
    assert e.value.rule == "EXPIRED_ON_ARRIVAL"


def test_storage_class_mismatch():
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("PORK-KG", 10, "P-1", GOOD, "Z-AMB")))
    assert e.value.rule == "STORAGE_CLASS_MISMATCH"
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("RICE-10KG", 10, "B-1", GOOD, "Z-CHL")))
    assert e.value.rule == "STORAGE_CLASS_MISMATCH"


def test_segregation_flammable_into_a_zone_holding_oxidizers():
    led = Ledger()
    receive(led, "DISINF-84-1L", 100, zone="Z-OXD")
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("ETHANOL-75-500ML", 10, "E-1", GOOD, "Z-OXD")), led.balances, MIXED)
    assert e.value.rule == "SEGREGATION"
    # with the default policy the same put-away is refused for segregation first, not for class
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("ETHANOL-75-500ML", 10, "E-1", GOOD, "Z-OXD")), led.balances)
    assert e.value.rule == "SEGREGATION"


def test_segregation_oxidizer_into_a_zone_holding_flammables():
    led = Ledger()
    receive(led, "ETHANOL-75-500ML", 100, zone="Z-FLM")
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("CLO2-POWDER-1KG", 5, "C-1", GOOD, "Z-FLM")), led.balances, MIXED)
    assert e.value.rule == "SEGREGATION"


def test_segregation_acid_with_oxidizer_and_within_one_receipt():
    cat = catalogue_with_acid()
    policy = ReceiptPolicy(zone_accepts={"oxidizer": frozenset({"flammable"})})
    with pytest.raises(RuleRefused) as e:  # two lines of one receipt into one zone
        accept(receipt(ReceiptLine("PERACETIC-5L", 2, "PA-1", GOOD, "Z-OXD"),
                       ReceiptLine("ACID-HCL-1L", 2, "H-1", GOOD, "Z-OXD")), catalogue=cat)
    assert e.value.rule == "SEGREGATION"
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("DISINF-84-1L", 2, "D-1", GOOD, "Z-OXD"),
                       ReceiptLine("HAND-SANITIZER-500ML", 2, "H-1", GOOD, "Z-OXD")),
               policy=policy)
    assert e.value.rule == "SEGREGATION"


def test_segregation_looks_at_stock_on_hand_only():
    led = Ledger()
    lot = receive(led, "DISINF-84-1L", 10, zone="Z-OXD")
    led.post(Posting(LedgerKind.WRITE_OFF, lot, -10, "k", at(9), "leaking",
                     DocRef("inspection", "I-1"), bucket=Bucket.AVAILABLE))
    occ = zone_occupancy(ZONES["Z-OXD"], led.balances.values(), CAT)
    assert occ.hazards == frozenset() and occ.used_l == 0
    accept(receipt(ReceiptLine("ETHANOL-75-500ML", 10, "E-1", GOOD, "Z-OXD")), led.balances, MIXED)


def test_zone_capacity_counts_stock_and_earlier_lines():
    zones = {**ZONES, "Z-S": Zone("Z-S", "D1", "ambient", 300)}
    led = Ledger()
    receive(led, "RICE-10KG", 10, zone="Z-S", zones=zones)  # 140 l
    accept(receipt(ReceiptLine("RICE-10KG", 11, "B-2", GOOD, "Z-S")), led.balances, zones=zones)
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("RICE-10KG", 6, "B-2", GOOD, "Z-S"),
                       ReceiptLine("RICE-10KG", 6, "B-3", GOOD, "Z-S")), led.balances, zones=zones)
    assert e.value.rule == "ZONE_CAPACITY"


@pytest.mark.parametrize("qty", [0, -5, 2.5, True, "10"])
def test_quantity_must_be_a_positive_int(qty):
    with pytest.raises(InvalidInput) as e:
        accept(receipt(ReceiptLine("RICE-10KG", qty, "B-1", GOOD, "Z-AMB")))
    assert e.value.field == "lines[0].quantity"


def test_item_lot_number_zone_are_checked():
    with pytest.raises(NotFound):
        accept(receipt(ReceiptLine("CAVIAR", 1, "B-1", GOOD, "Z-AMB")))
    with pytest.raises(InvalidInput) as e:
        accept(receipt(ReceiptLine("RICE-10KG", 1, " ", GOOD, "Z-AMB")))
    assert e.value.field == "lines[0].lot_number"
    with pytest.raises(NotFound):
        accept(receipt(ReceiptLine("RICE-10KG", 1, "B-1", GOOD, "Z-NOPE")))
    with pytest.raises(InvalidInput) as e:
        accept(receipt(ReceiptLine("RICE-10KG", 1, "B-1", GOOD, "Z-D2")))
    assert e.value.field == "lines[0].zone_id"
    with pytest.raises(RuleRefused) as e:
        accept(receipt(ReceiptLine("BAIJIU-500ML", 1, "B-1", GOOD, "Z-AMB")))
    assert e.value.rule == "NON_ESSENTIAL_ITEM"


def test_receipt_kinds_and_their_documents():
    line = ReceiptLine("MASK-N95", 1000, "N-1", GOOD, "Z-AMB")
    with pytest.raises(RuleRefused) as e:
        accept(receipt(line, kind="donation"))
    assert e.value.rule == "ORIGIN_DOCUMENT_REQUIRED"
    accept(receipt(line, kind="donation", origin=DocRef("inspection", "INS-4")))
    accept(receipt(line, kind="upper_level_allocation"))
    acc = accept(receipt(line, kind="transfer", origin=DocRef("transfer", "T-9")))
    assert acc.postings[0].kind == LedgerKind.TRANSFER_IN
    with pytest.raises(InvalidInput):
        accept(receipt(line, kind="gift"))


def test_lot_ids_are_unique():
    led = Ledger()
    receive(led, "RICE-10KG", 1, lot_id="LOT-A")
    with pytest.raises(Conflict):
        accept(receipt(ReceiptLine("RICE-10KG", 1, "B", GOOD, "Z-AMB", lot_id="LOT-A")), led.balances)
