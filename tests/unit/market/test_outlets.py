from datetime import time

import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.market.domain.outlets import nearest_outlet, serving_outlet, validate_outlet
from tests.unit.market.market_support import community, outlet


def test_nearest_is_the_closest_active_of_the_kind():
    c = community(lat=30.0, lon=120.0)
    near_inactive = outlet("A", 30.001, 120.0, active=False)
    near_other_kind = outlet("B", 30.002, 120.0, kind="supply_point")
    mid = outlet("C", 30.05, 120.0)
    far = outlet("D", 30.2, 120.0)
    assert nearest_outlet(c, [far, near_inactive, near_other_kind, mid], "supermarket").outlet_id == "C"
    assert nearest_outlet(c, [far, near_other_kind], "supply_point").outlet_id == "B"
    assert nearest_outlet(c, [near_inactive], "supermarket") is None


def test_nearest_ties_by_id():
    c = community(lat=30.0, lon=120.0)
    a, b = outlet("Z", 30.01, 120.0), outlet("M", 29.99, 120.0)
    assert nearest_outlet(c, [a, b], "supermarket").outlet_id == "M"
    assert nearest_outlet(c, [b, a], "supermarket").outlet_id == "M"


def test_hq_assignment_wins_over_nearest():
    c = community()
    near, far = outlet("N", 30.001, 120.0), outlet("F", 30.3, 120.0)
    assert serving_outlet(c, [near, far], "supermarket", {"C1": "F"}).outlet_id == "F"
    assert serving_outlet(c, [near, far], "supermarket", {}).outlet_id == "N"


def test_assignment_to_an_inactive_outlet_falls_back_to_nearest():
    c = community()
    near, far = outlet("N", 30.001, 120.0), outlet("F", 30.3, 120.0, active=False)
    assert serving_outlet(c, [near, far], "supermarket", {"C1": "F"}).outlet_id == "N"


def test_no_outlet_is_refused_bilingually():
    with pytest.raises(RuleRefused) as e:
        serving_outlet(community(), [outlet(active=False)], "supermarket", {})
    assert e.value.rule == "market_no_outlet"
    assert "没有" in e.value.message and "no active supermarket" in e.value.message


def test_validate_outlet():
    o = validate_outlet({"outlet_id": "O1", "name": " 华联 ", "kind": "supermarket", "township": "T",
                         "lat": 30.1, "lon": 120.2, "order_cutoff": "19:30"})
    assert (o.name, o.order_cutoff, o.active) == ("华联", time(19, 30), True)


@pytest.mark.parametrize("field,value", [("outlet_id", ""), ("name", None), ("kind", "shop"), ("lat", 91),
                                         ("lon", "x"), ("lat", float("nan")), ("order_cutoff", "25:00"),
                                         ("active", "yes")])
def test_validate_outlet_names_the_field(field, value):
    raw = {"outlet_id": "O1", "name": "n", "kind": "supermarket", "lat": 30, "lon": 120}
    raw[field] = value
    with pytest.raises(InvalidInput) as e:
        validate_outlet(raw)
    assert e.value.field == field
