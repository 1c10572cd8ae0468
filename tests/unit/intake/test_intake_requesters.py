import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.intake.domain import (
    DemandPolicy,
    RequesterKind,
    RiskLevel,
    UnitType,
    changed_fields,
    register_requester,
    update_requester,
)
from tests.unit.intake.intake_support import REGISTERED, area_spec, local, unit_spec

LATER = local(2026, 11, 28, 9)


def field_of(spec) -> str:
    with pytest.raises(InvalidInput) as e:
        register_requester(spec, REGISTERED)
    return e.value.field


def test_register_village():
    r = register_requester(area_spec(), REGISTERED)
    assert r.kind is RequesterKind.VILLAGE and r.is_area
    assert r.risk_level is RiskLevel.SEALED
    assert (r.population, r.households, r.vulnerable.infants) == (1000, 320, 9)
    assert r.drop_points[0].window_start == "08:00"
    assert r.drop_points[0].window_end == "10:30"
    assert (r.version, r.registered_at, r.updated_at) == (1, REGISTERED, REGISTERED)
    assert r.unit_type is None and r.headcount is None


@pytest.mark.parametrize("given,expected", [
    ("high", RiskLevel.SEALED), ("medium", RiskLevel.CONTROLLED), ("low", RiskLevel.PREVENTION),
    ("HIGH", RiskLevel.SEALED), ("Sealed", RiskLevel.SEALED), ("封控区", RiskLevel.SEALED),
    ("管控区", RiskLevel.CONTROLLED), ("防范区", RiskLevel.PREVENTION),
])
def test_risk_level_aliases(given, expected):
    assert register_requester(area_spec(risk_level=given), REGISTERED).risk_level is expected


def test_register_each_unit_type():
    for ut in UnitType:
        r = register_requester(unit_spec(ut.value), REGISTERED)
        assert r.kind is RequesterKind.UNIT and r.unit_type is ut
        assert (r.headcount, r.beds, r.population, r.risk_level) == (100, 50, None, None)


def test_unit_type_as_kind_and_chinese_kind():
    r = register_requester(unit_spec("school", kind="敬老院", unit_type=None), REGISTERED)
    assert (r.kind, r.unit_type) == (RequesterKind.UNIT, UnitType.NURSING_HOME)
    r = register_requester(unit_spec("school", kind="fever_clinic", unit_type=None), REGISTERED)
    assert r.unit_type is UnitType.FEVER_CLINIC
    assert field_of(unit_spec("school", kind="hospital")) == "unit_type"  # contradicts
    assert register_requester(area_spec(kind="社区"), REGISTERED).kind is RequesterKind.COMMUNITY


@pytest.mark.parametrize("over,field", [
    ({"population": 0}, "population"),
    ({"population": -5}, "population"),
    ({"population": 12.5}, "population"),
    ({"population": True}, "population"),
    ({"households": 0}, "households"),
    ({"households": 1001}, "households"),
    ({"risk_level": "purple"}, "risk_level"),
    ({"risk_level": None}, "risk_level"),
    ({"location": {"lat": 91, "lon": 114}}, "location.lat"),
    ({"location": {"lat": 30, "lon": -180.5}}, "location.lon"),
    ({"location": {"lat": float("nan"), "lon": 1}}, "location.lat"),
    ({"location": None}, "location"),
    ({"id": "bad id!"}, "id"),
    ({"id": ""}, "id"),
    ({"id": "x" * 65}, "id"),
    ({"name": "   "}, "name"),
    ({"name": "村" * 101}, "name"),
    ({"township": ""}, "township"),
    ({"kind": "planet"}, "kind"),
    ({"headcount": 10}, "headcount"),
    ({"unit_type": "school"}, "unit_type"),
    ({"vulnerable": {"infants": -1}}, "vulnerable.infants"),
    ({"vulnerable": {"elderly_alone": 1001}}, "vulnerable.elderly_alone"),
    ({"vulnerable": {"cats": 2}}, "vulnerable.cats"),
    ({"colour": "red"}, "colour"),
])
def test_area_validation_names_the_field(over, field):
    assert field_of(area_spec(**over)) == field


def test_households_cannot_exceed_population_message():
    with pytest.raises(InvalidInput, match=r"households: must be <= 1000, got 1001"):
        register_requester(area_spec(households=1001), REGISTERED)


@pytest.mark.parametrize("dp,field", [
    ({"window_start": "10:30", "window_end": "08:00"}, "drop_points[1].window.end"),
    ({"window_start": "10:00", "window_end": "10:00"}, "drop_points[1].window.end"),
    ({"window_start": "25:00", "window_end": "26:00"}, "drop_points[1].window.start"),
    ({"window_start": "8am", "window_end": "10:00"}, "drop_points[1].window.start"),
    ({"id": "DP-1"}, "drop_points[1].id"),
    ({"name": ""}, "drop_points[1].name"),
    ({"location": {"lat": 0, "lon": 200}}, "drop_points[1].location.lon"),
])
def test_drop_point_validation(dp, field):
    good = {"id": "DP-2", "name": "小卖部", "location": {"lat": 30.5, "lon": 114.3},
            "window_start": "14:00", "window_end": "16:00"}
    spec = area_spec(drop_points=[area_spec()["drop_points"][0], {**good, **dp}])
    assert field_of(spec) == field


