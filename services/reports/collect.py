"""The facts of one county day, gathered over the services' public gRPC APIs (never their
databases): intake (demands, requesters, donations), allocation (the day's plan), logistics
(receipts, stock, days of supply, trips, ledger) and monitoring (alerts).

Monitoring is optional: when it does not answer, `DayFacts.alerts` is None and the report says
the section is unavailable. Any other service that does not answer raises CollectError.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from supply.v1 import (
    allocation_pb2,
    allocation_pb2_grpc,
    common_pb2,
    intake_pb2,
    intake_pb2_grpc,
    logistics_pb2,
    logistics_pb2_grpc,
    market_pb2,
    market_pb2_grpc,
    monitoring_pb2,
    monitoring_pb2_grpc,
)

from services.common.catalogue import Catalogue, load_catalogue
from services.common.config import PLAINTEXT, SERVICES, GrpcTls
from services.common.grpc_client import open_channel
from services.reports.domain.facts import (
    AlertFact,
    ChannelFact,
    DayFacts,
    DemandFact,
    DemandLineFact,
    DispatchFact,
    DonationFacts,
    DonationItem,
    DonorFact,
    GroupSupplyFact,
    ItemInfo,
    MaterialClassFact,
    PlanFact,
    PlanLineFact,
    PlanTierFact,
    PlanVersionFact,
    ReasonFact,
    ReceiptFact,
    ReceiptLine,
    ReconcileFact,
    RequesterFact,
    StockFact,
    StopFact,
    TripFact,
    UnmetDispatchFact,
)

MAX_MESSAGE = 64 * 1024 * 1024
PAGE = 500
PLAN_PAGE = 1000
UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

READ_SERVICES = (*SERVICES, "market")  # the services whose APIs the report reads


# ---- calling the services -----------------------------------------------------------------------
class CollectError(Exception):
    """A service refused or did not answer. `code` is the gRPC status the caller may pass on."""

    def __init__(self, service: str, method: str, code: grpc.StatusCode | None, details: str):
        self.service, self.method = service, method
        self.code = code or grpc.StatusCode.UNKNOWN
        self.details = details
        super().__init__(f"{service}.{method}: {self.code.name} {details}")

    @property
    def unreachable(self) -> bool:
        return self.code in UNREACHABLE


@dataclass
class Stubs:
    """One stub per service (anything whose methods take (request, metadata=, timeout=));
    monitoring may be None (then alerts are 'unavailable'), market too (then the supermarket
    channel is)."""

    intake: Any
    allocation: Any
    logistics: Any
    monitoring: Any | None = None
    market: Any | None = None


class LocalStub:
    """A servicer of this process called like a stub (the allocation API reading its own plans
    without a network round trip through its own thread pool)."""

    def __init__(self, servicer: Any):
        self._servicer = servicer

    def __getattr__(self, name: str):
        method = getattr(self._servicer, name)

        def call(request, metadata=None, timeout=None):
            return method(request, None)
        return call


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", token if token.lower().startswith("bearer ") else f"Bearer {token}")]


@contextmanager
def connect(targets: Mapping[str, str], tls: GrpcTls = PLAINTEXT) -> Iterator[Stubs]:
    """Stubs over channels to `targets` (service → host:port; a missing service gets no stub:
    give allocation a LocalStub in its own process), over TLS when `tls` says so."""
    options = [("grpc.max_receive_message_length", MAX_MESSAGE)]
    channels = {s: open_channel(t, tls, options=options) for s, t in targets.items()}
    kinds = {"intake": intake_pb2_grpc.IntakeServiceStub,
             "allocation": allocation_pb2_grpc.AllocationServiceStub,
             "logistics": logistics_pb2_grpc.LogisticsServiceStub,
             "monitoring": monitoring_pb2_grpc.MonitoringServiceStub,
             "market": market_pb2_grpc.MarketServiceStub}
    try:
        made = {s: kinds[s](ch) for s, ch in channels.items() if s in kinds}
        yield Stubs(intake=made.get("intake"), allocation=made.get("allocation"),
                    logistics=made.get("logistics"), monitoring=made.get("monitoring"),
                    market=made.get("market"))
    finally:
        for ch in channels.values():
            ch.close()


def _name(enum, value: int, prefix: str) -> str:
    try:
        return enum.Name(value).removeprefix(prefix).lower()
    except ValueError:
        return str(value)


def _dt(msg, name: str) -> datetime | None:
    return getattr(msg, name).ToDatetime(tzinfo=UTC) if msg.HasField(name) else None


class _Collector:
    def __init__(self, stubs: Stubs, metadata: list[tuple[str, str]], day: date, tz: ZoneInfo,
                 timeout: float):
        self.stubs, self.metadata, self.day, self.tz, self.timeout = stubs, metadata, day, tz, timeout
        self.start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        self.end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        self.notes: list[str] = []

    def call(self, service: str, method: str, request):
        stub = getattr(self.stubs, service)
        try:
            return getattr(stub, method)(request, metadata=self.metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise CollectError(service, method, code, details or "") from None

    def pages(self, service: str, method: str, make, items: str) -> Iterator:
        token = ""
        while True:
            resp = self.call(service, method, make(common_pb2.PageRequest(page_size=PAGE,
                                                                          page_token=token)))
            yield from getattr(resp, items)
            token = resp.page.next_page_token
            if not token:
                return

    def on_day(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end

    # ---- intake
    def requesters(self) -> dict[str, RequesterFact]:
        kinds = intake_pb2.RequesterKind
        return {r.id: RequesterFact(r.id, r.name, r.township,
                                    _name(kinds, r.kind, "REQUESTER_KIND_"))
                for r in self.pages("intake", "ListRequesters",
                                    lambda p: intake_pb2.ListRequestersRequest(page=p), "requesters")}

    def demands(self) -> list[DemandFact]:
        out = []
        for d in self.pages("intake", "ListDemands", lambda p: intake_pb2.ListDemandsRequest(
                page=p, delivery_day=self.day.isoformat()), "demands"):
            lines = tuple(DemandLineFact(
                ln.line_no, ln.item_code, int(ln.tier), int(ln.quantity),
                int(ln.delivered) if ln.HasField("delivered") else None, bool(ln.special_need_id))
                for ln in d.lines)
            out.append(DemandFact(d.id, d.requester_id,
                                  _name(intake_pb2.DemandStatus, d.status, "DEMAND_STATUS_"),
                                  lines, _name(intake_pb2.DemandOrigin, d.origin, "DEMAND_ORIGIN_"),
                                  d.rolled_over, d.flagged))
        return out

    def donations(self, receipts: list[ReceiptFact]) -> DonationFacts:
        s = self.call("intake", "GetDonationSummary",
                      intake_pb2.GetDonationSummaryRequest(day=self.day.isoformat()))
        items = tuple(DonationItem(x.item_code, int(x.received.quantity), int(x.accepted.quantity),
                                   int(x.redirected.quantity), int(x.returned.quantity),
                                   int(x.received.lines)) for x in s.items)
        # donors of what went into stock on the day: donation receipts cite "<donation_id>#<line>"
        stocked: dict[str, list[tuple[str, int]]] = {}
        for r in receipts:
            if r.kind == "donation" and r.status == "accepted" and "#" in r.origin_ref:
                stocked.setdefault(r.origin_ref.split("#", 1)[0], []).extend(
                    (ln.item_code, ln.quantity) for ln in r.lines)
        donors = []
        for donation_id, lines in stocked.items():
            try:
                d = self.call("intake", "GetDonation",
                              intake_pb2.GetDonationRequest(donation_id=donation_id))
            except CollectError as exc:
                if exc.unreachable:
                    raise
                self.notes.append(f"donors: donation {donation_id} not readable ({exc.code.name})")
                continue
            donors.append(DonorFact(d.id, d.donor_name,
                                    _name(intake_pb2.DonorKind, d.donor_kind, "DONOR_KIND_"),
                                    d.targeted, d.target_use, tuple(lines)))
        return DonationFacts(int(s.donations_received), items, tuple(donors))

    # ---- logistics
    def receipts(self) -> tuple[list[ReceiptFact], str]:
        """Receipts received on the day (ListReceipts has no day filter: every page is read),
        with the quantity each lot received from the ledger (Lot carries only today's
        balance)."""
        day_receipts = [r for r in self.pages(
            "logistics", "ListReceipts", lambda p: logistics_pb2.ListReceiptsRequest(page=p),
            "receipts") if self.on_day(_dt(r, "received_at"))]
        lot_ids = {lot.lot_id for r in day_receipts for lot in r.lots}
        received: dict[str, int] | None = {}
        if lot_ids:
            try:
                received = self.received_quantities(lot_ids)
            except CollectError as exc:
                if exc.unreachable:
                    raise
                self.notes.append(f"receipts: ledger not readable ({exc.code.name}); quantities "
                                  f"are what the lots hold now")
                received = None
        out = []
        for r in day_receipts:
            lines = tuple(ReceiptLine(
                lot.lot_id, lot.item_code,
                received.get(lot.lot_id, int(lot.on_hand)) if received is not None
                else int(lot.on_hand), lot.lot_number, lot.expiry) for lot in r.lots)
            out.append(ReceiptFact(r.receipt_id, r.kind, r.depot_id, _dt(r, "received_at"),
                                   r.status, r.origin_ref, r.received_by, r.rule_code, r.message,
                                   lines))
        out.sort(key=lambda r: (r.received_at, r.receipt_id))
        return out, "ledger" if received is not None else "on_hand_now"

    def received_quantities(self, lot_ids: set[str]) -> dict[str, int]:
        stub = self.stubs.logistics
        try:
            chunks = stub.ExportLedger(
                logistics_pb2.ExportLedgerRequest(format=logistics_pb2.EXPORT_FORMAT_CSV),
                metadata=self.metadata, timeout=self.timeout * 4)
            data = b"".join(c.data for c in chunks)
        except grpc.RpcError as exc:
            raise CollectError("logistics", "ExportLedger", exc.code(), exc.details() or "") from None
        out: dict[str, int] = {}
        for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig"))):
            if row.get("kind") in ("receipt", "transfer_in") and row.get("lot_id") in lot_ids:
                out[row["lot_id"]] = out.get(row["lot_id"], 0) + int(row["quantity"])
        return out

    def stock(self) -> tuple[list[StockFact], int]:
        s = self.call("logistics", "GetStock", logistics_pb2.GetStockRequest())
        return [StockFact(x.depot_id, x.item_code, int(x.on_hand), int(x.available),
                          int(x.reserved), int(x.quarantined), int(x.expired), x.zone_id,
                          int(x.lots)) for x in s.lines], int(s.ledger_seq)

    def supply(self) -> tuple[list[GroupSupplyFact], int]:
        s = self.call("logistics", "GetDaysOfSupply",
                      logistics_pb2.GetDaysOfSupplyRequest(day=self.day.isoformat()))
        return [GroupSupplyFact(g.group, g.name_zh, g.name_en, g.usable_kg, g.daily_kg,
                                g.days if g.HasField("days") else None,
                                g.reserve_days if g.HasField("reserve_days") else None,
                                g.below_floor) for g in s.groups], int(s.population)

    def trips(self) -> tuple[list[TripFact], list[DispatchFact]]:
        resp = self.call("logistics", "ListTrips",
                         logistics_pb2.ListTripsRequest(delivery_day=self.day.isoformat()))
        trips = [TripFact(
            t.trip_id, t.plan_id, t.depot_id, t.vehicle_id, t.status, t.pass_number,
            bool(t.driver.strip() and t.clerk.strip()), t.refrigerated, _dt(t, "depart_at"),
            _dt(t, "return_at"), int(t.distance_m), t.load_kg,
            tuple(StopFact(s.seq, s.requester_id, s.drop_point_id, _dt(s, "eta"), s.delivered,
                           tuple((ln.plan_line_id, ln.demand_id, ln.item_code, int(ln.quantity))
                                 for ln in s.lines)) for s in t.stops))
            for t in resp.trips]
        dispatches = [DispatchFact(
            d.plan_id, d.status,
            tuple(UnmetDispatchFact(u.plan_line_id, u.demand_id, u.item_code, u.depot_id,
                                    int(u.quantity), ReasonFact(u.reason.code, u.reason.zh,
                                                                u.reason.en)) for u in d.unmet),
            int(d.staffing_required), int(d.staffing_short)) for d in resp.dispatches]
        return trips, dispatches

    def reconcile(self) -> ReconcileFact | None:
        try:
            r = self.call("logistics", "ReconcileLedger", logistics_pb2.ReconcileLedgerRequest())
        except CollectError as exc:
            if exc.unreachable:
                raise
            self.notes.append(f"ledger reconciliation: not run ({exc.code.name} {exc.details})")
            return None
        return ReconcileFact(r.ok, int(r.lines_checked), int(r.lots_checked), int(r.head_seq),
                             len(r.chain_breaks), len(r.mismatches), r.head_hash)

    # ---- allocation
    def plan(self) -> tuple[PlanFact | None, list[PlanVersionFact]]:
        headers = list(self.call("allocation", "ListPlans", allocation_pb2.ListPlansRequest(
            delivery_day=self.day.isoformat())).plans)
        status = allocation_pb2.PlanStatus
        versions = [PlanVersionFact(p.plan_id, p.version, _name(status, p.status, "PLAN_STATUS_"))
                    for p in headers]
        if not headers:
            return None, versions
        approved = [p for p in headers if p.status == allocation_pb2.PLAN_STATUS_APPROVED]
        chosen = approved[-1] if approved else headers[-1]
        lines: list[PlanLineFact] = []
        token = ""
        while True:
            page = self.call("allocation", "GetPlan", allocation_pb2.GetPlanRequest(
                plan_id=chosen.plan_id, lines_page=common_pb2.PageRequest(page_size=PLAN_PAGE,
                                                                          page_token=token)))
            lines.extend(_plan_line(x) for x in page.lines)
            token = page.page.next_page_token
            if not token:
                break
        p, t = page.plan, page.plan.totals
        if not approved:
            self.notes.append(f"plan: no approved plan for {self.day}; showing version "
                              f"{p.version} ({_name(status, p.status, 'PLAN_STATUS_')})")
        return PlanFact(
            p.plan_id, p.version, _name(status, p.status, "PLAN_STATUS_"), int(t.lines),
            int(t.asked), int(t.allocated), int(t.unmet), int(t.unmet_lines),
            int(t.substituted_packages), int(t.flagged_lines), p.decided_by, _dt(p, "decided_at"),
            p.late, p.rejection_reason,
            tuple(PlanTierFact(int(x.tier), int(x.lines), int(x.asked), int(x.allocated),
                               int(x.unmet), int(x.substituted_packages)) for x in p.tiers),
            tuple(ReasonFact(w.code, w.zh, w.en) for w in p.warnings), tuple(lines),
            tuple(MaterialClassFact(m.item_code, m.material_class, m.catalogue_class, int(m.asked),
                                    m.normal_daily,
                                    m.demand_ratio if m.HasField("demand_ratio") else None,
                                    tuple(ReasonFact(r.code, r.zh, r.en) for r in m.reasons))
                  for m in p.material_classes)), versions

    # ---- monitoring
    def alerts(self) -> list[AlertFact] | None:
        if self.stubs.monitoring is None:
            self.notes.append("alerts: monitoring unavailable (not configured)")
            return None
        request = monitoring_pb2.ListAlertsRequest()
        request.opened_after.FromDatetime(self.start)
        request.opened_before.FromDatetime(self.end)
        out = []
        try:
            for a in self.pages("monitoring", "ListAlerts", lambda p: _with_page(request, p),
                                "alerts"):
                out.append(AlertFact(
                    a.alert_id, _name(monitoring_pb2.AlertKind, a.kind, "ALERT_KIND_"),
                    _name(monitoring_pb2.Severity, a.severity, "SEVERITY_"),
                    _name(monitoring_pb2.AlertState, a.state, "ALERT_STATE_"), a.rule_code,
                    _dt(a, "opened_at"), a.title_zh, a.title_en, a.depot, a.zone, a.subject,
                    _dt(a, "cleared_at"), bool(a.acknowledged_by)))
        except CollectError as exc:
            self.notes.append(f"alerts: monitoring unavailable ({exc.code.name})")
            return None
        return out


    def channel(self) -> ChannelFact | None:
        """The supermarket channel's day; None (and a note) when market is not there."""
        if self.stubs.market is None:
            self.notes.append("channel: market not configured")
            return None
        try:
            s = self.call("market", "GetChannelSummary",
                          market_pb2.GetChannelSummaryRequest(day=self.day.isoformat()))
        except CollectError as exc:
            self.notes.append(f"channel: market unavailable ({exc.code.name if exc.code else 'error'})")
            return None
        return ChannelFact(**{f: getattr(s, f) for f in ChannelFact.__dataclass_fields__})


