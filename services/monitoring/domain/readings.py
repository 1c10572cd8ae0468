"""Telemetry validation (DESIGN.md §4 MQTT); de-duplication is dedup.py.

Topics:
- `supply/<depot>/<zone>/<sensor>/telemetry`, payload `{ts, seq, temp_c, rh}`;
- `supply/<depot>/gw/<gateway>/batch`, payload `{gateway, readings: [{depot, zone, sensor, ts,
  seq, temp_c, rh}, …]}`;
- `supply/<depot>/<zone>/<sensor>/status` (see offline.py).

`parse_message` never raises on bad input: it returns the good readings and one `Rejected` per
bad entry (or one for the whole message when the message itself is unusable), so that the
ingest can count and dead-letter them with a reason that says exactly what is wrong.
"""

from __future__ import annotations

import json
import math
from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import repeat
from operator import attrgetter, truediv
from typing import Any

import msgspec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_SEQ = 2**63 - 1
FORBIDDEN_ID_CHARS = frozenset("/+#")

# Short Chinese labels for rejection codes; the English reason carries the detail.
REJECT_ZH = {
    "bad_topic": "主题格式错误",
    "too_large": "消息过大",
    "bad_encoding": "编码错误(须为UTF-8)",
    "bad_json": "JSON格式错误",
    "not_object": "消息须为JSON对象",
    "gateway_mismatch": "网关编号与主题不一致",
    "depot_mismatch": "库点编号与主题不一致",
    "missing_field": "缺少字段",
    "wrong_type": "字段类型错误",
    "not_finite": "数值非有限数(NaN/Inf)",
    "out_of_range": "数值超出合理范围",
    "bad_id": "编号不合法",
    "bad_timestamp": "时间戳不合法",
    "future_timestamp": "时间戳超前",
    "too_late": "数据过晚",
    "foreign_zone": "库区属于其他库点",
}


@dataclass(frozen=True)
class IngestPolicy:
    """Plausibility limits of a reading. Every limit is a parameter, none is buried in code."""

    temp_min_c: float = -60.0
    temp_max_c: float = 80.0
    rh_min: float = 0.0
    rh_max: float = 100.0
    max_future_skew: timedelta = timedelta(minutes=5)
    min_ts: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_batch: int = 5000
    max_payload_bytes: int = 4_000_000
    max_id_len: int = 64
    raw_excerpt_chars: int = 200


_ReadingFields = namedtuple("_ReadingFields", "depot zone sensor ts seq temp_c rh ts_ms zone_key sensor_key")


class Reading(_ReadingFields):
    """One reading that passed the checks. A tuple underneath: the ingest makes a hundred thousand
    a second, and builtins make a tuple at half the cost and a third of the memory of an object
    with a dict. `zone_key` and `sensor_key` are derived; `ts_ms` is `ts` as sent when it was sent
    in epoch milliseconds (the line protocol writes it as it came), else None. Equality and hash
    are of the first seven fields, what the reading says."""

    __slots__ = ()

    def __new__(cls, depot: str, zone: str, sensor: str, ts: datetime, seq: int, temp_c: float,
                rh: float | None = None, ts_ms: int | None = None) -> Reading:
        zk = zone_key(depot, zone)
        return tuple.__new__(cls, (depot, zone, sensor, ts, seq, temp_c, rh, ts_ms, zk, f"{zk}/{sensor}"))

    def __eq__(self, other: object) -> bool:
        if type(other) is not Reading:
            return NotImplemented
        return self[:7] == other[:7]

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(self[:7])

    def __getnewargs__(self) -> tuple:  # copy and pickle: what __new__ takes
        return tuple(self[:8])

    def _replace(self, **changes: Any) -> Reading:
        return Reading(**{**dict(zip(self._fields[:8], self, strict=False)), **changes})


_make_reading = partial(tuple.__new__, Reading)  # from all ten fields, by builtins


