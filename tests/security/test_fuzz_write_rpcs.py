"""Every write RPC of the four services fuzzed with hostile requests (issue #14): the four API
processes run for real on PostgreSQL, called with the admin token so role checks do not hide
validation. For each example: the answer is OK or a documented refusal code, never INTERNAL,
UNKNOWN, RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED; an error message is short; a refusal leaves
the service's database as it was (row counts of every table, outbox and idempotency keys
included, read directly); after each RPC's examples the service still answers SERVING.

Distinct failures of one RPC are collected and reported together (request shown shortened),
not shrunk: a shrink would replay megabyte requests for minutes. FUZZ_EXAMPLES=<n> runs more
examples per RPC (default 30)."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select, table
from supply.v1 import (
    allocation_pb2,
    allocation_pb2_grpc,
    common_pb2,
    intake_pb2,
    intake_pb2_grpc,
    logistics_pb2,
    logistics_pb2_grpc,
    monitoring_pb2,
    monitoring_pb2_grpc,
)

from services.common.catalogue import load_catalogue
from services.common.clock import RealClock
from services.common.config import SERVICES, load_settings
from services.common.db import make_engine
from services.common.migrate import upgrade
from services.monitoring.config import monitoring_config
from services.monitoring.handlers import base as monitoring_base
from services.monitoring.handlers import lots as monitoring_lots
from tests.security.proto_strategies import Fuzzed, requests
from tests.support.intake import ADMIN, COUNTY_TZ, Intake, auth, county_today, make_env, uid
from tests.support.processes import ROOT, ServiceProcess

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Exhausted)\b")
MAX_MESSAGE = 1000  # characters of an error message: no echo of a huge input

# Every method of every service is in one of these two lists: a new write RPC fails
# test_every_rpc_is_fuzzed_or_read_only until it is fuzzed here.
WRITE_RPCS = {
    "intake": ("RegisterRequester", "UpdateRequester", "SubmitDemand", "SubmitDemandBatch", "CancelDemand",
               "RegisterSpecialNeed", "FileRequisition", "ApproveRequisition", "RejectRequisition",
               "RegisterDonation", "InspectDonationLine", "ImportSpreadsheet"),
    "allocation": ("RunAllocation", "ApprovePlan", "RejectPlan", "SetPolicy"),
    "logistics": ("RegisterDepot", "RegisterZone", "RegisterVehicle", "ReceiveStock", "IssueStock",
                  "QuarantineLot", "ReleaseLot", "WriteOffLot", "ConfirmDelivery"),
    "monitoring": ("AcknowledgeAlert", "SubmitPrices"),
}
READ_ONLY_RPCS = {
    "intake": ("GetRequester", "ListRequesters", "GetDemand", "ListDemands", "SummarizeDemands",
               "ListSpecialNeeds", "GetRequisition", "ListRequisitions", "GetDonation", "ListDonations",
               "GetDonationSummary", "ListCatalogueItems"),
    "allocation": ("GetPlan", "ListPlans", "ExplainLine", "Forecast", "GetPolicy", "ListPolicyVersions",
                   "GetDailyReport"),
    "logistics": ("GetStockSnapshot", "ListDepots", "ListReceipts", "GetStock", "ListLots", "GetDaysOfSupply",
                  "ListTrips", "GetManifest", "ExportLedger", "ReconcileLedger"),
    "monitoring": ("ListAlerts", "WatchAlerts", "GetSensorHistory", "GetZoneStatus", "ListIngestDeadLetters"),
}
MODULES = {
    "intake": (intake_pb2, intake_pb2_grpc, "IntakeService"),
    "allocation": (allocation_pb2, allocation_pb2_grpc, "AllocationService"),
    "logistics": (logistics_pb2, logistics_pb2_grpc, "LogisticsService"),
    "monitoring": (monitoring_pb2, monitoring_pb2_grpc, "MonitoringService"),
}
C = grpc.StatusCode
REFUSALS = {C.OK, C.INVALID_ARGUMENT, C.FAILED_PRECONDITION, C.NOT_FOUND, C.ALREADY_EXISTS, C.PERMISSION_DENIED}
DOCUMENTED_EXTRA = {"RunAllocation": {C.UNAVAILABLE}}  # allocation.proto: logistics did not answer


def service_descriptor(service: str):
    pb, _, name = MODULES[service]
    return pb.DESCRIPTOR.services_by_name[name]


def test_every_rpc_is_fuzzed_or_read_only():
    for service in SERVICES:
        methods = {m.name: m for m in service_descriptor(service).methods}
        writes, reads = set(WRITE_RPCS[service]), set(READ_ONLY_RPCS[service])
        assert not writes & reads, (service, writes & reads)
        assert set(methods) == writes | reads, (service, set(methods) ^ (writes | reads))
        keyed = {n for n, m in methods.items() if "idempotency_key" in m.input_type.fields_by_name}
        assert keyed == writes, (service, keyed ^ writes)


# ---- the stack ---------------------------------------------------------------------------
class Stack:
    """The four API processes on PostgreSQL databases of their own, seeded through the public
    API (monitoring's alert through the handler its worker runs)."""

    def __init__(self, tmp, amqp_url: str, pg_url_factory, influx_db: str):
        self.env = make_env(tmp / "var", amqp_url, INFLUX_DB=influx_db,
                            SUPPLY_MQTT_ROOT=uid("fz"), SUPPLY_MQTT_CLIENT_ID=uid("fz-ingest"),
                            **{f"{s.upper()}_DATABASE_URL": pg_url_factory(f"fuzz_{s}") for s in SERVICES})
        self.engines = {}
        for service in SERVICES:
            url = load_settings(service, self.env).database_url
            upgrade(service, url)
            self.engines[service] = make_engine(url)
        self.tables = {s: sorted(t for t in inspect(e).get_table_names() if t != "alembic_version")
                       for s, e in self.engines.items()}
        self.procs = {s: ServiceProcess(s, "api", self.env, tmp).start() for s in SERVICES}
        self.channels = {s: grpc.insecure_channel(self.target(s), options=[
            ("grpc.max_receive_message_length", 64 << 20)]) for s in SERVICES}
        for s, proc in self.procs.items():
            proc.wait_healthy(self.target(s), timeout=60)
        self.stubs = {s: getattr(MODULES[s][1], f"{MODULES[s][2]}Stub")(self.channels[s]) for s in SERVICES}

    def target(self, service: str) -> str:
        return f"127.0.0.1:{self.env[f'{service.upper()}_GRPC_PORT']}"

    def call(self, service: str, method: str, request):
        answer = getattr(self.stubs[service], method)(request, metadata=auth(ADMIN), timeout=20)
        return answer if hasattr(answer, "SerializeToString") else list(answer)

    def digest(self, service: str) -> dict[str, int]:
        """Row counts of every table of the service's database, in one query."""
        names = self.tables[service]
        query = select(*(select(func.count()).select_from(table(n)).scalar_subquery().label(n) for n in names))
        with self.engines[service].connect() as conn:
            return dict(zip(names, conn.execute(query).one(), strict=True))

    def serving(self, service: str) -> bool:
        answer = health_pb2_grpc.HealthStub(self.channels[service]).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5)
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    def cause(self, service: str, message: str) -> str:
        """The exceptions the API logged for an INTERNAL answer (found by its correlation id)."""
        cid = re.search(r"correlation id ([0-9a-f]+)", message)
        if not cid:
            return ""
        for line in self.procs[service].log().splitlines():
            if cid.group(1) in line and '"exc_info"' in line:
                trace = json.loads(line)["exc_info"].splitlines()
                raised = [t for t in trace if EXCEPTION_LINE.match(t)]
                return " ← ".join(r[:160] for r in reversed(raised))
        return ""

    def close(self) -> None:
        for ch in self.channels.values():
            ch.close()
        with ThreadPoolExecutor(len(self.procs)) as pool:  # each waits for its own drain
            list(pool.map(ServiceProcess.stop, self.procs.values()))
        for e in self.engines.values():
            e.dispose()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, amqp_url, pg_url_factory, influx_db):
    s = Stack(tmp_path_factory.mktemp("fuzz"), amqp_url, pg_url_factory, influx_db)
    try:
        s.plausible = seed(s)
        yield s
    finally:
        s.close()


