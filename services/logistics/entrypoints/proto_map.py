"""Rows and domain objects → supply.v1 logistics messages (answers only; requests are read
field by field in the servicer)."""

from __future__ import annotations

from datetime import date

from supply.v1 import common_pb2 as common
from supply.v1 import logistics_pb2 as pb

from services.common.proto_time import timestamp as ts
from services.common.serde import from_jsonable
from services.logistics.domain.ledger import LedgerLine
from services.logistics.domain.model import LotStatus, split_stop_key
from services.logistics.domain.supply_days import GroupSupply
from services.logistics.domain.trips import ManifestLine, Trip

LOT_STATUS = {LotStatus.AVAILABLE.value: pb.LOT_STATUS_AVAILABLE,
              LotStatus.QUARANTINED.value: pb.LOT_STATUS_QUARANTINED,
              LotStatus.WRITTEN_OFF.value: pb.LOT_STATUS_WRITTEN_OFF}
STATUS_NAME = {v: k for k, v in LOT_STATUS.items()}


def day(d: date | None) -> str:
    return d.isoformat() if d else ""


def depot(row) -> pb.Depot:
    return pb.Depot(id=row.id, name=row.name, location=common.GeoPoint(lat=row.lat, lon=row.lon),
                    loading_hours=common.LocalTimeWindow(start=row.loading_open, end=row.loading_close),
                    registered_at=ts(row.registered_at))


def zone(row, used_l: float = 0.0) -> pb.Zone:
    return pb.Zone(id=row.id, depot_id=row.depot_id, name=row.name, storage_class=row.storage_class,
                   capacity_l=int(row.capacity_l), used_l=round(used_l, 3))


def vehicle(v) -> pb.Vehicle:
    return pb.Vehicle(id=v.id, pass_number=v.pass_number, driver=v.driver, clerk=v.clerk,
                      capacity_kg=v.capacity_kg, capacity_l=v.capacity_l, refrigerated=v.refrigerated,
                      depot_id=v.depot_id,
                      slots=[common.LocalTimeWindow(start=s.start.strftime("%H:%M"),
                                                    end=s.end.strftime("%H:%M")) for s in v.slots])


def lot(row, today: date) -> pb.Lot:
    return pb.Lot(
        lot_id=row.lot_id, item_code=row.item_code, depot_id=row.depot_id, zone_id=row.zone_id,
        lot_number=row.lot_number, expiry=day(row.expiry), status=LOT_STATUS.get(row.status, 0),
        on_hand=int(row.on_hand), reserved=int(row.reserved), quarantined=int(row.quarantined),
        available=int(row.on_hand - row.reserved - row.quarantined), expired=row.expiry < today,
        receipt_id=row.receipt_id, source_kind=row.source_kind, received_at=ts(row.received_at))


def snapshot_lot(row) -> pb.SnapshotLot:
    return pb.SnapshotLot(lot_id=row.lot_id, depot_id=row.depot_id, zone_id=row.zone_id,
                          item_code=row.item_code, available=int(row.available),
                          expiry=row.expiry.isoformat())


def ledger_line(ln: LedgerLine) -> pb.LedgerLine:
    return pb.LedgerLine(
        seq=ln.seq, kind=str(ln.kind), lot_id=ln.lot_id, item_code=ln.item_code,
        depot_id=ln.depot_id, zone_id=ln.zone_id, quantity=ln.quantity,
        on_hand_delta=ln.on_hand_delta, reserved_delta=ln.reserved_delta,
        quarantined_delta=ln.quarantined_delta, actor=ln.actor, at=ts(ln.at), reason=ln.reason,
        doc_type=ln.doc.doc_type, doc_id=ln.doc.doc_id, plan_line_id=ln.plan_line_id or "",
        prev_hash=ln.prev_hash, hash=ln.hash)


def group_supply(g: GroupSupply) -> pb.GroupSupply:
    m = pb.GroupSupply(group=g.group, name_zh=g.name_zh, name_en=g.name_en,
                       usable_kg=round(g.usable, 3), daily_kg=round(g.daily, 3),
                       below_floor=g.below_floor,
                       items=[pb.ItemSupply(item_code=i.item_code, usable=i.usable,
                                            daily=round(i.daily, 4),
                                            days=round(i.days, 2) if i.days is not None else None)
                              for i in g.items])
    if g.days is not None:
        m.days = round(g.days, 2)
    if g.reserve_days is not None:
        m.reserve_days = g.reserve_days
    return m


