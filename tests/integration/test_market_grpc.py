"""The market service through gRPC against real processes: intake (api, relay) registers the
communities, market (worker, api, relay) runs the channel, monitoring (worker, api) watches the
list prices. One module-wide stack on SQLite files and the module's own RabbitMQ vhost."""

from __future__ import annotations

import grpc
import pytest
from supply.v1 import common_pb2, intake_pb2, monitoring_pb2, monitoring_pb2_grpc

from tests.support import intake, market, monitoring
from tests.support.market import (
    COMMUNITY,
    OTHER_COMMUNITY,
    OTHER_OUTLET,
    OUTLET,
    SUPPLY_POINT,
    Market,
    day,
    key,
    lines,
    pb,
)
from tests.support.polling import eventually

HERE = (30.2700, 120.1500)       # the communities
NEAR = (30.2720, 120.1520)       # OUTLET, a few hundred metres away
FAR = (30.9000, 120.9000)        # OTHER_OUTLET
PRICES = {"RICE-10KG": 6500, "PORK-KG": 2800, "EGG-30": 2400, "MILK-1L": 1200}
D = day(2)  # orders for D close at 20:00 on D-1: open whenever the test runs


class Stack:
    def __init__(self, tmp, amqp_url: str, influx_db: str, **db: str):
        self.env = market.make_env(tmp / "var", amqp_url, influx_db, **db)
        intake.migrate(self.env)
        monitoring.migrate(self.env)
        market.migrate(self.env)
        self.procs = []
        try:
            for start in (market.start_worker, monitoring.start_worker, market.start_relay, market.start_api,
                          intake.start_api, intake.start_relay, monitoring.start_api):
                self.procs.append(start(self.env, tmp))
        except BaseException:
            self.close()
            raise
        self.api = Market(self.env)
        self.intake = intake.Intake(self.env)
        self.mon_channel = grpc.insecure_channel(f"127.0.0.1:{self.env['MONITORING_GRPC_PORT']}")
        self.monitoring = monitoring_pb2_grpc.MonitoringServiceStub(self.mon_channel)

    def close(self) -> None:
        for name in ("api", "intake", "mon_channel"):
            if hasattr(self, name):
                getattr(self, name).close()
        for p in self.procs:
            p.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory, amqp_url, influx_db, pg_url_factory):
    """The market's database on SQLite, then on PostgreSQL (MARKET_DATABASE_URL)."""
    db = {"MARKET_DATABASE_URL": pg_url_factory("market")} if request.param == "postgresql" else {}
    s = Stack(tmp_path_factory.mktemp("market"), amqp_url, influx_db, **db)
    try:
        hq_setup(s)
        yield s
    finally:
        s.close()


def hq_setup(s: Stack) -> None:
    """Outlets by HQ, communities from intake's requester_registered events."""
    for o in (market.outlet(OUTLET, *NEAR), market.outlet(OTHER_OUTLET, *FAR),
              market.outlet(SUPPLY_POINT, *NEAR, kind="supply_point")):
        s.api.RegisterOutlet(pb.RegisterOutletRequest(idempotency_key=key(), outlet=o), role="hq")
    for cid in (COMMUNITY, OTHER_COMMUNITY):
        s.intake.RegisterRequester(intake_pb2.RegisterRequesterRequest(
            idempotency_key=key(), requester=market.community_spec(cid, *HERE)))

    def arrived():
        found = {c.community_id: c for c in s.api.ListCommunities(pb.ListCommunitiesRequest(), role="hq").communities}
        return found if {COMMUNITY, OTHER_COMMUNITY} <= set(found) else None

    found = eventually(arrived, timeout=30, what="communities from intake's requester_registered")
    c = found[COMMUNITY]
    assert (c.supermarket_id, c.supply_point_id, c.households) == (OUTLET, SUPPLY_POINT, 420)
    assert [d.drop_point_id for d in c.drop_points] == ["DP1", "DP2"]
    s.api.PublishSellableList(pb.PublishSellableListRequest(
        idempotency_key=key(), outlet_id=OUTLET, day=D,
        lines=[pb.SellableLine(item_code=c, price_fen=p) for c, p in PRICES.items()]), role="supermarket")


