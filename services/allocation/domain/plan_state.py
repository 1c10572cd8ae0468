"""Plan states and the daily cycle (RULES.md §2): proposed → approved | rejected | superseded.

- A delivery day has plan versions 1, 2, …; only the latest may be decided.
- A new version supersedes the day's proposed one; once a version is approved the day is
  closed: the approved plan is immutable and no new version is made (DAY_ALREADY_APPROVED).
- The cut-off makes one plan per day by itself (cutoff_due: the day has no plan yet); after a
  rejection HQ asks for the next version (RunAllocation), it is not made automatically.
- An approval after the day's dispatch deadline is recorded as late (flag on the plan and in
  the plan_approved event); it is not refused: late supplies are better than none.

Pure: times are arguments (timezone-aware), nothing reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from services.common.errors import InvalidInput, RuleRefused

MAX_REASON_CHARS = 500

DAY_ALREADY_APPROVED = "DAY_ALREADY_APPROVED"
PLAN_ALREADY_APPROVED = "PLAN_ALREADY_APPROVED"
PLAN_REJECTED = "PLAN_REJECTED"
PLAN_SUPERSEDED = "PLAN_SUPERSEDED"
NOT_LATEST_VERSION = "NOT_LATEST_VERSION"
BEFORE_CUTOFF = "BEFORE_CUTOFF"
DAY_PASSED = "DAY_PASSED"


class PlanStatus(StrEnum):
    PROPOSED = "proposed"      # made at the cut-off or on request, waiting for HQ
    APPROVED = "approved"      # HQ approved it: published to logistics, immutable
    REJECTED = "rejected"      # HQ rejected it with a reason
    SUPERSEDED = "superseded"  # a newer version of the same day replaced it before a decision


class PlanTrigger(StrEnum):
    CUTOFF = "cutoff"  # the worker's timer at the day's cut-off
    MANUAL = "manual"  # RunAllocation


@dataclass(frozen=True)
class PlanHeader:
    """What the state rules need to know about a stored plan version."""

    plan_id: str
    delivery_day: date
    version: int
    status: PlanStatus
    trigger: PlanTrigger
    created_at: datetime
    created_by: str
    policy_version: int
    dispatch_deadline: datetime
    decided_at: datetime | None = None
    decided_by: str = ""
    decision_reason: str = ""
    late: bool = False
    superseded_by: str = ""


def _latest(day_plans: Sequence[PlanHeader]) -> PlanHeader | None:
    return max(day_plans, key=lambda p: p.version, default=None)


def cutoff_due(day_plans: Sequence[PlanHeader]) -> bool:
    """The cut-off makes a plan only for a day that has none (of any status)."""
    return not day_plans


def check_can_run(delivery_day: date, now: datetime, cutoff_at: datetime, today: date,
                  dry_run: bool) -> None:
    """A saved plan is made only after the day's cut-off (its demands are closed) and never for
    a day already past. A dry run may look at any day at any time."""
    if dry_run:
        return
    if delivery_day < today:
        raise RuleRefused(DAY_PASSED, f"delivery day {delivery_day} is past (county today is "
                                      f"{today}) / 配送日已过")
    if now < cutoff_at:
        raise RuleRefused(BEFORE_CUTOFF, f"demands for {delivery_day} close at "
                                         f"{cutoff_at.isoformat()}; use dry_run to preview "
                                         f"before the cut-off / 需求截止前只能试算")


def propose(day_plans: Sequence[PlanHeader], *, plan_id: str, delivery_day: date,
            trigger: PlanTrigger, at: datetime, by: str, policy_version: int,
            dispatch_deadline: datetime) -> tuple[PlanHeader, list[PlanHeader]]:
    """The next version for the day, and the proposed versions it supersedes."""
    approved = [p for p in day_plans if p.status is PlanStatus.APPROVED]
    if approved:
        p = approved[0]
        raise RuleRefused(DAY_ALREADY_APPROVED,
                          f"plan {p.plan_id} (version {p.version}) for {delivery_day} is approved; "
                          f"an approved plan is immutable / 当日方案已批准，不可再生成新版本")
    latest = _latest(day_plans)
    header = PlanHeader(plan_id=plan_id, delivery_day=delivery_day,
                        version=(latest.version + 1) if latest else 1,
                        status=PlanStatus.PROPOSED, trigger=trigger, created_at=at, created_by=by,
                        policy_version=policy_version, dispatch_deadline=dispatch_deadline)
    superseded = [replace(p, status=PlanStatus.SUPERSEDED, superseded_by=plan_id)
                  for p in day_plans if p.status is PlanStatus.PROPOSED]
    return header, superseded


def _check_decidable(plan: PlanHeader, day_plans: Sequence[PlanHeader]) -> None:
    if plan.status is PlanStatus.APPROVED:
        raise RuleRefused(PLAN_ALREADY_APPROVED,
                          f"plan {plan.plan_id} was approved by {plan.decided_by} at "
                          f"{plan.decided_at.isoformat() if plan.decided_at else '?'}; an approved "
                          f"plan is immutable / 方案已批准，不可更改")
    if plan.status is PlanStatus.REJECTED:
        raise RuleRefused(PLAN_REJECTED,
                          f"plan {plan.plan_id} was rejected by {plan.decided_by}: "
                          f"{plan.decision_reason!r}; run the allocation again for a new version "
                          f"/ 方案已被驳回，请重新生成")
    if plan.status is PlanStatus.SUPERSEDED:
        raise RuleRefused(PLAN_SUPERSEDED,
                          f"plan {plan.plan_id} (version {plan.version}) was superseded by "
                          f"{plan.superseded_by} / 方案已被新版本取代")
    latest = _latest(day_plans)
    if latest is not None and latest.version > plan.version:
        raise RuleRefused(NOT_LATEST_VERSION,
                          f"plan {plan.plan_id} is version {plan.version}; the latest for "
                          f"{plan.delivery_day} is {latest.plan_id} (version {latest.version}) "
                          f"/ 只能审批最新版本")


def approve(plan: PlanHeader, day_plans: Sequence[PlanHeader], *, by: str, at: datetime
            ) -> PlanHeader:
    """HQ approves the latest proposed version; late when after the dispatch deadline."""
    _check_decidable(plan, day_plans)
    return replace(plan, status=PlanStatus.APPROVED, decided_at=at, decided_by=by,
                   late=at > plan.dispatch_deadline)


def check_reason(reason: str) -> str:
    """A rejection reason, trimmed; empty or too long is InvalidInput on `reason`."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason", "must not be empty: say why the plan is rejected / 请填写驳回原因")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInput("reason", f"at most {MAX_REASON_CHARS} characters")
    return reason


def reject(plan: PlanHeader, day_plans: Sequence[PlanHeader], *, by: str, at: datetime,
           reason: str) -> PlanHeader:
    """HQ rejects the latest proposed version, saying why (the next version answers it)."""
    reason = check_reason(reason)
    _check_decidable(plan, day_plans)
    return replace(plan, status=PlanStatus.REJECTED, decided_at=at, decided_by=by,
                   decision_reason=reason)
