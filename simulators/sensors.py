"""Sensor model of cold stores and warehouses: the pure part of the gateway simulator.

No I/O and no wall clock: `Simulation.step(until)` takes a simulated instant and returns the
readings the gateways send up to it. The same scenario and seed give the same readings, however
the run is cut into steps.

Physics of a zone (all parameters in `ClassProfile` / `ModelPolicy`, overridable per scenario):
set point of its storage class + day-night drift (coldest at 03:00 local, warmest at 15:00) +
defrost cycles (chilled, frozen: a half-sine rise every few hours) + door openings (short
spikes decaying exponentially, frequent in working hours) + scripted faults; each sensor adds
its calibration offset and Gaussian noise.

Scripted faults (scenario `faults:`): thermal ones change what is measured (compressor_failure,
door_left_open, power_cut, freezer_thaw, humid_hazmat); transport ones change what is sent
(sensor_dropout, clock_skew, duplicate, out_of_order, garbage). `FAULT_DEFAULTS` lists every
fault's parameters; an unknown fault or parameter is refused.

Scenario YAML: `start` (ISO-8601 with offset), `interval_s`, `depots: [{id, gateway?, zones:
[{id, storage_class, sensors: count | [ids], interval_s?, profile?}]}]` and/or `generate:
{depots, zones_per_depot, sensors_per_zone, classes}` for load, `profiles`, `policy`, `faults`.
Scenario `at:` is either offset minutes from the start (a number) or local "HH:MM" on the start
day (next day when earlier than the start). Quote it: YAML 1.1 reads a bare 10:30 as 630.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.catalogue import STORAGE_CLASSES

MS_PER_MIN = 60_000
MS_PER_H = 3_600_000
REFRIGERATED = frozenset({"chilled", "frozen", "medicine_2_8"})
GARBAGE_KINDS = ("bad_json", "missing_field", "nan", "wrong_type")


@dataclass(frozen=True)
class ClassProfile:
    """Normal behaviour of a zone of one storage class. Temperatures °C, RH %."""

    set_point_c: float
    day_night_amp_c: float
    noise_sd_c: float
    rh_mean: float
    rh_day_night_amp: float
    rh_noise_sd: float
    door_rate_per_h: float
    door_spike_c: float
    door_tau_min: float
    defrost_every_h: float | None = None
    defrost_min: float = 0.0
    defrost_rise_c: float = 0.0


DEFAULT_PROFILES: dict[str, ClassProfile] = {
    "ambient": ClassProfile(21.0, 3.0, 0.15, 55.0, 8.0, 1.0, 1.0, 0.8, 5.0),
    "chilled": ClassProfile(2.0, 0.2, 0.12, 88.0, 2.0, 1.0, 3.0, 1.2, 3.0, 6.0, 20.0, 1.5),
    "frozen": ClassProfile(-20.0, 0.3, 0.2, 75.0, 2.0, 1.5, 1.5, 2.5, 4.0, 8.0, 30.0, 3.5),
    "medicine_2_8": ClassProfile(5.0, 0.1, 0.1, 50.0, 2.0, 1.0, 2.0, 1.0, 2.0),
    "controlled_room": ClassProfile(20.0, 1.0, 0.1, 45.0, 3.0, 1.0, 1.0, 0.3, 4.0),
    "flammable": ClassProfile(21.0, 3.0, 0.15, 50.0, 6.0, 1.0, 0.5, 0.5, 5.0),
    "oxidizer": ClassProfile(21.0, 3.0, 0.15, 60.0, 6.0, 1.0, 0.5, 0.5, 5.0),
}


@dataclass(frozen=True)
class ModelPolicy:
    work_start_h: float = 7.0
    work_end_h: float = 19.0
    night_door_factor: float = 0.1
    coldest_hour: float = 3.0
    sensor_offset_sd_c: float = 0.1
    sensor_offset_max_c: float = 0.25
    sensor_rh_offset_max: float = 2.0
    door_factor_min: float = 0.6  # a sensor far from the door sees this share of a spike
    door_window_taus: float = 6.0  # a spike older than this many time constants is ignored


# Every fault's parameters and their defaults. Rates per simulated minute.
FAULT_DEFAULTS: dict[str, dict[str, Any]] = {
    "compressor_failure": {"rate_c_per_min": 0.15, "recovery_c_per_min": 0.3},
    "door_left_open": {"rise_c": 8.0, "tau_min": 4.0, "rh_rise": 8.0},
    "power_cut": {"rate_c_per_min": 0.05, "ambient_rate_c_per_min": 0.01,
                  "ambient_max_rise_c": 3.0, "recovery_c_per_min": 0.3},
    "freezer_thaw": {"rate_c_per_min": 0.1, "target_c": 2.0, "recovery_c_per_min": 0.2},
    "humid_hazmat": {"rh_per_min": 0.5, "target_rh": 92.0, "recovery_rh_per_min": 0.5},
    "sensor_dropout": {},
    "clock_skew": {"offset_s": 300},
    "duplicate": {"probability": 1.0, "delay_s": 0},
    "out_of_order": {"probability": 0.5, "delay_s": 150},
    "garbage": {"probability": 1.0, "kinds": list(GARBAGE_KINDS)},
}
THERMAL_FAULTS = frozenset({"compressor_failure", "door_left_open", "power_cut", "freezer_thaw",
                            "humid_hazmat"})


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message names the field."""


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class ZoneConfig:
    id: str
    storage_class: str
    sensors: tuple[str, ...]
    interval_s: float
    profile: ClassProfile


