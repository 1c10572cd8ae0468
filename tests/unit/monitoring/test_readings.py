import copy
import json
import pickle
from datetime import timedelta

from services.monitoring.domain.readings import (
    IngestPolicy,
    Reading,
    parse_message,
    parse_topic,
)

from .timeline import T0

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


# --- the fast path of a well-formed batch agrees with the full checks

ODD_VALUES = [None, True, 0, -1, 1.5, "x", "", "a/b", "a b", [], {}, 2**63, 2**64, 10**30, 1e308, 80.01,
              -60.01, 100.5, "2026-11-28T08:00:00+08:00", "2026-11-28T08:00:00", "z" * 65, 1e8, MS + 10**8]
RAW_NUMBERS = ["NaN", "Infinity", "1e400", "18446744073709551616", "-9223372036854775809", '"\\ud800"']


def test_fast_path_accepts_and_refuses_exactly_as_the_full_checks(monkeypatch):
    from services.monitoring.domain import readings

    payloads = [batch(entry(), entry(sensor="s2", rh=None), entry(sensor="s3", temp_c=-18))]
    for field in ("depot", "zone", "sensor", "ts", "seq", "temp_c", "rh"):
        payloads += [batch(entry(), entry(**{field: v})) for v in ODD_VALUES]
        payloads.append(batch(entry(), {k: v for k, v in entry().items() if k != field}))
    for raw in RAW_NUMBERS:
        for field in ("ts", "seq", "temp_c"):
            payloads.append(batch(entry()).replace(f'"{field}": '.encode(), f'"{field}": {raw}, "x": '.encode()))
    payloads += [batch(entry(), gateway="g2"), b'{"readings": []}', b'{"gateway": "g1", "readings": 3}', batch(7)]
    # msgspec's reading of JSON: a repeated key, escapes, a raw control character, an unpaired
    # surrogate, a negative zero, fields it does not know, trailing text
    good = batch(entry()).replace(b'"temp_c": 3.5', b'"temp_c": 99, "temp_c": 3.5')
    payloads += [good, good.replace(b'"temp_c": 99, "temp_c": 3.5', b'"temp_c": 3.5, "temp_c": 99'),  # the last one
                 good.replace(b'"gateway": "g1"', b'"gateway": "g2", "gateway": "g1"'),
                 batch(entry(zone="z\u00e9")), batch(entry(zone="z\x01")),  # escaped by json.dumps
                 batch(entry()).replace(b'"z1"', b'"z\\u0009"'), batch(entry()).replace(b'"z1"', b'"z\\ud800"'),
                 batch(entry()).replace(b'"rh": 60', b'"rh": -0, "x": [1, {"y": null}]'),
                 batch(entry()).replace(b'"z1"', b'"z\t1"'), batch(entry()) + b" x", batch(entry(temp_c=-0.0))]
    edge = int((NOW + IngestPolicy().max_future_skew).timestamp() * 1000)  # the newest instant accepted
    oldest = int(IngestPolicy().min_ts.timestamp() * 1000)
    payloads += [batch(entry(ts=t)) for t in (edge - 1, edge, edge + 1, oldest - 1, oldest, oldest + 1, 0, -1)]
    policies = [IngestPolicy(), IngestPolicy(temp_max_c=3.0, max_id_len=2, max_batch=1)]
    fast = {(p, pol): parse_message(BATCH, p, NOW, pol) for p in payloads for pol in policies}
    taken = [p for p in payloads if readings._fast_batch(p.decode("utf-8", "replace"), parse_topic(BATCH), NOW,
                                                         policies[0]) is not None]
    assert payloads[0] in taken and good in taken and len(taken) > 20
    monkeypatch.setattr(readings, "_fast_batch", lambda *a: None)
    for (p, pol), got in fast.items():
        full = parse_message(BATCH, p, NOW, pol)
        assert (got.readings, got.rejected) == (full.readings, full.rejected), p
        assert [(r.zone_key, r.sensor_key, type(r.temp_c), type(r.rh)) for r in got.readings] == \
               [(r.zone_key, r.sensor_key, type(r.temp_c), type(r.rh)) for r in full.readings]
    assert fast[payloads[0], policies[0]].readings[2].temp_c == -18.0
    assert [len(fast[batch(entry(ts=t)), policies[0]].readings) for t in (edge, edge + 1, oldest - 1, oldest)] == \
           [1, 0, 0, 1]


def test_a_reading_is_what_it_says_whatever_way_its_instant_came():
    """A tuple underneath (the fast path makes it by builtins): derived keys, equality and hash of
    what the reading says (not of `ts_ms`), and copies, pickles and changes that keep it whole."""
    r = Reading("d1", "z1", "s1", T0, 7, 3.5, 80.0)
    sent = Reading("d1", "z1", "s1", T0, 7, 3.5, 80.0, ts_ms=int(T0.timestamp() * 1000))
    assert (r.zone_key, r.sensor_key) == ("d1/z1", "d1/z1/s1")
    assert r == sent and hash(r) == hash(sent) and not (r != sent)
    assert r != Reading("d1", "z1", "s1", T0, 8, 3.5, 80.0)
    assert copy.copy(sent) == sent and pickle.loads(pickle.dumps(sent)).ts_ms == sent.ts_ms
    moved = sent._replace(zone="z2")
    assert (moved.zone_key, moved.sensor_key, moved.ts_ms) == ("d1/z2", "d1/z2/s1", sent.ts_ms)
