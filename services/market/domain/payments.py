"""Payments, the grid workers' cash books (统收台账) and on-account ledgers (代付台账), the
settlement on delivery and the settlement report at the lockdown's end (结算).

Every difference between what a household owes (its due amount once delivered) and what was
paid is explained by a code: refused_refund (parcel refused), short_refund (delivered short),
confirmation_refund (the outlet confirmed less than ordered), uncollected (paid less than owed),
not_delivered (not closed yet), on_account (owed, settled after the lockdown).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .aggregation import CommunityOrder
from .orders import PAYMENT_MODES, HouseholdOrder, payment_reference
from .rules import BAD_STATE, invalid, refuse

CLOSED = ("delivered", "refused")
EXPLANATIONS = ("refused_refund", "short_refund", "confirmation_refund", "uncollected", "not_delivered",
                "on_account")


@dataclass(frozen=True)
class Payment:
    """mode 'online': the provider's reference; 'collected': the grid worker took the money in
    advance; 'on_account': the grid worker settles what was paid on behalf (after the lockdown)."""

    order_id: str
    mode: str
    amount_fen: int
    reference: str
    grid_worker: str
    recorded_at: datetime


def make_payment(order: HouseholdOrder, *, mode: str, amount_fen: int, reference: str, grid_worker: str,
                 recorded_at: datetime, paid_so_far: int = 0) -> Payment:
    """A payment for `order`, checked: mode is the order's; 0 < amount ≤ what is left of the
    ordered amount after `paid_so_far` (money collected before the supermarket's answer may
    exceed the confirmed amount: the settlement refunds it); an online payment names its
    provider reference (others default to the order's payment reference)."""
    if mode not in PAYMENT_MODES:
        raise invalid("mode", "须为 online / collected / on_account", "must be online, collected or on_account")
    if mode != order.payment_mode:
        raise refuse(BAD_STATE, f"订单付款方式为 {order.payment_mode}", f"the order is paid {order.payment_mode}, not {mode}")
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise invalid("amount_fen", "金额须为正整数(分)", "must be a positive whole number of fen")
    left = order.amount_fen - paid_so_far
    if amount_fen > left:
        raise invalid("amount_fen", f"超出应付金额: 尚余 {max(left, 0)} 分 (已付 {paid_so_far} 分)",
                      f"more than is left to pay: {max(left, 0)} fen left ({paid_so_far} fen paid already)")
    reference = (reference or "").strip()
    if mode == "online" and not reference:
        raise invalid("reference", "在线支付须有支付参考号", "an online payment needs the provider's reference")
    if recorded_at.tzinfo is None:
        raise ValueError("recorded_at must be timezone-aware")
    return Payment(order.order_id, mode, amount_fen, reference or payment_reference(order.order_id),
                   grid_worker, recorded_at)


def _paid(payments: Iterable[Payment]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for p in payments:
        out[(p.order_id, p.mode)] = out.get((p.order_id, p.mode), 0) + p.amount_fen
    return out


def is_closed(order: HouseholdOrder) -> bool:
    """Its parcel was delivered or refused, or it got no parcel (nothing confirmed)."""
    return order.status in CLOSED or (order.status in ("confirmed", "packed") and order.confirmed_amount_fen == 0)


def delivered_fen(order: HouseholdOrder) -> int:
    """What the household owes once its parcel is closed; 0 before."""
    return order.due_fen if is_closed(order) else 0


def explain(order: HouseholdOrder, paid_fen: int) -> str:
    """The code of the difference between `paid_fen` and what the order owes ('' when none)."""
    if order.payment_mode == "on_account" and paid_fen == 0:
        return "on_account"
    if not is_closed(order):
        return "not_delivered"
    diff = paid_fen - order.due_fen
    if diff == 0:
        return ""
    if diff < 0:
        return "uncollected"
    if order.status == "refused":
        return "refused_refund"
    if any(ln.delivered is not None and ln.delivered < ln.confirmed_or_ordered for ln in order.lines):
        return "short_refund"
    return "confirmation_refund"


@dataclass(frozen=True)
class CashBookEntry:
    order_id: str
    household_ref: str
    collected_fen: int
    delivered_fen: int
    difference_fen: int
    reason: str


@dataclass(frozen=True)
class CashBook:
    grid_worker: str
    entries: tuple[CashBookEntry, ...]
    collected_fen: int
    delivered_fen: int
    difference_fen: int

    @property
    def reasons(self) -> dict[str, str]:
        return {e.order_id: e.reason for e in self.entries if e.reason}


def cash_book(grid_worker: str, payments: Sequence[Payment], orders: Sequence[HouseholdOrder]) -> CashBook:
    """统收台账: the grid worker's collected orders, collected vs delivered, each difference explained
    (difference > 0: a refund owed to the household; < 0: money still to collect)."""
    paid = _paid(payments)
    entries = []
    for o in sorted(orders, key=lambda o: (o.day, o.order_id)):
        if o.grid_worker != grid_worker or o.payment_mode != "collected" or o.status == "cancelled":
            continue
        c = paid.get((o.order_id, "collected"), 0)
        d = delivered_fen(o)
        entries.append(CashBookEntry(o.order_id, o.household_ref, c, d, c - d, explain(o, c)))
    c_sum, d_sum = sum(e.collected_fen for e in entries), sum(e.delivered_fen for e in entries)
    return CashBook(grid_worker, tuple(entries), c_sum, d_sum, c_sum - d_sum)


@dataclass(frozen=True)
class LedgerEntry:
    order_id: str
    household_ref: str
    owed_fen: int
    settled_fen: int


def account_ledger(grid_worker: str, payments: Sequence[Payment], orders: Sequence[HouseholdOrder]
                   ) -> tuple[LedgerEntry, ...]:
    """代付台账: per on-account order of the grid worker, what the household owes and what is settled."""
    paid = _paid(payments)
    return tuple(LedgerEntry(o.order_id, o.household_ref, delivered_fen(o), paid.get((o.order_id, "on_account"), 0))
                 for o in sorted(orders, key=lambda o: (o.household_ref, o.order_id))
                 if o.grid_worker == grid_worker and o.payment_mode == "on_account" and o.status != "cancelled")


@dataclass(frozen=True)
class SettlementLine:
    order_id: str
    household_ref: str
    payment_mode: str
    delivered_fen: int
    paid_fen: int
    difference_fen: int
    reason: str


@dataclass(frozen=True)
class DeliverySettlement:
    community_order_id: str
    lines: tuple[SettlementLine, ...]
    delivered_fen: int
    collected_fen: int
    refund_fen: int
    to_collect_fen: int


def settle_delivery(co: CommunityOrder, orders: Sequence[HouseholdOrder],
                    payments: Sequence[Payment]) -> DeliverySettlement:
    """The grid worker and the delivery staff settle a community order once every parcel is
    closed: per household order delivered vs paid (collected or online), each difference explained."""
    ids = set(co.household_order_ids)
    mine = [o for o in orders if o.order_id in ids and o.status != "cancelled"]
    open_ = [o.order_id for o in mine if not is_closed(o)]
    if open_:
        raise refuse(BAD_STATE, f"尚有 {len(open_)} 个包裹未签收", f"{len(open_)} parcels are not confirmed at the drop point")
    paid = _paid(payments)
    lines = []
    for o in sorted(mine, key=lambda o: o.order_id):
        p = paid.get((o.order_id, o.payment_mode), 0) if o.payment_mode != "on_account" else 0
        d = delivered_fen(o)
        lines.append(SettlementLine(o.order_id, o.household_ref, o.payment_mode, d, p,
                                    p - d if o.payment_mode != "on_account" else 0, explain(o, p)))
    collected = sum(ln.paid_fen for ln in lines if ln.payment_mode == "collected")
    return DeliverySettlement(co.community_order_id, tuple(lines), sum(ln.delivered_fen for ln in lines), collected,
                              sum(ln.difference_fen for ln in lines if ln.difference_fen > 0),
                              -sum(ln.difference_fen for ln in lines if ln.difference_fen < 0))


@dataclass(frozen=True)
class SettlementRow:
    """balance_fen = paid online + collected + on account (settled and owed) − delivered:
    0 when every fen is accounted for; > 0 refunds owed to households; < 0 money missing."""

    key: str
    ordered_fen: int = 0
    delivered_fen: int = 0
    paid_online_fen: int = 0
    collected_fen: int = 0
    on_account_settled_fen: int = 0
    on_account_owed_fen: int = 0

    @property
    def balance_fen(self) -> int:
        return (self.paid_online_fen + self.collected_fen + self.on_account_settled_fen + self.on_account_owed_fen
                - self.delivered_fen)


@dataclass(frozen=True)
class SettlementReport:
    households: tuple[SettlementRow, ...]
    grid_workers: tuple[SettlementRow, ...]
    outlets: tuple[SettlementRow, ...]
    total: SettlementRow


def settlement_report(orders: Sequence[HouseholdOrder], payments: Sequence[Payment]) -> SettlementReport:
    """Per household reference, per grid worker, per outlet (no names: household_ref only)."""
    paid = _paid(payments)
    fields = ("ordered_fen", "delivered_fen", "paid_online_fen", "collected_fen", "on_account_settled_fen",
              "on_account_owed_fen")
    acc: dict[str, dict[str, list[int]]] = {"h": {}, "g": {}, "o": {}, "t": {}}
    for o in orders:
        if o.status == "cancelled":
            continue
        d = delivered_fen(o)
        settled = paid.get((o.order_id, "on_account"), 0)
        row = (o.amount_fen, d, paid.get((o.order_id, "online"), 0), paid.get((o.order_id, "collected"), 0),
               settled, max(0, d - settled) if o.payment_mode == "on_account" else 0)
        for kind, key in (("h", o.household_ref), ("g", o.grid_worker), ("o", o.outlet_id), ("t", "total")):
            sums = acc[kind].setdefault(key, [0] * len(fields))
            for i, v in enumerate(row):
                sums[i] += v

    def rows(kind: str) -> tuple[SettlementRow, ...]:
        return tuple(SettlementRow(k, **dict(zip(fields, acc[kind][k], strict=True))) for k in sorted(acc[kind]))

    total = rows("t")
    return SettlementReport(rows("h"), rows("g"), rows("o"), total[0] if total else SettlementRow("total"))


class PaymentPort(Protocol):
    """A payment provider. The county calls none: RecordingPaymentPort only records."""

    def record(self, order_id: str, amount_fen: int, reference: str) -> str: ...


class RecordingPaymentPort:
    """Records references and returns them (the order's payment reference when none is given);
    the same order and reference recorded twice is kept once. Never calls a provider."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int, str]] = []
        self._seen: set[tuple[str, str]] = set()

    def record(self, order_id: str, amount_fen: int, reference: str) -> str:
        ref = reference.strip() or payment_reference(order_id)
        if (order_id, ref) not in self._seen:
            self._seen.add((order_id, ref))
            self.records.append((order_id, amount_fen, ref))
        return ref
