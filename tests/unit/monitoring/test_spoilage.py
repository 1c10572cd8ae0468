from datetime import timedelta

import pytest

from services.common.catalogue import SpoilageModel, load_catalogue
from services.monitoring.domain.spoilage import (
    LotThermalAccount,
    ThermalHistory,
    evaluate_lot,
    mean_kinetic_temperature,
    open_account,
    rrs,
    sl_ref_for_lot,
)

from .timeline import T0

CAT = load_catalogue()
PORK = CAT.groups["pork"].spoilage  # SL_ref 7 d, Tref 4 °C, Tmin −8 °C
MED = CAT.storage_classes["medicine_2_8"]
CHILLED = CAT.storage_classes["chilled"]


def hours(h):
    return T0 + timedelta(hours=h)


def pork_lot(history, at=T0):
    lot = LotThermalAccount("L1", "PORK-KG", received_at=at, model=PORK, sl_ref_days=PORK.sl_ref_days)
    lot.enter(history, at)
    return lot


def test_rrs_square_root_model():
    assert PORK == SpoilageModel(sl_ref_days=7, t_ref_c=4, t_min_c=-8)
    assert rrs(4, PORK) == 1.0
    assert rrs(-8, PORK) == 0.0 and rrs(-20, PORK) == 0.0
    assert rrs(10, PORK) == pytest.approx(2.25)  # ((10 + 8) / (4 + 8))² = 1.5²


def test_remaining_at_tref_is_sl_ref_minus_elapsed_days():
    h = ThermalHistory("d1/z1")
    h.feed(T0, 4.0)
    lot = pork_lot(h)
    for i in range(1, 49):
        h.feed(hours(i), 4.0)
    assert lot.remaining_days(h, hours(48)) == pytest.approx(5.0)
    assert lot.remaining_days(h, hours(60)) == pytest.approx(4.5)  # last value held to `at`


def test_remaining_at_tmin_does_not_decrease():
    h = ThermalHistory("d1/z1")
    h.feed(T0, -8.0)
    lot = pork_lot(h)
    for i in range(1, 49):
        h.feed(hours(i), -8.0)
    assert lot.remaining_days(h, hours(48)) == 7.0


def test_remaining_at_10c_decreases_2_25_times_as_fast():
    # RRS(10 °C) = 2.25: two days consume 4.5 days of the 7-day SL_ref
    h = ThermalHistory("d1/z1")
    h.feed(T0, 10.0)
    lot = pork_lot(h)
    for i in range(1, 49):
        h.feed(hours(i), 10.0)
    assert lot.remaining_days(h, hours(48)) == pytest.approx(2.5)


def test_lot_is_charged_only_for_its_own_stay_and_carries_across_zones():
    a = ThermalHistory("d1/a")
    b = ThermalHistory("d1/b")
    lot = LotThermalAccount("L1", "PORK-KG", received_at=hours(24), model=PORK, sl_ref_days=7.0)
    for i in range(0, 73):
        a.feed(hours(i), 10.0)
        b.feed(hours(i), 4.0)
        if i == 24:
            lot.enter(a, hours(24))  # zone a has aged other lots for a day already
        if i == 48:
            lot.leave(a, hours(48))  # 1 day × 2.25
            lot.enter(b, hours(48))  # 1 day × 1
    assert lot.remaining_days(b, hours(72)) == pytest.approx(7 - 2.25 - 1)


def test_spoilage_finding_when_remaining_life_runs_out():
    # 16 °C: RRS = ((16 + 8)/12)² = 4, so 7 days of SL_ref last 1.75 days = 42 h
    h = ThermalHistory("d1/z1")
    h.feed(T0, 16.0)
    lot = pork_lot(h)
    findings = {}
    for i in range(1, 49):
        h.feed(hours(i), 16.0)
        findings[i] = evaluate_lot(lot, h, CHILLED, hours(i))
    assert findings[41] == []
    assert [f.kind for f in findings[43]] == ["spoilage"]
    assert findings[43][0].remaining_days == pytest.approx(7 - 4 * 43 / 24)
    assert "L1" in findings[43][0].text_zh and "no shelf life left" in findings[43][0].text_en


def test_mkt_of_a_constant_temperature_is_that_temperature():
    samples = [(hours(i), 5.0) for i in range(25)]
    assert mean_kinetic_temperature(samples) == pytest.approx(5.0, abs=1e-9)


def test_mkt_of_half_5c_half_25c():
    # T1 = 278.15 K, T2 = 298.15 K, ΔH/R = 10 000 K
    # e^(−10000/278.15) = e^(−35.95183) = 2.43400e−16
    # e^(−10000/298.15) = e^(−33.54016) = 2.71451e−15
    # mean = (2.43400e−16 + 2.71451e−15) / 2 = 1.478956e−15;  −ln(mean) = 34.14744
    # T_MK = 10000 / 34.14744 = 292.8477 K = 19.698 °C (the arithmetic mean would be 15 °C)
    samples = [(hours(0), 5.0), (hours(12), 25.0)]
    assert mean_kinetic_temperature(samples, until=hours(24)) == pytest.approx(19.698, abs=1e-3)


def test_mkt_finding_against_the_class_limit_after_the_minimum_stay():
    def mkt_findings(temp_c, at_hours):
        zone = ThermalHistory("d1/z1")
        zone.feed(T0, temp_c)
        lot = open_account("V1", "VACCINE-DOSE", CAT, received_at=T0)
        assert lot.sl_ref_days is None  # medicine is not a fresh-food spoilage item
        lot.enter(zone, T0)
        for i in range(1, at_hours + 1):
            zone.feed(hours(i), temp_c)
        return evaluate_lot(lot, zone, MED, hours(at_hours))

    assert mkt_findings(9.0, 12) == []  # shorter than the 24 h minimum stay
    found = mkt_findings(9.0, 48)
    assert [f.kind for f in found] == ["mkt"] and found[0].mkt_c == pytest.approx(9.0)
    assert found[0].mkt_limit_c == 8
    assert mkt_findings(7.0, 48) == []


def test_sl_ref_for_lot():
    pork = CAT.item("PORK-KG")  # shelf life 7 days
    assert sl_ref_for_lot(pork, CAT.groups["pork"], T0) == 7
    # arrives with half of its printed life left: starts with half of SL_ref
    assert sl_ref_for_lot(pork, CAT.groups["pork"], T0, T0 + timedelta(days=3.5)) == pytest.approx(3.5)
    cabbage = CAT.item("CABBAGE-KG")  # printed 21 days, group SL_ref 14
    assert sl_ref_for_lot(cabbage, CAT.groups["vegetables"], T0, T0 + timedelta(days=30)) == 14
    potato = CAT.item("POTATO-KG")  # ambient: the 4 °C model would not fit
    assert sl_ref_for_lot(potato, CAT.groups["vegetables"], T0) is None


def test_history_ignores_out_of_order_readings():
    h = ThermalHistory("d1/z1")
    assert h.feed(hours(1), 4.0)
    assert not h.feed(hours(0), 30.0)
