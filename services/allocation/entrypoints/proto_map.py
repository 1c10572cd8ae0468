"""Allocation's records → supply.v1 messages."""

from __future__ import annotations

from supply.v1 import allocation_pb2 as pb
from supply.v1 import common_pb2 as common

from services.allocation import plans as pv
from services.allocation.domain import (
    ExcludedLot,
    LotPick,
    PlanWarning,
    ReserveDraw,
    ReserveFloor,
    TierSummary,
)
from services.allocation.domain.county_policy import CountyPolicy
from services.allocation.domain.forecast import ItemClass
from services.allocation.domain.plan_state import PlanHeader, PlanStatus, PlanTrigger
from services.allocation.handlers.explain import Explanation
from services.allocation.handlers.forecast import ForecastView
from services.allocation.handlers.plans import PlanView
from services.common.proto_time import timestamp as ts

STATUS = {PlanStatus.PROPOSED: pb.PLAN_STATUS_PROPOSED, PlanStatus.APPROVED: pb.PLAN_STATUS_APPROVED,
          PlanStatus.REJECTED: pb.PLAN_STATUS_REJECTED,
          PlanStatus.SUPERSEDED: pb.PLAN_STATUS_SUPERSEDED}
TRIGGER = {PlanTrigger.CUTOFF: pb.PLAN_TRIGGER_CUTOFF, PlanTrigger.MANUAL: pb.PLAN_TRIGGER_MANUAL}


def header(x: PlanHeader, dry_run: bool = False) -> pb.Plan:
    return pb.Plan(
        plan_id=x.plan_id, delivery_day=x.delivery_day.isoformat(), version=x.version,
        status=pb.PLAN_STATUS_UNSPECIFIED if dry_run else STATUS[x.status],
        trigger=TRIGGER[x.trigger], policy_version=x.policy_version,
        created_at=ts(x.created_at), created_by=x.created_by, decided_at=ts(x.decided_at),
        decided_by=x.decided_by, rejection_reason=x.decision_reason, late=x.late,
        dispatch_deadline=ts(x.dispatch_deadline), superseded_by=x.superseded_by, dry_run=dry_run)


def summary(s: TierSummary) -> pb.TierItemSummary:
    return pb.TierItemSummary(item_code=s.item_code, tier=s.tier, lines=s.lines, asked=s.asked,
                              available=s.available, allocated=s.allocated,
                              substituted_packages=s.substituted_packages)


def floor(f: ReserveFloor) -> pb.ReserveFloor:
    return pb.ReserveFloor(item_code=f.item_code, group=f.group, reserve_days=f.reserve_days,
                           daily_consumption=f.daily_consumption, quantity=f.quantity,
                           absolute_floor=f.absolute)


def draw(d: ReserveDraw) -> pb.ReserveDraw:
    return pb.ReserveDraw(item_code=d.item_code, group=d.group, tier=d.tier, floor=d.floor,
                          stock_before=d.stock_before, stock_after=d.stock_after)


def warning(w: PlanWarning) -> pb.PlanWarning:
    return pb.PlanWarning(code=w.code, item_code=w.item_code, zh=w.zh, en=w.en)


def reason(r) -> common.Reason:
    return common.Reason(code=r.code, zh=r.zh, en=r.en)


def excluded(x: ExcludedLot) -> pb.ExcludedLot:
    return pb.ExcludedLot(lot_id=x.lot_id, depot_id=x.depot_id, item_code=x.item_code,
                          quantity=x.quantity, expiry=x.expiry.isoformat(), reason=reason(x.reason))


def material_class(c: ItemClass) -> pb.MaterialClass:
    m = pb.MaterialClass(item_code=c.item_code, material_class=c.material_class or "",
                         catalogue_class=c.catalogue_class or "", asked=c.asked,
                         normal_daily=c.normal_daily, reasons=[reason(r) for r in c.reasons])
    if c.ratio is not None:
        m.demand_ratio = c.ratio
    return m


def plan(x: PlanHeader, d: pv.PlanDetails, dry_run: bool = False) -> pb.Plan:
    m = header(x, dry_run)
    t = d.totals
    m.totals.CopyFrom(pb.PlanTotals(
        lines=t.lines, asked=t.asked, allocated=t.allocated,
        substituted_packages=t.substituted_packages, unmet=t.unmet, unmet_lines=t.unmet_lines,
        flagged_lines=t.flagged_lines))
    m.tiers.extend(pb.TierTotals(tier=x.tier, lines=x.lines, asked=x.asked, allocated=x.allocated,
                                 substituted_packages=x.substituted_packages, unmet=x.unmet)
                   for x in d.tiers)
    m.summaries.extend(map(summary, d.summaries))
    m.warnings.extend(map(warning, d.warnings))
    m.floors.extend(map(floor, d.floors))
    m.reserve_draws.extend(map(draw, d.reserve_draws))
    m.excluded_lots.extend(d.excluded_lots)
    m.excluded_lots.extend(x.lot_id for x in d.excluded if x.lot_id not in d.excluded_lots)
    m.excluded.extend(map(excluded, d.excluded))
    m.material_classes.extend(map(material_class, d.material_classes))
    m.skipped_demand_ids.extend(d.skipped_demands)
    m.catalogue_version = d.catalogue_version
    m.stock_ledger_seq = d.stock_ledger_seq
    if d.stock_taken_at is not None:
        m.stock_taken_at.CopyFrom(ts(d.stock_taken_at))
    return m


