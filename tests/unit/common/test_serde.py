from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from services.common.serde import from_jsonable, to_jsonable


class Colour(StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Inner:
    day: date
    at: datetime | None = None


@dataclass(frozen=True)
class Outer:
    name: str
    colour: Colour
    inners: tuple[Inner, ...]
    counts: dict[str, int] = field(default_factory=dict)
    maybe: int | None = None


def test_round_trip_keeps_types():
    o = Outer("x", Colour.RED, (Inner(date(2026, 11, 28), datetime(2026, 11, 28, 3, tzinfo=UTC)),
                                Inner(date(2026, 11, 29))), {"a": 1})
    data = to_jsonable(o)
    assert data["colour"] == "red" and data["inners"][0]["day"] == "2026-11-28"
    assert from_jsonable(Outer, data) == o
