"""InfluxDB 1.x line protocol (pure functions: escaping, checking, encoding the `env` and `alarm`
lines) and InfluxQL quoting. A point's timestamp and tags are fixed here, when it is encoded."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any

from services.monitoring.domain.readings import Reading

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

ENV_MEASUREMENT = "env"
ALARM_MEASUREMENT = "alarm"


class LineProtocolError(ValueError):
    """A value that cannot be written as line protocol (NaN, newline, naive datetime …)."""


# ---------------------------------------------------------------------------------------------
# Line protocol (InfluxDB 1.x): pure functions
# ---------------------------------------------------------------------------------------------

_MEASUREMENT_ESC = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESC = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})
_STRING_ESC = str.maketrans({"\\": "\\\\", '"': '\\"'})
_LINE_BREAKS = ("\n", "\r")


def _check_utf8(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LineProtocolError(f"{what} {value!r} is not valid Unicode (lone surrogate)") from None


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise LineProtocolError(f"{what} must be a string, got {type(value).__name__} {value!r}")
    if not value:
        raise LineProtocolError(f"{what} is empty")
    if "\n" in value or "\r" in value:
        raise LineProtocolError(f"{what} {value!r} contains a line break")
    _check_utf8(value, what)
    # 1.x has no escape for a backslash: a trailing one would escape the following separator.
    if value.endswith("\\"):
        raise LineProtocolError(f"{what} {value!r} ends with a backslash")
    return value


@lru_cache(maxsize=4096)
def escape_measurement(name: str) -> str:
    return _check_name(name, "measurement").translate(_MEASUREMENT_ESC)


@lru_cache(maxsize=65536)
def escape_key(value: str) -> str:
    """Escape a tag key, tag value or field key (commas, spaces, equals signs)."""
    return _check_name(value, "tag/field").translate(_KEY_ESC)


def escape_string_field(value: str) -> str:
    """A string field value, quoted, with backslashes and double quotes escaped."""
    if any(c in value for c in _LINE_BREAKS):
        raise LineProtocolError(f"string field {value!r} contains a line break")
    _check_utf8(value, "string field")
    return f'"{value.translate(_STRING_ESC)}"'


def format_float(value: Any, what: str = "float field") -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LineProtocolError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    f = float(value)
    if not math.isfinite(f):
        raise LineProtocolError(f"{what} is not finite ({value!r}); InfluxDB refuses NaN/Inf")
    return repr(f)  # shortest round-trip form, always with '.' or an exponent: never an integer


def format_int(value: Any, what: str = "integer field") -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LineProtocolError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise LineProtocolError(f"{what} {value} is outside int64")
    return f"{value}i"


def format_field_value(value: Any, key: str = "field") -> str:
    """bool → true/false, int → 12i, float → 1.5, str → "quoted"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return format_int(value, key)
    if isinstance(value, float):
        return format_float(value, key)
    if isinstance(value, str):
        return escape_string_field(value)
    raise LineProtocolError(f"field {key}: unsupported type {type(value).__name__} {value!r}")


def to_epoch_ms(ts: datetime | int) -> int:
    """A timezone-aware datetime (or epoch milliseconds) → epoch milliseconds."""
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise LineProtocolError(f"timestamp {ts.isoformat()} has no timezone")
        return (ts - EPOCH) // _MS
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise LineProtocolError(f"timestamp must be a datetime or epoch ms, got {ts!r}")
    return ts


def encode_tags(tags: Mapping[str, str | None]) -> str:
    """`,k=v,k2=v2` sorted by key (InfluxDB's preferred order); None values are left out."""
    parts = [f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v is not None]
    return "".join(parts)


def encode_line(measurement: str, tags: Mapping[str, str | None], fields: Mapping[str, Any],
                ts: datetime | int) -> str:
    """One point, millisecond timestamp. Fields whose value is None are left out."""
    body = ",".join(f"{escape_key(k)}={format_field_value(v, k)}"
                    for k, v in fields.items() if v is not None)
    if not body:
        raise LineProtocolError(f"{measurement}: a point needs at least one field")
    return f"{escape_measurement(measurement)}{encode_tags(tags)} {body} {to_epoch_ms(ts)}"


