"""Unit requisitions (防控物资申请审批单, 篇6, 篇11).

submitted → head_approved (一把手审核, role unit_head of the same unit) → hq_approved (role
hq; the requisition becomes a demand) ; either pending step may reject, with a reason.
Every step is an ApprovalRecord (the audit trail). Role failures are PermissionDenied;
steps out of order are RuleRefused. A non-essential or unknown item refuses its own line only,
as in a demand (RULES §6): the requisition lists it in refused_lines, the demand HQ's approval
makes carries them on. Separation of duties (申请人 ≠ 审核人): the person who filed
a requisition decides none of its steps, and nobody decides two of them, whatever their role
(admin too): RuleRefused SEPARATION_OF_DUTIES.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from services.common.catalogue import Catalogue
from services.common.errors import PermissionDenied

from . import rules
from .demands import (
    Demand,
    DemandLine,
    DemandOrigin,
    RefusedLine,
    build_lines,
    new_demand,
    numbered_as_sent,
    parse_lines,
)
from .fields import as_date, as_int, as_text, is_blank, require_aware
from .policy import DemandPolicy
from .requesters import MAX_POPULATION, Requester

ROLE_UNIT_HEAD = "unit_head"
ROLE_HQ = "hq"
ROLE_ADMIN = "admin"  # the platform's admin may act at any step (recorded as admin)


class RequisitionStatus(StrEnum):
    SUBMITTED = "submitted"
    HEAD_APPROVED = "head_approved"
    HQ_APPROVED = "hq_approved"
    REJECTED = "rejected"


class ApprovalStep(StrEnum):
    SUBMIT = "submit"
    HEAD = "head"   # 一把手审核
    HQ = "hq"       # 指挥部审批


class Decision(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Actor:
    """Who acts, from the caller's token (grpc_server.Caller identity, role, scope): the
    unit is the scope of a unit's staff or head."""

    id: str
    role: str
    unit_id: str | None = None


@dataclass(frozen=True)
class ApprovalRecord:
    step: ApprovalStep
    actor_id: str
    role: str
    decision: Decision
    reason: str
    at: datetime


@dataclass(frozen=True)
class Requisition:
    """A unit's requisition.

    lines: demand lines with tiers and over-norm flags against the unit's registered basis.
    headcount_basis: the headcount the unit says the quantities are for.
    registered_basis: the unit's registered headcount (+ beds, per policy) at filing.
    basis_exceeds_registered: headcount_basis > registered_basis, a flag for
    the approvers (按实申领, 不得夸大). demand_id: set when HQ approval created the demand.
    refused_lines: the lines of the request left out by a county rule (NON_ESSENTIAL,
    UNKNOWN_ITEM); the lines' numbers are their index in the request.
    """

    id: str
    unit_id: str
    purpose: str
    headcount_basis: int
    lines: tuple[DemandLine, ...]
    status: RequisitionStatus
    approvals: tuple[ApprovalRecord, ...]
    filed_at: datetime
    registered_basis: int = 0
    basis_exceeds_registered: bool = False
    delivery_day: date | None = None
    demand_id: str | None = None
    refused_lines: tuple[RefusedLine, ...] = ()

    @property
    def flagged(self) -> bool:
        return self.basis_exceeds_registered or any(ln.flagged for ln in self.lines)

    @property
    def filed_by(self) -> str:
        return self.approvals[0].actor_id


def _actor(actor: Actor) -> None:
    as_text(actor.id, "actor.id", max_len=100)


