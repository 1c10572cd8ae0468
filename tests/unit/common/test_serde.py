import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum

from services.common.serde import dumps, from_jsonable, to_jsonable


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
    cutoff: time | None = None  # an outlet's order cut-off


def test_round_trip_keeps_types():
    o = Outer("x", Colour.RED, (Inner(date(2026, 11, 28), datetime(2026, 11, 28, 3, tzinfo=UTC)),
                                Inner(date(2026, 11, 29))), {"a": 1}, cutoff=time(23, 30))
    data = to_jsonable(o)
    assert data["cutoff"] == "23:30:00"
    assert data["colour"] == "red" and data["inners"][0]["day"] == "2026-11-28"
    assert from_jsonable(Outer, data) == o


def test_dumps_writes_the_json_of_to_jsonable():
    """dumps (orjson) is what JSON columns and outbox bodies are written with; it must give the
    text json.dumps gives of to_jsonable, or stored aggregates would read back differently."""
    o = Outer("村 \"x\"\n", Colour.RED,
              (Inner(date(2026, 11, 28), datetime(2026, 11, 28, 3, 4, 5, 123, tzinfo=UTC)),
               Inner(date(2026, 11, 29), datetime(2026, 11, 29, 8))), {"a": 1, "b": -2**62}, cutoff=time(20))
    for value in (o, {"outer": o, Colour.RED: [1.5, 0.1, None, True], 7: ()}, [o, o]):
        assert dumps(value) == json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"))