def seed(s: Stack) -> dict[str, st.SearchStrategy]:
    """Known ids to aim at, and plausible values by field name, so a request gets past its first
    field and its lookups."""
    intake = Intake(s.env)
    try:
        village = intake.village().id
        unit = intake.unit().id
        demand = intake.demand(village, ("RICE-10KG", 2)).id
        requisition = intake.FileRequisition(intake_pb2.FileRequisitionRequest(
            idempotency_key=uuid.uuid4().hex, unit_id=unit, purpose="发热门诊", headcount_basis=50,
            lines=[common_pb2.ItemLine(item_code="MASK-N95", quantity=100)])).id
        donation = intake.RegisterDonation(intake_pb2.RegisterDonationRequest(
            idempotency_key=uuid.uuid4().hex, donor=intake_pb2.Donor(name="爱心企业", contact="13812345678", kind=intake_pb2.DONOR_KIND_ORGANIZATION),
            lines=[intake_pb2.DonationLineSpec(item_code="RICE-10KG", quantity=10, lot="B-1",
                                               expiry=(county_today() + timedelta(days=200)).isoformat())])).id
    finally:
        intake.close()
    depot = "D-FZ"
    s.call("logistics", "RegisterDepot", logistics_pb2.RegisterDepotRequest(
        idempotency_key=uuid.uuid4().hex, depot=logistics_pb2.Depot(
            id=depot, name="城关仓", location=common_pb2.GeoPoint(lat=30.3, lon=120.1))))
    for zone, sclass in (("AMB", "ambient"), ("CHL", "chilled")):
        s.call("logistics", "RegisterZone", logistics_pb2.RegisterZoneRequest(
            idempotency_key=uuid.uuid4().hex, zone=logistics_pb2.Zone(
                id=f"{depot}-{zone}", depot_id=depot, storage_class=sclass, capacity_l=100_000)))
    receipt = s.call("logistics", "ReceiveStock", logistics_pb2.ReceiveStockRequest(
        idempotency_key=uuid.uuid4().hex, kind=logistics_pb2.RECEIPT_KIND_PURCHASE, depot_id=depot,
        origin_ref="PO-1", lines=[logistics_pb2.ReceiptLineSpec(
            item_code=item, quantity=100, lot_number="B-1",
            expiry=(county_today() + timedelta(days=200)).isoformat()) for item in ("RICE-10KG", "OIL-5L")]))
    lots = [lot.lot_id for lot in receipt.lots]
    alert = seed_alert(s)

    days = [(county_today() + timedelta(days=d)).isoformat() for d in (0, 1, 2)]
    words = st.sampled_from(["河西村", "县人民医院", "城关镇", "司机甲", "复核后放行", "INS-1", "PO-1"])
    one = st.sampled_from
    return {
        "requester_id": one([village, unit]), "unit_id": one([unit]), "target_requester_id": one([village]),
        "redirect_to": one([village]), "Requester.id": st.builds(lambda: uid("F")),
        "demand_id": one([demand]), "requisition_id": one([requisition]), "donation_id": one([donation]),
        "line_no": st.integers(0, 2), "alert_id": one([alert]), "plan_id": one(["P-unknown"]),
        "item_code": one(["RICE-10KG", "OIL-5L", "PORK-KG", "MASK-N95", "MILK-1L", "BAIJIU-500ML"]),
        "quantity": st.integers(1, 50), "received": st.integers(0, 5), "population": st.integers(0, 5000),
        "households": st.integers(0, 2000), "headcount": st.integers(1, 500), "beds": st.integers(0, 200),
        "headcount_basis": st.integers(1, 500), "period_days": st.integers(0, 30),
        "expected_version": st.integers(0, 3), "capacity_l": st.integers(1, 100_000),
        "capacity_kg": st.integers(1, 10_000), "cutoff_days_before": st.integers(0, 2),
        "min_days_to_expiry": st.integers(0, 30), "lat": st.floats(29, 31), "lon": st.floats(119, 121),
        "delivery_day": one(days + [""]), "day": one(days), "expiry": one(days[1:] + ["2099-01-01"]),
        "production_date": one(days[:1]), "start": one(["08:00", "07:00"]), "end": one(["10:30", "18:00"]),
        "cutoff": one(["11:00"]), "dispatch_deadline": one(["16:00"]), "timezone": one(["Asia/Shanghai"]),
        "depot_id": one([depot]), "zone_id": one([f"{depot}-AMB", f"{depot}-CHL", ""]),
        "Depot.id": st.builds(lambda: uid("D")), "Zone.id": st.builds(lambda: uid("Z")),
        "Vehicle.id": st.builds(lambda: uid("VH")), "storage_class": one(["ambient", "chilled", "frozen"]),
        "lot_id": one(lots), "ReceiptLineSpec.lot_id": one([""]), "plan_line_id": one(["PL-1"]),
        "trip_id": one(["T-unknown"]), "drop_point_id": one(["DP1"]), "proof_ref": one(["photo:" + "c0" * 32]),
        "product": one(["CABBAGE", "PORK", "EGG"]), "market": one(["城关农贸市场"]),
        "price_yuan": one(["3.50", "12.50", "30"]), "phone": one(["13812345678"]),
        "contact": one(["13812345678"]), "paths": one(["name", "population", "drop_points", "risk_level",
                                                      "cutoff", "tier_order", "reserve_days", "min_days_to_expiry"]),
        "key": one(["grain_oil", "pork"]), "value": st.floats(0, 30),
        "content": one([(ROOT / "simulators/scenarios/samples/requesters.csv").read_bytes()]),
        **{name: words for name in ("name", "township", "driver", "clerk", "pass_number", "receiver", "note",
                                    "reason", "purpose", "lot", "lot_number", "origin_ref", "inspection_ref",
                                    "doc_type", "doc_id", "target_use", "updated_by", "certificates")},
    }


