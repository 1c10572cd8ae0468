"""Limits and hygiene of every request field, checked before a call reaches a service's rules.

The limits are declared in the protos: defaults for each kind of field (common.proto's
conventions) and a `(supply.v1.limits)` option where a field needs others. One walk over the
request's descriptor, compiled once per message type, checks text (length, control characters,
NFC normalisation, done in place), days and instants (a window around the county clock),
numbers (finite, bounded), lists (item counts) and enums (defined values only). A refusal is
InvalidInput naming the field path and the limit, quoting at most a short prefix of the input.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from supply.v1 import common_pb2

from services.common.clock import Clock
from services.common.errors import InvalidInput

TEXT_MAX_LEN = 200
MAX_ITEMS = 1000
WINDOW_DAYS = 366
NUMBER_MAX_ABS = 1e9
QUOTE_PREFIX = 32

_SINGLE_LINE_BAD = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_MULTILINE_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGERS = frozenset({FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
                       FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
                       FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_FIXED64,
                       FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_SFIXED64})
_DECIMALS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
_TIMESTAMP = "google.protobuf.Timestamp"


def excerpt(value: object, limit: int = QUOTE_PREFIX) -> str:
    """`value` as an error message may quote it: at most `limit` characters, controls escaped."""
    text = str(value)
    cut = text[:limit]
    return repr(cut + "…" if len(text) > limit else cut)


@dataclass(frozen=True)
class Limits:
    """The limits of one field (the proto option over the defaults)."""

    max_len: int = TEXT_MAX_LEN
    multiline: bool = False
    max_items: int = MAX_ITEMS
    day: bool = False
    past_days: int = WINDOW_DAYS
    future_days: int = WINDOW_DAYS
    max_abs: float = NUMBER_MAX_ABS

    @classmethod
    def of(cls, field: FieldDescriptor) -> Limits:
        options = field.GetOptions()
        named_day = field.name == "day" or field.name.endswith("_day")
        if not options.HasExtension(common_pb2.limits):
            return cls(day=named_day)
        o = options.Extensions[common_pb2.limits]
        d = cls()
        return cls(max_len=o.max_len or d.max_len, multiline=o.multiline, max_items=o.max_items or d.max_items,
                   day=o.day or named_day, past_days=o.past_days or d.past_days,
                   future_days=o.future_days or d.future_days, max_abs=o.max_abs or d.max_abs)


@dataclass(frozen=True)
class _Now:
    """The county's clock at the moment one request is checked."""

    instant: datetime
    today: date


Check = Callable[[object, str, _Now], object]  # returns the value to store back (text: NFC)


def _text(limits: Limits) -> Check:
    bad = _MULTILINE_BAD if limits.multiline else _SINGLE_LINE_BAD

    def check(value: str, path: str, now: _Now) -> str:
        if len(value) > limits.max_len:
            raise InvalidInput(path, f"at most {limits.max_len} characters, got {len(value)} / "
                                     f"最多 {limits.max_len} 个字符")
        found = bad.search(value)
        if found:
            raise InvalidInput(path, f"contains the control character U+{ord(found.group()):04X}, "
                                     f"which is not allowed here / 含有不允许的控制字符")
        if not value.isascii() and not unicodedata.is_normalized("NFC", value):
            value = unicodedata.normalize("NFC", value)
            if len(value) > limits.max_len:
                raise InvalidInput(path, f"at most {limits.max_len} characters / 最多 {limits.max_len} 个字符")
        if limits.day and value:
            _day(value, path, limits, now)
        return value
    return check


