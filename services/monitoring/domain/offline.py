"""Sensor offline detection (RULES.md §9): silence ≥ 3 × the reporting interval, or the retained
status / last will saying `offline`.

The tracker only records what it hears (`seen`, `status`); `check(now)` is the one place that
emits transitions, so a timer and a status message go through the same path.
A sensor reported offline comes back `online` when it is heard again: a reading within the
timeout and no standing `offline` status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.monitoring.domain.readings import IngestPolicy, Rejected, parse_topic, sensor_key

OFFLINE, ONLINE = "offline", "online"


@dataclass(frozen=True)
class OfflinePolicy:
    default_interval: timedelta = timedelta(seconds=60)
    missed_intervals: float = 3.0

    def timeout(self, interval: timedelta | None) -> timedelta:
        return (interval or self.default_interval) * self.missed_intervals


@dataclass(frozen=True)
class StatusUpdate:
    depot: str
    zone: str
    sensor: str
    status: str  # online | offline

    @property
    def sensor_key(self) -> str:
        return sensor_key(self.depot, self.zone, self.sensor)


@dataclass(frozen=True)
class SensorTransition:
    """state: offline | online. reason: silent | last_will | heard."""

    depot: str
    zone: str
    sensor: str
    state: str
    at: datetime
    reason: str
    last_seen: datetime | None

    @property
    def sensor_key(self) -> str:
        return sensor_key(self.depot, self.zone, self.sensor)

    @property
    def zone_key(self) -> str:
        return f"{self.depot}/{self.zone}"

    @property
    def text_zh(self) -> str:
        last = self.last_seen.isoformat() if self.last_seen else "无"
        if self.state == OFFLINE:
            why = "遗嘱消息报告离线" if self.reason == "last_will" else "超时未上报数据"
            return f"传感器离线: {self.sensor_key}({why}),最后数据 {last}"
        return f"传感器恢复在线: {self.sensor_key}"

    @property
    def text_en(self) -> str:
        last = self.last_seen.isoformat() if self.last_seen else "never"
        if self.state == OFFLINE:
            why = "last-will status offline" if self.reason == "last_will" else "no reading within timeout"
            return f"sensor offline: {self.sensor_key} ({why}), last reading {last}"
        return f"sensor back online: {self.sensor_key}"


def parse_status(topic: str, payload: bytes | str,
                 policy: IngestPolicy | None = None) -> StatusUpdate | Rejected:
    """`online` / `offline` as plain text, a JSON string, or `{"status": …}`."""
    policy = policy or IngestPolicy()
    raw = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes | bytearray) else payload
    try:
        ref = parse_topic(topic, policy)
    except ValueError as exc:
        return Rejected(code="bad_topic", reason=str(exc), raw=raw[:policy.raw_excerpt_chars])
    if ref.kind != "status":
        return Rejected(code="bad_topic", reason=f"topic {topic!r} is not a status topic",
                        raw=raw[:policy.raw_excerpt_chars])
    value = raw.strip()
    if value[:1] in ('"', "{"):
        try:
            doc = json.loads(value)
        except ValueError:
            doc = None
        value = doc.get("status") if isinstance(doc, dict) else doc
    if not isinstance(value, str) or value.strip().lower() not in (ONLINE, OFFLINE):
        return Rejected(code="wrong_type", reason=f"status must be 'online' or 'offline', got {raw[:40]!r}",
                        raw=raw[:policy.raw_excerpt_chars])
    assert ref.zone is not None and ref.sensor is not None
    return StatusUpdate(depot=ref.depot, zone=ref.zone, sensor=ref.sensor, status=value.strip().lower())


@dataclass
class _Sensor:
    depot: str
    zone: str
    sensor: str
    interval: timedelta | None
    since: datetime
    last_seen: datetime | None = None
    status_offline: bool = False
    reported_offline: bool = False


class OfflineTracker:
    def __init__(self, policy: OfflinePolicy = OfflinePolicy()):
        self.policy = policy
        self._sensors: dict[str, _Sensor] = {}

    def register(self, depot: str, zone: str, sensor: str, since: datetime,
                 interval: timedelta | None = None) -> None:
        """Expect readings from a sensor from `since` on (a never-heard sensor goes offline too)."""
        key = sensor_key(depot, zone, sensor)
        s = self._sensors.get(key)
        if s is None:
            self._sensors[key] = _Sensor(depot, zone, sensor, interval, since)
        else:
            s.interval = interval

    def _get(self, depot: str, zone: str, sensor: str, at: datetime) -> _Sensor:
        key = sensor_key(depot, zone, sensor)
        s = self._sensors.get(key)
        if s is None:
            s = self._sensors[key] = _Sensor(depot, zone, sensor, None, at)
        return s

    def seen(self, depot: str, zone: str, sensor: str, at: datetime) -> None:
        """A reading was heard; `at` is its ts (the newest one counts)."""
        s = self._get(depot, zone, sensor, at)
        if s.last_seen is None or at > s.last_seen:
            s.last_seen = at

    def status(self, update: StatusUpdate, at: datetime) -> None:
        s = self._get(update.depot, update.zone, update.sensor, at)
        s.status_offline = update.status == OFFLINE

    def is_offline(self, key: str) -> bool:
        s = self._sensors.get(key)
        return bool(s and s.reported_offline)

    def check(self, now: datetime) -> list[SensorTransition]:
        out: list[SensorTransition] = []
        for s in self._sensors.values():
            t = offline_transition(s.depot, s.zone, s.sensor, expected_since=s.since, last_heard=s.last_seen,
                                   last_reading=s.last_seen, interval=s.interval,
                                   status_offline=s.status_offline, reported_offline=s.reported_offline,
                                   now=now, policy=self.policy)
            if t is not None:
                s.reported_offline = t.state == OFFLINE
                out.append(t)
        return out


def offline_transition(depot: str, zone: str, sensor: str, *, expected_since: datetime,
                       last_heard: datetime | None, last_reading: datetime | None,
                       interval: timedelta | None, status_offline: bool, reported_offline: bool,
                       now: datetime, policy: OfflinePolicy) -> SensorTransition | None:
    """One sensor's verdict: offline when silent for the timeout since it was last heard (or
    expected) or when its status (or its gateway's last will) says offline; online again once
    heard and not offline; None when nothing changes. The worker's stored sensors and the
    in-memory OfflineTracker both judge with it."""
    silent = now - (last_heard or expected_since) >= policy.timeout(interval)
    down = status_offline or silent
    if down and not reported_offline:
        return SensorTransition(depot, zone, sensor, OFFLINE, now,
                                "last_will" if status_offline else "silent", last_reading)
    if not down and reported_offline:
        return SensorTransition(depot, zone, sensor, ONLINE, now, "heard", last_reading)
    return None