@dataclass(frozen=True)
class DepotConfig:
    id: str
    gateway: str
    zones: tuple[ZoneConfig, ...]
    kind: str = ""
    name: str = ""


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    depot: str
    zone: str | None
    sensor: str | None
    start_ms: int
    end_ms: int | None
    params: Mapping[str, Any]
    at: Any = None  # as written in the scenario, to place the fault again for another start
    duration_min: float | None = None

    def covers(self, depot: str, zone: str, sensor: str) -> bool:
        return (self.depot == depot and self.zone in (None, zone)
                and self.sensor in (None, sensor))

    def active(self, t_ms: int) -> bool:
        return self.start_ms <= t_ms and (self.end_ms is None or t_ms < self.end_ms)


@dataclass(frozen=True)
class ScenarioConfig:
    name: str
    start: datetime
    depots: tuple[DepotConfig, ...]
    faults: tuple[FaultSpec, ...] = ()
    policy: ModelPolicy = field(default_factory=ModelPolicy)

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    def sensor_count(self) -> int:
        return sum(len(z.sensors) for d in self.depots for z in d.zones)


def to_ms(t: datetime | int | float) -> int:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError("simulated times must be timezone-aware")
        return round(t.timestamp() * 1000)
    return int(t)


def _ids(value: Any, prefix: str, where: str) -> tuple[str, ...]:
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: a count or a list of ids, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ScenarioError(f"{where}: must be ≥ 1")
        width = len(str(value))
        return tuple(f"{prefix}{i:0{width}d}" for i in range(1, value + 1))
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        if len(set(value)) != len(value):
            raise ScenarioError(f"{where}: duplicate ids")
        return tuple(value)
    raise ScenarioError(f"{where}: a count or a non-empty list of ids, got {value!r}")


def _check_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "/+# ") or len(value) > 64:
        raise ScenarioError(f"{where}: {value!r} is not a usable id (no / + # or spaces, ≤ 64 chars)")
    return value


