"""Parcels (分装包裹): one household order packed, its packing list per drop point, and its
delivery at the drop point (received, short, refused)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from .aggregation import CommunityOrder
from .orders import HouseholdOrder, payment_reference
from .rules import BAD_STATE, invalid, refuse

DELIVERY_OUTCOMES = ("received", "short", "refused")
PARCEL_STATUSES = ("packed",) + DELIVERY_OUTCOMES


@dataclass(frozen=True)
class ParcelLine:
    item_code: str
    quantity: int
    price_fen: int


@dataclass(frozen=True)
class Parcel:
    parcel_id: str
    household_order_id: str
    household_ref: str
    drop_point_id: str
    lines: tuple[ParcelLine, ...]
    amount_fen: int
    payment_reference: str
    payment_mode: str
    status: str = "packed"
    reason: str = ""


def parcel_id_of(order_id: str) -> str:
    return f"P-{order_id}"


def pack(co: CommunityOrder, orders: Sequence[HouseholdOrder]) -> list[Parcel]:
    """One parcel per household order of the confirmed community order with something confirmed,
    in first-come order; lines with nothing confirmed are left out."""
    if co.status != "confirmed":
        raise refuse(BAD_STATE, f"汇总订单状态为 {co.status}，须先确认再打包",
                     f"community order is {co.status}; it is packed once confirmed")
    by_id = {o.order_id: o for o in orders}
    parcels = []
    for oid in co.household_order_ids:
        o = by_id.get(oid)
        if o is None or o.status in ("cancelled", "refused"):
            continue
        lines = tuple(ParcelLine(ln.item_code, ln.confirmed_or_ordered, ln.price_fen)
                      for ln in o.lines if ln.confirmed_or_ordered > 0)
        if not lines:
            continue
        parcels.append(Parcel(parcel_id_of(oid), oid, o.household_ref, co.drop_point_id, lines,
                              sum(ln.quantity * ln.price_fen for ln in lines), payment_reference(oid),
                              o.payment_mode))
    return parcels


@dataclass(frozen=True)
class PackingLine:
    item_code: str
    quantity: int


@dataclass(frozen=True)
class PackingList:
    """What goes to one drop point: the parcels and the units per item."""

    drop_point_id: str
    parcel_ids: tuple[str, ...]
    lines: tuple[PackingLine, ...]
    amount_fen: int


def packing_lists(parcels: Sequence[Parcel]) -> list[PackingList]:
    groups: dict[str, list[Parcel]] = {}
    for p in parcels:
        groups.setdefault(p.drop_point_id, []).append(p)
    out = []
    for dp in sorted(groups):
        qty: dict[str, int] = {}
        for p in groups[dp]:
            for ln in p.lines:
                qty[ln.item_code] = qty.get(ln.item_code, 0) + ln.quantity
        out.append(PackingList(dp, tuple(p.parcel_id for p in groups[dp]),
                               tuple(PackingLine(c, qty[c]) for c in sorted(qty)),
                               sum(p.amount_fen for p in groups[dp])))
    return out


def confirm_delivery(parcel: Parcel, order: HouseholdOrder, outcome: str,
                     short_lines: Mapping[str, int] | None = None, reason: str = "") -> tuple[Parcel, HouseholdOrder]:
    """received: all packed units; short: `short_lines` gives the units received (each below
    packed; items not named came in full); refused: a reason is required, nothing delivered.
    The household order closes ('delivered', or 'refused') with its delivered quantities, so its
    due_fen is what the household owes."""
    if parcel.status != "packed":
        raise refuse(BAD_STATE, f"包裹已确认为 {parcel.status}", f"parcel is already {parcel.status}")
    if parcel.household_order_id != order.order_id:
        raise invalid("order", "包裹与订单不符", "the parcel is not this order's")
    if outcome not in DELIVERY_OUTCOMES:
        raise invalid("outcome", "须为 received / short / refused", "must be received, short or refused")
    packed = {ln.item_code: ln.quantity for ln in parcel.lines}
    delivered = dict(packed)
    reason = (reason or "").strip()
    if outcome == "short":
        if not short_lines:
            raise invalid("short_lines", "缺货签收须写明实收数量", "a short delivery names the units received")
        for code, q in short_lines.items():
            f = f"short_lines.{code}"
            if code not in packed:
                raise invalid(f, "该物品不在包裹中", "this item is not in the parcel")
            if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q < packed[code]:
                raise invalid(f, f"实收须为 0 到 {packed[code] - 1}", f"received must be 0 to {packed[code] - 1}")
            delivered[code] = q
    elif outcome == "refused":
        if not reason:
            raise invalid("reason", "拒收须写明原因", "a refused parcel needs a reason")
        delivered = {c: 0 for c in packed}
    lines = tuple(replace(ln, delivered=delivered.get(ln.item_code, 0)) for ln in order.lines)
    status = "refused" if outcome == "refused" else "delivered"
    return replace(parcel, status=outcome, reason=reason), replace(order, lines=lines, status=status)
