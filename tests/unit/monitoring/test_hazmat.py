from dataclasses import replace

from services.common.catalogue import load_catalogue
from services.monitoring.domain.alarms import OPENED, ZoneAlarms
from services.monitoring.domain.hazmat import (
    SegregationPolicy,
    ZoneContents,
    audit_segregation,
    audit_zone,
    check_storage_conditions,
    open_conditions,
    violations_if_added,
)

from .timeline import at, segments

CAT = load_catalogue()
# the reference catalogue has no acid item; a test catalogue adds one
ACID_CAT = replace(CAT, items={**CAT.items, "HCL-1L": replace(
    CAT.items["PERACETIC-5L"], code="HCL-1L", name_en="hydrochloric acid 1 L", hazard="acid",
    storage_class="ambient")})


def zone(storage_class, *lots, name="z1"):
    return ZoneContents("d1", name, storage_class, tuple(lots))


def codes(violations):
    return sorted(v.code for v in violations)


def test_clean_zones_have_no_violations():
    zones = [zone("flammable", ("L1", "ETHANOL-75-500ML"), ("L2", "HAND-SANITIZER-500ML")),
             zone("oxidizer", ("L3", "DISINF-84-1L"), ("L4", "CLO2-POWDER-1KG"), name="z2"),
             zone("oxidizer", ("L5", "RICE-10KG"), name="z3")]  # non-hazmat goods: no rule
    assert audit_segregation(zones, CAT) == []


def test_flammable_with_oxidizer_in_one_zone():
    vs = audit_zone(zone("flammable", ("L1", "ETHANOL-75-500ML"), ("L2", "DISINF-84-1L")), CAT)
    assert codes(vs) == ["SEG_FLAMMABLE_WITH_OXIDIZER", "SEG_WRONG_CLASS"]
    mixed = next(v for v in vs if v.code == "SEG_FLAMMABLE_WITH_OXIDIZER")
    assert mixed.lot_ids == ("L1", "L2") and mixed.zone_key == "d1/z1"
    assert "易燃品与氧化剂混存" in mixed.text_zh and "flammable and oxidizer" in mixed.text_en
    wrong = next(v for v in vs if v.code == "SEG_WRONG_CLASS")
    assert wrong.lot_ids == ("L2",) and "belongs in oxidizer" in wrong.text_en


def test_acid_with_oxidizer():
    vs = audit_zone(zone("oxidizer", ("L1", "PERACETIC-5L"), ("L2", "HCL-1L")), ACID_CAT)
    assert codes(vs) == ["SEG_ACID_WITH_OXIDIZER", "SEG_WRONG_CLASS"]


def test_hazmat_item_in_a_zone_of_the_wrong_class():
    vs = audit_zone(zone("ambient", ("L1", "ETHANOL-75-500ML")), CAT)
    assert codes(vs) == ["SEG_WRONG_CLASS"]
    allowed = SegregationPolicy(hazard_classes={"flammable": ("flammable", "ambient")})
    assert audit_zone(zone("ambient", ("L1", "ETHANOL-75-500ML")), CAT, allowed) == []


def test_violations_if_added_reports_only_what_involves_the_new_lot():
    ox = zone("oxidizer", ("L1", "DISINF-84-1L"))
    assert violations_if_added(ox, "L2", "CLO2-POWDER-1KG", CAT) == []
    assert codes(violations_if_added(ox, "L2", "ETHANOL-75-500ML", CAT)) == [
        "SEG_FLAMMABLE_WITH_OXIDIZER", "SEG_WRONG_CLASS"]


def test_storage_conditions_use_the_alarm_evaluator():
    flam = CAT.storage_classes["flammable"]
    readings = segments((32, 31.0))
    ts = check_storage_conditions("d1", "z1", flam, readings)
    assert [(t.rule_code, t.state, t.at) for t in ts] == [("FLM_HOT_30M", OPENED, at(30))]
    assert ts == ZoneAlarms("d1", "z1", flam).feed_many(readings)
    assert list(open_conditions(ts)) == ["FLM_HOT_30M"]
    assert open_conditions(check_storage_conditions("d1", "z1", flam, segments((40, 25.0)))) == {}