def test_drop_point_without_window_receives_all_day():
    spec = area_spec(drop_points=[{"id": "DP-9", "name": "村口", "location": {"lat": 1, "lon": 1}}])
    dp = register_requester(spec, REGISTERED).drop_points[0]
    assert (dp.window_start, dp.window_end) == ("00:00", "23:59")


def test_requester_without_drop_points_is_delivered_at_its_location():
    r = register_requester(area_spec(drop_points=[]), REGISTERED)
    (point,) = r.delivery_points()
    assert point.location == r.location


@pytest.mark.parametrize("over,field", [
    ({"headcount": 0}, "headcount"),
    ({"headcount": None}, "headcount"),
    ({"beds": -1}, "beds"),
    ({"unit_type": "zoo"}, "unit_type"),
    ({"population": 100}, "population"),
    ({"risk_level": "sealed"}, "risk_level"),
    ({"vulnerable": {"infants": 3}}, "vulnerable"),
])
def test_unit_validation_names_the_field(over, field):
    assert field_of(unit_spec("hospital", **over)) == field


def test_spreadsheet_style_values_are_accepted():
    r = register_requester(area_spec(population="1,200", households=300.0,
                                     location={"lat": "30.5", "lon": "114.25"}), REGISTERED)
    assert (r.population, r.households, r.location.lon) == (1200, 300, 114.25)
    assert field_of(area_spec(population="1200人")) == "population"


def test_naive_time_is_refused():
    from datetime import datetime
    with pytest.raises(ValueError):
        register_requester(area_spec(), datetime(2026, 11, 28, 9))


def test_norm_basis():
    village = register_requester(area_spec(), REGISTERED)
    hospital = register_requester(unit_spec("hospital"), REGISTERED)
    assert village.norm_basis(DemandPolicy()) == 1000
    assert hospital.norm_basis(DemandPolicy()) == 150
    assert hospital.norm_basis(DemandPolicy(unit_basis_includes_beds=False)) == 100


def test_update_changes_fields_and_bumps_version():
    r = register_requester(area_spec(), REGISTERED)
    u = update_requester(r, {"risk_level": "low", "population": 1100}, LATER)
    assert u.risk_level is RiskLevel.PREVENTION and u.population == 1100
    assert (u.version, u.registered_at, u.updated_at) == (2, REGISTERED, LATER)
    assert changed_fields(r, u) == ("population", "risk_level")
    assert u.drop_points == r.drop_points  # untouched fields kept


def test_update_without_change_keeps_version():
    r = register_requester(area_spec(), REGISTERED)
    assert update_requester(r, {"risk_level": "sealed", "id": "V-001", "kind": "village"},
                            LATER) is r


def test_update_is_validated_as_a_whole():
    r = register_requester(area_spec(), REGISTERED)
    with pytest.raises(InvalidInput) as e:
        update_requester(r, {"population": 300}, LATER)  # households 320 > 300
    assert e.value.field == "households"


def test_update_cannot_change_id_or_kind():
    r = register_requester(area_spec(), REGISTERED)
    for changes, field in (({"id": "V-999"}, "id"), ({"kind": "community"}, "kind")):
        with pytest.raises(InvalidInput) as e:
            update_requester(r, changes, LATER)
        assert e.value.field == field


def test_update_with_stale_version_conflicts():
    r = register_requester(area_spec(), REGISTERED)
    u = update_requester(r, {"households": 321}, LATER, expected_version=1)
    with pytest.raises(RuleRefused, match="VERSION_MISMATCH"):
        update_requester(u, {"households": 322}, LATER, expected_version=1)


def test_update_unit():
    r = register_requester(unit_spec("isolation_site"), REGISTERED)
    u = update_requester(r, {"beds": 200}, LATER)
    assert (u.beds, u.headcount, u.version) == (200, 100, 2)
    with pytest.raises(InvalidInput) as e:
        update_requester(r, {"population": 5}, LATER)
    assert e.value.field == "population"


def test_update_unit_type_through_kind_spelling():
    r = register_requester(unit_spec("hospital"), REGISTERED)
    u = update_requester(r, {"kind": "fever_clinic"}, LATER)
    assert u.unit_type is UnitType.FEVER_CLINIC and u.kind is RequesterKind.UNIT
    with pytest.raises(InvalidInput) as e:
        update_requester(r, {"kind": "village"}, LATER)
    assert e.value.field == "kind"


def test_update_replaces_vulnerable_counts_whole():
    r = register_requester(area_spec(), REGISTERED)
    u = update_requester(r, {"vulnerable": {"infants": 5}}, LATER)
    assert (u.vulnerable.infants, u.vulnerable.elderly_alone) == (5, 0)


def test_window_is_canonical_hh_mm():
    spec = area_spec(drop_points=[{"id": "DP-1", "name": "村口", "location": {"lat": 1, "lon": 1},
                                   "window": {"start": "8:00", "end": "10:30:00"}}])
    dp = register_requester(spec, REGISTERED).drop_points[0]
    assert (dp.window_start, dp.window_end) == ("08:00", "10:30")


def test_aggregates_round_trip_through_serde(sealed_village, make_unit):
    import json

    from services.common.serde import from_jsonable, to_jsonable
    from services.intake.domain import Requester
    for r in (sealed_village, make_unit("hospital")):
        assert from_jsonable(Requester, json.loads(json.dumps(to_jsonable(r)))) == r
