"""Days and instants read from requests and event payloads: the one parser. The gRPC guard
(services.common.fields) already bounds their range; this only reads them, and an unreadable
one is InvalidInput naming its field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.common.errors import InvalidInput


def parse_day(value: Any, field: str, *, required: bool = False) -> date | None:
    """A day YYYY-MM-DD (a date passes as it is); None when empty, unless `required`."""
    if isinstance(value, datetime):
        raise InvalidInput(field, "must be a day (YYYY-MM-DD), not an instant")
    if isinstance(value, date):
        return value
    if value is None or not str(value).strip():
        if required:
            raise InvalidInput(field, "required")
        return None
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(field, f"must be a day YYYY-MM-DD, got {value!r}") from None


def parse_instant(value: Any, field: str, *, offset_required: bool = False) -> datetime | None:
    """An ISO-8601 instant (Z or an offset; without one it is taken as UTC, or refused when
    `offset_required`) as aware UTC; None when empty."""
    if isinstance(value, datetime):
        at = value
    elif value is None or not str(value).strip():
        return None
    else:
        try:
            at = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(field, f"must be an ISO-8601 instant, got {value!r}") from None
    if at.tzinfo is None and offset_required:
        raise InvalidInput(field, f"needs a UTC offset (Z or +08:00), got {value!r}")
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def instant_or(value: Any, default: datetime | None) -> datetime | None:
    """parse_instant, or `default` when the value is empty or unreadable (an event's optional
    time stamp, where a bad one must not refuse the event)."""
    try:
        at = parse_instant(value, "")
    except InvalidInput:
        return default
    return default if at is None else at