def pick(p: LotPick) -> pb.LotPick:
    return pb.LotPick(depot_id=p.depot_id, lot_id=p.lot_id, quantity=p.quantity,
                      expiry=p.expiry.isoformat())


def line(s: pv.StoredLine, priority_rank: int, material_class: str | None) -> pb.PlanLine:
    pl = s.line
    m = pb.PlanLine(
        priority_rank=priority_rank, material_class=material_class or "",
        plan_line_id=s.plan_line_id, demand_id=pl.demand_id, demand_line_no=pl.line_no,
        requester_id=pl.requester_id, drop_point_id=s.drop_point_id, item_code=pl.item_code,
        tier=pl.tier, asked=pl.asked, allocated=pl.allocated, unmet=pl.unmet,
        picks=[pick(p) for p in pl.picks],
        reasons=[reason(r) for r in pl.reasons], flagged_abnormal=pl.flagged_abnormal)
    if pl.substitution is not None:
        sub = pl.substitution
        m.substitution.CopyFrom(pb.Substitution(
            package_code=sub.package_code, packages=sub.packages,
            units_per_package=sub.units_per_package, covers=sub.covers,
            picks=[pick(p) for p in sub.picks]))
    return m


def plan_page(v: PlanView) -> pb.PlanPage:
    d = v.details
    return pb.PlanPage(plan=plan(v.header, d, v.dry_run),
                       lines=[line(s, d.policy.priority_rank(s.line.tier), d.class_of(s.line.item_code))
                              for s in v.lines],
                       page=common.PageInfo(next_page_token=v.next_page_token,
                                            total=v.details.totals.lines))


def explanation(e: Explanation) -> pb.LineExplanation:
    pl = e.line.line
    m = pb.LineExplanation(
        plan_id=e.header.plan_id, delivery_day=e.header.delivery_day.isoformat(),
        version=e.header.version, status=STATUS[e.header.status],
        policy_version=e.header.policy_version,
        line=line(e.line, e.priority_rank, e.material_class), tier_name_zh=e.tier_name_zh,
        tier_name_en=e.tier_name_en, township=e.township, reasons=[reason(r) for r in pl.reasons],
        drawn_by_higher_tiers=e.drawn_by_higher_tiers,
        line_fill_rate=pl.allocated / pl.asked if pl.asked else 0.0,
        item_by_tier=[summary(s) for s in e.item_by_tier],
        reserve_draws=[draw(d) for d in e.reserve_draws],
        depots=[pb.DepotLeg(depot_id=g.depot_id, depot_name=g.name, item_code=g.item_code,
                            quantity=g.quantity, distance_km=g.distance_km or 0.0)
                for g in e.legs])
    if e.tier_summary is not None:
        m.tier_summary.CopyFrom(summary(e.tier_summary))
        s = e.tier_summary
        m.tier_fill_rate = s.allocated / s.asked if s.asked else 0.0
    if e.reserve_floor is not None:
        m.reserve_floor.CopyFrom(floor(e.reserve_floor))
    return m


def policy(p: CountyPolicy, timezone: str) -> pb.AllocationPolicy:
    return pb.AllocationPolicy(
        version=p.version, tier_order=list(p.tier_order), reserve_days=dict(p.reserve_days),
        reserve_floors=dict(p.reserve_floors),
        cutoff=p.cutoff, cutoff_days_before=p.cutoff_days_before,
        dispatch_deadline=p.dispatch_deadline,
        allow_package_substitution=p.allow_package_substitution,
        below_reserve_tiers=list(p.below_reserve_tiers), min_days_to_expiry=p.min_days_to_expiry,
        timezone=timezone, updated_at=ts(p.updated_at), updated_by=p.updated_by)


def forecast(f: ForecastView) -> pb.ForecastResponse:
    fc = f.forecast
    m = pb.ForecastResponse(
        item_code=f.item_code, requester_id=f.requester_id,
        series=[pb.DailyQuantity(day=d.isoformat(), quantity=q) for d, q in f.series],
        mean=fc.mean, sigma=fc.sigma, safety_stock=fc.safety_stock, coefficient=fc.coefficient,
        demand=fc.demand, quantity=fc.quantity,
        outlier_days=[d.isoformat() for d in f.outlier_days], outlier_low=fc.cleaned.low,
        outlier_high=fc.cleaned.high)
    b = f.baseline
    if b is None:
        m.baseline.CopyFrom(pb.ForecastBaseline(available=False, note=f.baseline_note))
    else:
        m.baseline.CopyFrom(pb.ForecastBaseline(
            available=True, window=b.window, holdout=len(b.actuals),
            predictions=list(b.predictions), actuals=list(b.actuals), mae=b.mae))
        if b.mape is not None:
            m.baseline.mape = b.mape
    return m
