"""Alarm evaluation per zone and AlarmRule (RULES.md §9; the LogTag / Fridge-tag model).

Each sensor of a zone has one `RuleEvaluator` per rule of the zone's storage class; the zone's
alarm for a rule is open while any of its sensors has it open (`ZoneAlarms`). Readings are fed in
time order per sensor; a reading not newer than the sensor's last one is skipped (it is still
stored, it just does not move the alarm state).

Time accounting: a reading's value holds until the next reading of the same sensor, for at most
`max_gap` (default 3 × reporting interval). A longer silence is a data gap: the sensor-offline
alert covers it, and it is not counted as time beyond the limit.

- instant: one reading beyond the limit opens.
- consecutive: beyond the limit from a first beyond reading to the current one, every step
  between two beyond readings ≤ max_gap; a gap or a reading inside the limit restarts the run.
  Only the measured span counts (a run of readings 0…29 min is 29 min, not 30).
- cumulative: total held time beyond the limit within the sliding window ending at the current
  reading.

Hysteresis: an open alarm clears only after the value has been inside the limit by
`deadband` (0.5 °C / 2 % RH) for `clear_after` (5 min) of continuous data, so a value wobbling on
the line neither clears nor re-opens. A cumulative alarm additionally clears only once its window
total is back under the duration: until then the rule's statement is still true and a clear
would re-open at the next beyond reading.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import groupby, islice
from operator import attrgetter, itemgetter

from services.common.catalogue import AlarmRule, StorageClass
from services.monitoring.domain.readings import Reading

OPENED, UPDATED, CLEARED = "opened", "updated", "cleared"
STATE_TEXT = {OPENED: ("告警", "alarm"), UPDATED: ("告警持续", "alarm continues"),
              CLEARED: ("告警解除", "alarm cleared")}
UNITS = {"temp_c": "°C", "rh": "%"}
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class AlarmPolicy:
    deadband_temp_c: float = 0.5
    deadband_rh: float = 2.0
    clear_after: timedelta = timedelta(minutes=5)
    reporting_interval: timedelta = timedelta(seconds=60)
    max_gap_intervals: float = 3.0
    update_every: timedelta = timedelta(minutes=30)
    update_step_temp_c: float = 0.5
    update_step_rh: float = 2.0

    def deadband(self, metric: str) -> float:
        return self.deadband_rh if metric == "rh" else self.deadband_temp_c

    def update_step(self, metric: str) -> float:
        return self.update_step_rh if metric == "rh" else self.update_step_temp_c

    def max_gap(self, interval: timedelta | None = None) -> timedelta:
        return (interval or self.reporting_interval) * self.max_gap_intervals


@dataclass(frozen=True)
class AlarmEvidence:
    """peak: worst value of the episode; minutes_beyond: time beyond the limit in the episode
    (cumulative rules: within the rule's window); first_beyond_at: start of that time."""

    peak: float
    minutes_beyond: float
    first_beyond_at: datetime
    limit: float
    op: str
    metric: str

    def to_dict(self) -> dict:
        return {"peak": self.peak, "minutes_beyond": round(self.minutes_beyond, 2),
                "first_beyond_at": self.first_beyond_at.isoformat(), "limit": self.limit,
                "op": self.op, "metric": self.metric}


@dataclass(frozen=True)
class AlarmTransition:
    depot: str
    zone: str
    sensor: str
    rule_code: str
    kind: str
    state: str
    at: datetime
    value: float
    evidence: AlarmEvidence
    spoilage: bool
    name_zh: str
    name_en: str

    @property
    def zone_key(self) -> str:
        return f"{self.depot}/{self.zone}"

    @property
    def text_zh(self) -> str:
        e, u = self.evidence, UNITS.get(self.evidence.metric, "")
        return (f"{STATE_TEXT[self.state][0]}: {self.name_zh}({self.zone_key} 传感器 {self.sensor}),"
                f"当前 {self.value:g}{u},峰值 {e.peak:g}{u},超限 {e.minutes_beyond:.0f} 分钟,"
                f"自 {e.first_beyond_at.isoformat()}")

    @property
    def text_en(self) -> str:
        e, u = self.evidence, UNITS.get(self.evidence.metric, "")
        return (f"{STATE_TEXT[self.state][1]}: {self.name_en} ({self.zone_key} sensor {self.sensor}), "
                f"now {self.value:g} {u}, peak {e.peak:g} {u}, {e.minutes_beyond:.0f} min beyond "
                f"since {e.first_beyond_at.isoformat()}")


@dataclass
class _Episode:
    first_beyond_at: datetime
    peak: float
    beyond_s: float
    last_emit_at: datetime
    last_emit_peak: float


class RuleEvaluator:
    """The state machine of one rule on one sensor's series."""

    def __init__(self, rule: AlarmRule, *, depot: str, zone: str, sensor: str,
                 policy: AlarmPolicy = AlarmPolicy(), interval: timedelta | None = None):
        if rule.kind not in ("instant", "consecutive", "cumulative"):
            raise ValueError(f"rule {rule.code}: unknown kind {rule.kind!r}")
        self.rule = rule
        self.depot, self.zone, self.sensor = depot, zone, sensor
        self.policy = policy
        self.max_gap = policy.max_gap(interval)
        self.deadband = policy.deadband(rule.metric)
        self.duration = timedelta(minutes=rule.duration_min)
        self.window = timedelta(hours=rule.window_h)
        self._beyond = _OPS[rule.op]
        self._upward = rule.op in (">", ">=")
        self._limit = rule.limit
        self._cumulative = rule.kind == "cumulative"
        self._duration_s = self.duration.total_seconds()
        self.is_open = False
        self.skipped = 0
        self._last_ts: datetime | None = None
        self._last_value = 0.0
        self._last_beyond = False
        self._last_inside = False
        self._run_start: datetime | None = None
        self._run_peak = 0.0
        self._clear_start: datetime | None = None
        self._episode: _Episode | None = None
        # cumulative: non-overlapping [start, end, peak] beyond intervals, oldest first
        self._intervals: deque[list] = deque()
        self._interval_sum_s = 0.0

    # --- value helpers
    def beyond(self, v: float) -> bool:
        return self._beyond(v, self.rule.limit)

    def inside_clear(self, v: float) -> bool:
        """Inside the limit by at least the deadband."""
        if self.beyond(v):
            return False
        margin = (self.rule.limit - v) if self._upward else (v - self.rule.limit)
        return margin >= self.deadband

    def _worse(self, a: float, b: float) -> float:
        return max(a, b) if self._upward else min(a, b)

    # --- cumulative window
    def _add_interval(self, start: datetime, end: datetime, peak: float) -> None:
        if self._intervals and self._intervals[-1][1] == start:
            last = self._intervals[-1]
            last[1] = end
            last[2] = self._worse(last[2], peak)
        else:
            self._intervals.append([start, end, peak])
        self._interval_sum_s += (end - start).total_seconds()

    def _window_total_s(self, at: datetime) -> float:
        window_start = at - self.window
        while self._intervals and self._intervals[0][1] <= window_start:
            s, e, _ = self._intervals.popleft()
            self._interval_sum_s -= (e - s).total_seconds()
        total = self._interval_sum_s
        if self._intervals and self._intervals[0][0] < window_start:
            total -= (window_start - self._intervals[0][0]).total_seconds()
        return max(total, 0.0)

    def _window_first_and_peak(self, at: datetime, value: float) -> tuple[datetime, float]:
        window_start = at - self.window
        if not self._intervals:
            return at, value
        first = max(self._intervals[0][0], window_start)
        peak = self._intervals[0][2]
        for iv in self._intervals:
            peak = self._worse(peak, iv[2])
        if self.beyond(value):
            peak = self._worse(peak, value)
        return first, peak

    # --- the state machine
    def feed_series(self, stamps: Sequence[datetime], values: Sequence[float | None],
                    longest_step: timedelta | None = None) -> list[AlarmTransition]:
        """`feed` of each (ts, value) in order; the transitions they made. A closed, quiet rule
        takes a whole calm series at once (`_settle`; `longest_step`: see `longest_step`) or its
        quiet stretches in one loop (`_quiet`); the rest goes through `feed`."""
        out: list[AlarmTransition] = []
        i, n = 0, len(stamps)
        if n and longest_step is not None and self._is_quiet() and self._settle(stamps, values, longest_step):
            return out
        while i < n:
            if self._is_quiet():
                i = self._quiet(stamps, values, i, n)
                if i >= n:
                    break
            t = self.feed(stamps[i], values[i])
            if t is not None:
                out.append(t)
            i += 1
        return out

    def _is_quiet(self) -> bool:
        """Closed, the last value not beyond the limit, no beyond time in a cumulative window: a
        value not beyond the limit can then neither open the rule nor add beyond time."""
        return (not self.is_open and not self._last_beyond
                and (not self._cumulative or (not self._intervals
                                              and self._interval_sum_s < self._duration_s)))

    def _settle(self, stamps: Sequence[datetime], values: Sequence[float | None],
                longest_step: timedelta) -> bool:
        """In a quiet state, a series strictly after the last reading, no step longer than
        max_gap, every value inside the limit by the deadband: what feeding it does (the last
        reading, the clear run goes on or starts at its first instant), checked on the series'
        extreme value (beyond and inside are monotonic in the value). False and nothing changed
        for any other series."""
        last_ts, first, limit = self._last_ts, stamps[0], self._limit
        if longest_step > self.max_gap or (last_ts is not None and first <= last_ts) or None in values:
            return False
        extreme = max(values) if self._upward else min(values)
        if self._beyond(extreme, limit) or ((limit - extreme) if self._upward else (extreme - limit)) < self.deadband:
            return False
        if self._clear_start is None or not (self._last_inside and last_ts is not None
                                             and first - last_ts <= self.max_gap):
            self._clear_start = first
        self._last_ts, self._last_value, self._last_inside = stamps[-1], values[-1], True
        self._run_start = None
        return True

    def _quiet(self, stamps: Sequence[datetime], values: Sequence[float | None], i: int, n: int) -> int:
        """`feed` from index i while the values are not beyond the limit, in one loop: what feed
        does for such a value in a quiet state (it only moves the clear-run bookkeeping and the
        last reading). Returns the index of the first value beyond the limit, or n."""
        last_ts, last_value, last_inside = self._last_ts, self._last_value, self._last_inside
        clear_start, skipped, took = self._clear_start, 0, False
        limit, deadband, max_gap, upward, beyond = (self._limit, self.deadband, self.max_gap,
                                                    self._upward, self._beyond)
        while i < n:
            v = values[i]
            if v is None:
                i += 1
                continue
            ts = stamps[i]
            if last_ts is not None and ts <= last_ts:
                skipped += 1
                i += 1
                continue
            if beyond(v, limit):
                break
            inside = ((limit - v) if upward else (v - limit)) >= deadband
            if not inside:
                clear_start = None
            elif clear_start is None or not (last_inside and last_ts is not None and ts - last_ts <= max_gap):
                clear_start = ts
            last_ts, last_value, last_inside, took = ts, v, inside, True
            i += 1
        self.skipped += skipped
        if took:
            self._last_ts, self._last_value, self._last_inside = last_ts, last_value, last_inside
            self._clear_start, self._run_start = clear_start, None
        return i

    def feed(self, ts: datetime, value: float | None) -> AlarmTransition | None:
        if value is None:
            return None
        last_ts = self._last_ts
        if last_ts is not None and ts <= last_ts:
            self.skipped += 1
            return None
        dt = (ts - last_ts) if last_ts is not None else None
        continuous = dt is not None and dt <= self.max_gap
        limit = self._limit
        b = self._beyond(value, limit)  # beyond() and inside_clear(), inline: once per reading and rule
        inside = not b and ((limit - value) if self._upward else (value - limit)) >= self.deadband
        last_beyond = self._last_beyond

        if last_beyond and dt is not None:
            held = min(dt, self.max_gap)
            if self._cumulative:
                self._add_interval(last_ts, last_ts + held, self._last_value)
            elif self._episode is not None:
                self._episode.beyond_s += held.total_seconds()

        if b:
            if self._run_start is not None and continuous and last_beyond:
                self._run_peak = self._worse(self._run_peak, value)
            else:
                self._run_start, self._run_peak = ts, value
        elif self._run_start is not None:
            self._run_start = None
        if inside:
            if self._clear_start is None or not (continuous and self._last_inside):
                self._clear_start = ts
        elif self._clear_start is not None:
            self._clear_start = None
        self._last_ts, self._last_value = ts, value
        self._last_beyond, self._last_inside = b, inside

        total_s = self._window_total_s(ts) if self._cumulative else 0.0
        if not self.is_open:
            if not b and not self._cumulative:
                return None  # what _maybe_open finds for instant and consecutive rules
            return self._maybe_open(ts, value, b, total_s)
        ep = self._episode
        assert ep is not None
        if b:
            ep.peak = self._worse(ep.peak, value)
        if self.rule.kind == "cumulative":
            ep.beyond_s = total_s
        cleared = (self._clear_start is not None and ts - self._clear_start >= self.policy.clear_after
                   and (self.rule.kind != "cumulative" or total_s < self.duration.total_seconds()))
        if cleared:
            self.is_open = False
            self._episode = None
            return self._transition(CLEARED, ts, value, ep)
        step = self.policy.update_step(self.rule.metric)
        worsened = abs(ep.peak - ep.last_emit_peak) >= step
        if worsened or ts - ep.last_emit_at >= self.policy.update_every:
            ep.last_emit_at, ep.last_emit_peak = ts, ep.peak
            return self._transition(UPDATED, ts, value, ep)
        return None

    def _maybe_open(self, ts: datetime, value: float, b: bool, total_s: float) -> AlarmTransition | None:
        kind = self.rule.kind
        if kind == "instant":
            if not b:
                return None
            first, peak, beyond_s = ts, value, 0.0
        elif kind == "consecutive":
            if self._run_start is None or ts - self._run_start < self.duration:
                return None
            first, peak = self._run_start, self._run_peak
            beyond_s = (ts - self._run_start).total_seconds()
        else:
            if total_s < self.duration.total_seconds():
                return None
            first, peak = self._window_first_and_peak(ts, value)
            beyond_s = total_s
        self.is_open = True
        self._episode = _Episode(first_beyond_at=first, peak=peak, beyond_s=beyond_s,
                                 last_emit_at=ts, last_emit_peak=peak)
        return self._transition(OPENED, ts, value, self._episode)

    def _transition(self, state: str, ts: datetime, value: float, ep: _Episode) -> AlarmTransition:
        r = self.rule
        return AlarmTransition(
            depot=self.depot, zone=self.zone, sensor=self.sensor, rule_code=r.code, kind=r.kind,
            state=state, at=ts, value=value,
            evidence=AlarmEvidence(peak=ep.peak, minutes_beyond=ep.beyond_s / 60.0,
                                   first_beyond_at=ep.first_beyond_at, limit=r.limit, op=r.op,
                                   metric=r.metric),
            spoilage=r.spoilage, name_zh=r.name_zh, name_en=r.name_en,
        )


class ZoneAlarms:
    """All rules of one zone's storage class over all of its sensors.

    Zone-level transitions: `opened` when the first sensor opens a rule, `updated` for sensor
    updates and for further sensors opening it, `cleared` when the last open sensor clears.
    """

    def __init__(self, depot: str, zone: str, storage_class: StorageClass,
                 policy: AlarmPolicy = AlarmPolicy(),
                 intervals: dict[str, timedelta] | None = None):
        self.depot, self.zone = depot, zone
        self.storage_class = storage_class
        self.policy = policy
        self._intervals = dict(intervals or {})
        self._evaluators: dict[tuple[str, str], RuleEvaluator] = {}
        self._of_sensor: dict[str, list[tuple[RuleEvaluator, str | None]]] = {}  # (evaluator, metric unless temp_c)
        self._open: dict[str, set[str]] = {}

    def set_interval(self, sensor: str, interval: timedelta) -> None:
        """Reporting interval of a sensor; applies to evaluators created afterwards."""
        self._intervals[sensor] = interval

    def open_rules(self) -> dict[str, frozenset[str]]:
        """rule code → sensors that hold it open."""
        return {code: frozenset(s) for code, s in self._open.items() if s}

    def evaluator(self, sensor: str, rule: AlarmRule) -> RuleEvaluator:
        key = (sensor, rule.code)
        ev = self._evaluators.get(key)
        if ev is None:
            ev = RuleEvaluator(rule, depot=self.depot, zone=self.zone, sensor=sensor,
                               policy=self.policy, interval=self._intervals.get(sensor))
            self._evaluators[key] = ev
        return ev

    def _rules_of(self, sensor: str) -> list[tuple[RuleEvaluator, str | None]]:
        of_sensor = self._of_sensor.get(sensor)
        if of_sensor is None:
            of_sensor = self._of_sensor[sensor] = [
                (self.evaluator(sensor, rule), None if rule.metric == "temp_c" else rule.metric)
                for rule in self.storage_class.alarms]
        return of_sensor

    def _zone_transition(self, t: AlarmTransition) -> AlarmTransition | None:
        """A sensor's transition as the zone's: see the class docstring."""
        sensors = self._open.setdefault(t.rule_code, set())
        if t.state == OPENED:
            state = OPENED if not sensors else UPDATED
            sensors.add(t.sensor)
        elif t.state == UPDATED:
            state = UPDATED
        else:
            sensors.discard(t.sensor)
            if sensors:
                return None
            state = CLEARED
        return t if state == t.state else replace(t, state=state)

    def feed(self, reading: Reading) -> list[AlarmTransition]:
        if reading.zone != self.zone or reading.depot != self.depot:
            raise ValueError(f"reading of {reading.zone_key} fed to zone {self.depot}/{self.zone}")
        out: list[AlarmTransition] = []
        ts = reading.ts
        for ev, metric in self._rules_of(reading.sensor):
            t = ev.feed(ts, reading.temp_c if metric is None else getattr(reading, metric))
            if t is not None and (t := self._zone_transition(t)) is not None:
                out.append(t)
        return out

    def feed_sorted(self, readings: Sequence[Reading]) -> list[AlarmTransition]:
        """`feed` of each reading of a list sorted by (ts, sensor), with the same transitions in the
        same order, at a fraction of the cost: each sensor's rules take the sensor's series at
        once (`RuleEvaluator.feed_series`; a sensor's rules depend on its readings alone), then
        the sensors' transitions become the zone's in the order one-by-one feeding makes them:
        by time, sensor, rule (of one sensor and instant, only the first reading can move a rule)."""
        if set(map(_ZONE_KEY, readings)) - {f"{self.depot}/{self.zone}"}:
            bad = next(r for r in readings if (r.depot, r.zone) != (self.depot, self.zone))
            raise ValueError(f"reading of {bad.zone_key} fed to zone {self.depot}/{self.zone}")
        found: list[tuple[datetime, str, int, AlarmTransition]] = []
        for sensor, group in groupby(sorted(readings, key=_SENSOR), key=_SENSOR):
            series = list(group)
            stamps = list(map(_TS, series))
            step = longest_step(stamps)
            columns: dict[str | None, list] = {}
            for k, (ev, metric) in enumerate(self._rules_of(sensor)):
                values = columns.get(metric)
                if values is None:
                    values = columns[metric] = list(map(attrgetter(metric or "temp_c"), series))
                found.extend((t.at, sensor, k, t) for t in ev.feed_series(stamps, values, step))
        if not found:
            return []
        found.sort(key=itemgetter(0, 1, 2))
        return [z for *_, t in found if (z := self._zone_transition(t)) is not None]

    def feed_many(self, readings: Iterable[Reading]) -> list[AlarmTransition]:
        """Feed readings in any order (a gateway batch interleaves sensors)."""
        return self.feed_sorted(in_time_order(list(readings))[0])


def in_time_order(readings: Sequence[Reading]) -> tuple[list[Reading], list[datetime]]:
    """Readings sorted by (ts, sensor), the order the rules take them in, and their instants.
    Sorted by ts alone first, which is cheaper; by sensor too only when two share an instant."""
    in_order = sorted(readings, key=_TS)
    stamps = list(map(_TS, in_order))
    if any(map(operator.eq, stamps, islice(stamps, 1, None))):
        in_order = sorted(in_order, key=_TS_SENSOR)
    return in_order, stamps


def longest_step(stamps: Sequence[datetime]) -> timedelta | None:
    """The longest step between consecutive instants of a series that strictly increases (zero
    for a single one); None when it does not strictly increase."""
    if not all(map(operator.lt, stamps, islice(stamps, 1, None))):
        return None
    return max(map(operator.sub, islice(stamps, 1, None), stamps), default=_NO_STEP)


_NO_STEP = timedelta(0)
_ZONE_KEY = attrgetter("zone_key")
_SENSOR = attrgetter("sensor")
_TS = attrgetter("ts")
_TS_SENSOR = attrgetter("ts", "sensor")


def evaluate_history(depot: str, zone: str, storage_class: StorageClass, readings: Iterable[Reading],
                     policy: AlarmPolicy = AlarmPolicy()) -> list[AlarmTransition]:
    """Replay a zone's history through a fresh evaluator (reports, storage condition checks)."""
    return ZoneAlarms(depot, zone, storage_class, policy).feed_many(readings)