def seed_alert(s: Stack) -> str:
    """A reserve alert, raised by the handler monitoring's worker runs on `reserve_below_floor`."""
    settings_ = load_settings("monitoring", s.env)
    ctx = monitoring_base.MonitoringContext(
        engine=s.engines["monitoring"], catalogue=load_catalogue(), clock=RealClock(),
        config=monitoring_config(settings_), timezone=COUNTY_TZ)
    with ctx.uow() as uow:
        monitoring_lots.reserve_below_floor(ctx, uow, {"payload": {
            "group": "grain_oil", "days_of_supply": 9.5, "floor_days": 15}})
        uow.commit()
    alerts = s.call("monitoring", "ListAlerts", monitoring_pb2.ListAlertsRequest()).alerts
    return alerts[0].alert_id


# ---- the property ------------------------------------------------------------------------
def bad_field(err: grpc.RpcError) -> str:
    try:
        status = rpc_status.from_call(err)
    except Exception:  # noqa: BLE001 - a malformed status is reported by the code check
        return ""
    for detail in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad) and bad.field_violations:
            return bad.field_violations[0].field
    return ""


class Findings:
    """Distinct problems of one RPC: by kind, code and the message's shape, with a count and the
    first request that showed each."""

    def __init__(self):
        self.first: dict[tuple, str] = {}
        self.counts: Counter = Counter()

    def add(self, kind: str, code: grpc.StatusCode, message: str, fuzzed: Fuzzed, extra: str = "",
            cause: str = "") -> None:
        shape = re.sub(r"[0-9a-f]{8,}|\d+", "#", cause[:120] or message[:80])
        key = (kind, code.name, shape)
        self.counts[key] += 1
        self.first.setdefault(key, f"{extra}{fuzzed!r}")

    def report(self) -> str:
        return "\n".join(f"- {kind} {code} ×{self.counts[k]}: {shape!r}\n    {self.first[k]}"
                         for k in self.counts for kind, code, shape in [k])


