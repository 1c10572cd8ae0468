"""Request field limits (services.common.fields), on the real request messages of the protos."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from supply.v1 import allocation_pb2, common_pb2, intake_pb2, logistics_pb2, monitoring_pb2

from services.common.clock import FixedClock
from services.common.errors import InvalidInput
from services.common.fields import RequestCheck, excerpt

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in the county
check = RequestCheck(FixedClock(NOW), ZoneInfo("Asia/Shanghai"))


def refused(request) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        check(request)
    return caught.value


def demand(**fields) -> intake_pb2.SubmitDemandRequest:
    base = dict(idempotency_key="k1", requester_id="V-001", delivery_day="2026-11-29",
                lines=[common_pb2.ItemLine(item_code="RICE-10KG", quantity=2)])
    return intake_pb2.SubmitDemandRequest(**{**base, **fields})


def test_an_ordinary_request_passes_unchanged():
    request = demand()
    before = request.SerializeToString()
    check(request)
    assert request.SerializeToString() == before


def test_text_over_the_default_limit_is_refused_naming_the_field_and_the_limit_without_echoing_it():
    error = refused(demand(requester_id="V" * 1_000_000))
    assert error.field == "requester_id"
    assert "200" in error.message and len(error.message) < 200


def test_nested_and_repeated_fields_are_named_by_their_path():
    error = refused(demand(lines=[common_pb2.ItemLine(item_code="RICE-10KG", quantity=1),
                                  common_pb2.ItemLine(item_code="RICE\x0010KG", quantity=1)]))
    assert error.field == "lines[1].item_code"
    assert "U+0000" in error.message


@pytest.mark.parametrize("bad", ["\x00", "\x1b[31m", "\u202e", "\ufeff", "a\nb", "\x85"])
def test_control_characters_are_refused_in_a_single_line_field(bad):
    assert refused(demand(requester_id="V" + bad)).field == "requester_id"


def test_a_multiline_field_takes_line_breaks_but_no_other_controls():
    ok = intake_pb2.CancelDemandRequest(idempotency_key="k", demand_id="D-1", reason="line one\r\nline two\tend")
    check(ok)
    assert refused(intake_pb2.CancelDemandRequest(idempotency_key="k", demand_id="D-1",
                                                  reason="bell\x07")).field == "reason"


def test_text_is_stored_nfc_normalised():
    request = demand(requester_id="Cafe\u0301")
    check(request)
    assert request.requester_id == "Caf\u00e9"


@pytest.mark.parametrize("day", ["2026-02-30", "26-11-29", "2026-11-29T00:00", "tomorrow", "٢٠٢٦-١١-٢٩"])
def test_a_day_must_be_a_calendar_day(day):
    error = refused(demand(delivery_day=day))
    assert error.field == "delivery_day" and "YYYY-MM-DD" in error.message


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2025-11-01", "2027-12-01"])
def test_a_day_far_from_the_county_clock_is_refused(day):
    assert refused(demand(delivery_day=day)).field == "delivery_day"


def test_an_expiry_may_lie_years_ahead_or_behind():
    line = intake_pb2.DonationLineSpec(item_code="RICE-10KG", quantity=1, lot="L1", expiry="2030-06-30")
    check(intake_pb2.RegisterDonationRequest(idempotency_key="k", lines=[line]))
    line.expiry = "2040-01-01"
    assert refused(intake_pb2.RegisterDonationRequest(idempotency_key="k", lines=[line])).field == "lines[0].expiry"


@pytest.mark.parametrize("seconds", [2**63 - 1, -(2**63), 0, int(NOW.timestamp()) + 400 * 86400])
def test_an_instant_far_from_the_county_clock_is_refused(seconds):
    request = logistics_pb2.ConfirmDeliveryRequest(idempotency_key="k", trip_id="T-1", drop_point_id="DP-1")
    request.received_at.seconds = seconds
    assert refused(request).field == "received_at"


def test_nanos_out_of_range_are_refused():
    request = logistics_pb2.ConfirmDeliveryRequest(idempotency_key="k", trip_id="T-1")
    request.received_at.seconds = int(NOW.timestamp())
    request.received_at.nanos = -1
    assert refused(request).field == "received_at.nanos"


def test_an_unset_instant_is_not_checked():
    check(logistics_pb2.ConfirmDeliveryRequest(idempotency_key="k", trip_id="T-1"))


@pytest.mark.parametrize("quantity", [10**9 + 1, -(2**63), 2**63 - 1])
def test_integers_are_bounded(quantity):
    error = refused(demand(lines=[common_pb2.ItemLine(item_code="RICE-10KG", quantity=quantity)]))
    assert error.field == "lines[0].quantity"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1e300])
def test_decimals_are_finite_and_bounded(value):
    point = common_pb2.GeoPoint(lat=value, lon=120.0)
    assert refused(intake_pb2.RegisterRequesterRequest(idempotency_key="k", requester=intake_pb2.Requester(location=point))).field == "requester.location.lat"


def test_lists_are_bounded():
    lines = [common_pb2.ItemLine(item_code="RICE-10KG", quantity=1)] * 1001
    assert refused(demand(lines=lines)).field == "lines"


def test_an_enum_value_the_proto_does_not_define_is_refused():
    request = monitoring_pb2.ListAlertsRequest()
    request.severities.append(77)
    assert refused(request).field == "severities[0]"


def test_map_keys_and_values_are_checked():
    request = allocation_pb2.SetPolicyRequest(idempotency_key="k")
    request.policy.reserve_days["grain\x00"] = 3
    assert refused(request).field.startswith("policy.reserve_days")
    request = allocation_pb2.SetPolicyRequest(idempotency_key="k")
    request.policy.reserve_days["grain"] = float("nan")
    assert refused(request).field.startswith("policy.reserve_days")


@given(st.text(max_size=300))
def test_any_text_is_either_refused_or_passed_normalised_and_within_limits(text):
    request = demand(requester_id=text)
    try:
        check(request)
    except InvalidInput as error:
        assert error.field == "requester_id" and len(error.message) < 300
    else:
        assert len(request.requester_id) <= 200
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in request.requester_id)


def test_excerpt_quotes_a_short_prefix():
    assert excerpt("x" * 10_000) == repr("x" * 32 + "…")
    assert excerpt("\x00abc") == repr("\x00abc")


def test_a_domain_error_never_echoes_a_long_input():
    from services.common.errors import MESSAGE_MAX_LEN, NotFound
    assert len(NotFound(f"unknown requester {'V' * 100_000!r}").message) == MESSAGE_MAX_LEN
