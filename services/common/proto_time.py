"""Datetimes ⇄ google.protobuf.Timestamp for the services' answers."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(at: datetime | str | None) -> Timestamp | None:
    """`at` as a Timestamp; a naive datetime or ISO text without an offset is taken as UTC;
    None or "" gives None (the field stays unset).

    Exact integer arithmetic instead of Timestamp.FromDatetime, which costs about three times as
    much (3.0 against 1.1 µs): every demand's answer carries two or three of these."""
    if at is None or at == "":
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    since = at - EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)
