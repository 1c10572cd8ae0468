from datetime import UTC, datetime, timedelta

from services.monitoring.domain.dedup import Deduplicator, DedupPolicy
from services.monitoring.domain.readings import Reading

from .timeline import at


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
