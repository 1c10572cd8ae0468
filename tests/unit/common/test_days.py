from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from services.common.days import instant_or, parse_day, parse_instant
from services.common.errors import InvalidInput


def test_a_day_is_read_and_an_unreadable_one_names_its_field():
    assert parse_day(" 2026-11-28 ", "delivery_day") == date(2026, 11, 28)
    assert parse_day("", "delivery_day") is None
    with pytest.raises(InvalidInput) as bad:
        parse_day("28/11/2026", "lines[2].expiry")
    assert bad.value.field == "lines[2].expiry"
    with pytest.raises(InvalidInput, match="required"):
        parse_day("", "payload.delivery_day", required=True)
    with pytest.raises(InvalidInput, match="not an instant"):
        parse_day(datetime(2026, 11, 28, 9), "d")


def test_an_instant_is_aware_utc_and_an_event_stamp_falls_back():
    beijing = timezone(timedelta(hours=8))
    assert parse_instant("2026-11-29T10:00:00+08:00", "at") == datetime(2026, 11, 29, 2, tzinfo=UTC)
    assert parse_instant("2026-11-29T02:00:00Z", "at").tzinfo == UTC
    assert parse_instant("2026-11-29T02:00:00", "at") == datetime(2026, 11, 29, 2, tzinfo=UTC)
    assert parse_instant(datetime(2026, 11, 29, 10, tzinfo=beijing), "at").utcoffset() == timedelta(0)
    with pytest.raises(InvalidInput) as bad:
        parse_instant("yesterday", "opened_after")
    assert bad.value.field == "opened_after"
    fallback = datetime(2026, 1, 1, tzinfo=UTC)
    assert instant_or("garbage", fallback) == fallback
    assert instant_or("", None) is None


def test_an_instant_without_an_offset_can_be_refused():
    """Monitoring reads events' instants strictly: a local time without an offset is ambiguous."""
    with pytest.raises(InvalidInput, match="needs a UTC offset") as bad:
        parse_instant("2026-11-29T10:00:00", "payload.received_at", offset_required=True)
    assert bad.value.field == "payload.received_at"
    assert parse_instant("2026-11-29T10:00:00+08:00", "at", offset_required=True) == \
        datetime(2026, 11, 29, 2, tzinfo=UTC)
    assert parse_instant("", "at", offset_required=True) is None