def manifest_line(ml: ManifestLine, demand_of: dict) -> pb.ManifestLine:
    return pb.ManifestLine(plan_line_id=ml.plan_line_id, demand_id=demand_of.get(ml.plan_line_id) or "",
                           item_code=ml.item_code, name_zh=ml.name_zh, name_en=ml.name_en,
                           unit=ml.unit, lot_id=ml.lot_id, quantity=ml.quantity,
                           weight_kg=ml.weight_kg, volume_l=ml.volume_l, cold=ml.cold)


def trip(row, demand_of: dict) -> pb.Trip:
    t = from_jsonable(Trip, row.data["trip"])
    delivered = row.data.get("delivered", {})
    return pb.Trip(
        trip_id=row.id, plan_id=row.plan_id, delivery_day=day(t.delivery_day), depot_id=t.depot_id,
        vehicle_id=t.vehicle_id, pass_number=t.pass_number, driver=t.driver, clerk=t.clerk,
        refrigerated=t.refrigerated, slot_start=ts(t.slot[0]), slot_end=ts(t.slot[1]),
        loading_at=ts(t.loading_at), depart_at=ts(t.depart_at), return_at=ts(t.return_at),
        distance_m=t.distance_m, load_kg=t.load_kg, load_l=t.load_l, status=row.status,
        stops=[pb.TripStop(
            seq=s.seq, requester_id=s.requester_id,
            drop_point_id=split_stop_key(s.drop_point_id, s.requester_id), eta=ts(s.arrive_at),
            leave_at=ts(s.leave_at), window_start=ts(s.window[0]), window_end=ts(s.window[1]),
            lines=[manifest_line(ml, demand_of) for ml in s.lines],
            delivered=s.drop_point_id in delivered, delivery_id=delivered.get(s.drop_point_id, ""))
            for s in t.stops])


def trip_plan_line_ids(row) -> list[str]:
    return [ln["plan_line_id"] for s in row.data["trip"]["stops"] for ln in s["lines"]]


def dispatch(row) -> pb.Dispatch:
    data = row.data or {}
    staffing = data.get("staffing") or {}
    return pb.Dispatch(
        plan_id=row.id, delivery_day=day(row.delivery_day), status=row.status,
        unmet=[pb.UnmetLine(plan_line_id=u.get("plan_line_id") or "", demand_id=u.get("demand_id") or "",
                            item_code=u.get("item_code") or "", depot_id=u.get("depot_id") or "",
                            quantity=int(u.get("quantity") or 0),
                            reason=common.Reason(code=u.get("code") or "", zh=u.get("zh") or "",
                                                 en=u.get("en") or ""))
               for u in data.get("unmet", [])],
        staffing=[pb.StaffingLine(requester_id=s["requester_id"], drop_point_id=s["drop_point_id"],
                                  households=s["households"], required=s["required"],
                                  available=s["available"]) for s in staffing.get("lines", [])],
        staffing_required=int(staffing.get("required") or 0),
        staffing_short=int(staffing.get("short") or 0),
        total_distance_m=int(data.get("total_distance_m") or 0),
        solver_phase=(data.get("solver") or {}).get("phase", ""))


def delivery(view: dict) -> pb.DeliveryResult:
    return pb.DeliveryResult(
        delivery_id=view["delivery_id"], trip_id=view["trip_id"], requester_id=view["requester_id"],
        drop_point_id=view["drop_point_id"], receiver=view["receiver"],
        received_at=ts(view["received_at"]), proof_ref=view["proof_ref"],
        lines=[pb.DeliveryLineResult(
            plan_line_id=ln["plan_line_id"], demand_id=ln.get("demand_id") or "",
            item_code=ln["item_code"], lot_id=ln["lot_id"], shipped=ln["shipped"],
            received=ln["received"], short=ln["short"], damaged=ln["damaged"],
            refused=ln["refused"], status=ln["status"]) for ln in view["lines"]])


def receipt(row, lots: list, today: date) -> pb.Receipt:
    return pb.Receipt(receipt_id=row.id, kind=row.kind, depot_id=row.depot_id,
                      origin_ref=row.origin_ref, status=row.status, rule_code=row.rule_code or "",
                      message=row.message or "", received_by=row.received_by,
                      received_at=ts(row.received_at), lots=[lot(r, today) for r in lots])
