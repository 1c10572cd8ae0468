"""MarketService over gRPC: translate messages, call handlers, map answers. No rules here."""

from __future__ import annotations

import logging
from datetime import UTC

import grpc
from supply.v1 import common_pb2 as common
from supply.v1 import market_pb2 as pb
from supply.v1 import market_pb2_grpc as rpc

from services.common.config import Settings
from services.common.db import ping
from services.common.errors import InvalidInput
from services.common.grpc_server import caller, serve
from services.common.messaging import EventPublisher
from services.common.servicer import WriteServicer
from services.market.bootstrap import build_context
from services.market.entrypoints import proto_map as out
from services.market.handlers import community_orders, lists, orders, outlets, purchase, settlement
from services.market.handlers.base import MarketContext

log = logging.getLogger(__name__)


def _outlet_spec(o: pb.Outlet) -> dict:
    spec = {"outlet_id": o.outlet_id, "name": o.name, "kind": o.kind, "township": o.township,
            "lat": o.location.lat, "lon": o.location.lon, "active": o.active,
            "order_cutoff": o.order_cutoff or None}
    if not o.HasField("location"):
        spec.pop("lat"), spec.pop("lon")
    return spec


def _lines(lines, *names: str) -> list[dict]:
    return [{n: getattr(ln, n) for n in names} for ln in lines]


def _page(page) -> common.PageInfo:
    return common.PageInfo(next_page_token=page.next_page_token, total=page.total)