def check(stack: Stack, service: str, method: str, fuzzed: Fuzzed, findings: Findings) -> None:
    before = stack.digest(service)
    code, message = C.OK, ""
    try:
        stack.call(service, method, fuzzed.message)
    except grpc.RpcError as err:
        code, message = err.code(), err.details() or ""
    if code not in REFUSALS | DOCUMENTED_EXTRA.get(method, set()):
        findings.add("undocumented code", code, message, fuzzed, cause=stack.cause(service, message))
    if len(message) > MAX_MESSAGE:
        findings.add(f"message of {len(message)} chars", code, message, fuzzed)
    if code != C.OK:
        after = stack.digest(service)
        if after != before:
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            findings.add("state changed on refusal", code, message, fuzzed, f"{changed} ")


@pytest.mark.parametrize("service,method", [(s, m) for s in SERVICES for m in WRITE_RPCS[s]],
                         ids=lambda v: v)
def test_write_rpc_answers_hostile_input_with_documented_codes(stack, service, method):
    descriptor = service_descriptor(service).methods_by_name[method]
    request_class = getattr(MODULES[service][0], descriptor.input_type.name)
    strategy = requests(descriptor, stack.plausible, request_class)
    findings = Findings()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(st.data())
    def fuzz(data):
        check(stack, service, method, data.draw(strategy, label="request"), findings)

    fuzz()
    assert stack.serving(service), f"{service} no longer SERVING after {method}:\n{stack.procs[service].log()[-3000:]}"
    assert not findings.counts, f"{method}: {sum(findings.counts.values())} bad answers\n{findings.report()}"


