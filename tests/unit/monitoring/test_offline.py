from datetime import timedelta

from services.monitoring.domain.offline import (
    OFFLINE,
    ONLINE,
    OfflinePolicy,
    OfflineTracker,
    StatusUpdate,
    parse_status,
)
from services.monitoring.domain.readings import Rejected

from .timeline import T0


def s(seconds):
    return T0 + timedelta(seconds=seconds)


def test_offline_after_3_missed_intervals_not_after_2():
    tr = OfflineTracker()  # interval 60 s
    tr.seen("d1", "z1", "s1", s(0))
    assert tr.check(s(120)) == []  # 2 readings missed
    assert tr.check(s(179)) == []
    out = tr.check(s(180))  # 3 missed: silent for 3 × 60 s
    assert [(t.sensor_key, t.state, t.reason, t.last_seen) for t in out] == [
        ("d1/z1/s1", OFFLINE, "silent", s(0))]
    assert "传感器离线" in out[0].text_zh and "offline" in out[0].text_en
    assert tr.check(s(240)) == []  # reported once


def test_recovers_when_heard_again():
    tr = OfflineTracker()
    tr.seen("d1", "z1", "s1", s(0))
    tr.check(s(200))
    tr.seen("d1", "z1", "s1", s(230))
    out = tr.check(s(231))
    assert [(t.state, t.reason) for t in out] == [(ONLINE, "heard")]
    assert not tr.is_offline("d1/z1/s1")


def test_per_sensor_interval():
    tr = OfflineTracker()
    tr.register("d1", "z1", "slow", since=s(0), interval=timedelta(minutes=5))
    tr.seen("d1", "z1", "slow", s(0))
    assert tr.check(s(14 * 60)) == []
    assert [t.state for t in tr.check(s(15 * 60))] == [OFFLINE]


def test_registered_sensor_never_heard_goes_offline():
    tr = OfflineTracker(OfflinePolicy(default_interval=timedelta(seconds=30)))
    tr.register("d1", "z1", "new", since=s(0))
    assert tr.check(s(89)) == []
    out = tr.check(s(90))
    assert out[0].last_seen is None and "never" in out[0].text_en


def test_last_will_offline_is_immediate_and_holds_until_online_status():
    tr = OfflineTracker()
    tr.seen("d1", "z1", "s1", s(0))
    tr.status(StatusUpdate("d1", "z1", "s1", OFFLINE), s(10))
    out = tr.check(s(10))
    assert [(t.state, t.reason) for t in out] == [(OFFLINE, "last_will")]
    tr.seen("d1", "z1", "s1", s(20))
    assert tr.check(s(20)) == []
    tr.status(StatusUpdate("d1", "z1", "s1", ONLINE), s(25))
    assert [t.state for t in tr.check(s(25))] == [ONLINE]


def test_parse_status():
    assert parse_status("supply/d1/z1/s1/status", b"offline") == StatusUpdate("d1", "z1", "s1", OFFLINE)
    assert parse_status("supply/d1/z1/s1/status", b' "Online" ').status == ONLINE
    assert parse_status("supply/d1/z1/s1/status", b'{"status": "offline"}').status == OFFLINE
    bad = parse_status("supply/d1/z1/s1/status", b"sleeping")
    assert isinstance(bad, Rejected) and "online' or 'offline" in bad.reason
    assert parse_status("supply/d1/z1/s1/telemetry", b"offline").code == "bad_topic"
