"""The supermarket channel's pages as plain data (商超保供): money typed in yuan read into fen
without floats, fen shown as yuan, a household order's total at the prices the page showed, and
a parcel's outcome read from its household order. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

YUAN = re.compile(r"^(\d{1,9})(?:[.。](\d{0,2}))?$")
ANSWERS = ("full", "partial", "out_of_stock")
PAYMENT_MODES = ("online", "collected", "on_account")
OUTCOMES = ("received", "short", "refused")


def parse_yuan(text: str) -> int | None:
    """"12.5" → 1250 fen; "12" → 1200; at most two decimals, no sign; None when it is not money
    or not above 0."""
    raw = re.sub(r"[\s,，¥￥元]", "", text or "")
    m = YUAN.match(raw)
    if not m:
        return None
    fen = int(m.group(1)) * 100 + int((m.group(2) or "").ljust(2, "0"))
    return fen if fen > 0 else None


def yuan(fen: int) -> str:
    """1250 → "12.50" (negative amounts keep their sign)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def whole(text: str, lo: int = 0, hi: int = 99) -> int | None:
    """A count typed by a person, lo … hi, else None ("" is None too)."""
    raw = (text or "").strip()
    if not raw.isdigit() or len(raw) > 6:
        return None
    value = int(raw)
    return value if lo <= value <= hi else None


def total_fen(lines: Iterable[tuple[int, int]]) -> int:
    """The sum of (quantity, price in fen) lines."""
    return sum(q * p for q, p in lines)


@dataclass(frozen=True)
class ParcelState:
    """A household order's parcel as the drop point sees it (P-<order id>, docs/market.md)."""

    parcel_id: str
    outcome: str  # "" (not packed), packed, received, short, refused


def parcel_state(order_id: str, status: str, lines: Iterable[tuple[int, int]]) -> ParcelState:
    """From the household order's status and its (confirmed, delivered) lines: packed orders
    have a parcel to confirm; delivered ones were received in full or short."""
    pid = f"P-{order_id}"
    if status == "packed":
        return ParcelState(pid, "packed")
    if status == "refused":
        return ParcelState(pid, "refused")
    if status == "delivered":
        short = any(0 <= d < c for c, d in lines)
        return ParcelState(pid, "short" if short else "received")
    return ParcelState(pid, "")
