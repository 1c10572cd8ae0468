import json
from datetime import UTC, datetime, timedelta

from services.monitoring.domain.readings import (
    Deduplicator,
    DedupPolicy,
    IngestPolicy,
    Reading,
    parse_message,
    parse_topic,
)

from .timeline import T0, at

NOW = T0 + timedelta(hours=1)
MS = int(T0.timestamp() * 1000)
TOPIC = "supply/d1/z1/s1/telemetry"
BATCH = "supply/d1/gw/g1/batch"


def entry(**kw):
    e = {"depot": "d1", "zone": "z1", "sensor": "s1", "ts": MS, "seq": 1, "temp_c": 3.5, "rh": 60}
    e.update(kw)
    return e


def batch(*entries, gateway="g1"):
    return json.dumps({"gateway": gateway, "readings": list(entries)}).encode()


# --- single telemetry

def test_single_reading_with_epoch_ms():
    r = parse_message(TOPIC, json.dumps({"ts": MS, "seq": 7, "temp_c": 3.5, "rh": 61.5}).encode(), NOW)
    assert r.rejected == []
    assert r.readings == [Reading("d1", "z1", "s1", T0, 7, 3.5, 61.5)]
    assert r.readings[0].ts.tzinfo is not None


def test_single_reading_with_iso_offset_is_converted_to_utc_and_rh_is_optional():
    r = parse_message(TOPIC, b'{"ts": "2026-11-28T08:00:00+08:00", "seq": 0, "temp_c": -18}', NOW)
    assert r.readings[0].ts == T0 and r.readings[0].rh is None and r.readings[0].temp_c == -18.0


def test_bad_json_names_the_problem():
    r = parse_message(TOPIC, b'{"ts": 1,', NOW)
    assert r.readings == [] and r.rejected[0].code == "bad_json"
    assert "not valid JSON" in r.rejected[0].reason and r.rejected[0].raw == '{"ts": 1,'
    assert parse_message(TOPIC, b"\xff\xfe", NOW).rejected[0].code == "bad_encoding"
    assert parse_message(TOPIC, b"[1, 2]", NOW).rejected[0].code == "not_object"


def test_nan_and_infinity_are_refused():
    r = parse_message(TOPIC, b'{"ts": %d, "seq": 1, "temp_c": NaN}' % MS, NOW)
    assert r.rejected[0].code == "not_finite" and "temp_c" in r.rejected[0].reason
    r = parse_message(TOPIC, b'{"ts": %d, "seq": 1, "temp_c": 3, "rh": Infinity}' % MS, NOW)
    assert r.rejected[0].code == "not_finite" and "rh" in r.rejected[0].reason


def test_missing_fields_are_all_named():
    r = parse_message(TOPIC, b'{"rh": 50}', NOW)
    reason = r.rejected[0].reason
    assert r.rejected[0].code == "missing_field"
    assert "ts is missing" in reason and "seq is missing" in reason and "temp_c is missing" in reason


def test_wrong_types_and_ranges():
    cases = {
        '{"ts": %d, "seq": "1", "temp_c": 3}': ("wrong_type", "seq must be an integer"),
        '{"ts": %d, "seq": -1, "temp_c": 3}': ("out_of_range", "seq -1"),
        '{"ts": %d, "seq": 1.5, "temp_c": 3}': ("wrong_type", "seq must be an integer"),
        '{"ts": %d, "seq": 1, "temp_c": true}': ("wrong_type", "temp_c must be a number"),
        '{"ts": %d, "seq": 1, "temp_c": "3.5"}': ("wrong_type", "temp_c must be a number"),
        '{"ts": %d, "seq": 1, "temp_c": 81}': ("out_of_range", "temp_c 81 outside -60..80"),
        '{"ts": %d, "seq": 1, "temp_c": 3, "rh": 101}': ("out_of_range", "rh 101 outside 0..100"),
    }
    for payload, (code, text) in cases.items():
        r = parse_message(TOPIC, (payload % MS).encode(), NOW)
        assert r.readings == [], payload
        assert r.rejected[0].code == code and text in r.rejected[0].reason, (payload, r.rejected)


