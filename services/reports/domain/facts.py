"""The facts of one county day that the daily report and the disclosure lists say (DayFacts),
and the figures derived from them; collect.py gathers them over the services' gRPC APIs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class ItemInfo:
    name_zh: str
    name_en: str
    unit: str
    group: str = ""


@dataclass(frozen=True)
class RequesterFact:
    requester_id: str
    name: str
    township: str = ""
    kind: str = ""  # village | community | unit


@dataclass(frozen=True)
class ReceiptLine:
    lot_id: str
    item_code: str
    quantity: int
    lot_number: str = ""
    expiry: str = ""


@dataclass(frozen=True)
class ReceiptFact:
    receipt_id: str
    kind: str  # purchase | donation | transfer | upper_level_allocation
    depot_id: str
    received_at: datetime
    status: str = "accepted"  # accepted | refused (donation lines refused at put-away)
    origin_ref: str = ""
    received_by: str = ""  # identity of the depot keeper (internal report only)
    rule_code: str = ""
    message: str = ""
    lines: tuple[ReceiptLine, ...] = ()


@dataclass(frozen=True)
class DonationItem:
    item_code: str
    received: int = 0
    accepted: int = 0
    redirected: int = 0
    returned: int = 0
    received_lines: int = 0


@dataclass(frozen=True)
class DonorFact:
    """A donation received into stock on the day. donor_name as intake shows it: organisations
    in full, persons masked (王**)."""

    donation_id: str
    donor_name: str
    donor_kind: str  # organization | person
    targeted: bool = False
    target_use: str = ""
    items: tuple[tuple[str, int], ...] = ()  # (item_code, quantity put into stock on the day)


@dataclass(frozen=True)
class DonationFacts:
    donations_received: int = 0
    items: tuple[DonationItem, ...] = ()
    donors: tuple[DonorFact, ...] = ()


@dataclass(frozen=True)
class StockFact:
    depot_id: str
    item_code: str
    on_hand: int
    available: int
    reserved: int = 0
    quarantined: int = 0
    expired: int = 0
    zone_id: str = ""
    lots: int = 0


@dataclass(frozen=True)
class GroupSupplyFact:
    group: str
    name_zh: str
    name_en: str
    usable_kg: float
    daily_kg: float
    days: float | None
    reserve_days: float | None
    below_floor: bool = False


@dataclass(frozen=True)
class DemandLineFact:
    line_no: int
    item_code: str
    tier: int
    quantity: int
    delivered: int | None = None  # unset until delivery results arrived
    special_need: bool = False


@dataclass(frozen=True)
class DemandFact:
    demand_id: str
    requester_id: str
    status: str  # open | cancelled | fulfilled | partly_fulfilled | rolled
    lines: tuple[DemandLineFact, ...] = ()
    origin: str = "direct"
    rolled_over: bool = False  # accepted for this day after an earlier day's cut-off
    flagged: bool = False


@dataclass(frozen=True)
class ReasonFact:
    code: str
    zh: str = ""
    en: str = ""


@dataclass(frozen=True)
class PlanLineFact:
    plan_line_id: str
    demand_id: str
    demand_line_no: int
    requester_id: str
    item_code: str
    tier: int
    asked: int
    allocated: int
    unmet: int
    reasons: tuple[ReasonFact, ...] = ()
    package_code: str = ""
    packages: int = 0
    covers: int = 0
    depots: tuple[str, ...] = ()
    flagged_abnormal: bool = False


@dataclass(frozen=True)
class PlanTierFact:
    tier: int
    lines: int
    asked: int
    allocated: int
    unmet: int
    substituted_packages: int = 0


@dataclass(frozen=True)
class PlanVersionFact:
    plan_id: str
    version: int
    status: str  # proposed | approved | rejected | superseded


@dataclass(frozen=True)
class MaterialClassFact:
    """An item's class I / II on the plan's day (RULES §5), as allocation computed it."""

    item_code: str
    material_class: str
    catalogue_class: str
    asked: int
    normal_daily: float
    ratio: float | None
    reasons: tuple[ReasonFact, ...]


@dataclass(frozen=True)
class PlanFact:
    plan_id: str
    version: int
    status: str
    lines_total: int = 0
    asked: int = 0
    allocated: int = 0
    unmet: int = 0
    unmet_lines: int = 0
    substituted_packages: int = 0
    flagged_lines: int = 0
    decided_by: str = ""
    decided_at: datetime | None = None
    late: bool = False
    rejection_reason: str = ""
    tiers: tuple[PlanTierFact, ...] = ()
    warnings: tuple[ReasonFact, ...] = ()
    lines: tuple[PlanLineFact, ...] = ()
    material_classes: tuple[MaterialClassFact, ...] = ()

    @property
    def approved(self) -> bool:
        return self.status == "approved"


@dataclass(frozen=True)
class StopFact:
    seq: int
    requester_id: str
    drop_point_id: str = ""
    eta: datetime | None = None
    delivered: bool = False
    lines: tuple[tuple[str, str, str, int], ...] = ()  # (plan_line_id, demand_id, item_code, qty)


@dataclass(frozen=True)
class TripFact:
    """A trip; the crew is reduced to whether two people ride (names stay in logistics)."""

    trip_id: str
    plan_id: str
    depot_id: str
    vehicle_id: str
    status: str  # scheduled | completed
    pass_number: str = ""
    crew_of_two: bool = True
    refrigerated: bool = False
    depart_at: datetime | None = None
    return_at: datetime | None = None
    distance_m: int = 0
    load_kg: float = 0.0
    stops: tuple[StopFact, ...] = ()


@dataclass(frozen=True)
class UnmetDispatchFact:
    plan_line_id: str
    demand_id: str
    item_code: str
    depot_id: str
    quantity: int
    reason: ReasonFact = field(default_factory=lambda: ReasonFact(""))


@dataclass(frozen=True)
class DispatchFact:
    plan_id: str
    status: str  # picked | dispatched
    unmet: tuple[UnmetDispatchFact, ...] = ()
    staffing_required: int = 0
    staffing_short: int = 0


@dataclass(frozen=True)
class AlertFact:
    alert_id: str
    kind: str
    severity: str
    state: str
    rule_code: str
    opened_at: datetime
    title_zh: str = ""
    title_en: str = ""
    depot: str = ""
    zone: str = ""
    subject: str = ""
    cleared_at: datetime | None = None
    acknowledged: bool = False


@dataclass(frozen=True)
class ReconcileFact:
    ok: bool
    lines_checked: int = 0
    lots_checked: int = 0
    head_seq: int = 0
    chain_breaks: int = 0
    mismatches: int = 0
    head_hash: str = ""  # the chain head's HMAC: with head_seq, the anchor the report hands out


@dataclass(frozen=True)
class TierFill:
    tier: int  # 0 for the total over every tier
    demands: int = 0
    lines: int = 0
    asked: int = 0
    delivered: int = 0
    allocated: int = 0

    @property
    def fill_rate(self) -> float:
        return self.delivered / self.asked if self.asked else 0.0


@dataclass(frozen=True)
class ChannelFact:
    """The paid supermarket channel's day (商超保供; market's GetChannelSummary): counts and
    money in fen only, never a household."""

    household_orders: int = 0
    online_orders: int = 0
    collected_orders: int = 0
    on_account_orders: int = 0
    community_orders: int = 0
    parcels: int = 0
    parcels_received: int = 0
    parcels_short: int = 0
    parcels_refused: int = 0
    ordered_fen: int = 0
    confirmed_fen: int = 0
    delivered_fen: int = 0
    paid_online_fen: int = 0
    collected_fen: int = 0
    on_account_owed_fen: int = 0
    settled_community_orders: int = 0
    accounts_closed: bool = False


@dataclass
class DayFacts:
    """Everything the daily report and the disclosure lists say about one county day.

    receipts, donations and alerts are those of the calendar day; demands, plan and trips those
    of the delivery day; stock and days of supply as they are when collected. `alerts` is None
    when monitoring did not answer; `reconciliation` None when it could not run (see notes).
    """

    day: date
    timezone: str = "Asia/Shanghai"
    generated_at: datetime | None = None
    receipts: list[ReceiptFact] = field(default_factory=list)
    receipt_quantities: str = "ledger"  # ledger | on_hand_now (ledger not readable by the caller)
    donations: DonationFacts = field(default_factory=DonationFacts)
    stock: list[StockFact] = field(default_factory=list)
    stock_ledger_seq: int = 0
    supply_population: int = 0
    supply: list[GroupSupplyFact] = field(default_factory=list)
    demands: list[DemandFact] = field(default_factory=list)
    plan: PlanFact | None = None
    plan_versions: list[PlanVersionFact] = field(default_factory=list)
    trips: list[TripFact] = field(default_factory=list)
    dispatches: list[DispatchFact] = field(default_factory=list)
    alerts: list[AlertFact] | None = field(default_factory=list)
    reconciliation: ReconcileFact | None = None
    requesters: dict[str, RequesterFact] = field(default_factory=dict)
    items: dict[str, ItemInfo] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    channel: ChannelFact | None = None  # None: market not configured or did not answer (notes)

    # ---- derived figures (used by the report and by GetDailyReport's headline)
    def live_demands(self) -> list[DemandFact]:
        return [d for d in self.demands if d.status != "cancelled"]

    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("open", "fulfilled", "partly_fulfilled", "rolled", "cancelled"), 0)
        for d in self.demands:
            counts[d.status] = counts.get(d.status, 0) + 1
        return counts

    def tier_fills(self) -> list[TierFill]:
        """Per tier 1 … 5 with lines, over the day's demands without cancelled ones."""
        acc: dict[int, dict[str, Any]] = {}
        for d in self.live_demands():
            for ln in d.lines:
                a = acc.setdefault(ln.tier, {"demands": set(), "lines": 0, "asked": 0,
                                             "delivered": 0, "allocated": 0})
                a["demands"].add(d.demand_id)
                a["lines"] += 1
                a["asked"] += ln.quantity
                a["delivered"] += ln.delivered or 0
        if self.plan is not None:
            for t in self.plan.tiers:
                acc.setdefault(t.tier, {"demands": set(), "lines": 0, "asked": 0, "delivered": 0,
                                        "allocated": 0})["allocated"] += t.allocated
        return [TierFill(tier, len(a["demands"]), a["lines"], a["asked"], a["delivered"],
                         a["allocated"]) for tier, a in sorted(acc.items())]

    def total_fill(self) -> TierFill:
        live = self.live_demands()
        lines = [ln for d in live for ln in d.lines]
        return TierFill(0, len(live), len(lines), sum(ln.quantity for ln in lines),
                        sum(ln.delivered or 0 for ln in lines),
                        self.plan.allocated if self.plan else 0)

    def item(self, code: str) -> ItemInfo:
        return self.items.get(code) or ItemInfo(code, code, "")

    def requester(self, rid: str) -> RequesterFact:
        return self.requesters.get(rid) or RequesterFact(rid, rid)

    def delivered_by_line(self) -> dict[tuple[str, int], int]:
        return {(d.demand_id, ln.line_no): ln.delivered or 0
                for d in self.demands for ln in d.lines}