@dataclass(frozen=True)
class Rejected:
    """One bad message or one bad entry of a batch. `index` is the position in the batch;
    `depot` the depot its topic or reading names, when known."""

    code: str
    reason: str
    raw: str
    index: int | None = None
    depot: str | None = None

    @property
    def reason_zh(self) -> str:
        return f"{REJECT_ZH.get(self.code, self.code)}: {self.reason}"


@dataclass
class ParseResult:
    readings: list[Reading] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True)
class TopicRef:
    """A parsed topic. kind: telemetry | batch | status."""

    kind: str
    depot: str
    zone: str | None = None
    sensor: str | None = None
    gateway: str | None = None


def zone_key(depot: str, zone: str) -> str:
    return f"{depot}/{zone}"


def sensor_key(depot: str, zone: str, sensor: str) -> str:
    return f"{depot}/{zone}/{sensor}"


class _Bad(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def id_problem(value: Any, name: str, policy: IngestPolicy = IngestPolicy()) -> str | None:
    """Why `value` is not a usable depot/zone/sensor/gateway id, or None when it is."""
    if value is None:
        return f"{name} is missing"
    if not isinstance(value, str):
        return f"{name} must be a string, got {type(value).__name__}"
    if not value:
        return f"{name} is empty"
    if len(value) > policy.max_id_len:
        return f"{name} is longer than {policy.max_id_len} characters"
    bad = sorted({c for c in value if c in FORBIDDEN_ID_CHARS})
    if bad:
        return f"{name} {value!r} contains MQTT topic characters {''.join(bad)!r}"
    if any(ord(c) < 32 or ord(c) == 127 or c.isspace() for c in value):
        return f"{name} {value!r} contains whitespace or control characters"
    return None


def parse_topic(topic: str, policy: IngestPolicy = IngestPolicy()) -> TopicRef:
    """Parse a telemetry, batch or status topic; raises ValueError with the reason."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "supply":
        raise ValueError(
            f"topic {topic!r} is not supply/<depot>/<zone>/<sensor>/telemetry|status "
            "or supply/<depot>/gw/<gateway>/batch"
        )
    _, depot, middle, leaf, kind = parts
    if kind == "batch":
        if middle != "gw":
            raise ValueError(f"batch topic {topic!r} must be supply/<depot>/gw/<gateway>/batch")
        names = (("depot", depot), ("gateway", leaf))
    elif kind in ("telemetry", "status"):
        names = (("depot", depot), ("zone", middle), ("sensor", leaf))
    else:
        raise ValueError(f"topic {topic!r}: unknown message kind {kind!r}")
    for name, value in names:
        problem = id_problem(value, f"topic {name}", policy)
        if problem:
            raise ValueError(problem)
    if kind == "batch":
        return TopicRef(kind="batch", depot=depot, gateway=leaf)
    return TopicRef(kind=kind, depot=depot, zone=middle, sensor=leaf)


def raw_excerpt(raw: Any, policy: IngestPolicy) -> str:
    """The start of a bad message or entry, as stored with its rejection."""
    if isinstance(raw, bytes | bytearray):
        text = bytes(raw[: policy.raw_excerpt_chars * 4]).decode("utf-8", errors="replace")
    elif isinstance(raw, str):
        text = raw
    else:
        try:
            text = json.dumps(raw, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(raw)
    n = policy.raw_excerpt_chars
    return text if len(text) <= n else text[:n] + "…"


def _number(entry: Mapping, key: str, prefix: str) -> float:
    v = entry[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Bad("wrong_type", f"{prefix}{key} must be a number, got {type(v).__name__} {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise _Bad("not_finite", f"{prefix}{key} is not a finite number ({v!r})")
    return f


def parse_ts(value: Any, now: datetime, policy: IngestPolicy = IngestPolicy(),
             name: str = "ts") -> datetime:
    """Epoch milliseconds (number) or ISO-8601 with a UTC offset → aware UTC datetime."""
    if isinstance(value, bool) or value is None:
        raise _Bad("wrong_type", f"{name} must be epoch milliseconds or an ISO-8601 string, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _Bad("not_finite", f"{name} is not a finite number ({value!r})")
        try:
            ts = EPOCH + timedelta(milliseconds=round(value))
        except OverflowError:
            raise _Bad("bad_timestamp", f"{name} {value!r} is out of range") from None
        if ts < policy.min_ts:
            hint = " (looks like seconds; epoch milliseconds expected)" if value > 1e8 else ""
            raise _Bad("bad_timestamp", f"{name} {value!r} is before {policy.min_ts.date()}{hint}")
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise _Bad("bad_timestamp", f"{name} {value!r} is not ISO-8601") from None
        if ts.tzinfo is None:
            raise _Bad("bad_timestamp", f"{name} {value!r} has no UTC offset")
        ts = ts.astimezone(UTC)
        if ts < policy.min_ts:
            raise _Bad("bad_timestamp", f"{name} {value!r} is before {policy.min_ts.date()}")
    else:
        raise _Bad("wrong_type", f"{name} must be epoch milliseconds or an ISO-8601 string, "
                                 f"got {type(value).__name__}")
    ahead = ts - now
    if ahead > policy.max_future_skew:
        raise _Bad(
            "future_timestamp",
            f"{name} {ts.isoformat()} is {ahead.total_seconds():.0f} s ahead of now "
            f"(tolerance {policy.max_future_skew.total_seconds():.0f} s)",
        )
    return ts


def _reading(entry: Any, depot: str, zone: Any, sensor: Any, now: datetime,
             policy: IngestPolicy, prefix: str) -> Reading:
    """Validate one reading; collects every problem of the entry into one reason."""
    if not isinstance(entry, dict):
        raise _Bad("not_object", f"{prefix.rstrip('.') or 'payload'} must be a JSON object, "
                                 f"got {type(entry).__name__}")
    problems: list[_Bad] = []
    for key in ("ts", "seq", "temp_c"):
        if key not in entry:
            problems.append(_Bad("missing_field", f"{prefix}{key} is missing"))
    for name, value in (("zone", zone), ("sensor", sensor)):
        p = id_problem(value, f"{prefix}{name}", policy)
        if p:
            problems.append(_Bad("missing_field" if value is None else "bad_id", p))

    ts = seq = temp = rh = None
    if "ts" in entry:
        try:
            ts = parse_ts(entry["ts"], now, policy, f"{prefix}ts")
        except _Bad as b:
            problems.append(b)
    if "seq" in entry:
        v = entry["seq"]
        if isinstance(v, bool) or not isinstance(v, int):
            problems.append(_Bad("wrong_type", f"{prefix}seq must be an integer, got {v!r}"))
        elif not 0 <= v <= MAX_SEQ:
            problems.append(_Bad("out_of_range", f"{prefix}seq {v} must be between 0 and 2^63-1"))
        else:
            seq = v
    if "temp_c" in entry:
        try:
            temp = _number(entry, "temp_c", prefix)
            if not policy.temp_min_c <= temp <= policy.temp_max_c:
                raise _Bad("out_of_range", f"{prefix}temp_c {temp:g} outside "
                                           f"{policy.temp_min_c:g}..{policy.temp_max_c:g} °C")
        except _Bad as b:
            problems.append(b)
            temp = None
    if entry.get("rh") is not None:
        try:
            rh = _number(entry, "rh", prefix)
            if not policy.rh_min <= rh <= policy.rh_max:
                raise _Bad("out_of_range", f"{prefix}rh {rh:g} outside "
                                           f"{policy.rh_min:g}..{policy.rh_max:g} %")
        except _Bad as b:
            problems.append(b)
            rh = None
    if problems:
        raise _Bad(problems[0].code, "; ".join(p.reason for p in problems))
    assert ts is not None and seq is not None and temp is not None
    return Reading(depot=depot, zone=zone, sensor=sensor, ts=ts, seq=seq, temp_c=temp, rh=rh)


# --- the fast path of a well-formed batch -----------------------------------------------------
# A gateway batch where every entry is well formed (nearly all of them) is decoded and typed by
# msgspec in C, then accepted by checks on whole columns (every entry's ts at once, every
# temperature at once, each distinct id once) done by builtins. Whatever these checks do not
# accept at once (any doubt: a missing or mistyped field, a value out of range, an id not seen
# before that fails its check, msgspec refusing the text) goes through the full checks above on
# json.loads' document, so every refusal keeps its code and reason. The fast pass only accepts
# what the full checks accept, with the same values (a repeated key: the last one, as json.loads).

_from_timestamp = datetime.fromtimestamp
_MS = timedelta(milliseconds=1)
_GOOD_IDS_MAX = 50_000


@dataclass
class _Limits:
    """An IngestPolicy's limits as plain numbers, and the ids that passed `id_problem` under it."""

    temp_min: float
    temp_max: float
    rh_min: float
    rh_max: float
    min_ts: datetime
    max_future_skew: timedelta
    max_batch: int
    good_ids: set[str]


_limits: dict[IngestPolicy, _Limits | None] = {}


def _limits_of(policy: IngestPolicy) -> _Limits | None:
    """None when a limit is not a finite number: then every message takes the full checks."""
    try:
        return _limits[policy]
    except KeyError:
        pass
    bounds = (policy.temp_min_c, policy.temp_max_c, policy.rh_min, policy.rh_max)
    ok = all(isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
    lim = _Limits(*map(float, bounds), policy.min_ts, policy.max_future_skew, policy.max_batch,
                  set()) if ok else None
    if len(_limits) > 64:
        _limits.clear()
    _limits[policy] = lim
    return lim


def _good_id(value: Any, good: set[str], policy: IngestPolicy) -> bool:
    if value in good:
        return True
    if type(value) is not str or id_problem(value, "id", policy) is not None:
        return False
    if len(good) >= _GOOD_IDS_MAX:
        good.clear()
    good.add(value)
    return True


class _Entry(msgspec.Struct, gc=False):
    """A batch entry as the fast path takes it: exact JSON types (an integer instant and
    sequence number, numbers for the values, strings for the ids), or no fast path."""

    depot: str
    zone: str
    sensor: str
    ts: int
    seq: int
    temp_c: float  # a JSON integer is taken as its float, as the full checks take it
    rh: float | None = None


class _Batch(msgspec.Struct, gc=False):
    gateway: str
    readings: list[_Entry]


_decode_batch = msgspec.json.Decoder(_Batch).decode
_COLUMNS = tuple(map(attrgetter, _Entry.__struct_fields__))


def _fast_batch(text: str, ref: TopicRef, now: datetime, policy: IngestPolicy) -> list[Reading] | None:
    """The readings of a batch every entry of which is well formed; None at the first doubt."""
    lim = _limits_of(policy)
    if lim is None:
        return None
    try:
        doc = _decode_batch(text)
    except msgspec.DecodeError:  # not JSON, a field missing or of another type (ValidationError)
        return None
    entries = doc.readings
    if doc.gateway != ref.gateway or len(entries) > lim.max_batch:
        return None
    if not entries:
        return []
    depot = ref.depot
    depots, zones, sensors, stamps, seqs, temps, rhs = (list(map(column, entries)) for column in _COLUMNS)
    if depots.count(depot) != len(depots):
        return None
    latest_ms = (now + lim.max_future_skew - EPOCH) // _MS
    min_ms = -((EPOCH - lim.min_ts) // _MS)  # ceiling: an instant at or after min_ts
    if min(stamps) < min_ms or max(stamps) > latest_ms or min(seqs) < 0 or max(seqs) > MAX_SEQ:
        return None
    if not lim.temp_min <= min(temps) or not max(temps) <= lim.temp_max:  # msgspec gives no NaN
        return None
    given = [h for h in rhs if h is not None] if None in rhs else rhs
    if given and (not lim.rh_min <= min(given) or not max(given) <= lim.rh_max):
        return None
    zone_ids, sensor_ids = set(zones), set(sensors)
    good = lim.good_ids
    if not all(_good_id(v, good, policy) for v in zone_ids | sensor_ids):
        return None
    # exact: below 2**32 s a double's error is far under the half microsecond it rounds to
    instants = map(_from_timestamp, map(truediv, stamps, repeat(1000)), repeat(UTC))
    zone_keys = {z: zone_key(depot, z) for z in zone_ids}
    pairs = list(zip(zones, sensors, strict=True))
    sensor_keys = {p: f"{zone_keys[p[0]]}/{p[1]}" for p in set(pairs)}
    return list(map(_make_reading, zip(repeat(depot), zones, sensors, instants, seqs, temps,
                                       rhs, stamps, map(zone_keys.__getitem__, zones),
                                       map(sensor_keys.__getitem__, pairs), strict=False)))


def parse_message(topic: str, payload: bytes | str, now: datetime,
                  policy: IngestPolicy = IngestPolicy()) -> ParseResult:
    """Topic + payload → readings and rejections. One bad entry never rejects the others."""
    result = ParseResult()

    def reject_all(code: str, reason: str, raw: Any = payload) -> ParseResult:
        result.rejected.append(Rejected(code=code, reason=reason, raw=raw_excerpt(raw, policy)))
        return result

    try:
        ref = parse_topic(topic, policy)
    except ValueError as exc:
        return reject_all("bad_topic", str(exc))
    if ref.kind == "status":
        return reject_all("bad_topic", f"topic {topic!r} is a status topic, not telemetry")

    size = len(payload.encode("utf-8")) if isinstance(payload, str) else len(payload)
    if size > policy.max_payload_bytes:
        return reject_all("too_large", f"payload of {size} bytes exceeds {policy.max_payload_bytes}")
    if isinstance(payload, bytes | bytearray):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            return reject_all("bad_encoding", f"payload is not UTF-8: {exc.reason} at byte {exc.start}")
    else:
        text = payload
    if ref.kind == "batch":
        readings = _fast_batch(text, ref, now, policy)
        if readings is not None:
            result.readings = readings
            return result
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return reject_all("bad_json", f"payload is not valid JSON: {exc}")

    if ref.kind == "telemetry":
        try:
            result.readings.append(_reading(doc, ref.depot, ref.zone, ref.sensor, now, policy, ""))
        except _Bad as b:
            return reject_all(b.code, b.reason, doc)
        return result

    # batch
    if not isinstance(doc, dict):
        return reject_all("not_object", f"batch payload must be a JSON object, got {type(doc).__name__}", doc)
    if "gateway" not in doc:
        return reject_all("missing_field", "gateway is missing", doc)
    if doc["gateway"] != ref.gateway:
        return reject_all("gateway_mismatch",
                          f"gateway {doc['gateway']!r} does not match topic gateway {ref.gateway!r}", doc)
    if "readings" not in doc:
        return reject_all("missing_field", "readings is missing", doc)
    entries = doc["readings"]
    if not isinstance(entries, list):
        return reject_all("wrong_type", f"readings must be a list, got {type(entries).__name__}", doc)
    if len(entries) > policy.max_batch:
        return reject_all("too_large", f"batch has {len(entries)} readings, at most "
                                       f"{policy.max_batch} allowed", doc)
    for i, entry in enumerate(entries):
        prefix = f"readings[{i}]."
        try:
            if isinstance(entry, dict):
                p = id_problem(entry.get("depot"), f"{prefix}depot", policy)
                if p:
                    raise _Bad("missing_field" if entry.get("depot") is None else "bad_id", p)
                if entry["depot"] != ref.depot:
                    raise _Bad("depot_mismatch", f"{prefix}depot {entry['depot']!r} does not match "
                                                 f"topic depot {ref.depot!r}")
                zone, sensor = entry.get("zone"), entry.get("sensor")
            else:
                zone = sensor = None
            result.readings.append(_reading(entry, ref.depot, zone, sensor, now, policy, prefix))
        except _Bad as b:
            result.rejected.append(Rejected(code=b.code, reason=b.reason,
                                            raw=raw_excerpt(entry, policy), index=i))
    return result