@lru_cache(maxsize=65536)
def _env_series(depot: str, zone: str, sensor: str, storage_class: str | None) -> str:
    return ENV_MEASUREMENT + encode_tags(
        {"depot": depot, "zone": zone, "sensor": sensor, "storage_class": storage_class})


def env_line(depot: str, zone: str, sensor: str, storage_class: str | None, ts: datetime | int,
             temp_c: float, rh: float | None, seq: int) -> str:
    """measurement `env`: tags depot, zone, sensor, storage_class; fields temp_c, rh (floats,
    also when given as ints, so the field type never flips), seq (integer)."""
    fields = f"temp_c={format_float(temp_c, 'temp_c')}"
    if rh is not None:
        fields += f",rh={format_float(rh, 'rh')}"
    fields += f",seq={format_int(seq, 'seq')}"
    return f"{_env_series(depot, zone, sensor, storage_class)} {fields} {to_epoch_ms(ts)}"


def env_lines(readings: Iterable[Any], storage_class_of: Callable[[str], str | None],
              on_error: Callable[[Any, LineProtocolError], None]) -> list[str]:
    """Readings (`monitoring.domain.readings.Reading`) as `env` lines, each the text `env_line`
    gives it; a series (by sensor key: ids hold no '/', the parser refuses it) and a timestamp
    shared by several readings are encoded once. A reading that cannot be encoded goes to
    `on_error` and is left out."""
    readings = readings if type(readings) is list else list(readings)
    lines = _usual_env_lines(readings, storage_class_of)
    if lines is not None:
        return lines
    lines = []
    append = lines.append
    series: dict[str, str] = {}
    stamps: dict[datetime, int] = {}
    for r in readings:
        temp, rh, seq, ms = r.temp_c, r.rh, r.seq, r.ts_ms
        try:
            head = series.get(r.sensor_key)
            if head is None:
                head = series[r.sensor_key] = _env_series(r.depot, r.zone, r.sensor, storage_class_of(r.zone_key))
            if ms is None:
                ms = stamps.get(r.ts)
                if ms is None:
                    ms = stamps[r.ts] = to_epoch_ms(r.ts)
            if (type(temp) is not float or temp - temp != 0.0
                    or (rh is not None and (type(rh) is not float or rh - rh != 0.0))
                    or type(seq) is not int or not INT64_MIN <= seq <= INT64_MAX):
                # an unusual value: the full checks
                append(env_line(r.depot, r.zone, r.sensor, storage_class_of(r.zone_key), r.ts, temp, rh, seq))
            elif rh is None:
                append(f"{head} temp_c={temp!r},seq={seq}i {ms}")
            else:
                append(f"{head} temp_c={temp!r},rh={rh!r},seq={seq}i {ms}")
        except LineProtocolError as exc:
            on_error(r, exc)
    return lines


_FLOAT_TEXT: dict[float, str] = {}  # repr of the temperatures and humidities seen lately
_FLOAT_TEXT_MAX = 65_536
_FLOAT, _INT = frozenset({float}), frozenset({int})
_FLOAT_OR_NONE = frozenset({float, type(None)})
_COLUMNS = tuple(map(itemgetter, map(Reading._fields.index, ("seq", "temp_c", "rh", "ts_ms", "sensor_key"))))


def _float_texts(values: Sequence[float]) -> list[str]:
    """`repr` of each value. A sensor's values repeat (a tenth or a hundredth of a degree within
    a few degrees): a dict lookup costs a third of a repr. Zero is never remembered."""
    texts = list(map(_FLOAT_TEXT.get, values))
    if None in texts:
        if len(_FLOAT_TEXT) > _FLOAT_TEXT_MAX:
            _FLOAT_TEXT.clear()
        known = _FLOAT_TEXT.get  # a value seen again in this column was remembered just now
        texts = [t if t is not None else known(v) or _remember_text(v) for v, t in zip(values, texts, strict=True)]
    return texts


