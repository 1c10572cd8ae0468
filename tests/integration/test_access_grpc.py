"""Who may read what, through real API processes on SQLite (docs/integration.md, 访问权限):
a signed per-person token (JWT) minted with services.common.auth is accepted and names the
person the service records; one signed with another key, or expired, is UNAUTHENTICATED; a
village worker sees only its own village (lists narrowed, another village's records
PERMISSION_DENIED), and in logistics only the trips that stop at it; a gateway reads nothing in
intake or logistics; hq reads everything."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from supply.v1 import (
    allocation_pb2,
    allocation_pb2_grpc,
    common_pb2,
    intake_pb2,
    monitoring_pb2,
    monitoring_pb2_grpc,
)
from supply.v1 import logistics_pb2 as lpb

from services.common.auth import mint_token
from services.common.config import load_settings
from services.common.migrate import upgrade
from services.logistics.bootstrap import build_context
from services.logistics.handlers import dispatch, sites
from tests.support import logistics as ls
from tests.support import monitoring as ms
from tests.support.intake import HQ, VILLAGE, Intake, auth, day, key, migrate, start_api, uid
from tests.support.processes import ServiceProcess

pb = intake_pb2
OTHER_KEY = "a-key-the-services-do-not-know-0123456789"
DENIED = grpc.StatusCode.PERMISSION_DENIED


def token(env: dict[str, str], role: str, scope: str = "", sub: str = "", **kw) -> str:
    """A signed token as the console mints it, with the services' key."""
    return mint_token(load_settings("intake", env).jwt_key, sub=sub or f"{role}-person", role=role,
                      scope=scope, **kw)


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if not hasattr(result, "SerializeToString"):  # a stream: errors show while reading it
            next(iter(result))
    return info.value.code()


def lines(*pairs: tuple[str, int]) -> list[common_pb2.ItemLine]:
    return [common_pb2.ItemLine(item_code=c, quantity=q) for c, q in pairs]


# ---- intake ------------------------------------------------------------------------------
class IntakeWorld:
    """Two villages with a demand and a special need each, two hospitals."""

    def __init__(self, api: Intake, env: dict[str, str]):
        self.api, self.env = api, env
        self.a, self.b = api.village().id, api.village().id
        self.worker = token(env, "village", self.a, sub="wang.fang")
        self.demand_a = api.demand(self.a, ("RICE-10KG", 3), token=self.worker)
        self.demand_b = api.demand(self.b, ("RICE-10KG", 4))
        self.need_a = self.special_need(self.a, self.worker)
        self.need_b = self.special_need(self.b, HQ)
        self.unit_1, self.unit_2 = api.unit().id, api.unit().id

    def special_need(self, requester_id: str, as_token: str) -> pb.RegisterSpecialNeedResponse:
        return self.api.RegisterSpecialNeed(pb.RegisterSpecialNeedRequest(
            idempotency_key=key(), requester_id=requester_id,
            beneficiary=pb.Beneficiary(name="张三", phone="13812345678"),
            category=pb.SPECIAL_NEED_CATEGORY_CHRONIC_MEDICINE,
            lines=lines(("MED-ANTIHYPERTENSIVE", 2))), token=as_token)


@pytest.fixture(scope="module")
def intake(tmp_path_factory, amqp_url):
    tmp = tmp_path_factory.mktemp("access-intake")
    env = ls.env_for(tmp / "var", amqp_url)
    migrate(env)
    proc = start_api(env, tmp)
    api = Intake(env)
    yield IntakeWorld(api, env)
    api.close()
    assert proc.stop() == 0, proc.log()[-3000:]


def test_a_signed_token_is_accepted_and_names_the_person_the_service_records(intake):
    api, env = intake.api, intake.env
    assert intake.need_a.special_need.registered_by == "wang.fang"
    nurse = token(env, "unit", intake.unit_1, sub="nurse.li")
    dean = token(env, "unit_head", intake.unit_1, sub="dean.wang")
    filed = api.FileRequisition(pb.FileRequisitionRequest(
        idempotency_key=key(), unit_id=intake.unit_1, lines=lines(("MASK-N95", 200)),
        purpose="发热门诊一周用量", headcount_basis=300), token=nurse)
    head = api.ApproveRequisition(pb.ApproveRequisitionRequest(
        idempotency_key=key(), requisition_id=filed.id, step=pb.APPROVAL_STEP_HEAD), token=dean)
    assert [a.actor_id for a in head.requisition.approvals] == ["nurse.li", "dean.wang"]
    assert api.GetRequisition(pb.GetRequisitionRequest(requisition_id=filed.id),
                              token=nurse) == head.requisition
    assert code_of(lambda: api.GetRequisition(pb.GetRequisitionRequest(requisition_id=filed.id),
                                              token=token(env, "unit", intake.unit_2))) == DENIED


