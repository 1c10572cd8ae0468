from datetime import timedelta

import pytest

from services.common.catalogue import load_catalogue
from services.monitoring.domain.alarms import (
    CLEARED,
    OPENED,
    UPDATED,
    AlarmPolicy,
    ZoneAlarms,
    evaluate_history,
)

from .timeline import at, reading, segments

CAT = load_catalogue()
CHILLED = CAT.storage_classes["chilled"]
MED = CAT.storage_classes["medicine_2_8"]
OXIDIZER = CAT.storage_classes["oxidizer"]


def run(storage_class, readings, policy=None):
    return evaluate_history("d1", "z1", storage_class, readings, policy or AlarmPolicy())


def states(transitions, rule_code):
    return [(t.state, t.at) for t in transitions if t.rule_code == rule_code]


# --- consecutive: CHL_WARM_30M (> 4 °C for 30 min)

def test_chilled_4_5_for_29_min_raises_nothing():
    # 4.5 °C at minutes 0..29: 29 min measured beyond the limit, then back to 3 °C
    ts = run(CHILLED, segments((30, 4.5), (10, 3.0)))
    assert ts == []


def test_chilled_4_5_for_31_min_opens_chl_warm_30m_at_minute_30():
    ts = run(CHILLED, segments((32, 4.5)))
    assert states(ts, "CHL_WARM_30M") == [(OPENED, at(30))]
    t = ts[0]
    assert t.evidence.first_beyond_at == at(0)
    assert t.evidence.minutes_beyond == pytest.approx(30)
    assert t.evidence.peak == 4.5
    assert t.spoilage and "高于4°C" in t.text_zh and "above 4 °C" in t.text_en
    assert [t.rule_code for t in ts] == ["CHL_WARM_30M"]


def test_a_data_gap_longer_than_max_gap_restarts_the_run():
    # max gap = 3 × 60 s. Beyond 0..14, silent 15..19, beyond again from 20: the run restarts at 20
    readings = segments((15, 4.5)) + segments((31, 4.5), start=20)
    ts = run(CHILLED, readings)
    assert states(ts, "CHL_WARM_30M") == [(OPENED, at(50))]


def test_readings_every_2_minutes_are_still_continuous():
    readings = [reading(m, 4.5) for m in range(0, 32, 2)]
    assert states(run(CHILLED, readings), "CHL_WARM_30M") == [(OPENED, at(30))]


def test_a_reading_inside_the_limit_breaks_the_run():
    readings = segments((20, 4.5), (1, 3.8), (25, 4.5))
    assert run(CHILLED, readings) == []


# --- cumulative: MED_HEAT_10H_CUM (> 8 °C for 10 h within 24 h)

def test_med_9h50m_cumulative_within_24h_raises_nothing():
    # beyond at minutes 0..299 (each held 1 min → 300 min) and 420..709 (290 min): 590 min = 9 h 50
    readings = segments((300, 9.0), (120, 5.0), (290, 9.0), (730, 5.0))
    assert run(MED, readings) == []


def test_med_10h10m_cumulative_opens_when_the_total_reaches_10h():
    # 300 min in the first block; the second block starts at 420 and reaches 300 more at 720
    readings = segments((300, 9.0), (120, 5.0), (310, 9.0), (770, 5.0))
    ts = run(MED, readings)
    opened = [t for t in ts if t.state == OPENED]
    assert [(t.rule_code, t.at) for t in opened] == [("MED_HEAT_10H_CUM", at(720))]
    assert opened[0].evidence.minutes_beyond == pytest.approx(600)
    assert opened[0].evidence.first_beyond_at == at(0)
    assert opened[0].evidence.peak == 9.0
    # cumulative clear: back in range since 730, but the 24 h window holds 610 min until the
    # window start passes minute 10; at 1451 the window [11, 1451] holds 289 + 310 = 599 < 600
    assert states(ts, "MED_HEAT_10H_CUM")[-1] == (CLEARED, at(1451))


def test_cumulative_time_outside_the_24h_window_does_not_count():
    # 6 h beyond, 20 h fine, 5 h beyond: 11 h in total but never 10 h within 24 h
    readings = segments((360, 9.0), (1200, 5.0), (300, 9.0))
    assert run(MED, readings) == []


def test_cumulative_hold_is_capped_at_max_gap():
    # two readings at 9 °C 10 h apart: the first counts only max gap (3 min), not 10 h
    readings = [reading(0, 9.0), reading(600, 9.0), reading(601, 5.0)]
    assert run(MED, readings) == []


# --- freeze: MED_FREEZE_60M (≤ −0.5 °C for 60 min)

def test_med_freeze_minus_0_6_for_61_min_opens():
    ts = run(MED, segments((62, -0.6)))
    assert [(t.rule_code, t.state, t.at) for t in ts] == [("MED_FREEZE_60M", OPENED, at(60))]


