"""Community orders (社区汇总订单) and the outlet's confirmation (备货反馈).

A partial answer is shared among the households that ordered the item in the order they were
placed (first come, first served), whole units only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from .orders import HouseholdOrder, OrderLine
from .rules import BAD_STATE, invalid, refuse

ANSWERS = ("full", "partial", "out_of_stock")
COMMUNITY_ORDER_STATUSES = ("sent", "confirmed", "packed", "delivered")


@dataclass(frozen=True)
class AggregateLine:
    """price_fen: of the latest list version among the orders (each household pays its own)."""

    item_code: str
    quantity: int
    price_fen: int
    confirmed: int | None = None
    answer: str | None = None


@dataclass(frozen=True)
class CommunityOrder:
    community_order_id: str
    community_id: str
    outlet_id: str
    day: date
    drop_point_id: str
    lines: tuple[AggregateLine, ...]
    household_order_ids: tuple[str, ...]
    status: str = "sent"

    @property
    def amount_fen(self) -> int:
        return sum(ln.quantity * ln.price_fen for ln in self.lines)


def fcfs(orders: Sequence[HouseholdOrder]) -> list[HouseholdOrder]:
    """Households in the order they were placed (ties by order id)."""
    return sorted(orders, key=lambda o: (o.placed_at, o.order_id))


def aggregate(community_order_id: str, orders: Sequence[HouseholdOrder], drop_point_id: str) -> CommunityOrder:
    """One community order from the placed household orders of one community, outlet and day."""
    live = [o for o in orders if o.status == "placed"]
    if not live:
        raise refuse(BAD_STATE, "没有待汇总的居民订单", "no placed household order to aggregate")
    first = live[0]
    key = (first.community_id, first.outlet_id, first.day)
    if any((o.community_id, o.outlet_id, o.day) != key for o in live):
        raise invalid("orders", "订单须属同一社区、超市和配送日",
                      "the orders must share one community, outlet and delivery day")
    if not drop_point_id:
        raise invalid("drop_point_id", "必填", "is required")
    qty: dict[str, int] = {}
    price: dict[str, tuple[int, int]] = {}
    for o in live:
        for ln in o.lines:
            qty[ln.item_code] = qty.get(ln.item_code, 0) + ln.quantity
            if ln.item_code not in price or o.list_version >= price[ln.item_code][0]:
                price[ln.item_code] = (o.list_version, ln.price_fen)
    lines = tuple(AggregateLine(code, qty[code], price[code][1]) for code in sorted(qty))
    return CommunityOrder(community_order_id, first.community_id, first.outlet_id, first.day, drop_point_id,
                          lines, tuple(o.order_id for o in fcfs(live)))


def _check_answers(co: CommunityOrder, answers: Mapping[str, tuple[str, int | None]]) -> dict[str, int]:
    codes = {ln.item_code for ln in co.lines}
    for code in answers:
        if code not in codes:
            raise invalid(f"answers.{code}", "该物品不在汇总订单上", "this item is not on the community order")
    confirmed: dict[str, int] = {}
    for ln in co.lines:
        f = f"answers.{ln.item_code}"
        if ln.item_code not in answers:
            raise invalid(f, "每行须答复一次", "every line needs an answer")
        answer, quantity = answers[ln.item_code]
        if answer not in ANSWERS:
            raise invalid(f, "答复须为 full / partial / out_of_stock", "must be full, partial or out_of_stock")
        if answer == "full":
            confirmed[ln.item_code] = ln.quantity
        elif answer == "out_of_stock":
            confirmed[ln.item_code] = 0
        else:
            if (isinstance(quantity, bool) or not isinstance(quantity, int)
                    or not 1 <= quantity <= ln.quantity - 1):
                raise invalid(f"{f}.quantity", f"部分供货数量须为 1 到 {ln.quantity - 1}",
                              f"a partial quantity must be 1 to {ln.quantity - 1}")
            confirmed[ln.item_code] = quantity
    return confirmed


def _shares(co: CommunityOrder, orders: Sequence[HouseholdOrder]):
    """(order, units confirmed per line) for each household order of `co`, first come first served."""
    ids = set(co.household_order_ids)
    left = {ln.item_code: ln.confirmed for ln in co.lines}
    for o in fcfs([o for o in orders if o.order_id in ids]):
        takes = []
        for ln in o.lines:
            avail = left.get(ln.item_code) or 0
            take = ln.quantity if ln.quantity < avail else avail
            left[ln.item_code] = avail - take
            takes.append(take)
        yield o, takes


def _confirmed(o: HouseholdOrder, takes: list[int]) -> HouseholdOrder:
    lines = tuple(OrderLine(ln.item_code, ln.quantity, ln.price_fen, t, ln.delivered)
                  for ln, t in zip(o.lines, takes, strict=True))
    return replace(o, lines=lines, status="confirmed")


def allocate(co: CommunityOrder, orders: Sequence[HouseholdOrder]) -> list[HouseholdOrder]:
    """The household orders of a confirmed community order with their confirmed quantities and
    status 'confirmed': each item's confirmed units go to the households first come, first served."""
    return [_confirmed(o, takes) for o, takes in _shares(co, orders)]


def apply_confirmation(co: CommunityOrder, orders: Sequence[HouseholdOrder],
                       answers: Mapping[str, tuple[str, int | None]]) -> tuple[CommunityOrder, list[HouseholdOrder]]:
    """The outlet's answer per line → the confirmed community order and the household orders it
    changes (a line confirmed below what was ordered; their amounts follow). The others are
    confirmed in full: `allocate(confirmed, orders)` gives every order's new state."""
    if co.status != "sent":
        raise refuse(BAD_STATE, f"汇总订单状态为 {co.status}，不能再确认",
                     f"community order is {co.status}; only a sent order can be confirmed")
    confirmed = _check_answers(co, answers)
    lines = tuple(replace(ln, confirmed=confirmed[ln.item_code], answer=answers[ln.item_code][0]) for ln in co.lines)
    done = replace(co, lines=lines, status="confirmed")
    changed = [_confirmed(o, takes) for o, takes in _shares(done, orders)
               if any(t < ln.quantity for ln, t in zip(o.lines, takes, strict=True))]
    return done, changed
