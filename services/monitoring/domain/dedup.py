"""De-duplication and the out-of-order window of sensor readings (DESIGN.md §4 MQTT): what
the ingest keeps of each sensor to drop a repeated or too late reading and to notice a restart."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.monitoring.domain.readings import IngestPolicy, Reading, Rejected, raw_excerpt

_INGEST_DEFAULTS = IngestPolicy()


@dataclass(frozen=True)
class DedupPolicy:
    """`late_window`: how far behind a sensor's newest ts a reading is still accepted.
    `seq_window`: how many sequence numbers below the high-water mark are remembered.
    Restart: seq goes backwards while ts is newer than anything seen from the sensor, and either
    seq ≤ `restart_low_seq` (a counter starting again near 0) or the drop is ≥ `restart_min_drop`.
    """

    late_window: timedelta = timedelta(minutes=10)
    seq_window: int = 4096
    restart_low_seq: int = 10
    restart_min_drop: int = 100


@dataclass(frozen=True)
class DedupVerdict:
    """status: new | restart | duplicate | too_late. `accepted` for new and restart."""

    status: str
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.status in ("new", "restart")


@dataclass
class DedupResult:
    accepted: list[Reading] = field(default_factory=list)
    duplicates: int = 0
    too_late: list[Rejected] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)


@dataclass
class _SensorState:
    hwm: int
    newest_ts: datetime
    seen: set[int]
    epoch_start: datetime
    prev_seen: set[int] = field(default_factory=set)


class Deduplicator:
    """Drops repeated (sensor, seq) and readings too far behind the sensor's newest one.

    Memory per sensor is bounded: the high-water mark, the newest ts, and the set of seqs within
    `seq_window` below the mark (plus the set of the epoch before the last restart, kept to
    recognise retransmissions of pre-restart readings while they are inside the late window).

    Sensor restart (seq counter back to 0): a backwards seq whose ts is newer than the sensor's
    newest reading cannot be a late or repeated reading (those carry their original, older ts),
    so it starts a new epoch and is accepted. Readings with a ts before the new epoch's start are
    judged against the previous epoch's seqs.

    QoS 1 duplicates are normal and only counted. The state is per process: with shared MQTT
    subscriptions a cross-process duplicate can pass, which is harmless for InfluxDB (a point
    with the same series and ts overwrites) and for alarms (a reading not newer than the
    sensor's last one is skipped there).
    """

    def __init__(self, policy: DedupPolicy = DedupPolicy()):
        self.policy = policy
        self._state: dict[str, _SensorState] = {}

    def __len__(self) -> int:
        return len(self._state)

    def forget(self, key: str) -> None:
        self._state.pop(key, None)

    def check(self, r: Reading) -> DedupVerdict:
        """Judge one reading and record it when accepted."""
        key = r.sensor_key
        st = self._state.get(key)
        if st is None:
            self._state[key] = _SensorState(hwm=r.seq, newest_ts=r.ts, seen={r.seq}, epoch_start=r.ts)
            return DedupVerdict("new")
        p = self.policy
        behind = st.newest_ts - r.ts
        if behind > p.late_window:
            return DedupVerdict(
                "too_late",
                f"{key} seq {r.seq} ts {r.ts.isoformat()} is {behind.total_seconds():.0f} s behind "
                f"the sensor's newest reading (window {p.late_window.total_seconds():.0f} s)",
            )
        if st.prev_seen and st.newest_ts - st.epoch_start > p.late_window:
            st.prev_seen = set()
        if r.ts < st.epoch_start:
            if r.seq in st.prev_seen:
                return DedupVerdict("duplicate")
            st.prev_seen.add(r.seq)
            return DedupVerdict("new")
        if r.seq <= st.hwm and r.ts > st.newest_ts and (
            r.seq <= p.restart_low_seq or st.hwm - r.seq >= p.restart_min_drop
        ):
            st.prev_seen = st.seen
            st.seen = {r.seq}
            st.hwm = r.seq
            st.newest_ts = r.ts
            st.epoch_start = r.ts
            return DedupVerdict("restart", f"{key} restarted: seq back to {r.seq}")
        if r.seq in st.seen:
            return DedupVerdict("duplicate")
        if r.seq <= st.hwm - p.seq_window:
            return DedupVerdict(
                "too_late",
                f"{key} seq {r.seq} is more than {p.seq_window} behind seq {st.hwm}",
            )
        st.seen.add(r.seq)
        if r.seq > st.hwm:
            st.hwm = r.seq
            if len(st.seen) > 2 * p.seq_window:
                floor = st.hwm - p.seq_window
                st.seen = {s for s in st.seen if s > floor}
        if r.ts > st.newest_ts:
            st.newest_ts = r.ts
        return DedupVerdict("new")

    def filter(self, readings: Iterable[Reading], policy: IngestPolicy = _INGEST_DEFAULTS) -> DedupResult:
        out = DedupResult()
        accepted = out.accepted
        states = self._state
        late_window = self.policy.late_window
        seq_window = self.policy.seq_window
        for r in readings:
            st = states.get(r.sensor_key)
            # the usual reading: the next seq of a known sensor, inside every window, not before
            # its epoch, no previous epoch to forget, a mark that needs no trimming: what check()
            # does for it, inline
            if (st is not None and r.seq > st.hwm and r.ts >= st.epoch_start and not st.prev_seen
                    and st.newest_ts - r.ts <= late_window and len(st.seen) < 2 * seq_window):
                st.seen.add(r.seq)
                st.hwm = r.seq
                if r.ts > st.newest_ts:
                    st.newest_ts = r.ts
                accepted.append(r)
                continue
            v = self.check(r)
            if v.status == "duplicate":
                out.duplicates += 1
                continue
            if v.status == "too_late":
                out.too_late.append(Rejected(code="too_late", reason=v.reason,
                                             raw=raw_excerpt(_reading_dict(r), policy), depot=r.depot))
                continue
            if v.status == "restart":
                out.restarts.append(r.sensor_key)
            accepted.append(r)
        return out


def _reading_dict(r: Reading) -> dict:
    return {"depot": r.depot, "zone": r.zone, "sensor": r.sensor, "ts": r.ts.isoformat(),
            "seq": r.seq, "temp_c": r.temp_c, "rh": r.rh}
