"""timestamp() gives exactly what Timestamp.FromDatetime gives, for any offset, before and
after 1970, to the microsecond."""

import random
from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.proto_time import timestamp


def reference(at: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at)
    return t


def test_timestamp_matches_protobuf_for_many_instants_and_offsets():
    rng = random.Random(7)
    for _ in range(20_000):
        at = datetime.fromtimestamp(rng.randint(-2_000_000_000, 4_000_000_000), UTC).replace(
            microsecond=rng.randint(0, 999_999))
        local = at.astimezone(timezone(timedelta(minutes=rng.choice([0, 480, -300, 345]))))
        assert timestamp(local) == reference(at), local


def test_naive_datetimes_and_iso_text_are_utc_and_empty_is_unset():
    assert timestamp(datetime(2026, 11, 29, 3, 0, 0, 250)) == reference(datetime(2026, 11, 29, 3, 0, 0, 250, UTC))
    assert timestamp("2026-11-29T03:00:00Z") == reference(datetime(2026, 11, 29, 3, tzinfo=UTC))
    assert timestamp("2026-11-29T11:00:00+08:00") == reference(datetime(2026, 11, 29, 3, tzinfo=UTC))
    assert timestamp(None) is None and timestamp("") is None