def file_requisition(*, requisition_id: str, unit: Requester, lines: Sequence[Any], purpose: str,
                     headcount_basis: Any, actor: Actor, catalogue: Catalogue,
                     policy: DemandPolicy, at: datetime,
                     delivery_day: date | str | None = None) -> Requisition:
    """File a requisition for `unit` (UNIT_REQUESTER_ONLY for a village or community).

    The filer must belong to the unit (actor.unit_id == unit.id) or be HQ filing on its
    behalf. delivery_day (optional) is the day wished for; the cut-off rule is applied when
    HQ approves, so it may roll then. Over-norm flags use the registered basis, not the
    declared headcount. An unknown or non-essential item refuses its line only
    (refused_lines); every line refused raises the first line's error.
    """
    require_aware(at)
    _actor(actor)
    if unit.is_area:
        raise rules.refuse(rules.UNIT_REQUESTER_ONLY, "申领审批单仅限单位填报",
                           "requisitions are filed by units; villages and communities submit "
                           "demands", field="unit_id")
    if actor.unit_id != unit.id and actor.role not in (ROLE_HQ, ROLE_ADMIN):
        raise PermissionDenied(f"{actor.id} does not belong to unit {unit.id}")
    refused: list[RefusedLine] = []
    requested = parse_lines(lines, catalogue, max_lines=policy.max_lines,
                            max_quantity=policy.max_quantity, max_note_chars=policy.max_note_chars,
                            refused=refused)
    basis = as_int(headcount_basis, "headcount_basis", min_value=1, max_value=MAX_POPULATION)
    day = None if is_blank(delivery_day) else as_date(delivery_day, "delivery_day")
    if day is not None:
        policy.delivery_target(at, day)  # validates the day now (past, too far, not a cycle day)
    return Requisition(
        id=requisition_id, unit_id=unit.id,
        purpose=as_text(purpose, "purpose", max_len=500),
        headcount_basis=basis,
        lines=numbered_as_sent(build_lines(requested, unit, catalogue, policy), refused),
        status=RequisitionStatus.SUBMITTED,
        approvals=(ApprovalRecord(ApprovalStep.SUBMIT, actor.id, actor.role, Decision.SUBMITTED,
                                  "", at),),
        filed_at=at,
        registered_basis=unit.norm_basis(policy),
        basis_exceeds_registered=basis > unit.norm_basis(policy),
        delivery_day=day,
        refused_lines=tuple(refused),
    )


def _closed(req: Requisition) -> rules.RuleRefused:
    return rules.refuse(rules.REQUISITION_CLOSED, f"申领单{req.id}已{req.status.value}, 不能再审批",
                        f"requisition {req.id} is already {req.status.value}")


def _check_head(req: Requisition, actor: Actor) -> None:
    if actor.role == ROLE_ADMIN:
        return
    if actor.role != ROLE_UNIT_HEAD or actor.unit_id != req.unit_id:
        raise PermissionDenied(f"the head step needs role {ROLE_UNIT_HEAD} of unit {req.unit_id}; "
                               f"{actor.id} is {actor.role} of {actor.unit_id or 'no unit'}")


def _check_hq(actor: Actor) -> None:
    if actor.role not in (ROLE_HQ, ROLE_ADMIN):
        raise PermissionDenied(f"the HQ step needs role {ROLE_HQ}; {actor.id} is {actor.role}")


_STEP_ZH = {ApprovalStep.SUBMIT: "申请", ApprovalStep.HEAD: "一把手审核", ApprovalStep.HQ: "指挥部审批"}


def _check_separation(req: Requisition, actor: Actor) -> None:
    for rec in req.approvals:
        if not rules.same_person(rec.actor_id, actor.id):
            continue
        if rec.step is ApprovalStep.SUBMIT:
            raise rules.refuse(rules.SEPARATION_OF_DUTIES,
                               f"申请人不能审批本人提交的申领单{req.id}, 须由他人审批",
                               f"{actor.id} filed requisition {req.id} and may not decide on it; "
                               f"another person must")
        raise rules.refuse(rules.SEPARATION_OF_DUTIES,
                           f"{actor.id}已办理申领单{req.id}的{_STEP_ZH[rec.step]}, 同一人不能审批两个环节",
                           f"{actor.id} already decided the {rec.step.value} step of requisition "
                           f"{req.id}; another person must decide this one")


