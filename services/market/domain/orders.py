"""Household orders (居民订单): one household's lines for one delivery day, entered by its grid worker."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from services.common.catalogue import Catalogue

from .lists import SellableList, as_count, essential_lines
from .outlets import Community, Outlet
from .policy import DEFAULT_POLICY, MarketPolicy
from .rules import AFTER_CUTOFF, NOT_ON_LIST, invalid, refuse

PAYMENT_MODES = ("online", "collected", "on_account")
ORDER_STATUSES = ("placed", "sent", "confirmed", "packed", "delivered", "refused", "cancelled")
HOUSEHOLD_REF_PREFIX = "H-"


def _normalise(text: str) -> str:
    """NFKC, casefolded, inner whitespace collapsed: '3号楼 2单元' and '3号楼  2单元 ' are one address."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def household_reference(key: bytes, community_id: str, address: str) -> str:
    """户编码: 'H-' and 10 base32 characters of HMAC-SHA256(key, community ␟ normalised address).
    Stable for one household, and without the county key the address cannot be tested."""
    if not isinstance(key, bytes | bytearray) or len(key) < 16:
        raise ValueError("the household key must be at least 16 bytes")
    msg = f"{community_id.strip()}\x1f{_normalise(address)}".encode()
    digest = hmac.new(bytes(key), msg, hashlib.sha256).digest()
    return HOUSEHOLD_REF_PREFIX + base64.b32encode(digest).decode()[:10]


def payment_reference(order_id: str) -> str:
    return f"MKT-{order_id}"


@dataclass(frozen=True)
class OrderLine:
    """quantity: ordered; confirmed: after the outlet's answer (None: not answered yet);
    delivered: after the drop point (None: not delivered yet). price_fen: of the list version."""

    item_code: str
    quantity: int
    price_fen: int
    confirmed: int | None = None
    delivered: int | None = None

    @property
    def confirmed_or_ordered(self) -> int:
        return self.quantity if self.confirmed is None else self.confirmed

    @property
    def due_quantity(self) -> int:
        return self.confirmed_or_ordered if self.delivered is None else self.delivered


@dataclass(frozen=True)
class HouseholdOrder:
    order_id: str
    community_id: str
    outlet_id: str
    day: date
    household_ref: str
    grid_worker: str
    payment_mode: str
    lines: tuple[OrderLine, ...]
    placed_at: datetime
    list_version: int
    status: str = "placed"

    @property
    def amount_fen(self) -> int:
        return sum(ln.quantity * ln.price_fen for ln in self.lines)

    @property
    def confirmed_amount_fen(self) -> int:
        return sum(ln.confirmed_or_ordered * ln.price_fen for ln in self.lines)

    @property
    def due_fen(self) -> int:
        """What the household owes: delivered quantities once delivered, else confirmed, else ordered."""
        return sum(ln.due_quantity * ln.price_fen for ln in self.lines)

    @property
    def payment_reference(self) -> str:
        return payment_reference(self.order_id)

    def with_status(self, status: str) -> HouseholdOrder:
        return replace(self, status=status)


def order_cutoff_at(outlet: Outlet, day: date, tz: tzinfo, policy: MarketPolicy = DEFAULT_POLICY) -> datetime:
    """The instant orders for `day` close: the outlet's cut-off (or the policy's) on D-1, local."""
    cutoff = outlet.order_cutoff or policy.order_cutoff
    return datetime.combine(day - timedelta(days=policy.order_cutoff_days_before), cutoff, tz)


def validate_order_lines(raw_lines: Sequence[Mapping[str, Any]], sellable_list: SellableList,
                         catalogue: Catalogue, policy: MarketPolicy = DEFAULT_POLICY) -> tuple[OrderLine, ...]:
    out = []
    for f, item, raw in essential_lines(
            raw_lines, catalogue, empty=("订单不能为空", "an order needs at least one line"), most=policy.max_lines,
            most_text=(f"每户最多 {policy.max_lines} 行", f"at most {policy.max_lines} lines per household"),
            twice="is ordered twice"):
        qty = as_count(raw.get("quantity"), f"{f}.quantity", 1, policy.max_quantity_per_line)
        out.append(OrderLine(item.code, qty, sellable_list.price_of(item.code)))
    return tuple(out)


def place_order(*, order_id: str, community: Community, outlet: Outlet, day: date, household_ref: str,
                grid_worker: str, payment_mode: str, raw_lines: Sequence[Mapping[str, Any]],
                expected_amount_fen: int, sellable_list: SellableList, catalogue: Catalogue,
                policy: MarketPolicy = DEFAULT_POLICY, now: datetime, tz: tzinfo) -> HouseholdOrder:
    """A household order priced at the current list version. Refusals: market_after_cutoff,
    market_non_essential, market_not_on_list; InvalidInput for limits and for an expected amount
    that is not the sum of the lines (the message gives the computed amount)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = order_cutoff_at(outlet, day, tz, policy)
    if now > cutoff:
        raise refuse(AFTER_CUTOFF, f"{day} 的订单已于 {cutoff:%m-%d %H:%M} 截止",
                     f"orders for {day} closed at {cutoff:%Y-%m-%d %H:%M %Z}")
    if sellable_list.outlet_id != outlet.outlet_id or sellable_list.day != day:
        raise refuse(NOT_ON_LIST, f"{outlet.outlet_id} 没有 {day} 的可售清单",
                     f"{outlet.outlet_id} has no sellable list for {day}")
    if not isinstance(household_ref, str) or not household_ref.startswith(HOUSEHOLD_REF_PREFIX):
        raise invalid("household_ref", "须为户编码 H-…", "must be a household reference H-…")
    if not isinstance(grid_worker, str) or not grid_worker.strip():
        raise invalid("grid_worker", "必填", "is required")
    if payment_mode not in PAYMENT_MODES:
        raise invalid("payment_mode", "须为 online / collected / on_account",
                      "must be online, collected or on_account")
    lines = validate_order_lines(raw_lines, sellable_list, catalogue, policy)
    order = HouseholdOrder(order_id, community.community_id, outlet.outlet_id, day, household_ref,
                           grid_worker.strip(), payment_mode, lines, now, sellable_list.version)
    if expected_amount_fen != order.amount_fen:
        raise invalid("expected_amount_fen", f"按当前价格应为 {order.amount_fen} 分",
                      f"the lines at the current prices come to {order.amount_fen} fen, "
                      f"not {expected_amount_fen}; the amount is {order.amount_fen} fen")
    return order