# ---- the findings of issue #14 that the field limits answer, case by case ---------------------
def refusal(stack: Stack, service: str, method: str, request) -> grpc.RpcError:
    before = stack.digest(service)
    with pytest.raises(grpc.RpcError) as caught:
        stack.call(service, method, request)
    assert stack.digest(service) == before, "a refused call changed the database"
    return caught.value


@pytest.mark.parametrize("size", [1 << 20, 10 << 20])
def test_finding_3_a_huge_zone_name_is_refused_naming_the_field_without_echoing_it(stack, size):
    err = refusal(stack, "logistics", "RegisterZone", logistics_pb2.RegisterZoneRequest(
        idempotency_key=uuid.uuid4().hex, zone=logistics_pb2.Zone(
            id=uid("Z"), depot_id="D-FZ", name="冷" * size, storage_class="chilled", capacity_l=100)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_field(err) == "zone.name" and len(err.details()) < 300


def test_finding_3_a_huge_driver_name_never_reaches_the_bus(stack):
    err = refusal(stack, "logistics", "RegisterVehicle", logistics_pb2.RegisterVehicleRequest(
        idempotency_key=uuid.uuid4().hex, vehicle=logistics_pb2.Vehicle(
            id=uid("VH"), depot_id="D-FZ", driver="司" * (10 << 20), pass_number="P-1", capacity_kg=1000)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(err) == "vehicle.driver"


@pytest.mark.parametrize("lot_number", ["B\x00-1", "B-1\u202e", "B-1\x1b[2J"])
def test_finding_3_control_characters_in_a_lot_number_are_invalid_not_internal(stack, lot_number):
    err = refusal(stack, "logistics", "ReceiveStock", logistics_pb2.ReceiveStockRequest(
        idempotency_key=uuid.uuid4().hex, kind=logistics_pb2.RECEIPT_KIND_PURCHASE, depot_id="D-FZ",
        origin_ref="PO-2", lines=[logistics_pb2.ReceiptLineSpec(
            item_code="RICE-10KG", quantity=1, lot_number=lot_number,
            expiry=(county_today() + timedelta(days=90)).isoformat())]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(err) == "lines[0].lot_number"


def test_finding_3_a_nul_in_the_idempotency_key_is_invalid_not_internal(stack):
    err = refusal(stack, "intake", "CancelDemand", intake_pb2.CancelDemandRequest(
        idempotency_key="k\x00", demand_id="DM-unknown"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(err) == "idempotency_key"


def test_finding_4_a_delivery_received_at_the_end_of_time_is_invalid_not_internal(stack):
    request = logistics_pb2.ConfirmDeliveryRequest(
        idempotency_key=uuid.uuid4().hex, trip_id="T-unknown", requester_id="V-1", drop_point_id="DP1",
        receiver="村专班", proof_ref="photo:" + "c0" * 32)
    request.received_at.seconds = 2**63 - 1
    err = refusal(stack, "logistics", "ConfirmDelivery", request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(err) == "received_at"


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2026-02-30"])
def test_finding_4_prices_for_a_day_out_of_range_are_invalid_not_internal(stack, day):
    err = refusal(stack, "monitoring", "SubmitPrices", monitoring_pb2.SubmitPricesRequest(
        idempotency_key=uuid.uuid4().hex, prices=[monitoring_pb2.PriceReport(
            product="PORK", market="城关农贸市场", day=day, price_yuan="30.00")]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_field(err) == "prices[0].day"