def _day(value: str, path: str, limits: Limits, now: _Now) -> None:
    try:
        if not _DAY.fullmatch(value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(path, f"{excerpt(value)} is not a day YYYY-MM-DD / 不是 YYYY-MM-DD 格式的日期") from None
    _in_window((day - now.today).days * 86400, path, limits, f"{value} is", now.today.isoformat())


def _in_window(offset_s: float, path: str, limits: Limits, what: str, around: str) -> None:
    if offset_s < -limits.past_days * 86400:
        raise InvalidInput(path, f"{what} more than {limits.past_days} days before the county's today "
                                 f"({around}) / 早于允许范围（今日前 {limits.past_days} 天）")
    if offset_s > limits.future_days * 86400:
        raise InvalidInput(path, f"{what} more than {limits.future_days} days after the county's today "
                                 f"({around}) / 晚于允许范围（今日后 {limits.future_days} 天）")


def _integer(limits: Limits) -> Check:
    def check(value: int, path: str, now: _Now) -> int:
        if abs(value) > limits.max_abs:
            raise InvalidInput(path, f"at most {limits.max_abs:.0f} in magnitude / 数值超出范围")
        return value
    return check


def _decimal(limits: Limits) -> Check:
    def check(value: float, path: str, now: _Now) -> float:
        if not math.isfinite(value):
            raise InvalidInput(path, "must be a finite number / 必须是有限数值")
        if abs(value) > limits.max_abs:
            raise InvalidInput(path, f"at most {limits.max_abs:g} in magnitude / 数值超出范围")
        return value
    return check


def _enum(field: FieldDescriptor) -> Check:
    defined = frozenset(v.number for v in field.enum_type.values)

    def check(value: int, path: str, now: _Now) -> int:
        if value not in defined:
            raise InvalidInput(path, f"{value} is not a value of {field.enum_type.name} / 不是有效的取值")
        return value
    return check


def _timestamp(limits: Limits) -> Check:
    def check(value: Message, path: str, now: _Now) -> Message:
        if not 0 <= value.nanos < 1_000_000_000:
            raise InvalidInput(path + ".nanos", "must be 0 … 999999999 / 纳秒取值无效")
        _in_window(value.seconds - now.instant.timestamp(), path, limits, "the instant is",
                   now.instant.isoformat(timespec="seconds"))
        return value
    return check


@dataclass(frozen=True)
class _Field:
    name: str
    repeated: bool
    presence: bool  # optional scalars: checked only when set
    map_entry: Descriptor | None
    limits: Limits
    check: Check | None        # scalar values and Timestamps
    message: Descriptor | None  # nested messages walked field by field


def _scalar_check(field: FieldDescriptor, limits: Limits) -> Check | None:
    if field.type == FieldDescriptor.TYPE_STRING:
        return _text(limits)
    if field.type in _INTEGERS:
        return _integer(limits)
    if field.type in _DECIMALS:
        return _decimal(limits)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum(field)
    return None  # bool; bytes are limited by the call that takes them


def _field(field: FieldDescriptor) -> _Field:
    limits = Limits.of(field)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        entry = field.message_type if field.message_type.GetOptions().map_entry else None
        if field.message_type.full_name == _TIMESTAMP:
            return _Field(field.name, field.is_repeated, True, None, limits, _timestamp(limits), None)
        return _Field(field.name, field.is_repeated, True, entry, limits, None,
                      None if entry else field.message_type)
    return _Field(field.name, field.is_repeated, field.has_presence, None, limits,
                  _scalar_check(field, limits), None)


_PLANS: dict[str, tuple[_Field, ...]] = {}


def _plan(descriptor: Descriptor) -> tuple[_Field, ...]:
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        plan = _PLANS[descriptor.full_name] = tuple(_field(f) for f in descriptor.fields)
    return plan


def _walk(message: Message, prefix: str, now: _Now) -> None:
    for f in _plan(message.DESCRIPTOR):
        path = prefix + f.name
        if f.map_entry is not None:
            _walk_map(getattr(message, f.name), f, path, now)
        elif f.repeated:
            items = getattr(message, f.name)
            if len(items) > f.limits.max_items:
                raise InvalidInput(path, f"at most {f.limits.max_items} items, got {len(items)} / "
                                         f"最多 {f.limits.max_items} 项")
            for i, item in enumerate(items):
                if f.message is not None:
                    _walk(item, f"{path}[{i}].", now)
                elif f.check is not None:
                    checked = f.check(item, f"{path}[{i}]", now)
                    if checked != item:
                        items[i] = checked
        elif f.presence and not message.HasField(f.name):
            continue
        elif f.message is not None:
            _walk(getattr(message, f.name), path + ".", now)
        elif f.check is not None:
            value = getattr(message, f.name)
            checked = f.check(value, path, now)
            if checked != value:
                setattr(message, f.name, checked)


def _walk_map(entries, f: _Field, path: str, now: _Now) -> None:
    if len(entries) > f.limits.max_items:
        raise InvalidInput(path, f"at most {f.limits.max_items} entries, got {len(entries)} / "
                                 f"最多 {f.limits.max_items} 项")
    key_field, value_field = _plan(f.map_entry)  # a map entry's fields: key = 1, value = 2
    for key in list(entries):
        if key_field.check is not None:
            key_field.check(key, f"{path}[{excerpt(key)}]", now)
        if value_field.message is not None:
            _walk(entries[key], f"{path}[{excerpt(key)}].", now)
        elif value_field.check is not None:
            checked = value_field.check(entries[key], f"{path}[{excerpt(key)}]", now)
            if checked != entries[key]:
                entries[key] = checked


class RequestCheck:
    """Checks (and NFC-normalises in place) every request of a server against its limits."""

    def __init__(self, clock: Clock, timezone: ZoneInfo):
        self.clock = clock
        self.timezone = timezone

    def __call__(self, request: Message) -> None:
        if not isinstance(request, Message):  # a raw-bytes method (tests of the server itself)
            return
        instant = self.clock.now()
        _walk(request, "", _Now(instant, instant.astimezone(self.timezone).date()))