def approve_head(req: Requisition, actor: Actor, at: datetime, reason: str = "") -> Requisition:
    """一把手审核: the unit head approves a submitted requisition."""
    require_aware(at)
    _actor(actor)
    if req.status is RequisitionStatus.HEAD_APPROVED:
        raise rules.refuse(rules.ALREADY_HEAD_APPROVED, f"申领单{req.id}已经单位负责人审核",
                           f"requisition {req.id} already has the head approval")
    if req.status is not RequisitionStatus.SUBMITTED:
        raise _closed(req)
    _check_head(req, actor)
    _check_separation(req, actor)
    rec = ApprovalRecord(ApprovalStep.HEAD, actor.id, actor.role, Decision.APPROVED,
                         as_text(reason, "reason", required=False, max_len=500), at)
    return replace(req, status=RequisitionStatus.HEAD_APPROVED, approvals=req.approvals + (rec,))


def approve_hq(req: Requisition, actor: Actor, at: datetime, *, unit: Requester, demand_id: str,
               policy: DemandPolicy, reason: str = "") -> tuple[Requisition, Demand]:
    """HQ approves a head-approved requisition; returns it and the demand to create.

    The demand (origin requisition) is placed by the cut-off rule at `at`, on the wished
    delivery day or the earliest open one; a wished day already past by then rolls to the
    earliest open day (rolled_over). HQ before head approval → HEAD_APPROVAL_REQUIRED.
    """
    require_aware(at)
    _actor(actor)
    if req.status is RequisitionStatus.SUBMITTED:
        raise rules.refuse(rules.HEAD_APPROVAL_REQUIRED, f"申领单{req.id}须先经单位一把手审核",
                           f"requisition {req.id} needs the unit head's approval before HQ's")
    if req.status is not RequisitionStatus.HEAD_APPROVED:
        raise _closed(req)
    _check_hq(actor)
    _check_separation(req, actor)
    if unit.id != req.unit_id:
        raise ValueError(f"unit {unit.id} is not the requisition's unit {req.unit_id}")
    wished = req.delivery_day
    late = wished is not None and wished < policy.local_day(at)
    demand = new_demand(demand_id=demand_id, requester=unit, lines=req.lines, policy=policy, at=at,
                        delivery_day=None if late else wished, origin=DemandOrigin.REQUISITION,
                        origin_ref=req.id)
    demand = replace(demand, refused_lines=req.refused_lines)
    if late:
        demand = replace(demand, requested_day=wished, rolled_over=True)
    rec = ApprovalRecord(ApprovalStep.HQ, actor.id, actor.role, Decision.APPROVED,
                         as_text(reason, "reason", required=False, max_len=500), at)
    return replace(req, status=RequisitionStatus.HQ_APPROVED, approvals=req.approvals + (rec,),
                   demand_id=demand.id), demand


def reject_requisition(req: Requisition, actor: Actor, at: datetime, reason: str) -> Requisition:
    """Reject at the pending step: the unit head while submitted, HQ once head-approved."""
    require_aware(at)
    _actor(actor)
    if req.status is RequisitionStatus.SUBMITTED:
        step = ApprovalStep.HEAD
        _check_head(req, actor)
    elif req.status is RequisitionStatus.HEAD_APPROVED:
        step = ApprovalStep.HQ
        _check_hq(actor)
    else:
        raise _closed(req)
    _check_separation(req, actor)
    text = as_text(reason, "reason", max_len=500)
    rec = ApprovalRecord(step, actor.id, actor.role, Decision.REJECTED, text, at)
    return replace(req, status=RequisitionStatus.REJECTED, approvals=req.approvals + (rec,))


def pending_step(req: Requisition) -> ApprovalStep | None:
    """The step that acts next, None when decided."""
    return {RequisitionStatus.SUBMITTED: ApprovalStep.HEAD,
            RequisitionStatus.HEAD_APPROVED: ApprovalStep.HQ}.get(req.status)