def test_timestamps():
    def reason(ts):
        r = parse_message(TOPIC, json.dumps({"ts": ts, "seq": 1, "temp_c": 3}).encode(), NOW)
        return r.rejected[0].code, r.rejected[0].reason

    code, text = reason(MS // 1000)
    assert code == "bad_timestamp" and "looks like seconds" in text
    assert reason("2026-11-28T00:00:00")[0] == "bad_timestamp"  # no offset
    assert reason("yesterday")[0] == "bad_timestamp"
    code, text = reason(int((NOW + timedelta(minutes=6)).timestamp() * 1000))
    assert code == "future_timestamp" and "360 s ahead" in text and "tolerance 300 s" in text
    ok = parse_message(TOPIC, json.dumps({"ts": (NOW + timedelta(minutes=4)).isoformat(), "seq": 1,
                                          "temp_c": 3}).encode(), NOW)
    assert len(ok.readings) == 1


def test_topics_with_wildcards_or_wrong_shape_are_refused():
    for topic in ("supply/d1/z+/s1/telemetry", "supply/d1/z1/#/telemetry", "supply/d1/z1/telemetry",
                  "supply/d1/z1/s1/other", "other/d1/z1/s1/telemetry", "supply/d1/xx/g1/batch"):
        r = parse_message(topic, b'{"ts": 1, "seq": 1, "temp_c": 3}', NOW)
        assert r.rejected[0].code == "bad_topic", topic
    assert parse_topic("supply/d1/gw/g1/batch").gateway == "g1"


# --- batches

def test_batch_with_one_bad_reading_keeps_the_good_ones():
    payload = batch(entry(seq=1), entry(seq=2, temp_c="hot"), entry(seq=3, sensor="s2"))
    r = parse_message(BATCH, payload, NOW)
    assert [(x.sensor, x.seq) for x in r.readings] == [("s1", 1), ("s2", 3)]
    assert len(r.rejected) == 1
    bad = r.rejected[0]
    assert bad.index == 1 and bad.code == "wrong_type"
    assert "readings[1].temp_c must be a number" in bad.reason and '"hot"' in bad.raw
    assert bad.reason_zh.startswith("字段类型错误")


def test_batch_entries_with_bad_ids_or_another_depot_are_refused_one_by_one():
    payload = batch(entry(sensor="s/1"), entry(zone="z#"), entry(depot="d2"), entry(sensor=None),
                    "not an object", entry(seq=9))
    r = parse_message(BATCH, payload, NOW)
    assert [x.seq for x in r.readings] == [9]
    codes = [(x.index, x.code) for x in r.rejected]
    assert codes == [(0, "bad_id"), (1, "bad_id"), (2, "depot_mismatch"), (3, "missing_field"),
                     (4, "not_object")]
    assert "contains MQTT topic characters '/'" in r.rejected[0].reason
    assert "readings[3].sensor is missing" in r.rejected[3].reason


def test_whole_batch_refusals():
    assert parse_message(BATCH, batch(entry(), gateway="g9"), NOW).rejected[0].code == "gateway_mismatch"
    assert parse_message(BATCH, b'{"readings": []}', NOW).rejected[0].code == "missing_field"
    assert parse_message(BATCH, b'{"gateway": "g1", "readings": {}}', NOW).rejected[0].code == "wrong_type"
    small = IngestPolicy(max_batch=3)
    r = parse_message(BATCH, batch(*[entry(seq=i) for i in range(4)]), NOW, small)
    assert r.readings == [] and r.rejected[0].code == "too_large"
    assert "batch has 4 readings, at most 3 allowed" == r.rejected[0].reason
    assert len(parse_message(BATCH, batch(*[entry(seq=i) for i in range(3)]), NOW, small).readings) == 3


def test_default_max_batch_is_5000():
    assert IngestPolicy().max_batch == 5000


# --- dedup and out-of-order window

def rd(seq, minute, sensor="s1"):
    return Reading("d1", "z1", sensor, at(minute), seq, 3.0)


def test_dedup_by_sensor_and_seq():
    d = Deduplicator()
    res = d.filter([rd(1, 0), rd(2, 1), rd(2, 1), rd(1, 0), rd(2, 1, sensor="s2")])
    assert [(r.sensor, r.seq) for r in res.accepted] == [("s1", 1), ("s1", 2), ("s2", 2)]
    assert res.duplicates == 2


def test_out_of_order_within_10_min_is_accepted_older_is_too_late():
    d = Deduplicator()
    assert d.check(rd(20, 20)).status == "new"
    assert d.check(rd(12, 12)).status == "new"  # 8 min behind the newest: accepted
    assert d.check(rd(12, 12)).status == "duplicate"
    late = d.check(rd(9, 9))  # 11 min behind
    assert late.status == "too_late" and "660 s behind" in late.reason
    res = d.filter([rd(5, 5)])
    assert res.accepted == [] and res.too_late[0].code == "too_late"


def test_sensor_restart_with_seq_reset_is_accepted_and_old_retransmissions_stay_duplicates():
    d = Deduplicator()
    for m in range(0, 500):
        d.check(rd(m + 1000, m))  # seq 1000..1499 at minutes 0..499
    v = d.check(rd(0, 501))
    assert v.status == "restart" and v.accepted
    assert d.check(rd(1, 502)).status == "new"
    assert d.check(rd(0, 501)).status == "duplicate"
    # a QoS-1 retransmission of a pre-restart reading (original ts, inside the window)
    assert d.check(rd(1499, 499)).status == "duplicate"
    assert d.check(rd(1498, 498)).status == "duplicate"


def test_a_backwards_seq_with_an_older_ts_is_not_a_restart():
    d = Deduplicator()
    d.check(rd(500, 10))
    assert d.check(rd(400, 9)).status == "new"  # late reading, its own older ts
    assert d.check(rd(400, 9)).status == "duplicate"


def test_small_backwards_jump_with_newer_ts_is_a_duplicate_not_a_restart():
    # a gateway re-stamping a repeated reading must not reset the sensor's state
    d = Deduplicator()
    d.check(rd(500, 10))
    assert d.check(rd(499, 11)).status == "new"
    assert d.check(rd(499, 12)).status == "duplicate"


def test_dedup_memory_is_bounded():
    d = Deduplicator(DedupPolicy(seq_window=100))
    base = datetime(2026, 11, 28, tzinfo=UTC)
    for i in range(10_000):
        d.check(Reading("d1", "z1", "s1", base + timedelta(seconds=i), i, 3.0))
    assert len(d._state["d1/z1/s1"].seen) <= 200
    far = d.check(Reading("d1", "z1", "s1", base + timedelta(seconds=9_999 - 1), 9_000, 3.0))
    assert far.status == "too_late"
