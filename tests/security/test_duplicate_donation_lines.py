"""Issue 14, finding 12 (donations): a donation that names the same lot of the same item on two
lines is refused, as a demand with the same item twice is: INVALID_ARGUMENT naming the
repeating line, and nothing registered. Two lots of one item are two lines, as before."""

from __future__ import annotations

import pytest
from supply.v1 import common_pb2, intake_pb2

from tests.integration.test_intake_grpc import assert_invalid, rpc_error
from tests.support.intake import day, key, running_api

pb = intake_pb2


@pytest.fixture(scope="module")
def api(tmp_path_factory, amqp_url):
    with running_api(tmp_path_factory.mktemp("duplicate-donation-lines"), amqp_url) as client:
        yield client


def donate(api, *lines: pb.DonationLineSpec) -> pb.Donation:
    return api.RegisterDonation(pb.RegisterDonationRequest(
        idempotency_key=key(), lines=list(lines),
        donor=pb.Donor(name="清河商会", contact="0571-88886666", kind=pb.DONOR_KIND_ORGANIZATION)))


def registered_today(api) -> int:
    return api.ListDonations(pb.ListDonationsRequest(
        received_day=day(0), page=common_pb2.PageRequest(page_size=1))).page.total


def rice(lot: str, quantity: int = 50, expiry: int = 200) -> pb.DonationLineSpec:
    return pb.DonationLineSpec(item_code="RICE-10KG", quantity=quantity, lot=lot, expiry=day(expiry))


@pytest.mark.parametrize("second", [
    rice("R-1"),                          # the very same line twice
    rice("R-1", quantity=20),             # the same lot split in two
    rice(" r-1 ", expiry=300),            # the same lot, typed differently, another expiry
], ids=["same line", "same lot, other quantity", "same lot, other spelling and expiry"])
def test_the_same_lot_of_an_item_on_two_lines_is_refused(api, second):
    before = registered_today(api)
    n95 = pb.DonationLineSpec(item_code="MASK-N95", quantity=10, lot="N-1", expiry=day(300))
    err = rpc_error(lambda: donate(api, rice("R-1"), n95, second))
    assert_invalid(err, "lines[2].lot")
    assert "lines[0]" in err.details()
    assert registered_today(api) == before
    another_lot = donate(api, rice("R-1"), n95, rice("R-2", quantity=20))
    assert [(ln.item_code, ln.lot) for ln in another_lot.lines] == [
        ("RICE-10KG", "R-1"), ("MASK-N95", "N-1"), ("RICE-10KG", "R-2")]

