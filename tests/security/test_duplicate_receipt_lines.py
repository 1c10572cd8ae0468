"""Issue #14, finding 12 (receipts): two lines of one receipt for the same item and lot number
are refused with INVALID_ARGUMENT naming the repeated line, as intake refuses a demand naming an
item twice; nothing is put away. Real logistics API process on SQLite."""

from __future__ import annotations

import grpc
import pytest
from supply.v1 import logistics_pb2 as pb

from tests.support.logistics import api_with_depot, day, key


@pytest.fixture(scope="module")
def api(tmp_path_factory, amqp_url):
    with api_with_depot(tmp_path_factory.mktemp("receipt-dups"), amqp_url) as (_, client):
        yield client


def receipt(*lines: tuple[str, int, str]) -> pb.ReceiveStockRequest:
    return pb.ReceiveStockRequest(
        idempotency_key=key(), kind=pb.RECEIPT_KIND_PURCHASE, depot_id="D1", origin_ref="PO-7",
        lines=[pb.ReceiptLineSpec(item_code=item, quantity=qty, lot_number=lot, expiry=day(200))
               for item, qty, lot in lines])


def ledger_seq(api) -> int:
    return api.ReconcileLedger(pb.ReconcileLedgerRequest()).head_seq


@pytest.mark.parametrize("second_lot", ["B-1", " B-1 "], ids=["same", "same-with-spaces"])
def test_the_same_item_and_lot_twice_in_one_receipt_is_refused_naming_the_line(api, second_lot):
    before = ledger_seq(api)
    with pytest.raises(grpc.RpcError) as exc:
        api.ReceiveStock(receipt(("RICE-10KG", 5, "B-1"), ("OIL-5L", 2, "O-1"),
                                 ("RICE-10KG", 7, second_lot)))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith("lines[2]"), exc.value.details()
    assert "lines[0]" in exc.value.details()
    assert ledger_seq(api) == before  # nothing put away
    assert not [lot for lot in api.lots(depot_id="D1") if lot.lot_number.strip() == "B-1"]


def test_the_same_item_in_two_lots_is_still_two_lines(api):
    r = api.ReceiveStock(receipt(("FLOUR-5KG", 5, "F-1"), ("FLOUR-5KG", 3, "F-2")))
    assert sorted((lot.lot_number, lot.on_hand) for lot in r.lots) == [("F-1", 5), ("F-2", 3)]
