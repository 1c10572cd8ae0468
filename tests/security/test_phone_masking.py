"""Issue 14, finding 10: what a caller reading special needs and donations sees of a phone
number, through a real intake API process. An 11-digit mainland mobile shows its first 3 and
last 4 digits (GB/T 35273 practice); any other number shows at most half of its digits."""

from __future__ import annotations

import re

import pytest
from supply.v1 import common_pb2, intake_pb2

from tests.support.intake import day, key, running_api

pb = intake_pb2
# (as typed, digits it has once a +86 country code is dropped, at most visible, exact mask)
NUMBERS = [
    ("8888 6666", 8, 4, None),               # a county landline without its area code
    ("0571-88889999", 12, 6, None),
    ("1234567", 7, 3, None),
    ("13812345678", 11, 7, "138****5678"),
    ("+86 139 1234 5678", 11, 7, "139****5678"),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory, amqp_url):
    with running_api(tmp_path_factory.mktemp("phone-masking"), amqp_url) as client:
        yield client


def assert_masked(shown: str, typed: str, digits: int, visible: int, exact: str | None) -> None:
    clear = re.sub(r"\D", "", typed)[-digits:]
    assert len(re.findall(r"\d", shown)) <= visible, (typed, shown)
    assert clear not in shown and "*" in shown, (typed, shown)
    if exact:
        assert shown == exact, (typed, shown)


def test_a_special_need_list_shows_at_most_half_of_a_phone_number(api):
    for typed, digits, visible, exact in NUMBERS:
        village = api.village().id
        registered = api.RegisterSpecialNeed(pb.RegisterSpecialNeedRequest(
            idempotency_key=key(), requester_id=village,
            beneficiary=pb.Beneficiary(name="张三", phone=typed),
            category=pb.SPECIAL_NEED_CATEGORY_CHRONIC_MEDICINE,
            lines=[common_pb2.ItemLine(item_code="MED-ANTIHYPERTENSIVE", quantity=2)]))
        listed = api.ListSpecialNeeds(pb.ListSpecialNeedsRequest(requester_id=village)).special_needs
        assert [n.masked_phone for n in listed] == [registered.special_need.masked_phone]
        assert_masked(listed[0].masked_phone, typed, digits, visible, exact)


def test_a_donation_shows_at_most_half_of_the_donors_phone_number(api):
    for typed, digits, visible, exact in NUMBERS:
        donation = api.RegisterDonation(pb.RegisterDonationRequest(
            idempotency_key=key(), donor=pb.Donor(name="王小明", contact=typed, kind=pb.DONOR_KIND_PERSON),
            lines=[pb.DonationLineSpec(item_code="RICE-10KG", quantity=5, lot="R-1", expiry=day(200))]))
        got = api.GetDonation(pb.GetDonationRequest(donation_id=donation.id))
        listed = [x for x in api.ListDonations(pb.ListDonationsRequest(
            received_day=day(0), page=common_pb2.PageRequest(page_size=500))).donations
                  if x.id == donation.id]
        assert donation.donor_contact == got.donor_contact == listed[0].donor_contact
        assert_masked(got.donor_contact, typed, digits, visible, exact)
