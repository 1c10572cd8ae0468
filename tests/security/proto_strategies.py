"""Hypothesis strategies for hostile gRPC requests, built from the proto descriptors: every scalar
field gets extreme, empty, huge, control-character, non-normalised and wrong-type-ish values,
or a plausible value the test supplies by field name (so validation past the first field is
reached); repeated fields get 0, 1, many and duplicated items; enums go out of range;
Timestamps and Durations get seconds at ±2^63-1 and nanos out of range.

A generated request comes wrapped in `Fuzzed`, whose repr stays short (a 1 MB string is shown
as its class and length), for failure reports."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import count

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

MB = 1 << 20
MAX_REQUEST_BYTES = 3 * MB  # several huge fields in one request would only measure the network

# value → class, for reports; the classes are what the brief asks for
TEXT: dict[str, str] = {
    "": "empty",
    " ": "blank",
    "\t\r\n": "whitespace only",
    "x" * MB: "huge 1 MB ascii",
    "中" * (MB // 3): "huge 1 MB CJK",
    "a" * 201: "201 chars",
    "长" * 10_000: "10k CJK chars",
    "V1\x00": "NUL inside",
    "\x00": "NUL only",
    "x" * (MB - 1) + "\x00": "huge with NUL",
    "\x1b[31mred\x1b[0m": "ANSI escape",
    "ab\u202ecd": "RTL override U+202E",
    "a\u200bb": "zero-width space",
    "\ufeffBOM": "BOM",
    "line1\nline2": "newline",
    "\x07\x08\x7f\x85": "C0/C1 controls",
    "e\u0301": "non-NFC (e + combining acute)",
    "\ufb01": "compatibility ligature (NFKC differs)",
    "Ｖ１": "fullwidth",
    "😷" * 3: "astral emoji",
    "-1": "number as string -1",
    "9223372036854775807": "number as string 2^63-1",
    "1e309": "number as string 1e309",
    "NaN": "NaN as string",
    "0001-01-01": "day 0001-01-01",
    "9999-12-31": "day 9999-12-31",
    "2026-02-30": "day 2026-02-30",
    "2026-13-01": "day month 13",
    "20260301": "day without dashes",
    "tomorrow": "day as word",
    "24:00": "time 24:00",
    "25:61": "time 25:61",
    "' OR 1=1 --": "SQL-ish",
    "%s%n%x": "format string",
    "../../etc/passwd": "path traversal",
    "=HYPERLINK(\"http://evil.example/\",\"x\")": "formula",
    "<script>alert(1)</script>": "HTML",
}
BYTES: dict[str, bytes] = {
    "empty": b"", "NULs": b"\x00" * 16, "1 MB of 0xff": b"\xff" * MB, "zip header": b"PK\x03\x04" + b"\x00" * 100,
    "GBK CSV": "名称,数量\n大米,1\n".encode("gbk"),
}
FLOATS = (0.0, -0.0, 1e308, -1e308, 5e-324, 1e-9, -1.0, 12.34)
NON_FINITE = (math.nan, math.inf, -math.inf)
TIMESTAMP_SECONDS: dict[int, str] = {
    2**63 - 1: "seconds 2^63-1", -(2**63): "seconds -2^63", 0: "epoch",
    -62135596801: "before year 1", 253402300800: "after year 9999",
    -1: "one second before epoch",
}
NANOS: dict[int, str] = {
    0: "nanos 0", 999_999_999: "nanos max", 1_000_000_000: "nanos 10^9 (out of range)",
    -1: "nanos -1", 2**31 - 1: "nanos 2^31-1", -(2**31): "nanos -2^31",
}
_INT_BOUNDS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOAT_TYPES = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
HOSTILE_ODDS = 4  # one field in four gets a hostile value
MANY = (50, 501, 2000)  # items in a "many" repeated field (501: one over SubmitDemandBatch's limit)

_serial = count()

Plausible = Mapping[str, st.SearchStrategy]
"""Plausible values by field name ("item_code") or by "Message.field" ("Zone.id")."""


def fresh_key() -> str:
    """A fresh idempotency key per example, so a repeated key does not hide validation."""
    return f"fuzz-{time.time_ns()}-{next(_serial)}"


def value_class(value) -> str:
    """The class of a hostile value, for reports ('' for a plausible or random one)."""
    if isinstance(value, str):
        return TEXT.get(value, "")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)
        if value == 0 and math.copysign(1, value) < 0:
            return "negative zero"
        return "huge float" if abs(value) > 1e300 else "denormal" if 0 < abs(value) < 1e-300 else ""
    if isinstance(value, bytes):
        return f"{len(value)} bytes" if len(value) > 200 else ""
    if isinstance(value, int) and abs(value) >= 2**31 - 1:
        return f"{value}"
    return ""


def short(value, limit: int = 40) -> str:
    text = repr(value)
    if len(text) > limit:
        text = f"{text[:limit]}…(len {len(value)})"
    label = value_class(value)
    return f"{text} [{label}]" if label else text


@dataclass
class Fuzzed:
    """A generated request; its repr lists the set scalar fields, each shortened."""

    message: Message

    def __repr__(self) -> str:
        return describe(self.message)


def describe(message: Message, limit: int = 1500) -> str:
    parts: list[str] = []

    def walk(msg: Message, prefix: str) -> None:
        for field, value in msg.ListFields():
            path = f"{prefix}{field.name}"
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if _is_map(field):
                    parts.append(f"{path}={{{', '.join(f'{short(k)}: {short(v)}' for k, v in list(value.items())[:5])}"
                                 f"{'…' if len(value) > 5 else ''}}}")
                elif field.is_repeated:
                    parts.append(f"{path}: {len(value)} items")
                    for i, item in enumerate(value[:3]):
                        walk(item, f"{path}[{i}].")
                else:
                    walk(value, f"{path}.")
            elif field.is_repeated:
                parts.append(f"{path}=[{', '.join(short(v) for v in value[:3])}{'…' if len(value) > 3 else ''}] "
                             f"({len(value)})")
            else:
                parts.append(f"{path}={short(value)}")

    walk(message, "")
    text = f"{message.DESCRIPTOR.name}({', '.join(parts)})"
    return text if len(text) <= limit else text[:limit] + "…"


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _plausible(field: FieldDescriptor, plausible: Plausible) -> st.SearchStrategy:
    """The test's plausible values for the field, else a harmless value of its type."""
    in_map = field.containing_type.GetOptions().map_entry  # a map's `value` is not a reading's value
    for name in (f"{field.containing_type.name}.{field.name}", *(() if in_map else (field.name,))):
        if name in plausible:
            return plausible[name]
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return st.sampled_from(["A-1", "河西村"])
    if t == FieldDescriptor.TYPE_BYTES:
        return st.just(b"")
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values])
    if t in _FLOAT_TYPES:
        return st.floats(-100, 100)
    return st.integers(0, 100)


