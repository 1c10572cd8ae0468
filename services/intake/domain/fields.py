"""Parsing and validation of caller input, raising InvalidInput that names the field path.

Inputs arrive from gRPC messages, spreadsheet rows (strings, floats from xlsx cells) and
Python callers, so the parsers accept the obvious spellings of a value and nothing vague:
an integer may be an int, an integral float (``12.0`` from a spreadsheet) or a string of
digits, never a bool or ``2.5``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, time
from enum import Enum
from typing import Any, TypeVar

from services.common.days import parse_day
from services.common.errors import InvalidInput

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, exactly
ID_RULE = "1-64 characters: letters, digits, '_', '.', ':', '-'; starting with a letter or digit"

E = TypeVar("E", bound=Enum)


def get(obj: Any, key: str, default: Any = None) -> Any:
    """A field of a mapping or of an object with attributes.

    Protobuf messages are read by duck typing (no import): a field that is not set and has
    presence (sub-messages, `optional` scalars) reads as `default`, and an enum reads as its
    name (``DONOR_KIND_PERSON``), which as_choice understands.
    """
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    descriptor = getattr(obj, "DESCRIPTOR", None)
    fd = getattr(descriptor, "fields_by_name", {}).get(key) if descriptor is not None else None
    if fd is None:
        return getattr(obj, key, default)
    repeated = getattr(fd, "is_repeated", None)
    if repeated is None:
        repeated = fd.label == fd.LABEL_REPEATED
    if not repeated and getattr(fd, "has_presence", False) and not obj.HasField(key):
        return default
    value = getattr(obj, key)
    if fd.enum_type is not None and not repeated:
        known = fd.enum_type.values_by_number.get(value)
        return known.name if known is not None else value
    return value


def is_blank(value: Any) -> bool:
    """None, blank text, or a protobuf enum name for "not set" (``RISK_LEVEL_UNSPECIFIED``)."""
    if value is None:
        return True
    if isinstance(value, str):
        s = value.strip()
        return not s or s.upper().endswith("_UNSPECIFIED")
    return False


def as_int(value: Any, field: str, *, min_value: int | None = None,
           max_value: int | None = None) -> int:
    if isinstance(value, bool) or value is None:
        raise InvalidInput(field, "must be an integer")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidInput(field, f"must be a whole number, got {value!r}")
        n = int(value)
    elif isinstance(value, str):
        s = value.strip().replace(",", "")
        if s.endswith(".0"):
            s = s[:-2]
        if not re.fullmatch(r"[+-]?\d+", s):
            raise InvalidInput(field, f"must be a whole number, got {value!r}")
        n = int(s)
    else:
        raise InvalidInput(field, "must be an integer")
    if min_value is not None and n < min_value:
        raise InvalidInput(field, f"must be >= {min_value}, got {n}")
    if max_value is not None and n > max_value:
        raise InvalidInput(field, f"must be <= {max_value}, got {n}")
    return n


def as_float(value: Any, field: str, *, min_value: float, max_value: float) -> float:
    if isinstance(value, bool) or value is None:
        raise InvalidInput(field, "must be a number")
    try:
        x = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InvalidInput(field, f"must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise InvalidInput(field, "must be a finite number")
    if not min_value <= x <= max_value:
        raise InvalidInput(field, f"must be between {min_value:g} and {max_value:g}, got {x:g}")
    return x


def as_text(value: Any, field: str, *, required: bool = True, max_len: int = 200) -> str:
    """Trimmed, NFC-normalised text; `required` refuses empty or blank text."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    s = unicodedata.normalize("NFC", value).strip()
    if required and not s:
        raise InvalidInput(field, "must not be empty")
    if len(s) > max_len:
        raise InvalidInput(field, f"at most {max_len} characters, got {len(s)}")
    if CONTROL_CHARACTER.search(s):
        raise InvalidInput(field, "must not contain control characters")
    return s


def as_id(value: Any, field: str) -> str:
    s = value.strip() if isinstance(value, str) else value
    if not isinstance(s, str) or not s:
        raise InvalidInput(field, "must not be empty")
    if not ID_PATTERN.match(s):
        raise InvalidInput(field, f"bad id {s!r}: {ID_RULE}")
    return s


def as_date(value: Any, field: str) -> date:
    return parse_day(value, field, required=True)


def as_local_time(value: Any, field: str) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise InvalidInput(field, "must be a local time without a UTC offset")
        return value
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value.strip()) if isinstance(value, str) else None
    if m:
        try:
            return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
        except ValueError:
            pass
    raise InvalidInput(field, f"must be a local time HH:MM, got {value!r}")


def as_choice(value: Any, field: str, enum: type[E], aliases: Mapping[str, E] | None = None) -> E:
    """An enum member from a member, its value, an alias, or a protobuf enum name that ends
    with the value (``UNIT_TYPE_FEVER_CLINIC``; the longest matching value wins, so
    ``DEMAND_STATUS_PARTLY_FULFILLED`` is not ``fulfilled``). Case-insensitive."""
    if isinstance(value, enum):
        return value
    allowed = ", ".join(m.value for m in enum)
    if is_blank(value):
        raise InvalidInput(field, f"is required: one of {allowed}")
    if isinstance(value, str):
        key = value.strip().lower()
        for member in enum:
            if member.value == key:
                return member
        if aliases and key in aliases:
            return aliases[key]
        suffixed = [m for m in enum if key.endswith("_" + m.value)]
        if suffixed:
            return max(suffixed, key=lambda m: len(m.value))
    raise InvalidInput(field, f"must be one of {allowed}, got {value!r}")


def require_aware(at: datetime, name: str = "at") -> datetime:
    """Domain functions take timezone-aware instants; a naive one is a programming error."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {at!r}")
    return at