def _remember_text(value: float) -> str:
    text = repr(value)
    if value:  # 0.0 and -0.0 are one key with two texts
        _FLOAT_TEXT[value] = text
    return text


def _usual_env_lines(readings: list[Any], storage_class_of: Callable[[str], str | None]) -> list[str] | None:
    """`env_lines` of readings whose values are all usual (finite floats, int64 seqs, the epoch
    milliseconds they were sent with, series that encode), column by column; None when any one
    is not, for the reading-by-reading encoding to sort out."""
    if not readings:
        return []
    if set(map(type, readings)) != {Reading}:
        return None
    seqs, temps, rhs, stamps, sensor_keys = (list(map(column, readings)) for column in _COLUMNS)
    if (set(map(type, temps)) != _FLOAT or not all(map(math.isfinite, temps))
            or set(map(type, seqs)) != _INT or min(seqs) < INT64_MIN or max(seqs) > INT64_MAX
            or set(map(type, stamps)) != _INT or not set(map(type, rhs)) <= _FLOAT_OR_NONE):
        return None
    given = [h for h in rhs if h is not None] if None in rhs else rhs
    if not all(map(math.isfinite, given)):
        return None
    try:
        heads = {k: _env_series(r.depot, r.zone, r.sensor, storage_class_of(r.zone_key))
                 for k, r in dict(zip(sensor_keys, readings, strict=True)).items()}
    except LineProtocolError:
        return None
    series = map(heads.__getitem__, sensor_keys)
    temp_texts = _float_texts(temps)
    if len(given) == len(rhs):
        return [f"{h} temp_c={t},rh={r},seq={q}i {m}"
                for h, t, r, q, m in zip(series, temp_texts, _float_texts(rhs), seqs, stamps, strict=False)]
    return [f"{h} temp_c={t},rh={_float_text(r)},seq={q}i {m}" if r is not None else f"{h} temp_c={t},seq={q}i {m}"
            for h, t, r, q, m in zip(series, temp_texts, rhs, seqs, stamps, strict=False)]


def _float_text(value: float) -> str:
    text = _FLOAT_TEXT.get(value)
    return text if text is not None else repr(value)


def reading_line(reading: Any, storage_class: str | None) -> str:
    """A `monitoring.domain.readings.Reading` as an `env` line."""
    return env_line(reading.depot, reading.zone, reading.sensor, storage_class, reading.ts,
                    reading.temp_c, reading.rh, reading.seq)


def alarm_line(depot: str, zone: str, rule_code: str, kind: str, state: str, value: float,
               alert_id: str, ts: datetime | int, sensor: str | None = None) -> str:
    """measurement `alarm`: tags depot, zone, rule_code, kind; fields state, value, alert_id
    (and the sensor that caused the transition, as a field so the series stays per rule)."""
    fields = (f"state={escape_string_field(state)},value={format_float(value, 'value')},"
              f"alert_id={escape_string_field(alert_id)}")
    if sensor is not None:
        fields += f",sensor={escape_string_field(sensor)}"
    tags = encode_tags({"depot": depot, "zone": zone, "rule_code": rule_code, "kind": kind})
    return f"{ALARM_MEASUREMENT}{tags} {fields} {to_epoch_ms(ts)}"


def transition_line(transition: Any, alert_id: str) -> str:
    """A `monitoring.domain.alarms.AlarmTransition` as an `alarm` line."""
    t = transition
    return alarm_line(t.depot, t.zone, t.rule_code, t.kind, t.state, t.value, alert_id, t.at,
                      sensor=t.sensor)


# ---------------------------------------------------------------------------------------------
# InfluxQL quoting
# ---------------------------------------------------------------------------------------------

def quote_ident(name: str) -> str:
    """An InfluxQL identifier (database, measurement, tag or field key) in double quotes."""
    if "\n" in name:
        raise ValueError(f"identifier {name!r} contains a line break")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal (e.g. a tag value in WHERE) in single quotes."""
    if "\n" in value:
        raise ValueError(f"string {value!r} contains a line break")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