def amount(*pairs: tuple[str, int]) -> int:
    return sum(PRICES[c] * q for c, q in pairs)


def place(s: Stack, address: str, mode: str, *pairs: tuple[str, int], role: str = "grid_worker",
          community: str = COMMUNITY, d: str = D, expected: int | None = None, idem: str | None = None):
    return s.api.PlaceHouseholdOrder(pb.PlaceHouseholdOrderRequest(
        idempotency_key=idem or key(), community_id=community, day=d, address=address, payment_mode=mode,
        lines=lines(*pairs), expected_amount_fen=amount(*pairs) if expected is None else expected), role=role)


def error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc:
        call()
    return exc.value


# ---- the whole flow --------------------------------------------------------------------------

def test_a_community_day_from_orders_to_the_closed_accounts(stack):
    s = stack
    a = place(s, "3栋1单元101", "online", ("RICE-10KG", 1), ("PORK-KG", 2))
    b = place(s, "3栋1单元202", "collected", ("PORK-KG", 3), ("EGG-30", 1))
    c = place(s, "5栋2单元301", "on_account", ("PORK-KG", 2), ("MILK-1L", 2))
    # another community's household: its address must never reach this community's labels
    place(s, "9栋9单元909", "collected", ("MILK-1L", 1), role="other_grid_worker", community=OTHER_COMMUNITY)
    assert (a.amount_fen, b.amount_fen, c.amount_fen) == (12100, 10800, 8000)
    assert a.payment_reference == f"MKT-{a.order_id}" and a.household_ref.startswith("H-")
    assert a.grid_worker == "gw-wang" and a.list_version == 1
    assert "3栋" not in str(a)  # the answer carries the household reference, never the address

    s.api.RecordPayment(pb.RecordPaymentRequest(idempotency_key=key(), order_id=a.order_id, mode="online",
                                                amount_fen=a.amount_fen, reference="WX-20261207-0001"),
                        role="grid_worker")
    paid_b = s.api.RecordPayment(pb.RecordPaymentRequest(idempotency_key=key(), order_id=b.order_id,
                                                         mode="collected", amount_fen=b.amount_fen),
                                 role="grid_worker")
    assert paid_b.reference == f"MKT-{b.order_id}" and paid_b.grid_worker == "gw-wang"
    twice = error(lambda: s.api.RecordPayment(pb.RecordPaymentRequest(
        idempotency_key=key(), order_id=a.order_id, mode="online", amount_fen=1, reference="WX-AGAIN"),
        role="grid_worker"))
    assert twice.code() == grpc.StatusCode.INVALID_ARGUMENT and twice.details().startswith("amount_fen")
    listed = {o.order_id: o for o in s.api.ListHouseholdOrders(pb.ListHouseholdOrdersRequest(
        community_id=COMMUNITY, day=D), role="grid_worker").orders}
    assert (listed[a.order_id].paid_fen, listed[b.order_id].paid_fen) == (a.amount_fen, b.amount_fen)

    cos = s.api.AggregateCommunityOrder(pb.AggregateCommunityOrderRequest(
        idempotency_key=key(), community_id=COMMUNITY, day=D, drop_point_id="DP2"), role="grid_worker")
    [co] = cos.community_orders
    assert (co.outlet_id, co.drop_point_id, co.status) == (OUTLET, "DP2", "sent")
    assert {ln.item_code: ln.quantity for ln in co.lines} == {"RICE-10KG": 1, "PORK-KG": 7, "EGG-30": 1,
                                                              "MILK-1L": 2}
    assert list(co.household_order_ids) == [a.order_id, b.order_id, c.order_id]

    # the supermarket: pork only 4 of 7 (first come, first served), no eggs
    confirmed = s.api.ConfirmCommunityOrder(pb.ConfirmCommunityOrderRequest(
        idempotency_key=key(), community_order_id=co.community_order_id, answers=[
            pb.LineAnswer(item_code="RICE-10KG", answer="full"),
            pb.LineAnswer(item_code="PORK-KG", answer="partial", quantity=4),
            pb.LineAnswer(item_code="EGG-30", answer="out_of_stock"),
            pb.LineAnswer(item_code="MILK-1L", answer="full")]), role="supermarket")
    changed = {o.order_id: o for o in confirmed.changed_orders}
    assert set(changed) == {b.order_id, c.order_id}  # a got its 2 kg of pork in full
    assert {ln.item_code: ln.confirmed for ln in changed[b.order_id].lines} == {"PORK-KG": 2, "EGG-30": 0}
    assert changed[b.order_id].confirmed_amount_fen == 2 * 2800
    assert {ln.item_code: ln.confirmed for ln in changed[c.order_id].lines} == {"PORK-KG": 0, "MILK-1L": 2}

    packed = s.api.PackCommunityOrder(pb.PackCommunityOrderRequest(
        idempotency_key=key(), community_order_id=co.community_order_id), role="supermarket")
    parcels = {p.household_order_id: p for p in packed.parcels}
    assert set(parcels) == {a.order_id, b.order_id, c.order_id}
    assert parcels[b.order_id].amount_fen == 5600 and parcels[c.order_id].amount_fen == 2400
    assert all(p.drop_point_id == "DP2" for p in packed.parcels)

    html = s.api.GetLabels(pb.GetLabelsRequest(community_order_id=co.community_order_id),
                           role="supermarket").content.decode()
    assert html.count("<svg") >= 3 and all(p.payment_reference in html for p in packed.parcels)
    assert "3栋1单元101" in html and "5栋2单元301" in html
    assert "9栋9单元909" not in html
    packing = s.api.GetPackingList(pb.GetPackingListRequest(community_order_id=co.community_order_id),
                                   role="supermarket")
    [sheet] = packing.packing_lists
    assert (sheet.drop_point_id, sheet.parcels, sheet.amount_fen) == ("DP2", 3, 12100 + 5600 + 2400)
    assert "3栋1单元101" not in packing.document.content.decode()
    auditor = error(lambda: s.api.GetLabels(pb.GetLabelsRequest(community_order_id=co.community_order_id),
                                            role="auditor"))
    assert auditor.code() == grpc.StatusCode.PERMISSION_DENIED  # no addresses for the auditor

    # at the drop point: a received, b short (1 kg of pork of 2), c refused
    def deliver(order_id, outcome, short=(), reason=""):
        return s.api.ConfirmParcelDelivery(pb.ConfirmParcelDeliveryRequest(
            idempotency_key=key(), parcel_id=parcels[order_id].parcel_id, outcome=outcome,
            short_lines=[pb.ParcelLine(item_code=i, quantity=q) for i, q in short], reason=reason),
            role="grid_worker")

    assert deliver(a.order_id, "received").order.status == "delivered"
    short = deliver(b.order_id, "short", [("PORK-KG", 1)], "一袋破损")
    assert (short.parcel.status, short.order.due_fen) == ("short", 2800)
    refused = deliver(c.order_id, "refused", reason="老人住院，家中无人")
    assert (refused.order.status, refused.order.due_fen) == ("refused", 0)

    settled = s.api.SettleDelivery(pb.SettleDeliveryRequest(
        idempotency_key=key(), community_order_id=co.community_order_id), role="clerk")
    by_order = {ln.order_id: ln for ln in settled.lines}
    assert (by_order[a.order_id].difference_fen, by_order[a.order_id].explanation) == (0, "")
    assert (by_order[b.order_id].paid_fen, by_order[b.order_id].delivered_fen) == (10800, 2800)
    assert (by_order[b.order_id].difference_fen, by_order[b.order_id].explanation) == (8000, "short_refund")
    assert by_order[c.order_id].explanation == "on_account"
    assert (settled.collected_fen, settled.refund_fen, settled.delivered_fen) == (10800, 8000, 12100 + 2800)

    book = s.api.GetCashBook(pb.GetCashBookRequest(community_id=COMMUNITY), role="grid_worker")
    assert (book.grid_worker, book.collected_fen, book.delivered_fen, book.difference_fen) == \
        ("gw-wang", 10800, 2800, 8000)
    ledger = s.api.GetAccountLedger(pb.GetAccountLedgerRequest(community_id=COMMUNITY), role="grid_worker")
    assert [(e.order_id, e.owed_fen) for e in ledger.entries] == [(c.order_id, 0)]  # refused: owes nothing

    summary = s.api.GetChannelSummary(pb.GetChannelSummaryRequest(day=D), role="department")
    assert (summary.community_orders, summary.parcels, summary.parcels_short, summary.parcels_refused,
            summary.settled_community_orders) == (1, 3, 1, 1, 1)
    assert summary.household_orders >= 4 and summary.collected_fen >= 10800
    assert "H-" not in str(summary)

    report = s.api.GetSettlementReport(pb.GetSettlementReportRequest(), role="hq")
    wang = next(r for r in report.grid_workers if r.key == "gw-wang")
    assert (wang.delivered_fen, wang.collected_fen, wang.paid_online_fen) == (12100 + 2800, 10800, 12100)
    assert wang.balance_fen == 8000  # the short parcel's refund
    assert not report.closed
    closed = s.api.CloseAccounts(pb.CloseAccountsRequest(idempotency_key=key()), role="hq")
    assert closed.closed and closed.total.delivered_fen == report.total.delivered_fen
    late = error(lambda: s.api.RecordPayment(pb.RecordPaymentRequest(
        idempotency_key=key(), order_id=a.order_id, mode="online", amount_fen=100, reference="WX-LATE"),
        role="grid_worker"))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION and "market_accounts_closed" in late.details()


