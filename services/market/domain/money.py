"""Money is int fen (分); yuan text only for labels and pages."""

from __future__ import annotations

import re

from .rules import invalid

_YUAN = re.compile(r"(\d{1,9})(?:\.(\d{1,2}))?")


def format_yuan(fen: int) -> str:
    """1250 → '12.50'; -5 → '-0.05'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole}.{cents:02d}"


def parse_yuan(text: str, field: str) -> int:
    """'12.5' / '12.50' / '12' / '¥12.50' → fen. Non-negative, at most two decimals; no floats."""
    if not isinstance(text, str):
        raise invalid(field, "须为文本金额", "must be an amount as text")
    s = text.strip().removeprefix("¥").removeprefix("￥").strip()
    m = _YUAN.fullmatch(s)
    if not m:
        raise invalid(field, "金额格式应为 12.50", f"must be an amount in yuan like 12.50, got {text[:20]!r}")
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))
