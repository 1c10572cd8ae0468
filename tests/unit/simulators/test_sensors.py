"""The sensor model of the gateway simulator: deterministic, physical enough, faults as scripted."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.monitoring.domain.readings import parse_message
from simulators.sensors import (
    GARBAGE_KINDS,
    MS_PER_MIN,
    Batcher,
    ScenarioError,
    Simulation,
    encode_batches,
    encode_single,
    parse_at,
    parse_scenario,
    utc,
)

SCENARIOS = Path(__file__).resolve().parents[3] / "simulators" / "scenarios"
START = "2026-11-28T06:00:00+08:00"
QUIET = {"door_rate_per_h": 0.0, "defrost_every_h": None}  # no door spikes, no defrost


def scenario(faults=(), quiet=True, interval_s=60, **extra):
    prof = QUIET if quiet else {}
    return {
        "name": "t", "start": START, "interval_s": interval_s,
        "depots": [
            {"id": "cs", "zones": [
                {"id": "chl", "storage_class": "chilled", "sensors": 2, "profile": prof},
                {"id": "frz", "storage_class": "frozen", "sensors": 2, "profile": prof},
            ]},
            {"id": "wh", "zones": [
                {"id": "oxd", "storage_class": "oxidizer", "sensors": 2, "profile": prof},
                {"id": "amb", "storage_class": "ambient", "sensors": 2, "profile": prof},
            ]},
        ],
        "faults": list(faults),
        **extra,
    }


def run(data, hours=4.0, seed=7):
    sim = Simulation(data, seed=seed)
    rs = sim.step(sim.start_ms + round(hours * 3_600_000)) + sim.drain()
    return sim, rs


def by_sensor(readings):
    out = defaultdict(list)
    for r in readings:
        out[(r.depot, r.zone, r.sensor)].append(r)
    return out


def minutes_after(start_ms: int, r) -> float:
    return (r.measured_at - start_ms) / MS_PER_MIN


# -- determinism and sequence numbers


def test_same_seed_same_readings_however_the_run_is_stepped():
    data = yaml.safe_load((SCENARIOS / "sensors_faults.yaml").read_text())
    a = Simulation(data, seed=3)
    one_go = a.step(a.start_ms + 5 * 3_600_000) + a.drain()
    b = Simulation(data, seed=3)
    stepped = []
    for k in range(1, 5 * 60 + 1):
        stepped += b.step(b.start_ms + k * MS_PER_MIN)
    stepped += b.drain()
    assert one_go == stepped
    c = Simulation(data, seed=4)
    other = c.step(c.start_ms + 5 * 3_600_000) + c.drain()
    assert [r.temp_c for r in other] != [r.temp_c for r in one_go]


def test_seq_increases_by_one_per_sensor_and_readings_come_every_interval():
    sim, rs = run(scenario(interval_s=30), hours=2)
    per = by_sensor(rs)
    assert len(per) == 8
    for readings in per.values():
        assert [r.seq for r in readings] == list(range(1, len(readings) + 1))
        gaps = {b.measured_at - a.measured_at for a, b in zip(readings, readings[1:], strict=False)}
        assert gaps == {30_000}
        assert all(r.ts == r.measured_at == r.sent_at for r in readings)
    assert [r.sent_at for r in rs] == sorted(r.sent_at for r in rs)


def test_set_points_per_storage_class():
    sim, rs = run(scenario(), hours=24)
    mean = {}
    for (_, zone, _), readings in by_sensor(rs).items():
        mean.setdefault(zone, []).extend(r.temp_c for r in readings)
    mean = {z: sum(v) / len(v) for z, v in mean.items()}
    assert mean["chl"] == pytest.approx(2.0, abs=0.4)
    assert mean["frz"] == pytest.approx(-20.0, abs=0.4)
    assert mean["amb"] == pytest.approx(21.0, abs=0.6)


def test_ambient_zones_drift_between_night_and_afternoon():
    sim, rs = run(scenario(), hours=24)
    amb = [r for r in rs if r.zone == "amb"]
    tz = sim.config.start.tzinfo

    def at_hour(h):
        return [r.temp_c for r in amb if utc(r.measured_at).astimezone(tz).hour == h]

    night, afternoon = at_hour(3), at_hour(15)
    assert sum(night) / len(night) < 19.0
    assert sum(afternoon) / len(afternoon) > 23.0
    assert 17.0 < min(r.temp_c for r in amb) and max(r.temp_c for r in amb) < 25.0


# -- normal disturbances


def test_defrost_cycles_are_periodic_and_bounded():
    data = scenario()
    data["depots"][0]["zones"][0]["profile"] = {"door_rate_per_h": 0.0}  # chilled keeps its defrost
    sim, rs = run(data, hours=24)
    zone = sim.sensor("cs", "chl", "s1").zone
    prof = zone.cfg.profile
    rises = [sim.defrost_c(zone, sim.start_ms + m * MS_PER_MIN) for m in range(24 * 60)]
    assert all(0.0 <= d <= prof.defrost_rise_c for d in rises)
    starts = [m for m in range(1, len(rises)) if rises[m] > 0 and rises[m - 1] == 0]
    assert len(starts) == 4  # every 6 h
    assert {b - a for a, b in zip(starts, starts[1:], strict=False)} == {360}
    assert sum(1 for d in rises if d > 0) <= 4 * prof.defrost_min
    chl = [r.temp_c for r in rs if r.zone == "chl"]
    assert max(chl) > 2.0 + 0.8 * prof.defrost_rise_c  # the defrost shows in the readings
    assert max(chl) < 2.0 + 0.2 + 0.25 + prof.defrost_rise_c + 5 * 0.12  # …and stays bounded


def test_door_openings_are_short_spikes_in_working_hours():
    data = scenario()
    data["depots"][0]["zones"][0]["profile"] = {"defrost_every_h": None}
    sim, rs = run(data, hours=24)
    zone = sim.sensor("cs", "chl", "s1").zone
    tz = sim.config.start.tzinfo
    day = [sim.door_c(zone, sim.start_ms + m * MS_PER_MIN) for m in range(0, 13 * 60)]  # 06-19
    assert max(day) > 0.5 * zone.cfg.profile.door_spike_c
    assert sum(1 for d in day if d > 0.1) < 0.5 * len(day)  # spikes, not a plateau
    events = [e for b in zone.door_cache for e in zone.door_cache[b]]
    assert all(0 <= utc(e).astimezone(tz).hour < 24 for e in events)


# -- thermal faults


@pytest.mark.parametrize("rate", [0.15, 0.3])
def test_compressor_failure_takes_the_chilled_zone_past_4_c_when_the_rate_says(rate):
    fault = {"at": "10:00", "depot": "cs", "zone": "chl", "fault": "compressor_failure",
             "duration_min": 120, "params": {"rate_c_per_min": rate}}
    sim, rs = run(scenario([fault]), hours=8)
    t0 = sim.config.faults[0].start_ms
    assert utc(t0) == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    chl = [r for r in rs if r.zone == "chl"]
    before = [r.temp_c for r in chl if r.measured_at < t0]
    assert max(before) < 4.0
    expected = (4.0 - 2.0) / rate  # minutes from the 2 °C set point to 4 °C
    tolerance = 1.0 / rate  # ±1 °C for drift, sensor offset and noise
    for s in ("s1", "s2"):
        mine = [r for r in chl if r.sensor == s and r.measured_at >= t0]
        first = next(r for r in mine if r.temp_c > 4.0)
        assert expected - tolerance <= minutes_after(t0, first) <= expected + tolerance
        later = [r.temp_c for r in mine if expected + tolerance < minutes_after(t0, r) <= 120]
        assert later and min(later) > 4.0
    # the other zones do not notice
    assert max(r.temp_c for r in rs if r.zone == "frz") < -18.0


def test_compressor_failure_rises_toward_ambient_not_beyond_and_recovers():
    fault = {"at": 0, "depot": "cs", "zone": "chl", "fault": "compressor_failure",
             "duration_min": 300, "params": {"rate_c_per_min": 0.5, "recovery_c_per_min": 0.5}}
    sim, rs = run(scenario([fault]), hours=8)
    chl = [r for r in rs if r.zone == "chl"]
    peak = max(r.temp_c for r in chl)
    assert 15.0 < peak < 25.0 + 1.0
    assert all(r.temp_c < sim.ambient_c(r.measured_at) + 1.0 for r in chl)
    end = [r.temp_c for r in chl if minutes_after(sim.start_ms, r) > 300 + 60]
    assert max(end) < 3.0  # pulled back down after the repair


def test_power_cut_warms_every_zone_of_the_depot_only():
    fault = {"at": 60, "depot": "cs", "fault": "power_cut", "duration_min": 120,
             "params": {"rate_c_per_min": 0.1}}
    sim, rs = run(scenario([fault]), hours=3)
    late = [r for r in rs if minutes_after(sim.start_ms, r) > 60 + 100]
    chl = [r.temp_c for r in late if r.zone == "chl"]
    frz = [r.temp_c for r in late if r.zone == "frz"]
    assert min(chl) > 2.0 + 9.0 and min(frz) > -20.0 + 9.0
    assert max(r.temp_c for r in rs if r.depot == "wh" and r.zone == "amb") < 25.0


def test_freezer_thaw_passes_minus_15():
    fault = {"at": 30, "depot": "cs", "zone": "frz", "fault": "freezer_thaw", "duration_min": 240,
             "params": {"rate_c_per_min": 0.1}}
    sim, rs = run(scenario([fault]), hours=5)
    frz = [r for r in rs if r.zone == "frz" and r.sensor == "s1"]
    first = next(r for r in frz if r.temp_c > -15.0)
    assert 50 - 10 <= minutes_after(sim.start_ms, first) - 30 <= 50 + 10
    assert max(r.temp_c for r in frz) <= 2.0 + 1.0  # thawed toward target_c, not beyond


def test_door_left_open_rises_fast_then_plateaus():
    fault = {"at": 60, "depot": "cs", "zone": "chl", "fault": "door_left_open", "duration_min": 60,
             "params": {"rise_c": 8.0, "tau_min": 4.0}}
    sim, rs = run(scenario([fault]), hours=3)
    s1 = [r for r in rs if r.zone == "chl" and r.sensor == "s1"]

    def at(m):
        return next(r.temp_c for r in s1 if minutes_after(sim.start_ms, r) >= 60 + m)

    assert at(5) - at(-1) > 0.6 * 8.0  # most of the rise within ~one time constant
    assert abs(at(55) - at(35)) < 0.6  # plateau
    assert at(90) < 3.0  # door closed: back down


def test_humid_hazmat_takes_oxidizer_rh_above_80():
    fault = {"at": 60, "depot": "wh", "zone": "oxd", "fault": "humid_hazmat", "duration_min": 180}
    sim, rs = run(scenario([fault]), hours=5)
    oxd = [r for r in rs if r.zone == "oxd"]
    assert max(r.rh for r in oxd if r.measured_at < sim.config.faults[0].start_ms) < 75.0
    late = [r.rh for r in oxd if 60 + 80 <= minutes_after(sim.start_ms, r) <= 60 + 180]
    assert min(late) > 80.0
    assert max(r.rh for r in rs if r.zone == "amb") < 75.0


# -- transport faults


def test_sensor_dropout_stops_the_sensors_readings_for_the_window_only():
    fault = {"at": 60, "depot": "cs", "zone": "chl", "sensor": "s1", "fault": "sensor_dropout",
             "duration_min": 30}
    sim, rs = run(scenario([fault]), hours=3)
    per = by_sensor(rs)
    s1, s2 = per[("cs", "chl", "s1")], per[("cs", "chl", "s2")]
    in_window = [r for r in s1 if 60 <= minutes_after(sim.start_ms, r) < 90]
    assert in_window == []
    assert len([r for r in s2 if 60 <= minutes_after(sim.start_ms, r) < 90]) == 30
    assert any(minutes_after(sim.start_ms, r) >= 90 for r in s1)  # back afterwards
    assert [r.seq for r in s1] == list(range(1, len(s1) + 1))
    assert sim.stats.dropped == 30
    assert len(s1) == len(s2) - 30


def test_clock_skew_offsets_timestamps_in_the_window():
    fault = {"at": 60, "depot": "wh", "zone": "amb", "fault": "clock_skew", "duration_min": 20,
             "params": {"offset_s": -120}}
    sim, rs = run(scenario([fault]), hours=2)
    amb = [r for r in rs if r.zone == "amb"]
    skewed = [r for r in amb if r.ts != r.measured_at]
    assert len(skewed) == 2 * 20
    assert all(r.ts - r.measured_at == -120_000 for r in skewed)
    assert all(60 <= minutes_after(sim.start_ms, r) < 80 for r in skewed)


def test_duplicate_resends_the_same_seq():
    fault = {"at": 60, "depot": "cs", "zone": "frz", "sensor": "s2", "fault": "duplicate",
             "duration_min": 15}
    sim, rs = run(scenario([fault]), hours=2)
    s2 = by_sensor(rs)[("cs", "frz", "s2")]
    seqs = [r.seq for r in s2]
    dups = [r for r in s2 if r.duplicate]
    assert len(dups) == 15 == len(seqs) - len(set(seqs))
    for d in dups:
        original = next(r for r in s2 if r.seq == d.seq and not r.duplicate)
        assert (d.ts, d.temp_c, d.rh) == (original.ts, original.temp_c, original.rh)
        assert json.loads(encode_batches([d])[0].payload)["readings"][0]["seq"] == d.seq
    assert sim.stats.duplicates == 15


def test_out_of_order_delays_some_readings_behind_newer_ones():
    fault = {"at": 30, "depot": "cs", "zone": "chl", "sensor": "s1", "fault": "out_of_order",
             "duration_min": 60, "params": {"probability": 0.5, "delay_s": 150}}
    sim = Simulation(scenario([fault]), seed=7)
    stepped = []
    for k in range(1, 181):
        stepped += sim.step(sim.start_ms + k * MS_PER_MIN)
    s1 = [r for r in stepped + sim.drain() if (r.zone, r.sensor) == ("chl", "s1")]
    seqs = [r.seq for r in s1]
    assert sorted(seqs) == list(range(1, len(seqs) + 1))  # none lost
    inversions = sum(1 for a, b in zip(seqs, seqs[1:], strict=False) if b < a)
    assert 10 <= inversions <= 50
    delayed = [r for r in s1 if r.sent_at != r.measured_at]
    assert delayed and all(r.sent_at - r.measured_at == 150_000 for r in delayed)
    assert all(r.ts == r.measured_at for r in delayed)  # the timestamp tells the true time
    assert sim.stats.delayed == len(delayed)


def test_garbage_produces_each_kind_of_malformed_payload():
    fault = {"at": 0, "depot": "wh", "zone": "amb", "fault": "garbage", "duration_min": 120}
    sim, rs = run(scenario([fault]), hours=2)
    bad = [r for r in rs if r.garbage]
    assert len(bad) == 2 * 120 == sim.stats.garbage
    assert {r.garbage for r in bad} == set(GARBAGE_KINDS)
    for r in bad:
        (msg,) = encode_single([r])
        if r.garbage == "bad_json":
            with pytest.raises(ValueError):
                json.loads(msg.payload)
            (bm,) = encode_batches([r])
            with pytest.raises(ValueError):
                json.loads(bm.payload)
            continue
        doc = json.loads(msg.payload)
        entry = json.loads(encode_batches([r])[0].payload)["readings"][0]
        for d in (doc, entry):
            if r.garbage == "missing_field":
                assert r.garbage_field not in d
            elif r.garbage == "nan":
                assert math.isnan(d[r.garbage_field])
            else:
                assert isinstance(d[r.garbage_field], str)
                assert float(d[r.garbage_field]) == getattr(r, r.garbage_field)


def test_monitoring_ingest_accepts_the_batches_and_rejects_the_garbage_with_its_reason():
    """Contract with services/monitoring/domain/readings.py (topic root `supply`)."""
    fault = {"at": 0, "depot": "wh", "zone": "oxd", "sensor": "s1", "fault": "garbage",
             "duration_min": 60}
    sim, rs = run(scenario([fault]), hours=2)
    now = utc(sim.now_ms) + timedelta(minutes=1)
    accepted, codes = 0, defaultdict(int)
    for m in encode_batches(rs, batch_size=50):
        result = parse_message(f"supply/{m.topic}", m.payload, now)
        accepted += len(result.readings)
        for rej in result.rejected:
            codes[rej.code] += 1
    garbage = [r for r in rs if r.garbage]
    assert accepted == len(rs) - len(garbage)
    expected = {"bad_json": "bad_json", "missing_field": "missing_field", "nan": "not_finite",
                "wrong_type": "wrong_type"}
    want = defaultdict(int)
    for r in garbage:
        # a ts that is a string is read as ISO-8601 there, so a stringified epoch is a bad timestamp
        code = "bad_timestamp" if (r.garbage, r.garbage_field) == ("wrong_type", "ts") else None
        want[code or expected[r.garbage]] += 1
    assert dict(codes) == dict(want)
    for m in encode_single([r for r in rs if not r.garbage][:20]):
        assert len(parse_message(f"supply/{m.topic}", m.payload, now).readings) == 1


# -- batches


def test_batches_group_per_gateway_in_send_order_up_to_the_batch_size():
    sim, rs = run(scenario(), hours=1)
    msgs = encode_batches(rs, batch_size=25)
    assert sum(m.readings for m in msgs) == len(rs)
    assert all(m.readings <= 25 for m in msgs)
    for m in msgs:
        doc = json.loads(m.payload)
        assert m.topic == f"{m.depot}/gw/{m.gateway}/batch" and doc["gateway"] == m.gateway
        assert {e["depot"] for e in doc["readings"]} == {m.depot}
        assert len(doc["readings"]) == m.readings
    assert {m.gateway for m in msgs} == {"gw-cs", "gw-wh"}
    b = Batcher(100)
    first = b.add(rs[:30])
    assert first == []  # nothing full yet
    rest = b.add(rs[30:]) + b.flush()
    assert sum(m.readings for m in rest) == len(rs)


def test_single_mode_topics_and_payload():
    sim, rs = run(scenario(), hours=0.1)
    msgs = encode_single(rs)
    assert len(msgs) == len(rs)
    r, m = rs[0], msgs[0]
    assert m.topic == f"{r.depot}/{r.zone}/{r.sensor}/telemetry"
    assert json.loads(m.payload) == {"ts": r.ts, "seq": r.seq, "temp_c": r.temp_c, "rh": r.rh}


# -- scenarios


def test_scenario_times_hhmm_local_or_offset_minutes():
    start = datetime.fromisoformat(START)
    assert utc(parse_at("10:30", start)) == datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    assert utc(parse_at("05:00", start)) == datetime(2026, 11, 28, 21, 0, tzinfo=UTC)  # next day
    assert utc(parse_at(90, start)) == datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    with pytest.raises(ScenarioError, match="at"):
        parse_at("25:00", start)


@pytest.mark.parametrize("fault, match", [
    ({"fault": "meteor", "depot": "cs", "at": 0}, "fault"),
    ({"fault": "power_cut", "depot": "nope", "at": 0}, "depot"),
    ({"fault": "power_cut", "depot": "cs", "zone": "nope", "at": 0}, "zone"),
    ({"fault": "power_cut", "depot": "cs", "at": 0, "params": {"rate": 1}}, "params"),
    ({"fault": "power_cut", "depot": "cs"}, "at"),
    ({"fault": "garbage", "depot": "cs", "at": 0, "params": {"kinds": ["xml"]}}, "kinds"),
])
def test_bad_faults_are_refused_naming_the_field(fault, match):
    with pytest.raises(ScenarioError, match=match):
        parse_scenario(scenario([fault]))


def test_bad_storage_class_is_refused():
    data = scenario()
    data["depots"][0]["zones"][0]["storage_class"] = "lukewarm"
    with pytest.raises(ScenarioError, match="storage_class"):
        parse_scenario(data)


def test_a_later_start_keeps_local_fault_times_and_offsets():
    faults = [{"at": "10:00", "depot": "cs", "zone": "chl", "fault": "compressor_failure",
               "duration_min": 30},
              {"at": 60, "depot": "cs", "zone": "frz", "fault": "freezer_thaw", "duration_min": 30}]
    tz = datetime.fromisoformat(START).tzinfo
    later = datetime(2026, 12, 1, 8, 0, tzinfo=tz)
    sim = Simulation(scenario(faults), seed=1, start=later)
    assert sim.start_ms == round(later.timestamp() * 1000)
    local, offset = sim.config.faults
    assert utc(local.start_ms).astimezone(tz) == datetime(2026, 12, 1, 10, 0, tzinfo=tz)
    assert local.end_ms - local.start_ms == 30 * MS_PER_MIN
    assert offset.start_ms == sim.start_ms + 60 * MS_PER_MIN
    evening = Simulation(scenario(faults), seed=1, start=later.replace(hour=18))
    assert utc(evening.config.faults[0].start_ms).astimezone(tz) == datetime(2026, 12, 2, 10, 0, tzinfo=tz)


def test_step_batches_per_gateway():
    sim = Simulation(scenario(), seed=2)
    out = sim.step_batches(sim.start_ms + 30 * MS_PER_MIN, batch_size=50)
    assert set(out) == {"gw-cs", "gw-wh"}
    assert [m.readings for m in out["gw-cs"]] == [50, 50, 20]  # 4 sensors × 30 min
    assert all(m.depot == "cs" for m in out["gw-cs"])


# -- gateway helpers (no broker needed)


def test_client_ids_are_isolated_by_the_topic_root():
    from simulators.gateway import GatewayOptions

    assert GatewayOptions(root="supply").prefix() == ""
    assert GatewayOptions(root="t123/supply").prefix() == "t123-supply-"
    assert GatewayOptions(root="x", client_prefix="demo-").prefix() == "demo-"


def test_rate_limiter_spaces_messages():
    from simulators.gateway import RateLimiter

    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(100.0, sleep=sleep, monotonic=lambda: now[0])
    for _ in range(11):
        limiter.wait()
    assert sum(slept) == pytest.approx(0.1)  # 11 messages at 100/s span 0.1 s
    unlimited: list[float] = []
    free = RateLimiter(None, sleep=unlimited.append)
    for _ in range(100):
        free.wait()
    assert unlimited == []


def test_county_scenario_file():
    cfg = parse_scenario(yaml.safe_load((SCENARIOS / "sensors_county.yaml").read_text()))
    classes = {d.id: sorted(z.storage_class for z in d.zones) for d in cfg.depots}
    assert classes == {
        "cs01": ["chilled", "frozen", "medicine_2_8"],
        "wh01": ["ambient", "flammable", "oxidizer"],
        "tw01": ["ambient", "chilled"],
    }
    assert all(len(z.sensors) == 2 for d in cfg.depots for z in d.zones)
    (f,) = cfg.faults
    assert (f.kind, f.depot, f.zone) == ("compressor_failure", "cs01", "chl")
    assert 9 <= utc(f.start_ms).astimezone(cfg.start.tzinfo).hour < 12  # mid-morning
    sim, rs = run(cfg, hours=8)
    limits = {"chilled": 4.0, "frozen": -15.0, "medicine_2_8": 8.0, "ambient": 30.0,
              "flammable": 30.0, "oxidizer": 30.0}
    cls = {(d, z, s): c for d, z, s, c in sim.sensors()}
    for key, readings in by_sensor(rs).items():
        long_runs = [(a, b) for a, b in runs_above(readings, limits[cls[key]])
                     if b - a >= 30 * MS_PER_MIN]
        if key[:2] == ("cs01", "chl"):  # the fault is the story: one long excursion, after it
            assert len(long_runs) == 1 and long_runs[0][0] >= f.start_ms, key
        else:  # door spikes and defrosts stay short of the alarm duration
            assert long_runs == [], key


def runs_above(readings, limit):
    """(first, last) measured_at of each run of consecutive readings above `limit`."""
    runs, first, last = [], None, None
    for r in readings:
        if r.temp_c > limit:
            first = first if first is not None else r.measured_at
            last = r.measured_at
        elif first is not None:
            runs.append((first, last))
            first = None
    if first is not None:
        runs.append((first, last))
    return runs


def test_load_scenario_file_has_many_sensors():
    cfg = parse_scenario(yaml.safe_load((SCENARIOS / "sensors_load.yaml").read_text()))
    assert len(cfg.depots) == 20 and cfg.sensor_count() == 2000
    assert len({d.gateway for d in cfg.depots}) == 20
    sim = Simulation(cfg, seed=1)
    assert len(sim.step(sim.start_ms + 5 * MS_PER_MIN)) == 5 * 2000