def _profile(base: ClassProfile, overrides: Any, where: str) -> ClassProfile:
    if not overrides:
        return base
    if not isinstance(overrides, dict):
        raise ScenarioError(f"{where}: must be a mapping")
    known = {f.name for f in fields(ClassProfile)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ScenarioError(f"{where}: unknown profile fields {unknown}; known: {sorted(known)}")
    return replace(base, **overrides)


def _parse_start(value: Any) -> datetime:
    if isinstance(value, datetime):
        start = value
    elif isinstance(value, str):
        try:
            start = datetime.fromisoformat(value)
        except ValueError:
            raise ScenarioError(f"start: {value!r} is not ISO-8601") from None
    else:
        raise ScenarioError(f"start: ISO-8601 with a UTC offset expected, got {value!r}")
    if start.tzinfo is None:
        raise ScenarioError("start: needs a UTC offset, e.g. 2026-11-28T06:00:00+08:00")
    return start


def parse_at(value: Any, start: datetime, where: str = "at") -> int:
    """Scenario time → epoch ms: offset minutes (number) or local "HH:MM" on the start day."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: {value!r}")
    if isinstance(value, int | float):
        return to_ms(start) + round(float(value) * MS_PER_MIN)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+").replace(".", "", 1).isdigit():
            return to_ms(start) + round(float(text) * MS_PER_MIN)
        try:
            hh, mm = text.split(":")
            h, m = int(hh), int(mm)
            if not (0 <= h < 24 and 0 <= m < 60):
                raise ValueError
        except ValueError:
            raise ScenarioError(f"{where}: {value!r} is neither offset minutes nor \"HH:MM\"") from None
        at = start.replace(hour=h, minute=m, second=0, microsecond=0)
        if at < start:
            at += timedelta(days=1)
        return to_ms(at)
    raise ScenarioError(f"{where}: offset minutes or \"HH:MM\" expected, got {value!r}")


def _zones_of(d: dict, where: str, default_interval: float,
              profiles: Mapping[str, ClassProfile]) -> tuple[ZoneConfig, ...]:
    raw_zones = d.get("zones")
    if not isinstance(raw_zones, list) or not raw_zones:
        raise ScenarioError(f"{where}.zones: a non-empty list expected")
    zones: list[ZoneConfig] = []
    for j, z in enumerate(raw_zones):
        zw = f"{where}.zones[{j}]"
        if not isinstance(z, dict):
            raise ScenarioError(f"{zw}: a mapping expected")
        zid = _check_id(z.get("id"), f"{zw}.id")
        sc = z.get("storage_class")
        if sc not in STORAGE_CLASSES:
            raise ScenarioError(f"{zw}.storage_class: {sc!r} is not one of {STORAGE_CLASSES}")
        sensors = _ids(z.get("sensors", 2), "s", f"{zw}.sensors")
        for s in sensors:
            _check_id(s, f"{zw}.sensors")
        interval = float(z.get("interval_s", default_interval))
        if interval <= 0:
            raise ScenarioError(f"{zw}.interval_s: must be > 0")
        zones.append(ZoneConfig(zid, sc, sensors, interval,
                                _profile(profiles[sc], z.get("profile"), f"{zw}.profile")))
    if len({z.id for z in zones}) != len(zones):
        raise ScenarioError(f"{where}.zones: duplicate zone ids")
    return tuple(zones)


def _generated_depots(g: dict, default_interval: float,
                      profiles: Mapping[str, ClassProfile]) -> list[DepotConfig]:
    """`generate: {depots, zones_per_depot, sensors_per_zone, classes, interval_s}` for load runs."""
    try:
        n_depots = int(g["depots"])
        n_zones = int(g["zones_per_depot"])
        n_sensors = int(g["sensors_per_zone"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"generate: depots, zones_per_depot, sensors_per_zone required ({exc})") from None
    classes = list(g.get("classes", STORAGE_CLASSES))
    prefix = str(g.get("depot_prefix", "d"))
    interval = float(g.get("interval_s", default_interval))
    dw, zw = len(str(n_depots)), len(str(n_zones))
    out = []
    for i in range(1, n_depots + 1):
        did = f"{prefix}{i:0{dw}d}"
        zones = [{"id": f"z{j:0{zw}d}", "storage_class": classes[(i + j - 2) % len(classes)],
                  "sensors": n_sensors, "interval_s": interval} for j in range(1, n_zones + 1)]
        out.append(DepotConfig(did, f"gw-{did}", _zones_of({"zones": zones}, f"generate.{did}",
                                                             interval, profiles), kind="generated"))
    return out


def parse_scenario(data: Mapping[str, Any], start: datetime | None = None) -> ScenarioConfig:
    """Validate a parsed scenario YAML. Raises ScenarioError naming the field.
    `start` replaces the scenario's start (see `with_start`)."""
    if not isinstance(data, Mapping):
        raise ScenarioError("scenario: a mapping expected")
    start = _parse_start(start or data.get("start", "2026-11-28T06:00:00+08:00"))
    interval = float(data.get("interval_s", 60))
    if interval <= 0:
        raise ScenarioError("interval_s: must be > 0")
    raw_profiles = data.get("profiles") or {}
    profiles = dict(DEFAULT_PROFILES)
    for sc, over in raw_profiles.items():
        if sc not in profiles:
            raise ScenarioError(f"profiles.{sc}: unknown storage class")
        profiles[sc] = _profile(profiles[sc], over, f"profiles.{sc}")
    policy_raw = data.get("policy") or {}
    try:
        policy = ModelPolicy(**policy_raw)
    except TypeError as exc:
        raise ScenarioError(f"policy: {exc}") from None

    depots: list[DepotConfig] = []
    for i, d in enumerate(data.get("depots") or []):
        where = f"depots[{i}]"
        if not isinstance(d, dict):
            raise ScenarioError(f"{where}: a mapping expected")
        did = _check_id(d.get("id"), f"{where}.id")
        gw = _check_id(d.get("gateway", f"gw-{did}"), f"{where}.gateway")
        depots.append(DepotConfig(did, gw, _zones_of(d, where, interval, profiles),
                                  kind=str(d.get("kind", "")), name=str(d.get("name", ""))))
    if data.get("generate"):
        depots.extend(_generated_depots(data["generate"], interval, profiles))
    if not depots:
        raise ScenarioError("depots: at least one depot (or a generate: block) is required")
    if len({d.id for d in depots}) != len(depots):
        raise ScenarioError("depots: duplicate depot ids")
    if len({d.gateway for d in depots}) != len(depots):
        raise ScenarioError("depots: duplicate gateway ids")

    zones_of = {d.id: {z.id: z for z in d.zones} for d in depots}
    faults: list[FaultSpec] = []
    for i, f in enumerate(data.get("faults") or []):
        where = f"faults[{i}]"
        if not isinstance(f, dict):
            raise ScenarioError(f"{where}: a mapping expected")
        kind = f.get("fault")
        if kind not in FAULT_DEFAULTS:
            raise ScenarioError(f"{where}.fault: {kind!r} is not one of {sorted(FAULT_DEFAULTS)}")
        depot = f.get("depot")
        if depot not in zones_of:
            raise ScenarioError(f"{where}.depot: unknown depot {depot!r}")
        zone = f.get("zone")
        if zone is not None and zone not in zones_of[depot]:
            raise ScenarioError(f"{where}.zone: unknown zone {zone!r} of depot {depot}")
        sensor = f.get("sensor")
        if sensor is not None:
            if zone is None:
                raise ScenarioError(f"{where}.sensor: a sensor needs its zone")
            if sensor not in zones_of[depot][zone].sensors:
                raise ScenarioError(f"{where}.sensor: unknown sensor {sensor!r} in {depot}/{zone}")
        if "at" not in f:
            raise ScenarioError(f"{where}.at: missing")
        start_ms = parse_at(f["at"], start, f"{where}.at")
        dur = f.get("duration_min")
        if dur is not None and (isinstance(dur, bool) or not isinstance(dur, int | float) or dur <= 0):
            raise ScenarioError(f"{where}.duration_min: a positive number expected, got {dur!r}")
        params = dict(FAULT_DEFAULTS[kind])
        given = f.get("params") or {}
        unknown = sorted(set(given) - set(params))
        if unknown:
            raise ScenarioError(f"{where}.params: unknown {unknown} for {kind}; known: {sorted(params)}")
        params.update(given)
        if kind == "garbage":
            bad = [k for k in params["kinds"] if k not in GARBAGE_KINDS]
            if bad or not params["kinds"]:
                raise ScenarioError(f"{where}.params.kinds: {bad or 'empty'}; known: {GARBAGE_KINDS}")
        end_ms = None if dur is None else start_ms + round(float(dur) * MS_PER_MIN)
        faults.append(FaultSpec(kind, depot, zone, sensor, start_ms, end_ms, params, f["at"],
                                None if dur is None else float(dur)))
    return ScenarioConfig(name=str(data.get("name", "scenario")), start=start, depots=tuple(depots),
                          faults=tuple(faults), policy=policy)


# ---------------------------------------------------------------------------------------------
# Readings and messages


@dataclass(slots=True)
class Reading:
    """One reading as a gateway sends it. `ts` is what the sensor reports (clock skew included),
    `measured_at` the true instant, `sent_at` when the gateway sends it (out_of_order delays it).
    `garbage` names the corruption applied on the wire (GARBAGE_KINDS) and `garbage_field` the
    field it hits; `duplicate` marks a re-sent copy."""

    depot: str
    zone: str
    sensor: str
    gateway: str
    ts: int
    seq: int
    temp_c: float
    rh: float | None
    measured_at: int
    sent_at: int
    garbage: str | None = None
    garbage_field: str | None = None
    duplicate: bool = False

    @property
    def sensor_key(self) -> str:
        return f"{self.depot}/{self.zone}/{self.sensor}"

    def telemetry(self) -> dict[str, Any]:
        """The single-reading payload `{ts, seq, temp_c, rh}`, corrupted as `garbage` says."""
        return self._garble({"ts": self.ts, "seq": self.seq, "temp_c": self.temp_c, "rh": self.rh})

    def entry(self) -> dict[str, Any]:
        """The batch entry `{depot, zone, sensor, ts, seq, temp_c, rh}`, corrupted as `garbage` says."""
        return self._garble({"depot": self.depot, "zone": self.zone, "sensor": self.sensor,
                             "ts": self.ts, "seq": self.seq, "temp_c": self.temp_c, "rh": self.rh})

    def _garble(self, d: dict[str, Any]) -> dict[str, Any]:
        if self.garbage == "missing_field":
            d.pop(self.garbage_field, None)
        elif self.garbage == "nan":
            d[self.garbage_field] = math.nan
        elif self.garbage == "wrong_type":
            d[self.garbage_field] = str(d[self.garbage_field])
        return d


@dataclass(frozen=True)
class Message:
    """One MQTT message. `topic` is relative to the topic root (the publisher prefixes it)."""

    topic: str
    payload: bytes
    depot: str
    gateway: str
    readings: int
    garbage: int
    kind: str  # batch | telemetry


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode("utf-8")


def _broken(doc: Any) -> bytes:
    """Malformed JSON: the document cut in the middle."""
    text = _dumps(doc)
    return text[: max(1, len(text) // 2)]


def batch_topic(depot: str, gateway: str) -> str:
    return f"{depot}/gw/{gateway}/batch"


def telemetry_topic(depot: str, zone: str, sensor: str) -> str:
    return f"{depot}/{zone}/{sensor}/telemetry"


def sensor_status_topic(depot: str, zone: str, sensor: str) -> str:
    return f"{depot}/{zone}/{sensor}/status"


def gateway_status_topic(depot: str, gateway: str) -> str:
    return f"{depot}/gw/{gateway}/status"


class Batcher:
    """Groups readings into batch messages per gateway, `batch_size` readings each, keeping the
    send order. A `bad_json` reading goes out alone as a malformed batch message (a broken
    document would take its neighbours down with it). `add` returns full batches only;
    `flush` returns the rest."""

    def __init__(self, batch_size: int = 500):
        if batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        self.batch_size = batch_size
        self._open: dict[str, tuple[str, list[Reading]]] = {}

    def _message(self, depot: str, gateway: str, rs: list[Reading]) -> Message:
        doc = {"gateway": gateway, "readings": [r.entry() for r in rs]}
        return Message(batch_topic(depot, gateway), _dumps(doc), depot, gateway, len(rs),
                       sum(1 for r in rs if r.garbage), "batch")

    def add(self, readings: Iterable[Reading]) -> list[Message]:
        out: list[Message] = []
        for r in readings:
            if r.garbage == "bad_json":
                doc = {"gateway": r.gateway, "readings": [r.entry()]}
                out.append(Message(batch_topic(r.depot, r.gateway), _broken(doc), r.depot,
                                   r.gateway, 1, 1, "batch"))
                continue
            slot = self._open.get(r.gateway)
            if slot is None:
                slot = self._open[r.gateway] = (r.depot, [])
            slot[1].append(r)
            if len(slot[1]) >= self.batch_size:
                out.append(self._message(r.depot, r.gateway, slot[1]))
                del self._open[r.gateway]
        return out

    def flush(self) -> list[Message]:
        out = [self._message(depot, gw, rs) for gw, (depot, rs) in self._open.items() if rs]
        self._open.clear()
        return out


def encode_batches(readings: Iterable[Reading], batch_size: int = 500) -> list[Message]:
    b = Batcher(batch_size)
    return b.add(readings) + b.flush()


def encode_single(readings: Iterable[Reading]) -> list[Message]:
    out = []
    for r in readings:
        doc = r.telemetry()
        payload = _broken(doc) if r.garbage == "bad_json" else _dumps(doc)
        out.append(Message(telemetry_topic(r.depot, r.zone, r.sensor), payload, r.depot,
                           r.gateway, 1, 1 if r.garbage else 0, "telemetry"))
    return out


# ---------------------------------------------------------------------------------------------
# The simulation


@dataclass
class SimStats:
    measured: int = 0
    sent: int = 0
    dropped: int = 0
    duplicates: int = 0
    delayed: int = 0
    skewed: int = 0
    garbage: int = 0


@dataclass
class _Zone:
    depot: DepotConfig
    cfg: ZoneConfig
    defrost_phase_ms: int
    door_cache: dict[int, list[int]] = field(default_factory=dict)


@dataclass
class _Sensor:
    zone: _Zone
    id: str
    rng: random.Random
    offset_c: float
    rh_offset: float
    door_factor: float
    interval_ms: int
    next_due: int
    seq: int = 0
    faults: tuple[FaultSpec, ...] = ()


class Simulation:
    """Deterministic given (config, seed). Not thread-safe."""

    def __init__(self, config: ScenarioConfig | Mapping[str, Any], seed: int = 0,
                 start: datetime | None = None):
        if not isinstance(config, ScenarioConfig):
            config = parse_scenario(config)
        if start is not None:
            config = with_start(config, start)
        self.config = config
        self.seed = seed
        self.policy = config.policy
        self.start_ms = config.start_ms
        self.now_ms = self.start_ms
        offset = config.start.utcoffset() or timedelta(0)
        self._local_offset_ms = round(offset.total_seconds() * 1000)
        self.stats = SimStats()
        self._zones: list[_Zone] = []
        self._sensors: list[_Sensor] = []
        self._due: list[tuple[int, int]] = []
        self._pending: list[tuple[int, int, Reading]] = []
        self._counter = 0
        for d in config.depots:
            for z in d.zones:
                zrng = random.Random(f"{seed}|zone|{d.id}/{z.id}")
                every = z.profile.defrost_every_h
                zone = _Zone(d, z, round(zrng.random() * (every or 0) * MS_PER_H))
                self._zones.append(zone)
                interval_ms = round(z.interval_s * 1000)
                for s in z.sensors:
                    rng = random.Random(f"{seed}|sensor|{d.id}/{z.id}/{s}")
                    lim = self.policy.sensor_offset_max_c
                    offset_c = max(-lim, min(lim, rng.gauss(0.0, self.policy.sensor_offset_sd_c)))
                    sensor = _Sensor(
                        zone=zone, id=s, rng=rng, offset_c=offset_c,
                        rh_offset=rng.uniform(-self.policy.sensor_rh_offset_max,
                                              self.policy.sensor_rh_offset_max),
                        door_factor=rng.uniform(self.policy.door_factor_min, 1.0),
                        interval_ms=interval_ms,
                        next_due=self.start_ms + round(rng.random() * interval_ms),
                        faults=tuple(f for f in config.faults if f.covers(d.id, z.id, s)),
                    )
                    self._due.append((sensor.next_due, len(self._sensors)))
                    self._sensors.append(sensor)
        heapq.heapify(self._due)

    # -- topology

    @property
    def gateways(self) -> dict[str, str]:
        """gateway id → depot id."""
        return {d.gateway: d.id for d in self.config.depots}

    def sensors(self) -> list[tuple[str, str, str, str]]:
        """(depot, zone, sensor, storage_class) of every sensor."""
        return [(s.zone.depot.id, s.zone.cfg.id, s.id, s.zone.cfg.storage_class) for s in self._sensors]

    # -- physics

    def _day_night(self, t_ms: int) -> float:
        """-1 at the coldest hour (local), +1 twelve hours later."""
        local_h = ((t_ms + self._local_offset_ms) / MS_PER_H) % 24.0
        return -math.cos(2.0 * math.pi * (local_h - self.policy.coldest_hour) / 24.0)

    def ambient_c(self, t_ms: int) -> float:
        """The air around the stores: what a failing cold room warms up toward."""
        p = DEFAULT_PROFILES["ambient"]
        return p.set_point_c + p.day_night_amp_c * self._day_night(t_ms)

    def _door_events(self, zone: _Zone, bucket: int) -> list[int]:
        events = zone.door_cache.get(bucket)
        if events is not None:
            return events
        p = zone.cfg.profile
        local_h = bucket % 24
        rate = p.door_rate_per_h
        if not self.policy.work_start_h <= local_h < self.policy.work_end_h:
            rate *= self.policy.night_door_factor
        rng = random.Random(f"{self.seed}|door|{zone.depot.id}/{zone.cfg.id}|{bucket}")
        events = []
        if rate > 0:
            t = rng.expovariate(rate)
            while t < 1.0:
                events.append(bucket * MS_PER_H - self._local_offset_ms + round(t * MS_PER_H))
                t += rng.expovariate(rate)
        if len(zone.door_cache) > 4:
            for old in sorted(zone.door_cache)[:-3]:
                del zone.door_cache[old]
        zone.door_cache[bucket] = events
        return events

    def door_c(self, zone: _Zone, t_ms: int) -> float:
        p = zone.cfg.profile
        if p.door_spike_c <= 0 or p.door_rate_per_h <= 0:
            return 0.0
        tau_ms = p.door_tau_min * MS_PER_MIN
        window = self.policy.door_window_taus * tau_ms
        bucket = (t_ms + self._local_offset_ms) // MS_PER_H
        total = 0.0
        b = bucket
        while True:
            for e in self._door_events(zone, b):
                if e <= t_ms and t_ms - e < window:
                    total += p.door_spike_c * math.exp(-(t_ms - e) / tau_ms)
            if (b * MS_PER_H - self._local_offset_ms) <= t_ms - window:
                break
            b -= 1
        return total

    def defrost_c(self, zone: _Zone, t_ms: int) -> float:
        p = zone.cfg.profile
        if not p.defrost_every_h or p.defrost_min <= 0:
            return 0.0
        period = p.defrost_every_h * MS_PER_H
        x = ((t_ms - self.start_ms + zone.defrost_phase_ms) % period) / (p.defrost_min * MS_PER_MIN)
        return p.defrost_rise_c * math.sin(math.pi * x) if x < 1.0 else 0.0

    @staticmethod
    def _ramp(f: FaultSpec, t_ms: int, rate_per_min: float, cap: float, recovery_per_min: float) -> float:
        """Linear rise at `rate` capped at `cap` while the fault lasts, then linear recovery."""
        if t_ms < f.start_ms:
            return 0.0
        until = t_ms if f.end_ms is None else min(t_ms, f.end_ms)
        d = min(rate_per_min * (until - f.start_ms) / MS_PER_MIN, max(cap, 0.0))
        if f.end_ms is not None and t_ms > f.end_ms:
            d = max(0.0, d - recovery_per_min * (t_ms - f.end_ms) / MS_PER_MIN)
        return d

    def _fault_delta(self, f: FaultSpec, zone: _Zone, t_ms: int) -> tuple[float, float]:
        p, sc, pr = f.params, zone.cfg.storage_class, zone.cfg.profile
        if f.kind == "compressor_failure":
            cap = self.ambient_c(t_ms) - pr.set_point_c
            return self._ramp(f, t_ms, p["rate_c_per_min"], cap, p["recovery_c_per_min"]), 0.0
        if f.kind == "power_cut":
            if sc in REFRIGERATED:
                cap, rate = self.ambient_c(t_ms) - pr.set_point_c, p["rate_c_per_min"]
            else:
                cap, rate = p["ambient_max_rise_c"], p["ambient_rate_c_per_min"]
            return self._ramp(f, t_ms, rate, cap, p["recovery_c_per_min"]), 0.0
        if f.kind == "freezer_thaw":
            cap = p["target_c"] - pr.set_point_c
            return self._ramp(f, t_ms, p["rate_c_per_min"], cap, p["recovery_c_per_min"]), 0.0
        if f.kind == "humid_hazmat":
            cap = p["target_rh"] - pr.rh_mean
            return 0.0, self._ramp(f, t_ms, p["rh_per_min"], cap, p["recovery_rh_per_min"])
        if f.kind == "door_left_open":
            if t_ms < f.start_ms:
                return 0.0, 0.0
            tau = p["tau_min"] * MS_PER_MIN
            until = t_ms if f.end_ms is None else min(t_ms, f.end_ms)
            k = 1.0 - math.exp(-(until - f.start_ms) / tau)
            if f.end_ms is not None and t_ms > f.end_ms:
                k *= math.exp(-(t_ms - f.end_ms) / tau)
            rise = min(p["rise_c"], max(0.0, self.ambient_c(t_ms) - pr.set_point_c))
            return rise * k, p["rh_rise"] * k
        return 0.0, 0.0

    def true_values(self, sensor: _Sensor, t_ms: int) -> tuple[float, float]:
        """Temperature and RH at the sensor without noise (tests use it to check the physics)."""
        zone = sensor.zone
        p = zone.cfg.profile
        dn = self._day_night(t_ms)
        temp = p.set_point_c + p.day_night_amp_c * dn + sensor.offset_c
        temp += self.defrost_c(zone, t_ms) + sensor.door_factor * self.door_c(zone, t_ms)
        rh = p.rh_mean - p.rh_day_night_amp * dn + sensor.rh_offset
        for f in sensor.faults:
            if f.kind in THERMAL_FAULTS:
                dt, drh = self._fault_delta(f, zone, t_ms)
                temp += dt
                rh += drh
        return temp, rh

    def sensor(self, depot: str, zone: str, sensor: str) -> _Sensor:
        for s in self._sensors:
            if s.id == sensor and s.zone.cfg.id == zone and s.zone.depot.id == depot:
                return s
        raise KeyError(f"{depot}/{zone}/{sensor}")

    # -- stepping

    def _emit(self, send_ms: int, r: Reading) -> None:
        self._counter += 1
        heapq.heappush(self._pending, (send_ms, self._counter, r))

    def _measure(self, s: _Sensor, t_ms: int) -> None:
        st = self.stats
        active = [f for f in s.faults if f.kind not in THERMAL_FAULTS and f.active(t_ms)]
        if any(f.kind == "sensor_dropout" for f in active):
            st.dropped += 1
            return
        p = s.zone.cfg.profile
        temp, rh = self.true_values(s, t_ms)
        temp += s.rng.gauss(0.0, p.noise_sd_c)
        rh += s.rng.gauss(0.0, p.rh_noise_sd)
        s.seq += 1
        st.measured += 1
        ts = t_ms
        send = t_ms
        garbage = gfield = None
        dup_delays: list[int] = []
        for f in active:
            fp = f.params
            if f.kind == "clock_skew":
                ts += round(fp["offset_s"] * 1000)
                st.skewed += 1
            elif f.kind == "out_of_order" and s.rng.random() < fp["probability"]:
                send += round(fp["delay_s"] * 1000)
                st.delayed += 1
            elif f.kind == "duplicate" and s.rng.random() < fp["probability"]:
                dup_delays.append(round(fp["delay_s"] * 1000))
            elif f.kind == "garbage" and garbage is None and s.rng.random() < fp["probability"]:
                garbage = s.rng.choice(fp["kinds"])
                if garbage == "missing_field":
                    gfield = s.rng.choice(("ts", "seq", "temp_c"))
                elif garbage == "nan":
                    gfield = s.rng.choice(("temp_c", "rh"))
                elif garbage == "wrong_type":
                    gfield = s.rng.choice(("ts", "seq", "temp_c"))
                st.garbage += 1
        z = s.zone
        r = Reading(z.depot.id, z.cfg.id, s.id, z.depot.gateway, ts, s.seq, round(temp, 2),
                    round(min(100.0, max(0.0, rh)), 1), t_ms, send, garbage, gfield)
        self._emit(send, r)
        for delay in dup_delays:
            st.duplicates += 1
            if garbage:
                st.garbage += 1
            self._emit(send + delay, replace(r, sent_at=send + delay, duplicate=True))

    def step(self, until: datetime | int) -> list[Reading]:
        """Advance to `until` (inclusive); return what the gateways send meanwhile, in send order."""
        until_ms = to_ms(until)
        due = self._due
        while due and due[0][0] <= until_ms:
            t, i = heapq.heappop(due)
            s = self._sensors[i]
            self._measure(s, t)
            s.next_due = t + s.interval_ms
            heapq.heappush(due, (s.next_due, i))
        out: list[Reading] = []
        pending = self._pending
        while pending and pending[0][0] <= until_ms:
            out.append(heapq.heappop(pending)[2])
        self.now_ms = max(self.now_ms, until_ms)
        self.stats.sent += len(out)
        return out

    def drain(self) -> list[Reading]:
        """Readings still held back (out_of_order, delayed duplicates): the gateway sends them at
        the end of a run."""
        out = [heapq.heappop(self._pending)[2] for _ in range(len(self._pending))]
        self.stats.sent += len(out)
        return out

    def step_batches(self, until: datetime | int, batch_size: int = 500,
                     single: bool = False) -> dict[str, list[Message]]:
        """`step` encoded per gateway id: batch messages (the last one of each gateway partly
        filled), or with `single` one telemetry message per reading."""
        readings = self.step(until)
        msgs = encode_single(readings) if single else encode_batches(readings, batch_size)
        out: dict[str, list[Message]] = {gw: [] for gw in self.gateways}
        for m in msgs:
            out[m.gateway].append(m)
        return out


def with_start(config: ScenarioConfig, start: datetime) -> ScenarioConfig:
    """The same scenario from another instant: a fault at "HH:MM" stays at that local time
    (on the new start day, or the next), a fault at offset minutes keeps its offset."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    faults = []
    for f in config.faults:
        start_ms = parse_at(f.at, start) if f.at is not None else f.start_ms
        end_ms = None if f.duration_min is None else start_ms + round(f.duration_min * MS_PER_MIN)
        faults.append(replace(f, start_ms=start_ms, end_ms=end_ms))
    return replace(config, start=start, faults=tuple(faults))


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
