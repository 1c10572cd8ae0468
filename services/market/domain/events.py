"""Event payloads the market publishes on ``market.events`` (routing key = event type).

Plain JSON payloads: days "YYYY-MM-DD" county-local, instants UTC ISO-8601 with "Z", money
int fen, quantities int in the catalogue unit. No names, phones or addresses in any payload:
a household is its household_ref only; the pickup's driver and clerk are not sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from .aggregation import CommunityOrder
from .lists import SellableList
from .orders import HouseholdOrder
from .parcels import Parcel
from .payments import DeliverySettlement, Payment, SettlementReport
from .purchase import Discrepancy, PurchaseList

SCHEMA_VERSION = 1

SELLABLE_LIST_PUBLISHED = "sellable_list_published"
HOUSEHOLD_ORDER_PLACED = "household_order_placed"
COMMUNITY_ORDER_SENT = "community_order_sent"
COMMUNITY_ORDER_CONFIRMED = "community_order_confirmed"
PARCELS_PACKED = "parcels_packed"
PARCEL_DELIVERED = "parcel_delivered"
PAYMENT_RECORDED = "payment_recorded"
DELIVERY_SETTLED = "delivery_settled"
ACCOUNTS_SETTLED = "accounts_settled"
PURCHASE_LIST_SENT = "purchase_list_sent"
PURCHASE_LIST_READY = "purchase_list_ready"
PICKUP_BOOKED = "pickup_booked"
PURCHASE_COLLECTED = "purchase_collected"
EVENT_TYPES = (SELLABLE_LIST_PUBLISHED, HOUSEHOLD_ORDER_PLACED, COMMUNITY_ORDER_SENT, COMMUNITY_ORDER_CONFIRMED,
               PARCELS_PACKED, PARCEL_DELIVERED, PAYMENT_RECORDED, DELIVERY_SETTLED, ACCOUNTS_SETTLED,
               PURCHASE_LIST_SENT, PURCHASE_LIST_READY, PICKUP_BOOKED, PURCHASE_COLLECTED)


@dataclass(frozen=True)
class DomainEvent:
    event_type: str
    payload: dict[str, Any]
    occurred_at: datetime | None = None
    schema_version: int = SCHEMA_VERSION


def utc(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _day(d: date | None) -> str | None:
    return d.isoformat() if d else None


def sellable_list_published(sl: SellableList, at: datetime | None = None) -> DomainEvent:
    return DomainEvent(SELLABLE_LIST_PUBLISHED, {
        "outlet_id": sl.outlet_id, "day": _day(sl.day), "version": sl.version,
        "lines": [{"item_code": ln.item_code, "unit": ln.unit, "price_fen": ln.price_fen} for ln in sl.lines],
    }, at)


def _order_lines(o: HouseholdOrder) -> list[dict[str, Any]]:
    return [{"item_code": ln.item_code, "quantity": ln.quantity, "price_fen": ln.price_fen,
             "confirmed": ln.confirmed, "delivered": ln.delivered} for ln in o.lines]


def household_order_placed(o: HouseholdOrder) -> DomainEvent:
    return DomainEvent(HOUSEHOLD_ORDER_PLACED, {
        "order_id": o.order_id, "community_id": o.community_id, "outlet_id": o.outlet_id, "day": _day(o.day),
        "household_ref": o.household_ref, "grid_worker": o.grid_worker, "payment_mode": o.payment_mode,
        "list_version": o.list_version, "amount_fen": o.amount_fen, "placed_at": utc(o.placed_at),
        "lines": _order_lines(o),
    }, o.placed_at)


def _co(co: CommunityOrder) -> dict[str, Any]:
    return {"community_order_id": co.community_order_id, "community_id": co.community_id,
            "outlet_id": co.outlet_id, "day": _day(co.day), "drop_point_id": co.drop_point_id,
            "household_order_ids": list(co.household_order_ids),
            "lines": [{"item_code": ln.item_code, "quantity": ln.quantity, "price_fen": ln.price_fen,
                       "confirmed": ln.confirmed, "answer": ln.answer} for ln in co.lines]}


def community_order_sent(co: CommunityOrder, at: datetime | None = None) -> DomainEvent:
    return DomainEvent(COMMUNITY_ORDER_SENT, {**_co(co), "amount_fen": co.amount_fen}, at)


def community_order_confirmed(co: CommunityOrder, changed: Sequence[HouseholdOrder],
                              at: datetime | None = None) -> DomainEvent:
    return DomainEvent(COMMUNITY_ORDER_CONFIRMED, {
        **_co(co), "changed_order_ids": [o.order_id for o in changed],
        "changed": [{"order_id": o.order_id, "household_ref": o.household_ref,
                     "confirmed_amount_fen": o.confirmed_amount_fen} for o in changed],
    }, at)


def _parcel(p: Parcel) -> dict[str, Any]:
    return {"parcel_id": p.parcel_id, "household_order_id": p.household_order_id, "household_ref": p.household_ref,
            "drop_point_id": p.drop_point_id, "amount_fen": p.amount_fen, "payment_reference": p.payment_reference,
            "payment_mode": p.payment_mode, "status": p.status,
            "lines": [{"item_code": ln.item_code, "quantity": ln.quantity, "price_fen": ln.price_fen}
                      for ln in p.lines]}


def parcels_packed(co: CommunityOrder, parcels: Sequence[Parcel], at: datetime | None = None) -> DomainEvent:
    return DomainEvent(PARCELS_PACKED, {
        "community_order_id": co.community_order_id, "community_id": co.community_id, "outlet_id": co.outlet_id,
        "day": _day(co.day), "parcels": [_parcel(p) for p in parcels],
        "amount_fen": sum(p.amount_fen for p in parcels),
    }, at)


def parcel_delivered(parcel: Parcel, order: HouseholdOrder, at: datetime | None = None) -> DomainEvent:
    return DomainEvent(PARCEL_DELIVERED, {
        "parcel_id": parcel.parcel_id, "household_order_id": order.order_id, "household_ref": order.household_ref,
        "community_id": order.community_id, "outlet_id": order.outlet_id, "day": _day(order.day),
        "outcome": parcel.status, "reason": parcel.reason, "due_fen": order.due_fen,
        "lines": _order_lines(order), "confirmed_at": utc(at),
    }, at)


def payment_recorded(p: Payment, order: HouseholdOrder) -> DomainEvent:
    return DomainEvent(PAYMENT_RECORDED, {
        "order_id": p.order_id, "household_ref": order.household_ref, "community_id": order.community_id,
        "outlet_id": order.outlet_id, "mode": p.mode, "amount_fen": p.amount_fen, "reference": p.reference,
        "grid_worker": p.grid_worker, "recorded_at": utc(p.recorded_at),
    }, p.recorded_at)


def delivery_settled(s: DeliverySettlement, grid_worker: str, at: datetime | None = None) -> DomainEvent:
    return DomainEvent(DELIVERY_SETTLED, {
        "community_order_id": s.community_order_id, "grid_worker": grid_worker,
        "delivered_fen": s.delivered_fen, "collected_fen": s.collected_fen, "refund_fen": s.refund_fen,
        "to_collect_fen": s.to_collect_fen,
        "lines": [{"order_id": ln.order_id, "household_ref": ln.household_ref, "payment_mode": ln.payment_mode,
                   "delivered_fen": ln.delivered_fen, "paid_fen": ln.paid_fen, "difference_fen": ln.difference_fen,
                   "reason": ln.reason} for ln in s.lines],
    }, at)


def accounts_settled(report: SettlementReport, closed_at: datetime) -> DomainEvent:
    def row(r):
        return {"key": r.key, "ordered_fen": r.ordered_fen, "delivered_fen": r.delivered_fen,
                "paid_online_fen": r.paid_online_fen, "collected_fen": r.collected_fen,
                "on_account_settled_fen": r.on_account_settled_fen, "on_account_owed_fen": r.on_account_owed_fen,
                "balance_fen": r.balance_fen}
    return DomainEvent(ACCOUNTS_SETTLED, {
        "closed_at": utc(closed_at), "total": row(report.total),
        "grid_workers": [row(r) for r in report.grid_workers], "outlets": [row(r) for r in report.outlets],
        "households": len(report.households),
    }, closed_at)


def _plist(pl: PurchaseList) -> dict[str, Any]:
    return {"list_id": pl.list_id, "village_id": pl.village_id, "supply_point_id": pl.supply_point_id,
            "pickup_day": _day(pl.pickup_day), "status": pl.status,
            "lines": [{"item_code": ln.item_code, "quantity": ln.quantity, "ready": ln.ready,
                       "collected": ln.collected} for ln in pl.lines]}


def purchase_list_sent(pl: PurchaseList) -> DomainEvent:
    return DomainEvent(PURCHASE_LIST_SENT, {**_plist(pl), "submitted_at": utc(pl.submitted_at)}, pl.submitted_at)


def purchase_list_ready(pl: PurchaseList, at: datetime | None = None) -> DomainEvent:
    return DomainEvent(PURCHASE_LIST_READY, _plist(pl), at)


def pickup_booked(pl: PurchaseList, at: datetime | None = None) -> DomainEvent:
    return DomainEvent(PICKUP_BOOKED, {**_plist(pl), "slot_start": utc(pl.slot_start),
                                       "slot_end": utc(pl.slot_end)}, at)


def purchase_collected(pl: PurchaseList, discrepancies: Sequence[Discrepancy],
                       at: datetime | None = None) -> DomainEvent:
    return DomainEvent(PURCHASE_COLLECTED, {
        **_plist(pl), "discrepancies": [{"item_code": d.item_code, "agreed": d.agreed, "collected": d.collected,
                                         "difference": d.difference} for d in discrepancies],
    }, at)
