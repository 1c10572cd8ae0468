"""The ingest's fast paths against the one-reading-at-a-time definitions: `ZoneAlarms.feed_sorted`
(each sensor's rules fed their series at once, `RuleEvaluator._quiet` for closed rules) must
give the transitions `ZoneAlarms.feed` gives, in the same order, and leave the same stored state;
`ThermalHistory.feed_series` the same sums to the bit as `feed`. Random zone histories with
excursions, data gaps, repeated and out-of-order instants, missing humidity, and groups cut
anywhere."""

from __future__ import annotations

from itertools import pairwise
from operator import attrgetter

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.catalogue import load_catalogue
from services.monitoring import state
from services.monitoring.domain.alarms import AlarmPolicy, ZoneAlarms
from services.monitoring.domain.spoilage import ThermalHistory

from .timeline import reading

CAT = load_catalogue()
CLASSES = sorted(CAT.storage_classes)
SENSORS = ("s1", "s2", "s3")

temps = st.one_of(st.floats(-20, 40, allow_nan=False).map(lambda t: round(t, 1)),
                  st.sampled_from([-15.0, -1.0, -0.5, 3.5, 4.0, 4.5, 7.9, 8.0, 8.1, 15.0, 30.0, 30.5]))
steps = st.sampled_from([0, 0, 1, 1, 1, 1, 2, 4, 10, 45, 600, -3])  # minutes to the next reading
histories = st.lists(st.tuples(st.sampled_from(SENSORS), steps, temps,
                               st.one_of(st.none(), st.sampled_from([50.0, 74.0, 76.0, 79.0, 81.0, 90.0]))),
                     min_size=1, max_size=160)


def _readings(history):
    out, minute = [], 0
    for i, (sensor, step, temp, rh) in enumerate(history):
        minute = max(0, minute + step)
        out.append(reading(minute, temp, rh=rh, sensor=sensor, seq=i))
    return out


def _zone(storage_class):
    return ZoneAlarms("d1", "z1", CAT.storage_classes[storage_class], AlarmPolicy())


def _stored(za):
    return ({s: state.sensor_evaluators(za, s) for s in SENSORS}, state.open_rules_state(za))


@settings(max_examples=300, deadline=None)
@given(storage_class=st.sampled_from(CLASSES), history=histories,
       cuts=st.lists(st.integers(1, 159), max_size=4))
def test_feeding_a_sorted_group_at_once_is_feeding_its_readings_one_by_one(storage_class, history, cuts):
    readings = _readings(history)
    one, batched = _zone(storage_class), _zone(storage_class)
    bounds = [0, *sorted(c for c in set(cuts) if c < len(readings)), len(readings)]
    expected, got = [], []
    for lo, hi in pairwise(bounds):  # groups: each sorted by (ts, sensor) as the ingest does
        group = sorted(readings[lo:hi], key=attrgetter("ts", "sensor"))
        for r in group:
            expected.extend(one.feed(r))
        got.extend(batched.feed_sorted(group))
    assert got == expected
    assert _stored(batched) == _stored(one)


@settings(max_examples=200, deadline=None)
@given(history=histories, cut=st.integers(0, 160), with_lots=st.booleans())
def test_a_thermal_series_adds_the_same_sums_to_the_bit(history, cut, with_lots):
    readings = sorted(_readings(history), key=attrgetter("ts", "sensor"))
    one, series = ThermalHistory("d1/z1"), ThermalHistory("d1/z1")
    for h in (one, series):  # with a lot's model the consumed sum is kept too
        if with_lots:
            h.totals(readings[0].ts, CAT.groups["pork"].spoilage)
    for r in readings:
        one.feed(r.ts, r.temp_c)
    for part in (readings[:cut], readings[cut:]):
        series.feed_series([r.ts for r in part], [r.temp_c for r in part])
    assert state.thermal_state(series) == state.thermal_state(one)


def test_a_quiet_cumulative_rule_still_forgets_beyond_time_that_left_its_window():
    """MED_HEAT_10H_CUM: 5 min above 8 °C, then 5 °C, and a reading 25 h later: the window no
    longer holds the 5 minutes, in the stored state as one-by-one feeding leaves it."""
    readings = [reading(m, 9.0) for m in range(6)] + [reading(6, 5.0), reading(7, 5.0), reading(1507, 5.0)]
    one, batched = _zone("medicine_2_8"), _zone("medicine_2_8")
    for r in readings:
        one.feed(r)
    batched.feed_sorted(readings)
    assert _stored(batched) == _stored(one)
    assert state.sensor_evaluators(one, "s1")["MED_HEAT_10H_CUM"]["iv"] == []