class MarketServicer(WriteServicer, rpc.MarketServiceServicer):
    def __init__(self, ctx: MarketContext):
        self.ctx = ctx

    # ---- outlets and communities
    def RegisterOutlet(self, request, context):
        return self._write("RegisterOutlet", request, pb.Outlet, lambda a, uow: out.outlet(
            outlets.register_outlet(uow, a, _outlet_spec(request.outlet))))

    def ListOutlets(self, request, context):
        with self.ctx.uow() as uow:
            found = outlets.list_outlets(uow, caller(), request.kind, request.township)
        return pb.ListOutletsResponse(outlets=[out.outlet(o) for o in found])

    def AssignCommunity(self, request, context):
        return self._write("AssignCommunity", request, pb.Community, lambda a, uow: out.community(
            outlets.assign_community(uow, a, request.community_id, request.outlet_id)))

    def ListCommunities(self, request, context):
        with self.ctx.uow() as uow:
            found = outlets.list_communities(uow, caller(), request.outlet_id, request.township)
        return pb.ListCommunitiesResponse(communities=[out.community(v) for v in found])

    # ---- sellable lists
    def PublishSellableList(self, request, context):
        lines = [{"item_code": ln.item_code, "price_fen": ln.price_fen,
                  "available": ln.available if ln.has_available else None} for ln in request.lines]
        return self._write("PublishSellableList", request, pb.SellableList, lambda a, uow: out.sellable_list(
            *lists.publish_list(self.ctx, uow, a, request.outlet_id, request.day, lines)))

    def GetSellableList(self, request, context):
        with self.ctx.uow() as uow:
            return out.sellable_list(*lists.get_list(
                uow, caller(), outlet_id=request.outlet_id, community_id=request.community_id,
                day_text=request.day, version=request.version))

    # ---- household orders
    def PlaceHouseholdOrder(self, request, context):
        return self._write("PlaceHouseholdOrder", request, pb.HouseholdOrder, lambda a, uow: out.household_order(
            orders.place(self.ctx, uow, a, community_id=request.community_id, day_text=request.day,
                         address=request.address, payment_mode=request.payment_mode,
                         raw_lines=_lines(request.lines, "item_code", "quantity"),
                         expected_amount_fen=request.expected_amount_fen)))

    def CancelHouseholdOrder(self, request, context):
        return self._write("CancelHouseholdOrder", request, pb.HouseholdOrder, lambda a, uow: out.household_order(
            orders.cancel(uow, a, request.order_id, request.reason)))

    def ListHouseholdOrders(self, request, context):
        with self.ctx.uow() as uow:
            page = orders.list_orders(uow, caller(), community_id=request.community_id, day_text=request.day,
                                      status=request.status, page_size=request.page.page_size,
                                      page_token=request.page.page_token)
            paid = orders.paid_by_order(uow, [o.order_id for o in page.items])
        return pb.ListHouseholdOrdersResponse(orders=[out.household_order(o, paid[o.order_id]) for o in page.items],
                                              page=_page(page))

    # ---- community orders
    def AggregateCommunityOrder(self, request, context):
        return self._write("AggregateCommunityOrder", request, pb.AggregateCommunityOrderResponse,
                           lambda a, uow: pb.AggregateCommunityOrderResponse(community_orders=[
                               out.community_order(co) for co in community_orders.aggregate_day(
                                   uow, a, request.community_id, request.day, request.drop_point_id)]))

    def ListCommunityOrders(self, request, context):
        with self.ctx.uow() as uow:
            found = community_orders.list_community_orders(uow, caller(), outlet_id=request.outlet_id,
                                                           community_id=request.community_id, day_text=request.day)
        return pb.ListCommunityOrdersResponse(community_orders=[out.community_order(co) for co in found])

    def ConfirmCommunityOrder(self, request, context):
        answers = [(x.item_code, x.answer, x.quantity) for x in request.answers]

        def work(a, uow):
            co, changed = community_orders.confirm(uow, a, request.community_order_id, answers)
            return pb.ConfirmCommunityOrderResponse(community_order=out.community_order(co),
                                                    changed_orders=[out.household_order(o) for o in changed])
        return self._write("ConfirmCommunityOrder", request, pb.ConfirmCommunityOrderResponse, work)

    def PackCommunityOrder(self, request, context):
        def work(a, uow):
            co, parcels = community_orders.pack_order(uow, a, request.community_order_id)
            return pb.PackCommunityOrderResponse(community_order=out.community_order(co),
                                                 parcels=[out.parcel(p) for p in parcels])
        return self._write("PackCommunityOrder", request, pb.PackCommunityOrderResponse, work)

    def GetLabels(self, request, context):
        with self.ctx.uow() as uow:
            html = community_orders.labels(self.ctx, uow, caller(), request.community_order_id)
        return out.document(html, f"labels-{request.community_order_id}.html")

    def GetPackingList(self, request, context):
        with self.ctx.uow() as uow:
            found, html = community_orders.packing(self.ctx, uow, caller(), request.community_order_id)
        return pb.GetPackingListResponse(
            packing_lists=[pb.PackingList(drop_point_id=p.drop_point_id, parcels=len(p.parcel_ids),
                                          lines=[pb.PackingListLine(item_code=ln.item_code, quantity=ln.quantity)
                                                 for ln in p.lines], amount_fen=p.amount_fen) for p in found],
            document=out.document(html, f"packing-{request.community_order_id}.html"))

    # ---- payments, delivery, settlement
    def RecordPayment(self, request, context):
        return self._write("RecordPayment", request, pb.Payment, lambda a, uow: out.payment(
            settlement.record_payment(self.ctx, uow, a, request.order_id, request.mode, request.amount_fen,
                                      request.reference)))

    def ConfirmParcelDelivery(self, request, context):
        short = {}
        for i, ln in enumerate(request.short_lines):
            if ln.item_code in short:
                raise InvalidInput(f"short_lines[{i}].item_code", f"{ln.item_code} is named twice / 重复")
            short[ln.item_code] = ln.quantity

        def work(a, uow):
            parcel, order = settlement.confirm_parcel(self.ctx, uow, a, request.parcel_id, request.outcome,
                                                      short, request.reason)
            return pb.ConfirmParcelDeliveryResponse(parcel=out.parcel(parcel), order=out.household_order(order))
        return self._write("ConfirmParcelDelivery", request, pb.ConfirmParcelDeliveryResponse, work)

    def SettleDelivery(self, request, context):
        return self._write("SettleDelivery", request, pb.DeliverySettlement, lambda a, uow: out.delivery_settlement(
            settlement.settle(self.ctx, uow, a, request.community_order_id)))

    def GetCashBook(self, request, context):
        with self.ctx.uow() as uow:
            book = settlement.cash_book_of(uow, caller(), request.community_id, request.grid_worker)
        return out.cash_book(book, request.community_id)

    def GetAccountLedger(self, request, context):
        with self.ctx.uow() as uow:
            who, entries, days = settlement.ledger_of(uow, caller(), request.community_id, request.grid_worker)
        return pb.AccountLedger(
            community_id=request.community_id, grid_worker=who,
            entries=[pb.AccountEntry(order_id=e.order_id, household_ref=e.household_ref,
                                     day=out.day(days.get(e.order_id)), owed_fen=e.owed_fen,
                                     settled_fen=e.settled_fen) for e in entries],
            owed_fen=sum(e.owed_fen - e.settled_fen for e in entries))

    def GetSettlementReport(self, request, context):
        with self.ctx.uow() as uow:
            return out.settlement_report(*settlement.report(uow, caller()))

    def CloseAccounts(self, request, context):
        return self._write("CloseAccounts", request, pb.SettlementReport, lambda a, uow: out.settlement_report(
            *settlement.close_accounts(self.ctx, uow, a)))

    def GetChannelSummary(self, request, context):
        with self.ctx.uow() as uow:
            s = settlement.summary(uow, caller(), request.day)
        return pb.ChannelSummary(day=out.day(s.day), accounts_closed=s.accounts_closed, **s.counts)

    # ---- purchase on behalf (代买)
    def SubmitPurchaseList(self, request, context):
        return self._write("SubmitPurchaseList", request, pb.PurchaseList, lambda a, uow: out.purchase_list(
            purchase.submit(self.ctx, uow, a, request.village_id, request.pickup_day,
                            _lines(request.lines, "item_code", "quantity"))))

    def AnswerReadiness(self, request, context):
        answers = [(x.item_code, x.ready) for x in request.answers]
        return self._write("AnswerReadiness", request, pb.PurchaseList, lambda a, uow: out.purchase_list(
            purchase.readiness(uow, a, request.list_id, answers)))

    def SetPurchaseSlots(self, request, context):
        slots = [(list(x.weekdays), x.window.start, x.window.end) for x in request.slots]
        return self._write("SetPurchaseSlots", request, pb.PurchaseSlots, lambda a, uow: out.purchase_slots(
            request.village_id, purchase.set_slots(uow, a, request.village_id, slots)))

    def BookPickup(self, request, context):
        for f in ("slot_start", "slot_end"):
            if not request.HasField(f):
                raise InvalidInput(f, "required / 必填")
        start = request.slot_start.ToDatetime(tzinfo=UTC)
        end = request.slot_end.ToDatetime(tzinfo=UTC)
        return self._write("BookPickup", request, pb.PurchaseList, lambda a, uow: out.purchase_list(
            purchase.book(self.ctx, uow, a, request.list_id, start, end, request.driver, request.clerk)))

    def ListPurchaseLists(self, request, context):
        with self.ctx.uow() as uow:
            found, slots = purchase.list_lists(uow, caller(), request.village_id, request.supply_point_id)
        return pb.ListPurchaseListsResponse(purchase_lists=[out.purchase_list(p) for p in found],
                                            slots=out.purchase_slots(request.village_id, slots).slots)

    def RecordCollection(self, request, context):
        lines = [(x.item_code, x.quantity) for x in request.lines]

        def work(a, uow):
            plist, gaps = purchase.collect(uow, a, request.list_id, lines)
            return pb.RecordCollectionResponse(
                purchase_list=out.purchase_list(plist),
                discrepancies=[pb.CollectionDiscrepancy(item_code=g.item_code, agreed=g.agreed,
                                                        collected=g.collected) for g in gaps])
        return self._write("RecordCollection", request, pb.RecordCollectionResponse, work)


def run(settings: Settings) -> None:
    ctx = build_context(settings, pool_size=10)
    publisher = EventPublisher(settings.amqp_url)

    def register(server: grpc.aio.Server) -> list[str]:
        rpc.add_MarketServiceServicer_to_server(MarketServicer(ctx), server)
        return [pb.DESCRIPTOR.services_by_name["MarketService"].full_name]

    serve(settings, register, {"database": lambda: ping(ctx.engine), "broker": publisher.ping},
          on_stop=publisher.close)
