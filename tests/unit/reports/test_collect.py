"""collect_day against hand-written fake stubs: every answer mapped into DayFacts, pages followed,
the day's window in county time, receipt quantities from the ledger, the caller's metadata on
every call, and what happens when a service refuses or does not answer."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import grpc
import pytest
from supply.v1 import allocation_pb2 as apb
from supply.v1 import common_pb2 as cpb
from supply.v1 import intake_pb2 as ipb
from supply.v1 import logistics_pb2 as lpb
from supply.v1 import market_pb2 as kpb
from supply.v1 import monitoring_pb2 as mpb

from services.reports.collect import CollectError, Stubs, collect_day

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 1)
MD = [("authorization", "Bearer tok-hq-0000000000001")]
LEDGER_HEADER = ("seq,at_utc,at_us,kind,lot_id,item_code,depot_id,zone_id,quantity,on_hand_delta,"
                 "reserved_delta,quarantined_delta,actor,reason,doc_type,doc_id,plan_line_id,expiry,"
                 "prev_hash,hash\n")


class Failure(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "down"):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


def ts(at: datetime):
    from google.protobuf.timestamp_pb2 import Timestamp

    t = Timestamp()
    t.FromDatetime(at)
    return t


class Fake:
    """Answers from a dict method → function(request); records (method, request, metadata)."""

    def __init__(self, calls: list, **answers):
        self.calls, self.answers = calls, answers

    def __getattr__(self, name: str):
        def call(request, metadata=None, timeout=None):
            self.calls.append((name, request, metadata))
            answer = self.answers[name]
            if isinstance(answer, grpc.RpcError):
                raise answer
            return answer(request)
        return call


def paged(pages: list, response, field: str):
    """ListX answers: page i for token str(i)."""
    def answer(request):
        i = int(request.page.page_token or 0)
        token = str(i + 1) if i + 1 < len(pages) else ""
        return response(**{field: pages[i]}, page=cpb.PageInfo(next_page_token=token))
    return answer


ON_DAY = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 01:00 on DAY county time
BEFORE = datetime(2026, 11, 30, 15, 59, tzinfo=UTC)  # 23:59 the day before


def stubs(calls: list, **overrides) -> Stubs:
    receipts = [
        [lpb.Receipt(receipt_id="RC-OLD", kind="purchase", depot_id="D1", status="accepted",
                     received_at=ts(BEFORE), lots=[lpb.Lot(lot_id="RC-OLD/1", item_code="RICE-10KG",
                                                          on_hand=5)])],
        [lpb.Receipt(receipt_id="RC-1", kind="purchase", depot_id="D1", status="accepted",
                     origin_ref="PO-1", received_by="keeper", received_at=ts(ON_DAY),
                     lots=[lpb.Lot(lot_id="RC-1/1", item_code="RICE-10KG", lot_number="B1",
                                   expiry="2027-06-01", on_hand=40)]),
         lpb.Receipt(receipt_id="RC-DON-9-0", kind="donation", depot_id="D1", status="accepted",
                     origin_ref="DON-9#0", received_at=ts(ON_DAY),
                     lots=[lpb.Lot(lot_id="RC-DON-9-0/1", item_code="MASK-N95", on_hand=300)])],
    ]
    ledger = (LEDGER_HEADER + "1,x,0,receipt,RC-OLD/1,RICE-10KG,D1,Z,5,5,0,0,k,,receipt,RC-OLD,,,a,b\n"
              "2,x,0,receipt,RC-1/1,RICE-10KG,D1,Z,100,100,0,0,k,,receipt,RC-1,,,b,c\n"
              "3,x,0,issue,RC-1/1,RICE-10KG,D1,Z,-60,-60,0,0,k,,delivery,DL-1,PL-1,,c,d\n"
              "4,x,0,receipt,RC-DON-9-0/1,MASK-N95,D1,Z,300,300,0,0,k,,receipt,RC-DON-9-0,,,d,e\n")
    data = ("\ufeff" + ledger).encode()
    plan = apb.Plan(plan_id="P-2", delivery_day=DAY.isoformat(), version=2,
                    status=apb.PLAN_STATUS_APPROVED, decided_by="hq-officer",
                    decided_at=ts(ON_DAY), totals=apb.PlanTotals(lines=2, asked=150, allocated=120,
                                                                 unmet=30, unmet_lines=1),
                    tiers=[apb.TierTotals(tier=cpb.TIER_SEALED_AREA, lines=2, asked=150,
                                          allocated=120, unmet=30)],
                    warnings=[apb.PlanWarning(code="RESERVE_DRAWN", zh="动用储备", en="reserve drawn")])
    line = apb.PlanLine
    plan_pages = [
        [line(plan_line_id="P-2-00001", demand_id="DM-1", demand_line_no=0, requester_id="V1",
              item_code="RICE-10KG", tier=cpb.TIER_SEALED_AREA, asked=100, allocated=100,
              picks=[apb.LotPick(depot_id="D1", lot_id="RC-1/1", quantity=100)],
              reasons=[cpb.Reason(code="TIER_ORDER", zh="按优先级", en="tier order")])],
        [line(plan_line_id="P-2-00002", demand_id="DM-1", demand_line_no=1, requester_id="V1",
              item_code="VEG-CABBAGE", tier=cpb.TIER_SEALED_AREA, asked=50, allocated=20, unmet=30,
              substitution=apb.Substitution(package_code="VEG-PACK-STD", packages=2, covers=0),
              reasons=[cpb.Reason(code="NO_STOCK", zh="库存不足", en="no stock")])],
    ]

    def get_plan(request):
        assert request.plan_id == "P-2"  # the approved version, not the latest rejected one
        i = int(request.lines_page.page_token or 0)
        return apb.PlanPage(plan=plan, lines=plan_pages[i], page=cpb.PageInfo(
            next_page_token="1" if i == 0 else "", total=2))

    demand_pages = [
        [ipb.Demand(id="DM-1", requester_id="V1", delivery_day=DAY.isoformat(),
                    status=ipb.DEMAND_STATUS_PARTLY_FULFILLED, origin=ipb.DEMAND_ORIGIN_DIRECT,
                    lines=[ipb.DemandLine(line_no=0, item_code="RICE-10KG", quantity=100,
                                          tier=cpb.TIER_SEALED_AREA, delivered=100),
                           ipb.DemandLine(line_no=1, item_code="VEG-CABBAGE", quantity=50,
                                          tier=cpb.TIER_SEALED_AREA)])],
        [ipb.Demand(id="DM-2", requester_id="V1", status=ipb.DEMAND_STATUS_OPEN,
                    origin=ipb.DEMAND_ORIGIN_SPECIAL_NEED, rolled_over=True,
                    lines=[ipb.DemandLine(line_no=0, item_code="FORMULA-STAGE1", quantity=2,
                                          tier=cpb.TIER_VULNERABLE, special_need_id="SN-1")])],
    ]
    trips = lpb.ListTripsResponse(
        trips=[lpb.Trip(trip_id="TR-1", plan_id="P-2", depot_id="D1", vehicle_id="T-7",
                        pass_number="通-7", driver="司机甲", clerk="", status="scheduled",
                        distance_m=8000, load_kg=1000.0,
                        stops=[lpb.TripStop(seq=1, requester_id="V1", drop_point_id="DP1",
                                            delivered=True, lines=[lpb.ManifestLine(
                                                plan_line_id="P-2-00001/1", demand_id="DM-1",
                                                item_code="RICE-10KG", quantity=100)])])],
        dispatches=[lpb.Dispatch(plan_id="P-2", status="dispatched", staffing_required=4,
                                 staffing_short=1, unmet=[lpb.UnmetLine(
                                     plan_line_id="P-2-00002/1", demand_id="DM-1",
                                     item_code="VEG-CABBAGE", depot_id="D1", quantity=20,
                                     reason=cpb.Reason(code="NO_VEHICLE", zh="无车", en="no van"))])])

    def alerts(request):
        assert request.opened_after.ToDatetime(tzinfo=UTC) == datetime(2026, 11, 30, 16, tzinfo=UTC)
        assert request.opened_before.ToDatetime(tzinfo=UTC) == datetime(2026, 12, 1, 16, tzinfo=UTC)
        return mpb.ListAlertsResponse(alerts=[mpb.Alert(
            alert_id="A-1", kind=mpb.ALERT_KIND_SPOILAGE, severity=mpb.SEVERITY_CRITICAL,
            state=mpb.ALERT_STATE_ACKNOWLEDGED, depot="D1", zone="D1-CHL", rule_code="SPOILAGE_RRS",
            title_zh="变质", title_en="spoiled", opened_at=ts(ON_DAY), acknowledged_by="keeper")])

    answers = {
        "intake": dict(
            ListRequesters=paged([[ipb.Requester(id="V1", kind=ipb.REQUESTER_KIND_VILLAGE,
                                                 name="东风村", township="河西镇")]],
                                 ipb.ListRequestersResponse, "requesters"),
            ListDemands=paged(demand_pages, ipb.ListDemandsResponse, "demands"),
            GetDonationSummary=lambda r: ipb.DonationSummary(day=r.day, donations_received=1, items=[
                ipb.DonationItemSummary(item_code="MASK-N95", received=ipb.Tally(lines=1, quantity=500),
                                        accepted=ipb.Tally(lines=1, quantity=300),
                                        returned=ipb.Tally(lines=1, quantity=200))]),
            GetDonation=lambda r: ipb.Donation(id=r.donation_id, donor_kind=ipb.DONOR_KIND_PERSON,
                                               donor_name="王**", donor_contact="139****5678",
                                               targeted=True, target_use="发热门诊")),
        "allocation": dict(
            ListPlans=lambda r: apb.ListPlansResponse(plans=[
                apb.Plan(plan_id="P-1", version=1, status=apb.PLAN_STATUS_SUPERSEDED),
                apb.Plan(plan_id="P-2", version=2, status=apb.PLAN_STATUS_APPROVED),
                apb.Plan(plan_id="P-3", version=3, status=apb.PLAN_STATUS_REJECTED)]),
            GetPlan=get_plan),
        "logistics": dict(
            ListReceipts=paged(receipts, lpb.ListReceiptsResponse, "receipts"),
            ExportLedger=lambda r: iter([lpb.FileChunk(data=data[:50]),
                                         lpb.FileChunk(data=data[50:], last=True)]),
            GetStock=lambda r: lpb.StockSummary(ledger_seq=4, lines=[lpb.StockLine(
                depot_id="D1", zone_id="Z", item_code="RICE-10KG", on_hand=45, reserved=5,
                available=40, lots=2)]),
            GetDaysOfSupply=lambda r: lpb.DaysOfSupply(day=r.day, population=900, groups=[
                lpb.GroupSupply(group="grain_oil", name_zh="成品粮油", name_en="grain and oil",
                                usable_kg=450, daily_kg=90, days=5, reserve_days=15,
                                below_floor=True),
                lpb.GroupSupply(group="pork", name_zh="猪肉", name_en="pork", reserve_days=3)]),
            ListTrips=lambda r: trips,
            ReconcileLedger=lambda r: lpb.ReconcileReport(ok=True, lines_checked=4, lots_checked=2,
                                                          head_seq=4)),
        "monitoring": dict(ListAlerts=alerts),
        "market": dict(GetChannelSummary=lambda r: kpb.ChannelSummary(
            day=r.day, household_orders=5, on_account_orders=1, parcels=4, parcels_refused=1,
            ordered_fen=12345, on_account_owed_fen=2000)),
    }
    for service, methods in overrides.items():
        if methods is None:
            answers[service] = None
        else:
            answers[service].update(methods)
    return Stubs(**{s: None if a is None else Fake(calls, **a) for s, a in answers.items()})


def collect(**overrides):
    calls: list = []
    facts = collect_day(DAY, stubs(calls, **overrides), metadata=MD, tz=TZ,
                        now=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    return facts, calls


def test_every_answer_is_mapped_and_every_page_read():
    f, calls = collect()
    assert [r.receipt_id for r in f.receipts] == ["RC-1", "RC-DON-9-0"]  # RC-OLD: the day before
    assert f.receipt_quantities == "ledger"
    assert [ln.quantity for r in f.receipts for ln in r.lines] == [100, 300]  # not on hand (40)
    assert f.receipts[0].lines[0].lot_number == "B1" and f.receipts[0].received_by == "keeper"
    d = f.donations
    assert d.donations_received == 1 and d.items[0].returned == 200
    assert [(x.donation_id, x.donor_name, x.donor_kind, x.items) for x in d.donors] == [
        ("DON-9", "王**", "person", (("MASK-N95", 300),))]
    assert f.stock[0].on_hand == 45 and f.stock_ledger_seq == 4 and f.supply_population == 900
    assert [(g.group, g.days, g.below_floor) for g in f.supply] == [("grain_oil", 5, True),
                                                                   ("pork", None, False)]
    assert [(x.demand_id, x.status, x.origin, x.rolled_over) for x in f.demands] == [
        ("DM-1", "partly_fulfilled", "direct", False), ("DM-2", "open", "special_need", True)]
    assert [ln.delivered for ln in f.demands[0].lines] == [100, None]
    assert f.demands[1].lines[0].special_need
    p = f.plan
    assert (p.plan_id, p.status, p.asked, p.allocated, p.unmet, p.decided_by) == (
        "P-2", "approved", 150, 120, 30, "hq-officer")
    assert [v.status for v in f.plan_versions] == ["superseded", "approved", "rejected"]
    assert [ln.plan_line_id for ln in p.lines] == ["P-2-00001", "P-2-00002"]
    assert p.lines[0].depots == ("D1",) and p.lines[1].reasons[0].zh == "库存不足"
    assert (p.lines[1].package_code, p.lines[1].packages) == ("VEG-PACK-STD", 2)
    assert p.warnings[0].code == "RESERVE_DRAWN" and p.tiers[0].tier == 3
    t = f.trips[0]
    assert (t.trip_id, t.crew_of_two, t.stops[0].delivered) == ("TR-1", False, True)
    assert t.stops[0].lines == (("P-2-00001/1", "DM-1", "RICE-10KG", 100),)
    assert f.dispatches[0].unmet[0].reason.code == "NO_VEHICLE" and f.dispatches[0].staffing_short == 1
    a = f.alerts[0]
    assert (a.kind, a.severity, a.state, a.acknowledged) == ("spoilage", "critical",
                                                             "acknowledged", True)
    assert f.reconciliation.ok and f.requesters["V1"].name == "东风村"
    assert f.items["RICE-10KG"].unit == "bag" and f.notes == []
    assert len(calls) >= 14 and all(m == MD for _, _, m in calls)  # the caller's token
    assert sum(1 for name, _, _ in calls if name == "ListDemands") == 2
    assert sum(1 for name, _, _ in calls if name == "GetPlan") == 2
    assert all(r.delivery_day == "2026-12-01" for n, r, _ in calls if n == "ListDemands")
    # headline: cancelled none; 152 asked, 100 delivered; the plan's 120 allocated to tier 3
    total = f.total_fill()
    assert (total.demands, total.asked, total.delivered) == (2, 152, 100)
    assert [(x.tier, x.asked, x.allocated) for x in f.tier_fills()] == [(2, 2, 0), (3, 150, 120)]


def test_monitoring_down_only_marks_the_alerts_unavailable():
    f, _ = collect(monitoring={"ListAlerts": Failure(grpc.StatusCode.UNAVAILABLE)})
    assert f.alerts is None and f.notes == ["alerts: monitoring unavailable (UNAVAILABLE)"]
    assert f.plan is not None and f.demands
    f, _ = collect(monitoring=None)
    assert f.alerts is None and "not configured" in f.notes[0]


def test_the_supermarket_channel_is_read_for_the_day_and_its_absence_only_noted():
    f, calls = collect()
    assert (f.channel.household_orders, f.channel.parcels_refused, f.channel.ordered_fen,
            f.channel.on_account_owed_fen) == (5, 1, 12345, 2000)
    assert [r.day for name, r, _ in calls if name == "GetChannelSummary"] == ["2026-12-01"]
    f, _ = collect(market={"GetChannelSummary": Failure(grpc.StatusCode.UNAVAILABLE)})
    assert f.channel is None and f.notes == ["channel: market unavailable (UNAVAILABLE)"] and f.plan
    f, _ = collect(market=None)
    assert f.channel is None and f.notes == ["channel: market not configured"]


@pytest.mark.parametrize("service,method", [("intake", "ListDemands"),
                                            ("logistics", "GetStock"),
                                            ("allocation", "ListPlans")])
def test_another_service_down_fails_the_collection(service, method):
    with pytest.raises(CollectError) as exc:
        collect(**{service: {method: Failure(grpc.StatusCode.UNAVAILABLE)}})
    assert exc.value.unreachable and exc.value.service == service and exc.value.method == method


def test_a_caller_without_the_audit_role_gets_the_report_with_notes():
    denied = Failure(grpc.StatusCode.PERMISSION_DENIED, "role 'x' may not do this")
    f, _ = collect(logistics={"ExportLedger": denied, "ReconcileLedger": denied})
    assert f.receipt_quantities == "on_hand_now"
    assert [ln.quantity for r in f.receipts for ln in r.lines] == [40, 300]
    assert f.reconciliation is None
    assert any(n.startswith("receipts: ledger not readable") for n in f.notes)
    assert any(n.startswith("ledger reconciliation: not run") for n in f.notes)


def test_without_an_approved_plan_the_latest_version_is_shown_and_noted():
    proposed = apb.Plan(plan_id="P-2", version=2, status=apb.PLAN_STATUS_PROPOSED)
    f, _ = collect(allocation={
        "ListPlans": lambda r: apb.ListPlansResponse(plans=[
            apb.Plan(plan_id="P-1", version=1, status=apb.PLAN_STATUS_SUPERSEDED), proposed]),
        "GetPlan": lambda r: apb.PlanPage(plan=proposed)})
    assert (f.plan.plan_id, f.plan.status, f.plan.approved) == ("P-2", "proposed", False)
    assert any(n.startswith("plan: no approved plan") for n in f.notes)
    f, _ = collect(allocation={"ListPlans": lambda r: apb.ListPlansResponse()})
    assert f.plan is None and f.plan_versions == []