def test_med_freeze_59_min_or_above_minus_0_5_raises_nothing():
    assert run(MED, segments((60, -0.6), (5, 3.0))) == []
    assert run(MED, segments((120, -0.4))) == []


# --- instant

def test_chilled_above_8_opens_instantly():
    ts = ZoneAlarms("d1", "z1", CHILLED).feed(reading(0, 8.5))
    assert [(t.rule_code, t.state, t.at) for t in ts] == [("CHL_HOT_INSTANT", OPENED, at(0))]


def test_chilled_exactly_8_is_not_beyond():
    assert run(CHILLED, [reading(0, 8.0)]) == []


# --- hysteresis

def test_wobbling_3_9_and_4_1_after_an_open_alarm_neither_clears_nor_reopens():
    opened = segments((32, 4.5))  # opens at 30
    wobble = [reading(32 + i, 3.9 if i % 2 == 0 else 4.1) for i in range(120)]
    back = segments((10, 3.4), start=152)
    ts = [t for t in run(CHILLED, opened + wobble + back) if t.rule_code == "CHL_WARM_30M"]
    assert [t.state for t in ts if t.state != UPDATED] == [OPENED, CLEARED]
    # 3.4 is inside 4 °C by more than the 0.5 °C deadband from 152; clear after 5 min
    assert ts[-1].at == at(157)


def test_slow_wobble_flaps_without_deadband_and_not_with_it():
    # 3.9 for 6 min (5 min span: long enough to clear), 4.1 for 31 min (30 min span: to re-open)
    wobble = segments((6, 3.9), (31, 4.1), (6, 3.9), (31, 4.1), start=32)
    readings = segments((32, 4.5)) + wobble

    def kinds(policy):
        return [t.state for t in run(CHILLED, readings, policy)
                if t.rule_code == "CHL_WARM_30M" and t.state != UPDATED]

    assert kinds(AlarmPolicy()) == [OPENED]
    assert kinds(AlarmPolicy(deadband_temp_c=0.0)) == [OPENED, CLEARED, OPENED, CLEARED, OPENED]


def test_clear_needs_the_whole_clear_duration():
    readings = segments((32, 4.5), (5, 3.0), (1, 4.2), (6, 3.0))
    ts = states(run(CHILLED, readings), "CHL_WARM_30M")
    # 3.0 at 32..36 is 4 min; 4.2 at 37 resets; 3.0 from 38 clears at 43
    assert ts == [(OPENED, at(30)), (CLEARED, at(43))]


def test_open_alarm_updates_when_the_peak_worsens():
    readings = segments((32, 4.5), (1, 5.2), (1, 5.3))
    ts = states(run(CHILLED, readings), "CHL_WARM_30M")
    assert ts == [(OPENED, at(30)), (UPDATED, at(32))]


# --- zone level, ordering, metrics

def test_zone_alarm_open_while_any_sensor_holds_it():
    za = ZoneAlarms("d1", "z1", CHILLED)
    out = []
    for m in range(40):
        out += za.feed(reading(m, 4.5, sensor="a"))
        out += za.feed(reading(m, 4.5 if m >= 2 else 3.0, sensor="b"))
    for m in range(40, 50):
        out += za.feed(reading(m, 3.0, sensor="a"))
        out += za.feed(reading(m, 4.5, sensor="b"))
    warm = [(t.state, t.sensor, t.at) for t in out if t.rule_code == "CHL_WARM_30M"]
    assert warm[0] == (OPENED, "a", at(30))
    assert (UPDATED, "b", at(32)) in warm
    assert CLEARED not in [s for s, _, _ in warm]  # a cleared at 45, b still open
    assert za.open_rules() == {"CHL_WARM_30M": frozenset({"b"})}


def test_late_reading_is_skipped_by_the_evaluator():
    za = ZoneAlarms("d1", "z1", CHILLED)
    za.feed(reading(10, 3.0))
    assert za.feed(reading(5, 9.0)) == []
    assert za.evaluator("s1", CHILLED.alarms[0]).skipped == 1


def test_humidity_rule_uses_rh_and_ignores_readings_without_rh():
    readings = segments((32, 25.0), rh=85.0)
    ts = run(OXIDIZER, readings)
    assert [(t.rule_code, t.at) for t in ts] == [("OXD_HUMID_30M", at(30))]
    assert run(OXIDIZER, segments((40, 25.0))) == []


def test_per_sensor_reporting_interval_sets_the_max_gap():
    za = ZoneAlarms("d1", "z1", CHILLED, intervals={"s1": timedelta(minutes=10)})
    out = []
    for m in range(0, 31, 10):  # every 10 min; max gap 30 min
        out += za.feed(reading(m, 4.5))
    assert [(t.rule_code, t.at) for t in out] == [("CHL_WARM_30M", at(30))]


def test_reading_of_another_zone_is_refused():
    with pytest.raises(ValueError):
        ZoneAlarms("d1", "z1", CHILLED).feed(reading(0, 3.0, zone="z2"))