# ---- bad input, precise errors -----------------------------------------------------------------

def test_a_price_of_zero_is_refused_naming_the_line(stack):
    e = error(lambda: stack.api.PublishSellableList(pb.PublishSellableListRequest(
        idempotency_key=key(), outlet_id=OUTLET, day=day(3), lines=[
            pb.SellableLine(item_code="RICE-10KG", price_fen=6500),
            pb.SellableLine(item_code="PORK-KG", price_fen=0)]), role="supermarket"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.details().startswith("lines[1].price_fen")


def test_a_non_essential_item_is_refused_on_a_list_and_in_an_order(stack):
    e = error(lambda: stack.api.PublishSellableList(pb.PublishSellableListRequest(
        idempotency_key=key(), outlet_id=OUTLET, day=day(3), lines=[
            pb.SellableLine(item_code="CIGARETTES-CARTON", price_fen=25000)]), role="supermarket"))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "market_non_essential" in e.details()
    e = error(lambda: place(stack, "1栋", "online", ("BAIJIU-500ML", 1), expected=100))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "market_non_essential" in e.details()


def test_an_order_after_the_cut_off_is_refused(stack):
    today = day(0)  # orders for today closed yesterday at 20:00
    stack.api.PublishSellableList(pb.PublishSellableListRequest(
        idempotency_key=key(), outlet_id=OUTLET, day=today,
        lines=[pb.SellableLine(item_code="RICE-10KG", price_fen=6500)]), role="supermarket")
    e = error(lambda: place(stack, "2栋", "online", ("RICE-10KG", 1), d=today))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "market_after_cutoff" in e.details()


def test_an_outlets_own_cut_off_is_kept_and_applied(stack):
    """An outlet may close its orders at its own time on the day before (HH:MM, stored with it)."""
    tomorrow = day(1)
    stack.api.PublishSellableList(pb.PublishSellableListRequest(
        idempotency_key=key(), outlet_id=OUTLET, day=tomorrow,
        lines=[pb.SellableLine(item_code="RICE-10KG", price_fen=6500)]), role="supermarket")
    try:
        stack.api.RegisterOutlet(pb.RegisterOutletRequest(
            idempotency_key=key(), outlet=market.outlet(OUTLET, *NEAR, cutoff="00:00")), role="hq")
        (listed,) = [o for o in stack.api.ListOutlets(pb.ListOutletsRequest(), role="hq").outlets
                     if o.outlet_id == OUTLET]
        assert listed.order_cutoff == "00:00"
        # orders for tomorrow closed at 00:00 today: the outlet's time, not the county's 20:00
        e = error(lambda: place(stack, "2栋", "online", ("RICE-10KG", 1), d=tomorrow,
                                role="other_grid_worker", community=OTHER_COMMUNITY))
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "market_after_cutoff" in e.details()
        assert "00:00" in e.details()
    finally:
        stack.api.RegisterOutlet(pb.RegisterOutletRequest(
            idempotency_key=key(), outlet=market.outlet(OUTLET, *NEAR)), role="hq")


def test_an_amount_that_does_not_match_the_lines_names_the_computed_amount(stack):
    e = error(lambda: place(stack, "2栋", "online", ("PORK-KG", 2), expected=5000))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.details().startswith("expected_amount_fen") and "5600" in e.details()


def test_another_communitys_grid_worker_and_another_supermarket_are_denied(stack):
    e = error(lambda: place(stack, "2栋", "online", ("PORK-KG", 1), role="other_grid_worker"))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    e = error(lambda: stack.api.ListHouseholdOrders(pb.ListHouseholdOrdersRequest(community_id=COMMUNITY, day=D),
                                                    role="other_grid_worker"))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED  # reads are scoped too
    e = error(lambda: stack.api.PublishSellableList(pb.PublishSellableListRequest(
        idempotency_key=key(), outlet_id=OUTLET, day=day(3),
        lines=[pb.SellableLine(item_code="RICE-10KG", price_fen=6500)]), role="other_supermarket"))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_repeated_write_returns_the_first_answer(stack):
    idem = key()
    first = place(stack, "7栋", "collected", ("RICE-10KG", 2), idem=idem)
    again = place(stack, "7栋", "collected", ("RICE-10KG", 2), idem=idem)
    assert again == first
    orders = stack.api.ListHouseholdOrders(pb.ListHouseholdOrdersRequest(community_id=COMMUNITY, day=D),
                                           role="grid_worker").orders
    assert sum(1 for o in orders if o.order_id == first.order_id) == 1
    e = error(lambda: place(stack, "7栋", "collected", ("RICE-10KG", 3), idem=idem))
    assert e.code() == grpc.StatusCode.ALREADY_EXISTS


# ---- prices to monitoring's price watch ----------------------------------------------------------

def test_a_far_too_high_pork_price_on_a_list_opens_a_price_rise_alert(stack):
    s = stack
    history = [monitoring_pb2.PriceReport(product="PORK", market=OTHER_OUTLET, day=day(-n), price_yuan="28.00")
               for n in (1, 2, 3)]
    s.monitoring.SubmitPrices(monitoring_pb2.SubmitPricesRequest(idempotency_key=key(), prices=history),
                              metadata=[("authorization", f"Bearer {intake.ADMIN}")], timeout=20)
    s.api.PublishSellableList(pb.PublishSellableListRequest(
        idempotency_key=key(), outlet_id=OTHER_OUTLET, day=D, lines=[
            pb.SellableLine(item_code="PORK-KG", price_fen=8800),      # 88 yuan/kg against 28
            pb.SellableLine(item_code="RICE-10KG", price_fen=6500)]),  # not a watched product: ignored
        role="other_supermarket")

    def alert():
        found = s.monitoring.ListAlerts(monitoring_pb2.ListAlertsRequest(
            kinds=[monitoring_pb2.ALERT_KIND_PRICE_RISE]),
            metadata=[("authorization", f"Bearer {intake.ADMIN}")], timeout=20).alerts
        return next((a for a in found if OTHER_OUTLET in a.subject), None)

    a = eventually(alert, timeout=30, what="price_rise alert from the published list")
    assert a.state == monitoring_pb2.ALERT_STATE_OPEN
    assert a.evidence["price_fen"] == 8800 and a.evidence["market"] == OTHER_OUTLET




# ---- purchase on behalf (代买) -------------------------------------------------------------------

def ts(d: str, hhmm: str):
    from google.protobuf.timestamp_pb2 import Timestamp

    t = Timestamp()
    t.FromDatetime(market.at(d, hhmm))
    return t


def test_a_villages_purchase_list_from_the_day_before_to_the_collection(stack):
    s = stack
    s.api.SetPurchaseSlots(pb.SetPurchaseSlotsRequest(idempotency_key=key(), village_id=COMMUNITY, slots=[
        pb.PurchaseSlot(window=common_pb2.LocalTimeWindow(start="09:00", end="11:00"))]), role="hq")
    plist = s.api.SubmitPurchaseList(pb.SubmitPurchaseListRequest(
        idempotency_key=key(), village_id=COMMUNITY, pickup_day=D,
        lines=[pb.PurchaseLine(item_code="RICE-10KG", quantity=20), pb.PurchaseLine(item_code="EGG-30", quantity=10)]),
        role="grid_worker")
    assert (plist.supply_point_id, plist.status) == (SUPPLY_POINT, "sent")
    e = error(lambda: s.api.SubmitPurchaseList(pb.SubmitPurchaseListRequest(
        idempotency_key=key(), village_id=COMMUNITY, pickup_day=day(3),
        lines=[pb.PurchaseLine(item_code="RICE-10KG", quantity=1)]), role="grid_worker"))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "market_purchase_interval" in e.details()
    e = error(lambda: s.api.AnswerReadiness(pb.AnswerReadinessRequest(
        idempotency_key=key(), list_id=plist.list_id, answers=[pb.ReadinessAnswer(item_code="RICE-10KG", ready=20)]),
        role="supermarket"))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED  # the supermarket is not this list's supply point

    ready = s.api.AnswerReadiness(pb.AnswerReadinessRequest(idempotency_key=key(), list_id=plist.list_id, answers=[
        pb.ReadinessAnswer(item_code="RICE-10KG", ready=20), pb.ReadinessAnswer(item_code="EGG-30", ready=6)]),
        role="supply_point")
    assert ready.status == "ready" and {ln.item_code: ln.ready for ln in ready.lines} == {"RICE-10KG": 20, "EGG-30": 6}

    def book(start, end, driver="司机老李", clerk="村干部小张"):
        return s.api.BookPickup(pb.BookPickupRequest(idempotency_key=key(), list_id=plist.list_id,
                                                     slot_start=ts(D, start), slot_end=ts(D, end),
                                                     driver=driver, clerk=clerk), role="grid_worker")

    e = error(lambda: book("14:00", "15:00"))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "market_slot_not_village" in e.details()
    e = error(lambda: book("09:30", "10:30", clerk="司机老李"))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION and "market_same_person" in e.details()
    booked = book("09:30", "10:30")
    assert (booked.status, booked.driver, booked.clerk) == ("booked", "司机老李", "村干部小张")

    got = s.api.RecordCollection(pb.RecordCollectionRequest(idempotency_key=key(), list_id=plist.list_id, lines=[
        pb.PurchaseLine(item_code="RICE-10KG", quantity=20), pb.PurchaseLine(item_code="EGG-30", quantity=5)]),
        role="clerk")
    assert got.purchase_list.status == "collected"
    assert [(d.item_code, d.agreed, d.collected) for d in got.discrepancies] == [("EGG-30", 6, 5)]


def test_purchase_lists_are_listed_for_their_own_village_and_supply_point_only(stack):
    s = stack  # after the purchase flow above: COMMUNITY's list for D at SUPPLY_POINT, collected
    own = s.api.ListPurchaseLists(pb.ListPurchaseListsRequest(village_id=COMMUNITY), role="grid_worker")
    assert [(p.pickup_day, p.status, p.driver) for p in own.purchase_lists] == [(D, "collected", "司机老李")]
    assert [(x.window.start, x.window.end) for x in own.slots] == [("09:00", "11:00")]
    sent = s.api.ListPurchaseLists(pb.ListPurchaseListsRequest(supply_point_id=SUPPLY_POINT), role="supply_point")
    assert [p.list_id for p in sent.purchase_lists] == [p.list_id for p in own.purchase_lists] and not sent.slots
    assert {ln.item_code: ln.ready for ln in sent.purchase_lists[0].lines} == {"RICE-10KG": 20, "EGG-30": 6}
    for role, req in (("supermarket", pb.ListPurchaseListsRequest(supply_point_id=SUPPLY_POINT)),
                      ("other_grid_worker", pb.ListPurchaseListsRequest(village_id=COMMUNITY))):
        e = error(lambda r=req, ro=role: s.api.ListPurchaseLists(r, role=ro))
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, role
    e = error(lambda: s.api.ListPurchaseLists(pb.ListPurchaseListsRequest(), role="hq"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_community_orders_are_listed_for_their_own_outlet_and_community_only(stack):
    s = stack  # after the community day above: COMMUNITY's order for D at OUTLET
    request = pb.ListCommunityOrdersRequest(day=D)
    mine = s.api.ListCommunityOrders(request, role="supermarket").community_orders
    assert COMMUNITY in {co.community_id for co in mine} and {co.outlet_id for co in mine} == {OUTLET}
    own = s.api.ListCommunityOrders(request, role="grid_worker").community_orders
    assert {co.community_id for co in own} == {COMMUNITY} and own[0].lines
    assert not s.api.ListCommunityOrders(request, role="other_supermarket").community_orders
    for role, req in (("other_supermarket", pb.ListCommunityOrdersRequest(outlet_id=OUTLET)),
                      ("other_grid_worker", pb.ListCommunityOrdersRequest(community_id=COMMUNITY))):
        e = error(lambda r=req, ro=role: s.api.ListCommunityOrders(r, role=ro))
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED


# ---- concurrent writes of one thing ------------------------------------------------------------

def test_concurrent_writes_of_one_list_or_one_community_day_take_turns(stack):
    from concurrent.futures import ThreadPoolExecutor

    s, d = stack, day(4)

    def publish(price):
        return s.api.PublishSellableList(pb.PublishSellableListRequest(
            idempotency_key=key(), outlet_id=OUTLET, day=d,
            lines=[pb.SellableLine(item_code="PORK-KG", price_fen=price)]), role="supermarket").version

    with ThreadPoolExecutor(8) as pool:
        versions = sorted(pool.map(publish, range(2800, 2808)))
    assert versions == list(range(1, 9))
    price = s.api.GetSellableList(pb.GetSellableListRequest(outlet_id=OUTLET, day=d), role="grid_worker").lines[0]
    for n in range(3):
        s.api.PlaceHouseholdOrder(pb.PlaceHouseholdOrderRequest(
            idempotency_key=key(), community_id=COMMUNITY, day=d, address=f"11栋{n}", payment_mode="collected",
            lines=lines(("PORK-KG", 1)), expected_amount_fen=price.price_fen), role="grid_worker")

    def aggregate(_):
        try:
            return len(s.api.AggregateCommunityOrder(pb.AggregateCommunityOrderRequest(
                idempotency_key=key(), community_id=COMMUNITY, day=d), role="grid_worker").community_orders)
        except grpc.RpcError as e:
            return e.code()

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(aggregate, range(4)))
    assert sorted(answers, key=str).count(1) == 1, answers
    assert all(a == 1 or a == grpc.StatusCode.FAILED_PRECONDITION for a in answers), answers
