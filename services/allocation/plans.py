"""A stored plan: its records (header, details, lines) and the events allocation publishes.

The engine's Plan (domain.model) is what allocate() computes; a stored plan adds the state
(domain.plan_state.PlanHeader), ids for every line, the requester's drop point, totals, the
policy and stock it was made from. Event payloads follow docs/events.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.allocation.adapters.stock import DepotInfo
from services.allocation.domain import (
    ExcludedLot,
    Plan,
    PlanLine,
    PlanWarning,
    ReserveDraw,
    ReserveFloor,
    TierSummary,
)
from services.allocation.domain.county_policy import CountyPolicy
from services.allocation.domain.forecast import ItemClass
from services.allocation.domain.plan_state import PlanHeader
from services.common.tiers import TIER_NAMES

PLAN_PROPOSED = "plan_proposed"
PLAN_APPROVED = "plan_approved"
PLAN_REJECTED = "plan_rejected"
POLICY_CHANGED = "policy_changed"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class PlanTotals:
    lines: int = 0
    asked: int = 0
    allocated: int = 0
    substituted_packages: int = 0
    unmet: int = 0
    unmet_lines: int = 0
    flagged_lines: int = 0


@dataclass(frozen=True)
class TierTotals:
    tier: int
    lines: int
    asked: int
    allocated: int
    substituted_packages: int
    unmet: int


@dataclass(frozen=True)
class PlanDetails:
    """Everything about a plan version except its lines and state.

    demand_ids: the demands it covers. skipped_demands: open demands of the day left out because
    their requester is not known yet (its requester_registered has not arrived). rejected_lots:
    lots of the snapshot that could not be read, as "lot_id: why". excluded: stock left out,
    lot by lot, with why. material_classes: each item's class I / II on the plan's day."""

    catalogue_version: str
    policy: CountyPolicy
    totals: PlanTotals
    tiers: tuple[TierTotals, ...]
    summaries: tuple[TierSummary, ...]
    floors: tuple[ReserveFloor, ...]
    reserve_draws: tuple[ReserveDraw, ...]
    warnings: tuple[PlanWarning, ...]
    excluded_lots: tuple[str, ...]
    demand_ids: tuple[str, ...]
    skipped_demands: tuple[str, ...]
    rejected_lots: tuple[str, ...]
    depots: tuple[DepotInfo, ...]
    stock_taken_at: datetime | None = None
    stock_ledger_seq: int = 0
    stats: dict[str, float] = field(default_factory=dict)
    excluded: tuple[ExcludedLot, ...] = ()
    material_classes: tuple[ItemClass, ...] = ()

    def class_of(self, item_code: str) -> str | None:
        return next((c.material_class for c in self.material_classes
                     if c.item_code == item_code), None)


@dataclass(frozen=True)
class StoredLine:
    """One demand line of a plan. plan_line_id = "<plan_id>-<seq, 5 digits>"; dispatch line k
    of it (one per depot and item, see dispatch_lines) is "<plan_line_id>/<k>"."""

    plan_line_id: str
    seq: int
    drop_point_id: str
    line: PlanLine


def line_id(plan_id: str, seq: int) -> str:
    return f"{plan_id}-{seq:05d}"


def split_dispatch_id(any_line_id: str) -> str:
    """The plan line id of a plan line id or of a dispatch line id ("…/k")."""
    return any_line_id.split("/", 1)[0]


def details_of(plan: Plan, policy: CountyPolicy, *, demand_ids: Sequence[str],
               skipped_demands: Sequence[str], rejected_lots: Sequence[str],
               extra_warnings: Sequence[PlanWarning], depots: Sequence[DepotInfo],
               stock_taken_at: datetime | None, stock_ledger_seq: int,
               left_out: Sequence[ExcludedLot] = (),
               material_classes: Sequence[ItemClass] = ()) -> PlanDetails:
    per_tier: dict[int, list[int]] = {}
    totals = [0] * 7
    for pl in plan.lines:
        packages = pl.substitution.packages if pl.substitution else 0
        t = per_tier.setdefault(pl.tier, [0, 0, 0, 0, 0])
        t[0] += 1
        t[1] += pl.asked
        t[2] += pl.allocated
        t[3] += packages
        t[4] += pl.unmet
        totals[0] += 1
        totals[1] += pl.asked
        totals[2] += pl.allocated
        totals[3] += packages
        totals[4] += pl.unmet
        totals[5] += pl.unmet > 0
        totals[6] += pl.flagged_abnormal
    order = {t: i for i, t in enumerate(policy.tier_order)}
    tiers = tuple(TierTotals(t, *v) for t, v in sorted(per_tier.items(),
                                                       key=lambda kv: order.get(kv[0], kv[0])))
    return PlanDetails(
        catalogue_version=plan.catalogue_version, policy=policy, totals=PlanTotals(*totals),
        tiers=tiers, summaries=plan.summaries, floors=plan.floors,
        reserve_draws=plan.reserve_draws, warnings=tuple(extra_warnings) + plan.warnings,
        excluded_lots=plan.excluded_lots, demand_ids=tuple(demand_ids),
        skipped_demands=tuple(skipped_demands), rejected_lots=tuple(rejected_lots),
        depots=tuple(depots), stock_taken_at=stock_taken_at, stock_ledger_seq=stock_ledger_seq,
        stats=dict(plan.stats), excluded=plan.excluded + tuple(left_out),
        material_classes=tuple(material_classes))


@dataclass(frozen=True)
class DispatchLine:
    """What logistics picks: one item from one depot for one plan line."""

    dispatch_id: str
    item_code: str
    quantity: int
    depot_id: str
    lots: tuple[tuple[str, int], ...]
    substitute_for: str | None


def dispatch_lines(stored: StoredLine) -> list[DispatchLine]:
    """The plan line split per (item, depot): the item itself nearest depot first, then the
    standard packages standing in for its short part. Nothing allocated: no dispatch line."""
    pl = stored.line
    parts: list[tuple[str, str | None, tuple]] = [(pl.item_code, None, pl.picks)]
    if pl.substitution is not None:
        parts.append((pl.substitution.package_code, pl.item_code, pl.substitution.picks))
    out: list[DispatchLine] = []
    for item_code, substitute_for, picks in parts:
        by_depot: dict[str, list[tuple[str, int]]] = {}
        for p in picks:
            by_depot.setdefault(p.depot_id, []).append((p.lot_id, p.quantity))
        for depot_id, lots in by_depot.items():
            out.append(DispatchLine(f"{stored.plan_line_id}/{len(out) + 1}", item_code,
                                    sum(q for _, q in lots), depot_id, tuple(lots),
                                    substitute_for))
    return out


# ---- event payloads (docs/events.md, allocation.events) ---------------------------------
def utc(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def tier_name(tier: int) -> str:
    return TIER_NAMES.get(tier, ("", f"tier {tier}"))[1]


def plan_proposed(header: PlanHeader, details: PlanDetails, superseded: Iterable[str]
                  ) -> dict[str, Any]:
    """plan_proposed: plan_id; delivery_day; version; trigger (cutoff|manual); created_by;
    created_at; policy_version; dispatch_deadline; lines_count; unmet_count (lines with an
    unmet part); totals {asked, allocated, substituted_packages, unmet}; totals_per_tier
    [{tier, tier_name, lines, asked, allocated, substituted_packages, unmet}]; warnings
    [{code, item_code}]; supersedes [plan ids]; skipped_demands [demand ids]."""
    t = details.totals
    return {
        "plan_id": header.plan_id, "delivery_day": header.delivery_day.isoformat(),
        "version": header.version, "trigger": header.trigger.value,
        "created_by": header.created_by, "created_at": utc(header.created_at),
        "policy_version": header.policy_version,
        "dispatch_deadline": utc(header.dispatch_deadline),
        "lines_count": t.lines, "unmet_count": t.unmet_lines,
        "totals": {"asked": t.asked, "allocated": t.allocated,
                   "substituted_packages": t.substituted_packages, "unmet": t.unmet},
        "totals_per_tier": [{"tier": x.tier, "tier_name": tier_name(x.tier), "lines": x.lines,
                             "asked": x.asked, "allocated": x.allocated,
                             "substituted_packages": x.substituted_packages, "unmet": x.unmet}
                            for x in details.tiers],
        "warnings": [{"code": w.code, "item_code": w.item_code} for w in details.warnings],
        "supersedes": sorted(superseded), "skipped_demands": list(details.skipped_demands),
    }


def plan_approved(header: PlanHeader, lines: Iterable[StoredLine], policy: CountyPolicy
                  ) -> dict[str, Any]:
    """plan_approved: plan_id; delivery_day; version; approved_by; approved_at; late (approved
    after the dispatch deadline); dispatch_deadline; lines [{plan_line_id (unique per line:
    "<plan line>/<k>"), demand_id, demand_line_no, requester_id, drop_point_id (first drop point
    of the requester, "" when none), item_code, quantity, depot_id, lots [{lot_id, quantity}],
    tier, priority_rank (the tier's place in the order of the policy the plan was made with,
    1 first), substitute_for (item code the package stands in for, or null), reasons [{code}]}].
    Only what is allocated travels: a line with nothing allocated has no entry."""
    out = []
    for s in lines:
        pl = s.line
        reasons = [{"code": r.code} for r in pl.reasons]
        for d in dispatch_lines(s):
            out.append({
                "plan_line_id": d.dispatch_id, "demand_id": pl.demand_id,
                "demand_line_no": pl.line_no, "requester_id": pl.requester_id,
                "drop_point_id": s.drop_point_id, "item_code": d.item_code,
                "quantity": d.quantity, "depot_id": d.depot_id,
                "lots": [{"lot_id": lot, "quantity": q} for lot, q in d.lots],
                "tier": pl.tier, "priority_rank": policy.priority_rank(pl.tier),
                "substitute_for": d.substitute_for, "reasons": reasons,
            })
    return {
        "plan_id": header.plan_id, "delivery_day": header.delivery_day.isoformat(),
        "version": header.version, "approved_by": header.decided_by,
        "approved_at": utc(header.decided_at), "late": header.late,
        "dispatch_deadline": utc(header.dispatch_deadline), "lines": out,
    }


def plan_rejected(header: PlanHeader) -> dict[str, Any]:
    """plan_rejected: plan_id; delivery_day; version; rejected_by; rejected_at; reason."""
    return {
        "plan_id": header.plan_id, "delivery_day": header.delivery_day.isoformat(),
        "version": header.version, "rejected_by": header.decided_by,
        "rejected_at": utc(header.decided_at), "reason": header.decision_reason,
    }


def policy_changed(policy: CountyPolicy, timezone: str) -> dict[str, Any]:
    """policy_changed: version; updated_at (null for version 0, the configured seed); timezone;
    cutoff ("HH:MM"); cutoff_days_before; dispatch_deadline ("HH:MM"); tier_order; reserve_days
    {group: days}; reserve_floors {group or item: units}; below_reserve_tiers;
    allow_package_substitution; min_days_to_expiry. No person: who changed it stays in allocation."""
    return {
        "version": policy.version, "updated_at": utc(policy.updated_at), "timezone": timezone,
        "cutoff": policy.cutoff, "cutoff_days_before": policy.cutoff_days_before,
        "dispatch_deadline": policy.dispatch_deadline, "tier_order": list(policy.tier_order),
        "reserve_days": dict(policy.reserve_days), "reserve_floors": dict(policy.reserve_floors),
        "below_reserve_tiers": list(policy.below_reserve_tiers),
        "allow_package_substitution": policy.allow_package_substitution,
        "min_days_to_expiry": policy.min_days_to_expiry,
    }
