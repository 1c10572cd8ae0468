"""Domain objects → supply.v1 market messages (answers only; requests go to the handlers as
plain values)."""

from __future__ import annotations

from datetime import date

from supply.v1 import common_pb2 as common
from supply.v1 import market_pb2 as pb

from services.common.proto_time import timestamp as ts


def day(x: date | None) -> str:
    return x.isoformat() if x else ""


def _opt(v: int | None) -> int:
    return -1 if v is None else v


def outlet(o) -> pb.Outlet:
    return pb.Outlet(outlet_id=o.outlet_id, name=o.name, kind=o.kind, township=o.township,
                     location=common.GeoPoint(lat=o.lat, lon=o.lon), active=o.active,
                     order_cutoff=o.order_cutoff.strftime("%H:%M") if o.order_cutoff else "")


def community(v) -> pb.Community:
    c = v.community
    return pb.Community(
        community_id=c.community_id, name=c.name, township=c.township,
        location=common.GeoPoint(lat=c.lat, lon=c.lon),
        drop_points=[pb.MarketDropPoint(drop_point_id=p.drop_point_id, name=p.name) for p in c.drop_points],
        households=c.households, supermarket_id=v.supermarket_id, supply_point_id=v.supply_point_id,
        supermarket_assigned=v.supermarket_assigned, supply_point_assigned=v.supply_point_assigned)


def sellable_list(sl, published_at) -> pb.SellableList:
    return pb.SellableList(
        outlet_id=sl.outlet_id, day=day(sl.day), version=sl.version, published_at=ts(published_at),
        lines=[pb.SellableLine(item_code=ln.item_code, unit=ln.unit, price_fen=ln.price_fen,
                               available=ln.available or 0, has_available=ln.available is not None)
               for ln in sl.lines])


def household_order(o, paid_fen: int = 0) -> pb.HouseholdOrder:
    return pb.HouseholdOrder(
        order_id=o.order_id, community_id=o.community_id, outlet_id=o.outlet_id, day=day(o.day),
        household_ref=o.household_ref, grid_worker=o.grid_worker, payment_mode=o.payment_mode,
        lines=[pb.OrderLine(item_code=ln.item_code, quantity=ln.quantity, price_fen=ln.price_fen,
                            confirmed=_opt(ln.confirmed), delivered=_opt(ln.delivered)) for ln in o.lines],
        status=o.status, placed_at=ts(o.placed_at), list_version=o.list_version,
        amount_fen=o.amount_fen, confirmed_amount_fen=o.confirmed_amount_fen, due_fen=o.due_fen,
        payment_reference=o.payment_reference, paid_fen=paid_fen)


def community_order(c) -> pb.CommunityOrder:
    return pb.CommunityOrder(
        community_order_id=c.community_order_id, community_id=c.community_id, outlet_id=c.outlet_id,
        day=day(c.day), drop_point_id=c.drop_point_id,
        lines=[pb.CommunityLine(item_code=ln.item_code, quantity=ln.quantity, price_fen=ln.price_fen,
                                confirmed=_opt(ln.confirmed), answer=ln.answer or "") for ln in c.lines],
        household_order_ids=list(c.household_order_ids), status=c.status,
        amount_fen=sum((ln.quantity if ln.confirmed is None else ln.confirmed) * ln.price_fen
                       for ln in c.lines))


def parcel(p) -> pb.Parcel:
    return pb.Parcel(
        parcel_id=p.parcel_id, household_order_id=p.household_order_id, household_ref=p.household_ref,
        drop_point_id=p.drop_point_id,
        lines=[pb.ParcelLine(item_code=ln.item_code, quantity=ln.quantity, price_fen=ln.price_fen)
               for ln in p.lines],
        amount_fen=p.amount_fen, payment_reference=p.payment_reference, payment_mode=p.payment_mode,
        status=p.status)


def payment(p) -> pb.Payment:
    return pb.Payment(order_id=p.order_id, mode=p.mode, amount_fen=p.amount_fen, reference=p.reference,
                      grid_worker=p.grid_worker, recorded_at=ts(p.recorded_at))


def document(content: bytes, filename: str) -> pb.Document:
    return pb.Document(content_type="text/html; charset=utf-8", content=content, filename=filename)


def purchase_list(p) -> pb.PurchaseList:
    return pb.PurchaseList(
        list_id=p.list_id, village_id=p.village_id, supply_point_id=p.supply_point_id,
        pickup_day=day(p.pickup_day),
        lines=[pb.PurchaseLine(item_code=ln.item_code, quantity=ln.quantity,
                               ready=_opt(getattr(ln, "ready", None)), collected=_opt(getattr(ln, "collected", None)))
               for ln in p.lines],
        status=p.status, driver=getattr(p, "driver", "") or "", clerk=getattr(p, "clerk", "") or "",
        slot_start=ts(getattr(p, "slot_start", None)) if getattr(p, "slot_start", None) else None,
        slot_end=ts(getattr(p, "slot_end", None)) if getattr(p, "slot_end", None) else None)


def settlement_line(ln) -> pb.SettlementLine:
    return pb.SettlementLine(order_id=ln.order_id, household_ref=ln.household_ref, payment_mode=ln.payment_mode,
                             delivered_fen=ln.delivered_fen, paid_fen=ln.paid_fen,
                             difference_fen=ln.difference_fen, explanation=ln.reason)


def delivery_settlement(s) -> pb.DeliverySettlement:
    return pb.DeliverySettlement(community_order_id=s.community_order_id,
                                 lines=[settlement_line(ln) for ln in s.lines], delivered_fen=s.delivered_fen,
                                 collected_fen=s.collected_fen, refund_fen=s.refund_fen,
                                 to_collect_fen=s.to_collect_fen)


def cash_book(b, community_id: str) -> pb.CashBook:
    return pb.CashBook(
        community_id=community_id, grid_worker=b.grid_worker,
        entries=[pb.SettlementLine(order_id=e.order_id, household_ref=e.household_ref, payment_mode="collected",
                                   delivered_fen=e.delivered_fen, paid_fen=e.collected_fen,
                                   difference_fen=e.difference_fen, explanation=e.reason) for e in b.entries],
        collected_fen=b.collected_fen, delivered_fen=b.delivered_fen, difference_fen=b.difference_fen)


def _totals(r) -> pb.SettlementTotals:
    return pb.SettlementTotals(key=r.key, ordered_fen=r.ordered_fen, delivered_fen=r.delivered_fen,
                               paid_online_fen=r.paid_online_fen, collected_fen=r.collected_fen,
                               on_account_owed_fen=r.on_account_owed_fen, balance_fen=r.balance_fen,
                               on_account_settled_fen=r.on_account_settled_fen)


def settlement_report(r, closed_at) -> pb.SettlementReport:
    return pb.SettlementReport(households=[_totals(x) for x in r.households],
                               grid_workers=[_totals(x) for x in r.grid_workers],
                               outlets=[_totals(x) for x in r.outlets], total=_totals(r.total),
                               closed=closed_at is not None, closed_at=ts(closed_at))


def purchase_slots(village_id: str, slots: list[dict]) -> pb.PurchaseSlots:
    return pb.PurchaseSlots(village_id=village_id, slots=[
        pb.PurchaseSlot(weekdays=s["weekdays"], window=common.LocalTimeWindow(start=s["start"], end=s["end"]))
        for s in slots])