def test_a_token_signed_with_another_key_or_expired_is_unauthenticated(intake):
    api, env = intake.api, intake.env
    forged = mint_token(OTHER_KEY, sub="mallory", role="hq")
    expired = token(env, "hq", ttl_s=60, now=time.time() - 200)
    for bad in (forged, expired, forged.rsplit(".", 1)[0] + ".AAAA"):
        with pytest.raises(grpc.RpcError) as info:
            api.ListRequesters(pb.ListRequestersRequest(), token=bad)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert bad not in info.value.details() and bad.split(".")[1] not in info.value.details()
    assert "expired" in rpc_details(lambda: api.ListRequesters(pb.ListRequestersRequest(),
                                                               token=expired))
    assert api.ListRequesters(pb.ListRequestersRequest(), token=token(env, "hq")).requesters


def rpc_details(call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.details()


def test_a_village_worker_sees_only_its_own_village(intake):
    api, env, a, b = intake.api, intake.env, intake.a, intake.b
    worker = intake.worker
    get = pb.GetDemandRequest
    assert api.GetDemand(get(demand_id=intake.demand_a.id), token=worker).requester_id == a
    assert code_of(lambda: api.GetDemand(get(demand_id=intake.demand_b.id), token=worker)) == DENIED
    mine = api.ListDemands(pb.ListDemandsRequest(), token=worker).demands
    assert intake.demand_a.id in {d.id for d in mine} and {d.requester_id for d in mine} == {a}
    assert code_of(lambda: api.ListDemands(pb.ListDemandsRequest(requester_id=b),
                                           token=worker)) == DENIED
    needs = api.ListSpecialNeeds(pb.ListSpecialNeedsRequest(), token=worker).special_needs
    assert [n.id for n in needs] == [intake.need_a.special_need.id]
    assert code_of(lambda: api.ListSpecialNeeds(pb.ListSpecialNeedsRequest(requester_id=b),
                                                token=worker)) == DENIED
    assert [r.id for r in api.ListRequesters(pb.ListRequestersRequest(), token=worker).requesters] == [a]
    assert api.GetRequester(pb.GetRequesterRequest(requester_id=a), token=worker).id == a
    assert code_of(lambda: api.GetRequester(pb.GetRequesterRequest(requester_id=b),
                                            token=worker)) == DENIED
    # the same for a grid worker, and for a configured static token (scope V1)
    grid = token(env, "grid_worker", b)
    assert [n.id for n in api.ListSpecialNeeds(pb.ListSpecialNeedsRequest(), token=grid)
            .special_needs] == [intake.need_b.special_need.id]
    assert code_of(lambda: api.ListDemands(pb.ListDemandsRequest(requester_id=a),
                                           token=VILLAGE)) == DENIED
    assert api.ListDemands(pb.ListDemandsRequest(), token=VILLAGE).demands == []
    # special needs are the village's: a unit, a department, an auditor do not see them
    for role, scope in (("unit", intake.unit_1), ("department", ""), ("auditor", "")):
        assert code_of(lambda r=role, s=scope: api.ListSpecialNeeds(
            pb.ListSpecialNeedsRequest(), token=token(env, r, s))) == DENIED
    # nor donations
    assert code_of(lambda: api.GetDonationSummary(pb.GetDonationSummaryRequest(),
                                                  token=worker)) == DENIED


def test_a_gateway_reads_nothing_in_intake(intake):
    api, gateway = intake.api, token(intake.env, "gateway")
    for call in (lambda: api.ListRequesters(pb.ListRequestersRequest(), token=gateway),
                 lambda: api.GetRequester(pb.GetRequesterRequest(requester_id=intake.a), token=gateway),
                 lambda: api.ListDemands(pb.ListDemandsRequest(), token=gateway),
                 lambda: api.GetDemand(pb.GetDemandRequest(demand_id=intake.demand_a.id), token=gateway),
                 lambda: api.ListSpecialNeeds(pb.ListSpecialNeedsRequest(), token=gateway),
                 lambda: api.GetDonationSummary(pb.GetDonationSummaryRequest(), token=gateway)):
        assert code_of(call) == DENIED


def test_hq_reads_everything_and_departments_read_without_personal_data(intake):
    api, env = intake.api, intake.env
    for reader in (HQ, token(env, "hq")):
        assert {intake.demand_a.id, intake.demand_b.id} <= {
            d.id for d in api.ListDemands(pb.ListDemandsRequest(), token=reader).demands}
        assert {intake.need_a.special_need.id, intake.need_b.special_need.id} <= {
            n.id for n in api.ListSpecialNeeds(pb.ListSpecialNeedsRequest(), token=reader).special_needs}
        assert {intake.a, intake.b} <= {
            r.id for r in api.ListRequesters(pb.ListRequestersRequest(), token=reader).requesters}
    donation = api.RegisterDonation(pb.RegisterDonationRequest(
        idempotency_key=key(), donor=pb.Donor(name="县红十字会", contact="hq@redcross.example",
                                              kind=pb.DONOR_KIND_ORGANIZATION),
        lines=[pb.DonationLineSpec(item_code="RICE-10KG", quantity=20, lot="R1", expiry=day(200))]))
    department = token(env, "department")
    assert {intake.a, intake.b} <= {
        d.requester_id for d in api.ListDemands(pb.ListDemandsRequest(), token=department).demands}
    assert api.GetDonationSummary(pb.GetDonationSummaryRequest(), token=department).donations_received
    assert code_of(lambda: api.GetDonation(pb.GetDonationRequest(donation_id=donation.id),
                                           token=department)) == DENIED
    for reader in ("inspector", "depot_keeper", "auditor"):
        assert api.GetDonation(pb.GetDonationRequest(donation_id=donation.id),
                               token=token(env, reader)).id == donation.id


# ---- logistics ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def logistics(tmp_path_factory, amqp_url):
    tmp = tmp_path_factory.mktemp("access-logistics")
    env = ls.env_for(tmp / "var", amqp_url)
    ls.migrate(env)
    ctx = build_context(load_settings("logistics", env))
    proc = ls.start("api", env, tmp)
    api = ls.Logistics(env)
    api.depot("D1")
    api.vehicle(uid("T"), "D1")

    def seed(fn, *args):
        with ctx.uow() as uow:
            fn(ctx, uow, *args)
            uow.commit()

    yield api, env, ctx, seed
    api.close()
    proc.stop()
    ctx.engine.dispose()


def test_logistics_reads_follow_the_roles(logistics):
    api, env, _, _ = logistics
    lot_id = api.receive("D1", "RICE-10KG", 20).lots[0].lot_id
    gateway, department = token(env, "gateway"), token(env, "department")
    reads = {"ListLots": lpb.ListLotsRequest(), "ListReceipts": lpb.ListReceiptsRequest(),
             "GetStock": lpb.GetStockRequest(), "GetDaysOfSupply": lpb.GetDaysOfSupplyRequest(),
             "ListTrips": lpb.ListTripsRequest(), "GetStockSnapshot": lpb.GetStockSnapshotRequest()}
    for method, request in reads.items():
        assert code_of(lambda m=method, r=request: getattr(api, m)(r, token=gateway)) == DENIED, method
    for method in ("ListLots", "ListReceipts", "GetStock"):
        assert code_of(lambda m=method: getattr(api, m)(reads[m], token=VILLAGE)) == DENIED, method
    assert api.GetStock(lpb.GetStockRequest(), token=department).lines
    assert code_of(lambda: api.ListLots(lpb.ListLotsRequest(), token=department)) == DENIED
    for reader in (HQ, token(env, "depot_keeper"), token(env, "auditor")):
        assert lot_id in {lot.lot_id for lot in api.ListLots(lpb.ListLotsRequest(), token=reader).lots}


def test_a_village_sees_and_confirms_only_the_stops_at_its_own_village(logistics):
    api, env, ctx, seed = logistics
    a, b = uid("V"), uid("V")
    for rid, lat in ((a, 30.32), (b, 30.33)):
        seed(sites.apply_requester, ls.requester_payload(rid, lat=lat))
    lot_id = api.receive("D1", "RICE-10KG", 60).lots[0].lot_id
    both, only_b = uid("P"), uid("P")
    seed(dispatch.apply_plan_approved, ls.plan_payload(both, day(1), [
        ls.plan_line(uid("PL"), a, "RICE-10KG", 12, "D1", "DM-A", lots=[(lot_id, 12)]),
        ls.plan_line(uid("PL"), b, "RICE-10KG", 10, "D1", "DM-B", lots=[(lot_id, 10)])]))
    seed(dispatch.apply_plan_approved, ls.plan_payload(only_b, day(2), [
        ls.plan_line(uid("PL"), b, "RICE-10KG", 5, "D1", "DM-B2", lots=[(lot_id, 5)])]))
    assert dispatch.route_plan(ctx, both) and dispatch.route_plan(ctx, only_b)

    everything = api.ListTrips(lpb.ListTripsRequest(plan_id=both), token=HQ)
    assert {s.requester_id for t in everything.trips for s in t.stops} == {a, b}
    worker = token(env, "village", a)
    seen = api.ListTrips(lpb.ListTripsRequest(plan_id=both), token=worker)
    assert seen.trips and not seen.dispatches
    assert {s.requester_id for t in seen.trips for s in t.stops} == {a}
    assert api.ListTrips(lpb.ListTripsRequest(plan_id=only_b), token=worker).trips == []
    trip = seen.trips[0]
    manifest = api.GetManifest(lpb.GetManifestRequest(trip_id=trip.trip_id), token=worker)
    assert {ln.demand_id for ln in manifest.lines} == {"DM-A"}
    b_trip = api.ListTrips(lpb.ListTripsRequest(plan_id=only_b), token=HQ).trips[0]
    assert code_of(lambda: api.GetManifest(lpb.GetManifestRequest(trip_id=b_trip.trip_id),
                                           token=worker)) == DENIED
    b_stop = next(s for t in everything.trips for s in t.stops if s.requester_id == b)
    b_trip_of_both = next(t for t in everything.trips if b_stop in t.stops)
    assert code_of(lambda: api.ConfirmDelivery(ls.confirm_all(b_trip_of_both, b_stop),
                                               token=worker)) == DENIED
    done = api.ConfirmDelivery(ls.confirm_all(trip, trip.stops[0]), token=worker)
    assert done.requester_id == a and done.lines[0].received == 12


# ---- allocation and monitoring -----------------------------------------------------------
@contextmanager
def api_of(service: str, stub_class, env: dict[str, str], log_dir: Path):
    """`python -m services.<service> api` on `env`, and a stub calling it."""
    proc = ServiceProcess(service, "api", env, log_dir).start()
    address = f"127.0.0.1:{env[f'{service.upper()}_GRPC_PORT']}"
    try:
        proc.wait_healthy(address)
        with grpc.insecure_channel(address) as channel:
            yield stub_class(channel)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def allocation(tmp_path_factory, amqp_url):
    tmp = tmp_path_factory.mktemp("access-allocation")
    env = ls.env_for(tmp / "var", amqp_url)
    upgrade("allocation", load_settings("allocation", env).database_url)
    with api_of("allocation", allocation_pb2_grpc.AllocationServiceStub, env, tmp) as stub:
        yield stub, env


def test_allocation_plans_are_for_hq_depots_departments_and_auditors(allocation):
    stub, env = allocation
    pa = allocation_pb2

    def as_(who: str, method: str, request):
        return getattr(stub, method)(request, metadata=auth(who), timeout=20)

    plans = pa.ListPlansRequest(delivery_day=day(1))
    for reader in (HQ, token(env, "depot_keeper"), token(env, "department"), token(env, "auditor")):
        assert list(as_(reader, "ListPlans", plans).plans) == []
    for reader in (VILLAGE, token(env, "unit", "U1"), token(env, "gateway")):
        assert code_of(lambda r=reader: as_(r, "ListPlans", plans)) == DENIED
    assert code_of(lambda: as_(VILLAGE, "Forecast", pa.ForecastRequest(item_code="RICE-10KG"))) == DENIED
    # the county's published rules: every person may read them, a gateway not
    assert as_(VILLAGE, "GetPolicy", pa.GetPolicyRequest()).cutoff == "11:00"
    assert code_of(lambda: as_(token(env, "gateway"), "GetPolicy", pa.GetPolicyRequest())) == DENIED


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory, amqp_url, influx_db):
    tmp = tmp_path_factory.mktemp("access-monitoring")
    env = ms.make_env(tmp / "var", amqp_url, influx_db)
    ms.migrate(env)
    with api_of("monitoring", monitoring_pb2_grpc.MonitoringServiceStub, env, tmp) as stub:
        yield stub, env


def test_monitoring_alerts_reach_their_readers_and_a_gateway_not_villages(monitoring):
    stub, env = monitoring
    mp = monitoring_pb2
    gateway = token(env, "gateway")
    for reader in (HQ, gateway, token(env, "depot_keeper"), token(env, "department")):
        stub.ListAlerts(mp.ListAlertsRequest(), metadata=auth(reader), timeout=20)
    for reader in (VILLAGE, token(env, "unit", "U1"), token(env, "inspector")):
        assert code_of(lambda r=reader: stub.ListAlerts(mp.ListAlertsRequest(), metadata=auth(r),
                                                        timeout=20)) == DENIED
        assert code_of(lambda r=reader: stub.WatchAlerts(mp.WatchAlertsRequest(), metadata=auth(r),
                                                         timeout=20)) == DENIED
    zone = mp.GetZoneStatusRequest(depot="D1", zone="D1-CHL")
    assert code_of(lambda: stub.GetZoneStatus(zone, metadata=auth(gateway), timeout=20)) == DENIED