def _with_page(request, page):
    r = type(request)()
    r.CopyFrom(request)
    r.page.CopyFrom(page)
    return r


def _plan_line(x) -> PlanLineFact:
    sub = x.substitution
    depots = tuple(dict.fromkeys([p.depot_id for p in x.picks] + [p.depot_id for p in sub.picks]))
    return PlanLineFact(x.plan_line_id, x.demand_id, int(x.demand_line_no), x.requester_id,
                        x.item_code, int(x.tier), int(x.asked), int(x.allocated), int(x.unmet),
                        tuple(ReasonFact(r.code, r.zh, r.en) for r in x.reasons),
                        sub.package_code, int(sub.packages), int(sub.covers), depots,
                        x.flagged_abnormal)


def item_infos(catalogue: Catalogue) -> dict[str, ItemInfo]:
    return {c: ItemInfo(i.name_zh, i.name_en, i.unit, i.group) for c, i in catalogue.items.items()}


def collect_day(day: date, stubs: Stubs, *, metadata: Iterable[tuple[str, str]], tz: ZoneInfo,
                catalogue: Catalogue | None = None, now: datetime | None = None,
                timeout: float = 30.0) -> DayFacts:
    """The facts of `day` (county-local) from the services, with the caller's metadata (its
    bearer token). Raises CollectError when intake, allocation or logistics refuses or does not
    answer; monitoring failing only marks the alerts unavailable."""
    c = _Collector(stubs, list(metadata), day, tz, timeout)
    receipts, basis = c.receipts()
    stock, seq = c.stock()
    supply, population = c.supply()
    plan, versions = c.plan()
    trips, dispatches = c.trips()
    facts = DayFacts(
        day=day, timezone=str(tz), generated_at=now or datetime.now(UTC),
        receipts=receipts, receipt_quantities=basis, donations=c.donations(receipts),
        stock=stock, stock_ledger_seq=seq, supply_population=population, supply=supply,
        demands=c.demands(), plan=plan, plan_versions=versions, trips=trips,
        dispatches=dispatches, alerts=c.alerts(), reconciliation=c.reconcile(),
        requesters=c.requesters(), items=item_infos(catalogue or load_catalogue()),
        channel=c.channel())
    facts.notes = c.notes
    return facts
