"""Every write RPC of the market service fuzzed with hostile requests, as
tests/security/test_fuzz_write_rpcs.py does for the four others (its `check` and `Findings`): the
market API on PostgreSQL, called with the admin token; each answer OK or a documented refusal,
never INTERNAL or UNKNOWN; a short message; a refusal leaves every table's row count as it was;
the API still SERVING afterwards. The community comes through the handler the worker runs on
intake's requester_registered; the rest is seeded through the API."""

from __future__ import annotations

import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select, table
from supply.v1 import common_pb2, market_pb2, market_pb2_grpc

from services.common.config import load_settings
from services.common.db import make_engine
from services.common.migrate import upgrade
from services.market.handlers import outlets
from services.market.handlers.base import MarketContext
from tests.security import test_fuzz_write_rpcs as fz
from tests.security.proto_strategies import requests
from tests.support import market as m
from tests.support.intake import ADMIN, auth
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.integration

WRITE_RPCS = ("RegisterOutlet", "AssignCommunity", "PublishSellableList", "PlaceHouseholdOrder",
              "CancelHouseholdOrder", "AggregateCommunityOrder", "ConfirmCommunityOrder", "PackCommunityOrder",
              "RecordPayment", "ConfirmParcelDelivery", "SettleDelivery", "CloseAccounts", "SubmitPurchaseList",
              "AnswerReadiness", "SetPurchaseSlots", "BookPickup", "RecordCollection")
READ_ONLY_RPCS = ("ListOutlets", "ListCommunities", "GetSellableList", "ListHouseholdOrders", "GetLabels",
                  "GetPackingList", "GetCashBook", "GetAccountLedger", "GetSettlementReport", "GetChannelSummary",
                  "ListCommunityOrders", "ListPurchaseLists")
SERVICE = market_pb2.DESCRIPTOR.services_by_name["MarketService"]


def test_every_market_rpc_is_fuzzed_or_read_only():
    methods = {x.name: x for x in SERVICE.methods}
    assert set(methods) == set(WRITE_RPCS) | set(READ_ONLY_RPCS)
    keyed = {n for n, x in methods.items() if "idempotency_key" in x.input_type.fields_by_name}
    assert keyed == set(WRITE_RPCS)


class Stack:
    def __init__(self, tmp, amqp_url: str, pg_url: str, influx_db: str):
        self.env = m.make_env(tmp / "var", amqp_url, influx_db, MARKET_DATABASE_URL=pg_url)
        upgrade("market", pg_url)
        self.engine = make_engine(pg_url)
        self.tables = sorted(t for t in inspect(self.engine).get_table_names() if t != "alembic_version")
        self.proc = ServiceProcess("market", "api", self.env, tmp).start()
        self.channel = grpc.insecure_channel(m.target(self.env))
        self.proc.wait_healthy(m.target(self.env), timeout=60)
        self.stub = market_pb2_grpc.MarketServiceStub(self.channel)

    def call(self, service: str, method: str, request):
        return getattr(self.stub, method)(request, metadata=auth(ADMIN), timeout=20)

    def digest(self, service: str) -> dict[str, int]:
        query = select(*(select(func.count()).select_from(table(n)).scalar_subquery().label(n) for n in self.tables))
        with self.engine.connect() as conn:
            return dict(zip(self.tables, conn.execute(query).one(), strict=True))

    def cause(self, service: str, message: str) -> str:
        self.procs = {"market": self.proc}
        return fz.Stack.cause(self, service, message)

    def close(self) -> None:
        self.channel.close()
        self.proc.stop()
        self.engine.dispose()


