"""The evaluation state codec (services/monitoring/state.py): state stored and restored between
batches must give exactly the transitions of one uninterrupted in-memory evaluation."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from services.common.catalogue import load_catalogue
from services.monitoring import state as st
from services.monitoring.domain.alarms import AlarmPolicy, RuleEvaluator, ZoneAlarms
from services.monitoring.domain.spoilage import ThermalHistory
from tests.unit.monitoring.timeline import at, reading, segments

CAT = load_catalogue()


def test_the_codec_knows_every_attribute_of_a_rule_evaluator():
    """Fails when the domain adds state to RuleEvaluator that the codec would silently drop."""
    for sc in CAT.storage_classes.values():
        for rule in sc.alarms:
            ev = RuleEvaluator(rule, depot="d", zone="z", sensor="s")
            assert set(vars(ev)) == st.EVALUATOR_FIELDS, rule.code


def _roundtrip_zone(za: ZoneAlarms, sc, policy) -> ZoneAlarms:
    """What another process would rebuild from the stored rows (through JSON text)."""
    fresh = st.new_zone_alarms(za.depot, za.zone, sc, policy)
    for sensor in st.zone_sensors(za):
        stored = json.loads(json.dumps(st.sensor_evaluators(za, sensor)))
        st.load_sensor_evaluators(fresh, sensor, stored)
    st.load_open_rules(fresh, json.loads(json.dumps(st.open_rules_state(za))))
    return fresh


@pytest.mark.parametrize("class_code", ["chilled", "medicine_2_8", "oxidizer", "frozen"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_restoring_between_every_batch_gives_the_transitions_of_one_uninterrupted_run(class_code, seed):
    sc = CAT.storage_classes[class_code]
    policy = AlarmPolicy()
    rng = random.Random(seed)
    limit = sc.alarms[0].limit
    readings = []
    temp = limit - 1.0
    for minute in range(0, 24 * 60, 1):
        temp += rng.uniform(-0.4, 0.45) if rng.random() < 0.9 else rng.uniform(-6, 9)
        temp = max(-40.0, min(45.0, temp))
        for sensor in ("s1", "s2"):
            if rng.random() < 0.03:
                continue  # a gap
            readings.append(reading(minute, round(temp + (0.3 if sensor == "s2" else 0.0), 2),
                                    rh=round(rng.uniform(60, 95), 1), sensor=sensor))
    whole = ZoneAlarms("d1", "z1", sc, policy).feed_many(readings)
    assert whole, "the series should cross the limits"

    za = st.new_zone_alarms("d1", "z1", sc, policy)
    pieces = []
    i = 0
    while i < len(readings):
        n = rng.randint(1, 40)
        pieces.extend(za.feed_many(readings[i:i + n]))
        za = _roundtrip_zone(za, sc, policy)
        i += n
    assert pieces == whole


def test_cumulative_window_state_survives_a_restore():
    sc = CAT.storage_classes["medicine_2_8"]
    policy = AlarmPolicy()
    # 6 h above 8 °C, 2 h inside, 5 h above: MED_HEAT_10H_CUM opens at 10 h beyond in 24 h
    rs = segments((360, 9.0), (120, 5.0), (300, 9.0))
    whole = [t for t in ZoneAlarms("d1", "z1", sc, policy).feed_many(rs) if t.rule_code == "MED_HEAT_10H_CUM"]
    za = st.new_zone_alarms("d1", "z1", sc, policy)
    got = []
    for chunk in (rs[:400], rs[400:401], rs[401:]):
        got += [t for t in za.feed_many(chunk) if t.rule_code == "MED_HEAT_10H_CUM"]
        za = _roundtrip_zone(za, sc, policy)
    assert got == whole and got[0].state == "opened"
    assert got[0].at == at(360 + 120 + 240)


def test_thermal_history_round_trips_exactly():
    model = CAT.groups["pork"].spoilage
    h = ThermalHistory("d1/z1")
    h.totals(at(0), model)
    for m in range(0, 600, 7):
        h.feed(at(m), 2.0 + (m % 50) / 10)
    back = st.restore_thermal("d1/z1", json.loads(json.dumps(st.thermal_state(h))))
    later = at(800)
    assert back.totals(later, model) == h.totals(later, model)
    assert back.last_ts == h.last_ts and back.last_temp_c == h.last_temp_c
    assert st.thermal_models(back) == 1


def test_instants_are_stored_exactly_to_the_microsecond():
    t = at(0) + timedelta(microseconds=123457)
    assert st.from_us(st.to_us(t)) == t
    assert st.from_us(None) is None
