"""LogisticsService over gRPC: translate messages, call handlers, map answers. No rules here."""

from __future__ import annotations

import logging
import tempfile
from datetime import UTC

import grpc
from supply.v1 import common_pb2 as common
from supply.v1 import logistics_pb2 as pb
from supply.v1 import logistics_pb2_grpc as rpc

from services.common.config import Settings
from services.common.days import parse_day
from services.common.db import ping, utcnow
from services.common.errors import InvalidInput
from services.common.grpc_server import caller, serve
from services.common.messaging import EventPublisher
from services.common.servicer import WriteServicer
from services.logistics import audit
from services.logistics.adapters import sites_store
from services.logistics.bootstrap import build_context
from services.logistics.entrypoints import proto_map as out
from services.logistics.handlers import base, delivery, ledger, queries, receipts, sites, stock

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
KINDS = {pb.RECEIPT_KIND_PURCHASE: "purchase", pb.RECEIPT_KIND_DONATION: "donation",
         pb.RECEIPT_KIND_TRANSFER: "transfer",
         pb.RECEIPT_KIND_UPPER_LEVEL_ALLOCATION: "upper_level_allocation"}


def _day_or_today(ctx: base.LogisticsContext, value: str, f: str):
    return parse_day(value, f) or ctx.today()


class LogisticsServicer(WriteServicer, rpc.LogisticsServiceServicer):
    def __init__(self, ctx: base.LogisticsContext):
        self.ctx = ctx

    def _lot(self, uow, lot_id: str) -> pb.Lot:
        return out.lot(queries.lot_row(uow.conn, lot_id), self.ctx.today())

    # ---- snapshot for allocation
    def GetStockSnapshot(self, request, context):
        caller().require(*base.STOCK_READ_ROLES)
        day = _day_or_today(self.ctx, request.delivery_day, "delivery_day")
        for i, code in enumerate(request.item_codes):
            if code not in self.ctx.catalogue.items:
                raise InvalidInput(f"item_codes[{i}]", f"unknown item code {code!r}")
        taken = utcnow()
        with audit.consistent_read(self.ctx.engine) as conn:
            seq, depots, lots, expired = queries.snapshot(self.ctx, conn, day, list(request.item_codes))
        return pb.StockSnapshot(
            taken_at=out.ts(taken), ledger_seq=seq,
            depots=[pb.DepotInfo(depot_id=d.id, name=d.name,
                                 location=common.GeoPoint(lat=d.lat, lon=d.lon)) for d in depots],
            lots=[out.snapshot_lot(r) for r in lots],
            excluded_lots=[pb.ExcludedSnapshotLot(lot=out.snapshot_lot(r), reason=queries.SNAPSHOT_EXPIRED)
                           for r in expired])

    # ---- depots, zones, vehicles
    def RegisterDepot(self, request, context):
        d = request.depot
        spec = {"id": d.id, "name": d.name, "lat": d.location.lat, "lon": d.location.lon,
                "loading_open": d.loading_hours.start, "loading_close": d.loading_hours.end}
        return self._write("RegisterDepot", request, pb.Depot,
                           lambda a, uow: out.depot(sites.register_depot(self.ctx, uow, a, spec)))

    def RegisterZone(self, request, context):
        z = request.zone
        spec = {"id": z.id, "depot_id": z.depot_id, "name": z.name,
                "storage_class": z.storage_class, "capacity_l": z.capacity_l}

        def work(a, uow):
            row = sites.register_zone(self.ctx, uow, a, spec)
            zones = sites_store.zones_of(uow.conn, row.depot_id)
            return out.zone(row, sites.zone_used_l(self.ctx, uow.conn, zones[row.id]))
        return self._write("RegisterZone", request, pb.Zone, work)

    def RegisterVehicle(self, request, context):
        v = request.vehicle
        spec = {"id": v.id, "pass_number": v.pass_number, "driver": v.driver, "clerk": v.clerk,
                "capacity_kg": v.capacity_kg, "capacity_l": v.capacity_l,
                "refrigerated": v.refrigerated, "depot_id": v.depot_id,
                "slots": [{"start": s.start, "end": s.end} for s in v.slots]}
        return self._write("RegisterVehicle", request, pb.Vehicle,
                           lambda a, uow: out.vehicle(sites.register_vehicle(self.ctx, uow, a, spec)))

    # ---- receipts and issues
    def ReceiveStock(self, request, context):
        kind = KINDS.get(request.kind)
        if kind is None:
            raise InvalidInput("kind", "one of RECEIPT_KIND_PURCHASE, _DONATION, _TRANSFER, "
                                       "_UPPER_LEVEL_ALLOCATION")
        lines = [receipts.ReceiptLineSpec(item_code=ln.item_code, quantity=ln.quantity,
                                   lot_number=ln.lot_number, expiry=ln.expiry, zone_id=ln.zone_id,
                                   lot_id=ln.lot_id) for ln in request.lines]

        def work(a, uow):
            r = receipts.receive_stock(self.ctx, uow, a, kind=kind, depot_id=request.depot_id,
                                origin_ref=request.origin_ref, lines=lines)
            row = queries.receipt_row(uow.conn, r["receipt_id"])
            return out.receipt(row, queries.receipt_lots(uow.conn, r["receipt_id"]), self.ctx.today())
        return self._write("ReceiveStock", request, pb.Receipt, work)

    def ListReceipts(self, request, context):
        caller().require(*base.STORE_READ_ROLES)
        with self.ctx.uow() as uow:
            rows, token = queries.list_receipts(uow.conn, depot_id=request.depot_id, status=request.status,
                                          page_size=request.page.page_size,
                                          page_token=request.page.page_token)
            today = self.ctx.today()
            listed = [out.receipt(r, queries.receipt_lots(uow.conn, r.id), today) for r in rows]
        return pb.ListReceiptsResponse(receipts=listed, page=common.PageInfo(next_page_token=token))

    def IssueStock(self, request, context):
        def work(a, uow):
            _, lines = stock.issue_stock(self.ctx, uow, a, lot_id=request.lot_id,
                                     quantity=request.quantity, plan_line_id=request.plan_line_id,
                                     reason=request.reason)
            return pb.IssueStockResponse(lot=self._lot(uow, request.lot_id),
                                         ledger_lines=[out.ledger_line(ln) for ln in lines])
        return self._write("IssueStock", request, pb.IssueStockResponse, work)

    # ---- stock queries
    def ListDepots(self, request, context):
        caller().require(*base.STOCK_READ_ROLES)
        with self.ctx.engine.connect() as conn:
            return pb.ListDepotsResponse(depots=[
                pb.DepotWithZones(depot=out.depot(row), zones=[
                    out.zone(z_row, sites.zone_used_l(self.ctx, conn, zones[z_row.id])) for z_row in z_rows])
                for row, z_rows, zones in sites.depots_with_zones(conn)])

    def GetStock(self, request, context):
        caller().require(*base.STOCK_READ_ROLES)
        with audit.consistent_read(self.ctx.engine) as conn:
            seq, lines = queries.stock_summary(self.ctx, conn, depot_id=request.depot_id,
                                         zone_id=request.zone_id, item_code=request.item_code)
        return pb.StockSummary(lines=[pb.StockLine(**s) for s in lines], ledger_seq=seq)

    def ListLots(self, request, context):
        caller().require(*base.STORE_READ_ROLES)
        status = out.STATUS_NAME.get(request.status, "")
        with self.ctx.uow() as uow:
            rows, token, total = queries.list_lots(
                uow.conn, depot_id=request.depot_id, zone_id=request.zone_id,
                item_code=request.item_code, lot_id=request.lot_id, status=status,
                include_empty=request.include_empty, page_size=request.page.page_size,
                page_token=request.page.page_token)
        today = self.ctx.today()
        return pb.ListLotsResponse(lots=[out.lot(r, today) for r in rows],
                                   page=common.PageInfo(next_page_token=token, total=total))

    def GetDaysOfSupply(self, request, context):
        caller().require(*base.STOCK_READ_ROLES)
        day = _day_or_today(self.ctx, request.day, "day")
        if request.population < 0:
            raise InvalidInput("population", "must be >= 0")
        with self.ctx.uow() as uow:
            pop, day, groups = ledger.supply_days(self.ctx, uow.conn, day=day,
                                             depot_ids=list(request.depot_ids) or None,
                                             population=int(request.population) or None)
        return pb.DaysOfSupply(day=day.isoformat(), population=pop,
                               groups=[out.group_supply(g) for g in groups])

    # ---- quarantine, release, write-off
    def _transition(self, uow, t: stock.Transitioned) -> pb.LotTransitionResponse:
        return pb.LotTransitionResponse(
            lot=self._lot(uow, t.lot.lot_id), ledger_lines=[out.ledger_line(ln) for ln in t.lines],
            repicks=[pb.Repick(plan_line_id=r.plan_line_id, released=r.released,
                               repicked=r.repicked, unmet=r.unmet) for r in t.repicks])

    def QuarantineLot(self, request, context):
        return self._write("QuarantineLot", request, pb.LotTransitionResponse, lambda a, uow: self._transition(
            uow, stock.quarantine_by_person(self.ctx, uow, a, lot_id=request.lot_id,
                                        inspection_ref=request.inspection_ref, reason=request.reason)))

    def ReleaseLot(self, request, context):
        return self._write("ReleaseLot", request, pb.LotTransitionResponse, lambda a, uow: self._transition(
            uow, stock.release(self.ctx, uow, a, lot_id=request.lot_id,
                           inspection_ref=request.inspection_ref, reason=request.reason)))

    def WriteOffLot(self, request, context):
        return self._write("WriteOffLot", request, pb.LotTransitionResponse, lambda a, uow: self._transition(
            uow, stock.write_off(self.ctx, uow, a, lot_id=request.lot_id, quantity=int(request.quantity),
                             doc_type=request.doc_type, doc_id=request.doc_id,
                             reason=request.reason)))

    # ---- trips and deliveries
    def ListTrips(self, request, context):
        day = parse_day(request.delivery_day, "delivery_day")
        with self.ctx.uow() as uow:
            trips, plans = queries.trips_seen_by(uow.conn, caller(), delivery_day=day,
                                           plan_id=request.plan_id, depot_id=request.depot_id,
                                           vehicle_id=request.vehicle_id)
            demand_of = queries.demand_ids(uow.conn, [p for t in trips for p in out.trip_plan_line_ids(t)])
        return pb.ListTripsResponse(trips=[out.trip(t, demand_of) for t in trips],
                                    dispatches=[out.dispatch(p) for p in plans])

    def GetManifest(self, request, context):
        with self.ctx.uow() as uow:
            row = queries.manifest_seen_by(uow.conn, caller(), request.trip_id)
            demand_of = queries.demand_ids(uow.conn, out.trip_plan_line_ids(row))
        trip = out.trip(row, demand_of)
        lines = [ln for s in trip.stops for ln in s.lines]
        return pb.Manifest(trip=trip, lines=lines,
                           total_kg=round(sum(ln.quantity * ln.weight_kg for ln in lines), 3),
                           total_l=round(sum(ln.quantity * ln.volume_l for ln in lines), 3))

    def ConfirmDelivery(self, request, context):
        received_at = request.received_at.ToDatetime(tzinfo=UTC) if request.HasField("received_at") else None
        lines = [delivery.ReceivedSpec(ln.plan_line_id, ln.lot_id, int(ln.received),
                                tuple((d.reason, int(d.quantity), d.note) for d in ln.discrepancies))
                 for ln in request.lines]
        return self._write("ConfirmDelivery", request, pb.DeliveryResult, lambda a, uow: out.delivery(
            delivery.confirm_delivery(self.ctx, uow, a, trip_id=request.trip_id,
                               requester_id=request.requester_id, drop_point_id=request.drop_point_id,
                               receiver=request.receiver, received_at=received_at,
                               proof_ref=request.proof_ref, lines=lines)))

    # ---- audit
    def ExportLedger(self, request, context):
        caller().require(*base.AUDIT_ROLES)
        fmt = {pb.EXPORT_FORMAT_CSV: "csv", pb.EXPORT_FORMAT_XLSX: "xlsx"}.get(request.format)
        if fmt is None:
            raise InvalidInput("format", "EXPORT_FORMAT_CSV or EXPORT_FORMAT_XLSX")
        if request.from_seq < 0 or request.to_seq < 0:
            raise InvalidInput("from_seq", "must be >= 0")
        content_type = ("text/csv; charset=utf-8" if fmt == "csv" else
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as buf:
            n = audit.export(self.ctx.engine, buf, fmt, from_seq=int(request.from_seq),
                             to_seq=int(request.to_seq) or None)
            size = buf.tell()
            buf.seek(0)
            name = f"ledger-{self.ctx.today().isoformat()}.{fmt}"
            first, sent = True, 0
            while True:
                data = buf.read(CHUNK)
                sent += len(data)
                last = sent >= size
                yield pb.FileChunk(filename=name if first else "",
                                   content_type=content_type if first else "", data=data,
                                   lines=n if last else 0, last=last)
                first = False
                if last:
                    return

    def ReconcileLedger(self, request, context):
        caller().require(*base.AUDIT_ROLES)
        r = audit.reconcile(self.ctx.engine, self.ctx.ledger_key)
        return pb.ReconcileReport(
            ok=r.ok, lines_checked=r.lines_checked, lots_checked=r.lots_checked,
            head_seq=r.head_seq, head_hash=r.head_hash,
            chain_breaks=[pb.ChainBreak(seq=b.seq, problem=b.problem, detail=b.detail)
                          for b in r.chain_breaks],
            mismatches=[pb.BalanceMismatch(lot_id=m.lot_id, field=m.field, from_ledger=m.from_lines,
                                           stored=m.stored) for m in r.mismatches])


def run(settings: Settings) -> None:
    ctx = build_context(settings, pool_size=20)
    publisher = EventPublisher(settings.amqp_url)

    def register(server: grpc.aio.Server) -> list[str]:
        rpc.add_LogisticsServiceServicer_to_server(LogisticsServicer(ctx), server)
        return [pb.DESCRIPTOR.services_by_name["LogisticsService"].full_name]

    serve(settings, register, {"database": lambda: ping(ctx.engine), "broker": publisher.ping},
          on_stop=publisher.close)