def seed(s: Stack) -> dict[str, st.SearchStrategy]:
    """An outlet, a supply point, a community, a list, orders in every state the calls need."""
    settings_ = load_settings("market", s.env)
    from services.common.catalogue import load_catalogue
    from services.common.clock import RealClock

    ctx = MarketContext(engine=s.engine, catalogue=load_catalogue(), clock=RealClock(), tz=settings_.timezone,
                        household_key=b"fuzz-household-key-0001")
    with ctx.uow() as uow:
        outlets.apply_requester(uow, {"requester_id": m.COMMUNITY, "kind": "community", "name": "幸福社区",
                                      "township": "城关镇", "location": {"lat": 30.27, "lon": 120.15},
                                      "drop_points": [{"id": "DP1", "name": "1号门岗"}], "households": 300,
                                      "version": 1})
        uow.commit()
    k = lambda: uuid.uuid4().hex  # noqa: E731
    for o in (m.outlet(m.OUTLET, 30.271, 120.151), m.outlet(m.SUPPLY_POINT, 30.271, 120.151, kind="supply_point")):
        s.call("market", "RegisterOutlet", market_pb2.RegisterOutletRequest(idempotency_key=k(), outlet=o))
    d = m.day(2)
    s.call("market", "PublishSellableList", market_pb2.PublishSellableListRequest(
        idempotency_key=k(), outlet_id=m.OUTLET, day=d,
        lines=[market_pb2.SellableLine(item_code="PORK-KG", price_fen=2800),
               market_pb2.SellableLine(item_code="RICE-10KG", price_fen=6500)]))

    def order(mode: str):
        return s.call("market", "PlaceHouseholdOrder", market_pb2.PlaceHouseholdOrderRequest(
            idempotency_key=k(), community_id=m.COMMUNITY, day=d, address="3栋101", payment_mode=mode,
            lines=m.lines(("PORK-KG", 2)), expected_amount_fen=5600))

    packed_order = order("collected")
    co = s.call("market", "AggregateCommunityOrder", market_pb2.AggregateCommunityOrderRequest(
        idempotency_key=k(), community_id=m.COMMUNITY, day=d)).community_orders[0]
    s.call("market", "ConfirmCommunityOrder", market_pb2.ConfirmCommunityOrderRequest(
        idempotency_key=k(), community_order_id=co.community_order_id,
        answers=[market_pb2.LineAnswer(item_code="PORK-KG", answer="full")]))
    parcel = s.call("market", "PackCommunityOrder", market_pb2.PackCommunityOrderRequest(
        idempotency_key=k(), community_order_id=co.community_order_id)).parcels[0]
    placed = order("online")
    plist = s.call("market", "SubmitPurchaseList", market_pb2.SubmitPurchaseListRequest(
        idempotency_key=k(), village_id=m.COMMUNITY, pickup_day=d,
        lines=[market_pb2.PurchaseLine(item_code="RICE-10KG", quantity=5)]))
    s.call("market", "SetPurchaseSlots", market_pb2.SetPurchaseSlotsRequest(
        idempotency_key=k(), village_id=m.COMMUNITY,
        slots=[market_pb2.PurchaseSlot(window=common_pb2.LocalTimeWindow(start="09:00", end="11:00"))]))
    one = st.sampled_from
    days = [m.day(n) for n in (0, 1, 2, 3)]
    return {
        "outlet_id": one([m.OUTLET, m.SUPPLY_POINT, "SM-NONE"]), "community_id": one([m.COMMUNITY]),
        "village_id": one([m.COMMUNITY]), "Outlet.outlet_id": st.builds(lambda: f"SM-{uuid.uuid4().hex[:6]}"),
        "kind": one(["supermarket", "supply_point"]), "day": one(days), "pickup_day": one(days),
        "order_cutoff": one(["", "20:00", "18:30"]), "item_code": one(["PORK-KG", "RICE-10KG", "EGG-30",
                                                                       "BAIJIU-500ML"]),
        "price_fen": st.integers(1, 100_000), "quantity": st.integers(1, 10), "ready": st.integers(0, 10),
        "expected_amount_fen": one([2800, 5600, 6500]), "amount_fen": one([100, 5600]),
        "order_id": one([placed.order_id, packed_order.order_id]), "parcel_id": one([parcel.parcel_id]),
        "community_order_id": one([co.community_order_id]), "list_id": one([plist.list_id]),
        "drop_point_id": one(["DP1", ""]), "payment_mode": one(["online", "collected", "on_account"]),
        "mode": one(["online", "collected"]), "answer": one(["full", "partial", "out_of_stock"]),
        "outcome": one(["received", "short", "refused"]), "reference": one(["WX-1", ""]),
        "address": one(["3栋101", "5栋202"]), "weekdays": st.integers(1, 7), "start": one(["09:00"]),
        "end": one(["11:00"]), "lat": st.floats(29, 31), "lon": st.floats(119, 121),
        **{name: one(["幸福社区", "城关镇", "司机老李", "村干部小张", "破损"])
           for name in ("name", "township", "driver", "clerk", "reason")},
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory, amqp_url, pg_url_factory, influx_db):
    s = Stack(tmp_path_factory.mktemp("fuzz-market"), amqp_url, pg_url_factory("fuzz_market"), influx_db)
    try:
        s.plausible = seed(s)
        yield s
    finally:
        s.close()


@pytest.mark.parametrize("method", WRITE_RPCS)
def test_market_write_rpc_answers_hostile_input_with_documented_codes(stack, method):
    descriptor = SERVICE.methods_by_name[method]
    strategy = requests(descriptor, stack.plausible, getattr(market_pb2, descriptor.input_type.name))
    findings = fz.Findings()

    @settings(max_examples=fz.EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(st.data())
    def fuzz(data):
        fz.check(stack, "market", method, data.draw(strategy, label="request"), findings)

    fuzz()
    answer = health_pb2_grpc.HealthStub(stack.channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING, stack.proc.log()[-3000:]
    assert not findings.counts, f"{method}: {sum(findings.counts.values())} bad answers\n{findings.report()}"