def hostile_text() -> st.SearchStrategy[str]:
    """The TEXT values, drawn by their label (the strategy's repr stays small)."""
    by_label = {label: value for value, label in TEXT.items()}
    return st.sampled_from(sorted(by_label)).map(by_label.__getitem__)


def _random_text() -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


def _mostly(good: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """`hostile` one time in HOSTILE_ODDS: a request carries a few hostile fields, not all."""
    return st.integers(0, HOSTILE_ODDS - 1).flatmap(lambda i: hostile if i == 0 else good)


def scalar(field: FieldDescriptor, plausible: Plausible) -> st.SearchStrategy:
    """Hostile values of a scalar field's type, mixed with plausible ones."""
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        hostile = st.one_of(hostile_text(), _random_text())
    elif t == FieldDescriptor.TYPE_BYTES:
        hostile = st.one_of(st.sampled_from(sorted(BYTES)).map(BYTES.__getitem__), st.binary(max_size=64))
    elif t == FieldDescriptor.TYPE_BOOL:
        hostile = st.booleans()
    elif t == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        hostile = st.sampled_from([-1, max(known) + 1, 999, 2**31 - 1, -(2**31)])
    elif t in _FLOAT_TYPES:
        finite = list(FLOATS) if t == FieldDescriptor.TYPE_DOUBLE else [0.0, -0.0, 1e38, -1.0, 12.34]
        hostile = st.one_of(st.sampled_from(finite + list(NON_FINITE)),
                            st.floats(width=64 if t == FieldDescriptor.TYPE_DOUBLE else 32))
    else:
        lo, hi = _INT_BOUNDS[t]
        edges = sorted({v for v in (lo, hi, -1, 0, 1, 2**31 - 1, 2**31, 10**12) if lo <= v <= hi})
        hostile = st.one_of(st.sampled_from(edges), st.integers(lo, hi))
    return _mostly(_plausible(field, plausible), hostile)


def timestamps() -> st.SearchStrategy[dict]:
    now = int(time.time())
    seconds = _mostly(st.sampled_from([now, now - 3600]),
                      st.one_of(st.sampled_from(list(TIMESTAMP_SECONDS) + [now + 10 * 365 * 86_400]),
                                st.integers(-(2**63), 2**63 - 1)))
    return st.fixed_dictionaries({"seconds": seconds, "nanos": _mostly(st.just(0), st.sampled_from(list(NANOS)))})


def message(descriptor: Descriptor, plausible: Plausible, *, depth: int = 0,
            message_class: Callable[..., Message] | None = None) -> st.SearchStrategy[Message]:
    """Messages of `descriptor` (its class `message_class`, or found through the descriptor's
    file) with every field hostile or plausible; nested messages at most 4 deep."""
    cls = message_class or _class_of(descriptor)
    full = descriptor.full_name
    if full in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        return timestamps().map(lambda kw: cls(**kw))
    if full == "google.protobuf.FieldMask":
        paths = st.one_of(plausible.get("paths", st.just("id")), st.sampled_from(["", "a.b.c", "*", "x" * 500]))
        return st.builds(cls, paths=st.lists(paths, max_size=4))
    fields: dict[str, st.SearchStrategy] = {}
    for field in descriptor.fields:
        if field.name == "idempotency_key":
            fields[field.name] = _mostly(st.builds(fresh_key), st.one_of(hostile_text(), _random_text()))
        elif _is_map(field):
            entry = field.message_type
            fields[field.name] = st.dictionaries(scalar(entry.fields_by_name["key"], plausible),
                                                 scalar(entry.fields_by_name["value"], plausible), max_size=4)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 4:
                continue
            item = st.deferred(lambda f=field: message(f.message_type, plausible, depth=depth + 1))
            fields[field.name] = repeated(item) if field.is_repeated else st.one_of(st.none(), item)
        else:
            item = scalar(field, plausible)
            fields[field.name] = repeated(item) if field.is_repeated else item
    oneofs = [o for o in descriptor.oneofs if not o.name.startswith("_")]

    def build(values: dict) -> Message:
        values = {k: v for k, v in values.items() if v is not None}
        for oneof in oneofs:  # keep one member of each oneof
            members = [f.name for f in oneof.fields if f.name in values]
            for name in members[1:]:
                del values[name]
        return cls(**values)

    return st.fixed_dictionaries(fields).map(build)


def repeated(item: st.SearchStrategy) -> st.SearchStrategy[list]:
    """0, 1 or a few items; or many copies of one (duplicates), kept under the request cap."""
    def copies(args) -> list:
        value, n = args
        size = value.ByteSize() if isinstance(value, Message) else len(value) if isinstance(value, str | bytes) else 8
        return [value] * max(1, min(n, MAX_REQUEST_BYTES // max(size, 1) // 2))
    return st.one_of(st.just([]), st.lists(item, min_size=1, max_size=1), st.lists(item, min_size=2, max_size=4),
                     st.tuples(item, st.sampled_from(MANY)).map(copies))


def requests(method, plausible: Plausible, request_class: Callable[..., Message]) -> st.SearchStrategy[Fuzzed]:
    """Hostile requests for a gRPC method (its descriptor), at most MAX_REQUEST_BYTES each."""
    return (message(method.input_type, plausible, message_class=request_class)
            .filter(lambda m: m.ByteSize() <= MAX_REQUEST_BYTES).map(Fuzzed))


def _class_of(descriptor: Descriptor):
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)
