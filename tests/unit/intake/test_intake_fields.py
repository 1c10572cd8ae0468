from datetime import date, datetime, time
from enum import StrEnum
from types import SimpleNamespace

import pytest

from services.common.errors import InvalidInput
from services.intake.domain import DemandStatus, UnitType
from services.intake.domain.fields import (
    as_choice,
    as_date,
    as_int,
    as_local_time,
    as_text,
    get,
    is_blank,
)


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize("value,expected", [(3, 3), (3.0, 3), ("3", 3), (" 1,200 ", 1200), ("7.0", 7)])
def test_as_int_accepts_whole_numbers(value, expected):
    assert as_int(value, "n") == expected


@pytest.mark.parametrize("value", [True, None, 2.5, float("inf"), "2.5", "", "x", [1]])
def test_as_int_refuses_the_rest(value):
    with pytest.raises(InvalidInput) as e:
        as_int(value, "lines[0].quantity")
    assert e.value.field == "lines[0].quantity"


def test_as_text():
    assert as_text("  东风村 ", "name") == "东风村"
    assert as_text(None, "note", required=False) == ""
    for bad in ("", "a\x00b", 5):
        with pytest.raises(InvalidInput):
            as_text(bad, "name")


def test_as_date_and_time():
    assert as_date("2026-11-28", "d") == date(2026, 11, 28)
    assert as_local_time("8:05", "t") == time(8, 5)
    assert as_local_time("23:59:30", "t") == time(23, 59, 30)
    with pytest.raises(InvalidInput):
        as_date(datetime(2026, 11, 28, 9), "d")  # an instant is not a day
    with pytest.raises(InvalidInput):
        as_local_time("24:00", "t")


def test_as_choice_reads_protobuf_enum_names():
    assert as_choice("UNIT_TYPE_FEVER_CLINIC", "u", UnitType) is UnitType.FEVER_CLINIC
    assert as_choice("DEMAND_STATUS_PARTLY_FULFILLED", "s", DemandStatus) is DemandStatus.PARTLY_FULFILLED
    assert as_choice("DEMAND_STATUS_FULFILLED", "s", DemandStatus) is DemandStatus.FULFILLED
    with pytest.raises(InvalidInput, match="is required") as e:
        as_choice("UNIT_TYPE_UNSPECIFIED", "unit_type", UnitType)
    assert e.value.field == "unit_type"
    assert is_blank("RISK_LEVEL_UNSPECIFIED") and not is_blank(0)


class _Field:
    LABEL_REPEATED = 3

    def __init__(self, presence=False, enum=None, repeated=False):
        self.has_presence, self.enum_type = presence, enum
        self.label = 3 if repeated else 1


class _FakeMessage:
    """Just enough of a protobuf message for fields.get(): DESCRIPTOR and HasField."""

    DESCRIPTOR = SimpleNamespace(fields_by_name={
        "population": _Field(presence=True),
        "kind": _Field(enum=SimpleNamespace(values_by_number={3: SimpleNamespace(name="REQUESTER_KIND_UNIT")})),
        "name": _Field(),
        "drop_points": _Field(repeated=True),
    })

    def __init__(self, **values):
        self._set = set(values)
        self.population = values.get("population", 0)
        self.kind = values.get("kind", 0)
        self.name = values.get("name", "")
        self.drop_points = values.get("drop_points", [])

    def HasField(self, key):  # noqa: N802 - protobuf's spelling
        return key in self._set


def test_get_reads_protobuf_messages_by_duck_typing():
    m = _FakeMessage(kind=3, name="x")
    assert get(m, "population") is None           # optional scalar not set
    assert get(_FakeMessage(population=0), "population") == 0
    assert get(m, "kind") == "REQUESTER_KIND_UNIT"
    assert get(_FakeMessage(), "kind") == 0       # unknown number stays as is
    assert get(m, "name") == "x" and get(m, "drop_points") == []
    assert get(m, "missing", "d") == "d"
    assert get({"a": 1}, "a") == 1 and get(None, "a", 2) == 2
