from datetime import date

import pytest

from services.common.errors import InvalidInput, PermissionDenied, RuleRefused
from services.intake.domain import (
    Actor,
    ApprovalStep,
    Decision,
    DemandOrigin,
    RequisitionStatus,
    Tier,
    approve_head,
    approve_hq,
    file_requisition,
    pending_step,
    reject_requisition,
)
from tests.unit.intake.intake_support import local

T0 = local(2026, 11, 28, 8)
T1 = local(2026, 11, 28, 9)
T2 = local(2026, 11, 28, 10)
STAFF = Actor("nurse-li", "unit_staff", "U-hospital")
HEAD = Actor("dean-wang", "unit_head", "U-hospital")
OTHER_HEAD = Actor("head-zhao", "unit_head", "U-school")
HQ = Actor("hq-chen", "hq")
LINES = [{"item_code": "MASK-N95", "quantity": 40}, {"item_code": "GOWN-PROTECTIVE", "quantity": 200}]


@pytest.fixture
def hospital(make_unit):
    return make_unit("hospital")


def file(unit, catalogue, policy, actor=STAFF, **over):
    kwargs = dict(requisition_id="RQ-1", unit=unit, lines=LINES, purpose="发热门诊一周防护",
                  headcount_basis=120, actor=actor, catalogue=catalogue, policy=policy, at=T0)
    kwargs.update(over)
    return file_requisition(**kwargs)


def test_full_path_to_a_demand(hospital, catalogue, policy):
    r = file(hospital, catalogue, policy)
    assert r.status is RequisitionStatus.SUBMITTED and pending_step(r) is ApprovalStep.HEAD
    assert [ln.tier for ln in r.lines] == [Tier.FRONTLINE_MEDICAL] * 2
    r = approve_head(r, HEAD, T1, "同意")
    assert r.status is RequisitionStatus.HEAD_APPROVED and pending_step(r) is ApprovalStep.HQ
    r, demand = approve_hq(r, HQ, T2, unit=hospital, demand_id="DM-7", policy=policy)
    assert r.status is RequisitionStatus.HQ_APPROVED and pending_step(r) is None
    assert r.demand_id == "DM-7"
    assert (demand.id, demand.requester_id, demand.origin, demand.origin_ref) == (
        "DM-7", "U-hospital", DemandOrigin.REQUISITION, "RQ-1")
    assert demand.delivery_day == date(2026, 11, 28) and demand.submitted_at == T2
    assert [(ln.item_code, ln.quantity, ln.tier) for ln in demand.lines] == [
        ("MASK-N95", 40, Tier.FRONTLINE_MEDICAL), ("GOWN-PROTECTIVE", 200, Tier.FRONTLINE_MEDICAL)]
    assert [(a.step, a.actor_id, a.role, a.decision, a.at) for a in r.approvals] == [
        (ApprovalStep.SUBMIT, "nurse-li", "unit_staff", Decision.SUBMITTED, T0),
        (ApprovalStep.HEAD, "dean-wang", "unit_head", Decision.APPROVED, T1),
        (ApprovalStep.HQ, "hq-chen", "hq", Decision.APPROVED, T2),
    ]
    assert r.approvals[1].reason == "同意" and r.filed_by == "nurse-li"


def test_hq_before_head_is_refused(hospital, catalogue, policy):
    r = file(hospital, catalogue, policy)
    with pytest.raises(RuleRefused) as e:
        approve_hq(r, HQ, T1, unit=hospital, demand_id="DM-1", policy=policy)
    assert e.value.rule == "HEAD_APPROVAL_REQUIRED" and "一把手" in e.value.message


def test_head_approval_needs_the_head_of_the_same_unit(hospital, catalogue, policy):
    r = file(hospital, catalogue, policy)
    for actor in (STAFF, OTHER_HEAD, HQ, Actor("dean-wang", "unit_head", None)):
        with pytest.raises(PermissionDenied):
            approve_head(r, actor, T1)


def test_hq_approval_needs_role_hq(hospital, catalogue, policy):
    r = approve_head(file(hospital, catalogue, policy), HEAD, T1)
    for actor in (HEAD, STAFF, Actor("x", "depot_keeper")):
        with pytest.raises(PermissionDenied):
            approve_hq(r, actor, T2, unit=hospital, demand_id="DM-1", policy=policy)


def test_admin_may_act_at_either_step(hospital, catalogue, policy):
    r = approve_head(file(hospital, catalogue, policy), Actor("it-admin", "admin"), T1)
    r, _ = approve_hq(r, Actor("it-wu", "admin"), T2, unit=hospital, demand_id="DM-1", policy=policy)
    assert [a.role for a in r.approvals] == ["unit_staff", "admin", "admin"]


def separation_refused(call) -> str:
    with pytest.raises(RuleRefused) as e:
        call()
    assert e.value.rule == "SEPARATION_OF_DUTIES"
    return e.value.message


def test_the_filer_decides_no_step_of_their_requisition(hospital, catalogue, policy):
    by_head = file(hospital, catalogue, policy, actor=HEAD)
    for decide in (lambda: approve_head(by_head, HEAD, T1),
                   lambda: approve_head(by_head, Actor(" Dean-Wang ", "unit_head", "U-hospital"), T1),
                   lambda: reject_requisition(by_head, HEAD, T1, "撤回")):
        assert "申请人" in separation_refused(decide)
    by_hq = approve_head(file(hospital, catalogue, policy, actor=HQ), HEAD, T1)
    assert "filed" in separation_refused(
        lambda: approve_hq(by_hq, HQ, T2, unit=hospital, demand_id="DM-1", policy=policy))
    approve_hq(by_hq, Actor("hq-zhao", "hq"), T2, unit=hospital, demand_id="DM-1", policy=policy)


def test_nobody_decides_two_steps_of_one_requisition(hospital, catalogue, policy):
    admin = Actor("it-admin", "admin")
    r = approve_head(file(hospital, catalogue, policy), admin, T1)
    for decide in (lambda: approve_hq(r, admin, T2, unit=hospital, demand_id="DM-1", policy=policy),
                   lambda: reject_requisition(r, admin, T2, "no")):
        assert "一把手审核" in separation_refused(decide)


def test_steps_cannot_repeat(hospital, catalogue, policy):
    r = approve_head(file(hospital, catalogue, policy), HEAD, T1)
    with pytest.raises(RuleRefused, match="ALREADY_HEAD_APPROVED"):
        approve_head(r, HEAD, T1)
    r, _ = approve_hq(r, HQ, T2, unit=hospital, demand_id="DM-1", policy=policy)
    with pytest.raises(RuleRefused, match="REQUISITION_CLOSED"):
        approve_hq(r, HQ, T2, unit=hospital, demand_id="DM-2", policy=policy)
    with pytest.raises(RuleRefused, match="REQUISITION_CLOSED"):
        reject_requisition(r, HQ, T2, "too late")


def test_reject_at_head_step(hospital, catalogue, policy):
    r = reject_requisition(file(hospital, catalogue, policy), HEAD, T1, "数量偏大")
    assert r.status is RequisitionStatus.REJECTED
    last = r.approvals[-1]
    assert (last.step, last.decision, last.reason, last.actor_id) == (
        ApprovalStep.HEAD, Decision.REJECTED, "数量偏大", "dean-wang")
    with pytest.raises(RuleRefused, match="REQUISITION_CLOSED"):
        approve_head(r, HEAD, T2)


def test_reject_at_hq_step(hospital, catalogue, policy):
    r = approve_head(file(hospital, catalogue, policy), HEAD, T1)
    with pytest.raises(PermissionDenied):
        reject_requisition(r, HEAD, T2, "changed my mind")  # the head step is over
    r = reject_requisition(r, HQ, T2, "库存不足, 改日再报")
    assert r.status is RequisitionStatus.REJECTED and r.approvals[-1].step is ApprovalStep.HQ


def test_reject_needs_a_reason(hospital, catalogue, policy):
    r = file(hospital, catalogue, policy)
    for reason in ("", "   ", None):
        with pytest.raises(InvalidInput) as e:
            reject_requisition(r, HEAD, T1, reason)
        assert e.value.field == "reason"


def test_hq_rejecting_before_head_is_not_allowed(hospital, catalogue, policy):
    with pytest.raises(PermissionDenied):
        reject_requisition(file(hospital, catalogue, policy), HQ, T1, "no")


def test_only_units_file_requisitions(sealed_village, catalogue, policy):
    with pytest.raises(RuleRefused) as e:
        file(sealed_village, catalogue, policy, actor=Actor("w", "unit_staff", "V-001"))
    assert e.value.rule == "UNIT_REQUESTER_ONLY"


def test_filer_must_belong_to_the_unit(hospital, catalogue, policy):
    with pytest.raises(PermissionDenied):
        file(hospital, catalogue, policy, actor=OTHER_HEAD)
    assert file(hospital, catalogue, policy, actor=HQ).filed_by == "hq-chen"


@pytest.mark.parametrize("over,field", [
    ({"purpose": ""}, "purpose"), ({"headcount_basis": 0}, "headcount_basis"),
    ({"lines": [{"item_code": "MASK-N95", "quantity": 0}]}, "lines[0].quantity"),
    ({"delivery_day": "2026-11-20"}, "delivery_day"),
])
def test_filing_validation(hospital, catalogue, policy, over, field):
    with pytest.raises(InvalidInput) as e:
        file(hospital, catalogue, policy, **over)
    assert e.value.field == field


def test_a_non_essential_or_unknown_line_is_left_out_and_the_rest_filed(hospital, catalogue, policy):
    r = file(hospital, catalogue, policy, lines=[
        {"item_code": "MASK-N95", "quantity": 40}, {"item_code": "BAIJIU-500ML", "quantity": 1},
        {"item_code": "NOPE-1", "quantity": 1}, {"item_code": "GOWN-PROTECTIVE", "quantity": 200}])
    assert [(ln.line_no, ln.item_code) for ln in r.lines] == [(0, "MASK-N95"), (3, "GOWN-PROTECTIVE")]
    assert [(x.line_no, x.item_code, x.field, x.code) for x in r.refused_lines] == [
        (1, "BAIJIU-500ML", "lines[1].item_code", "NON_ESSENTIAL"),
        (2, "NOPE-1", "lines[2].item_code", "UNKNOWN_ITEM")]
    assert "烟酒等非必须品除外" in r.refused_lines[0].zh and "non-essential" in r.refused_lines[0].en
    r, demand = approve_hq(approve_head(r, HEAD, T1), HQ, T2, unit=hospital, demand_id="DM-1",
                           policy=policy)
    assert [ln.line_no for ln in demand.lines] == [0, 3]
    assert demand.refused_lines == r.refused_lines  # the demand says why its numbers skip


def test_a_requisition_whose_every_line_is_refused_raises_the_first_lines_error(hospital, catalogue,
                                                                               policy):
    with pytest.raises(RuleRefused, match="NON_ESSENTIAL") as e:
        file(hospital, catalogue, policy, lines=[{"item_code": "BAIJIU-500ML", "quantity": 1},
                                                 {"item_code": "NOPE-1", "quantity": 1}])
    assert e.value.field == "lines[0].item_code"
    with pytest.raises(InvalidInput) as e:
        file(hospital, catalogue, policy, lines=[{"item_code": "NOPE-1", "quantity": 1}])
    assert e.value.field == "lines[0].item_code"


def test_exaggerated_headcount_and_quantities_are_flagged(hospital, catalogue, policy):
    honest = file(hospital, catalogue, policy, headcount_basis=150)
    assert not honest.flagged and honest.registered_basis == 150
    inflated = file(hospital, catalogue, policy, headcount_basis=400)
    assert inflated.basis_exceeds_registered and inflated.flagged
    # the norm uses the registered basis (150), not the declared one: 0.1 × 150 × 3 = 45
    big = file(hospital, catalogue, policy, headcount_basis=400,
               lines=[{"item_code": "MASK-N95", "quantity": 120}])
    assert big.lines[0].flagged


def test_wished_day_past_by_hq_approval_rolls(hospital, catalogue, policy):
    r = file(hospital, catalogue, policy, delivery_day="2026-11-28")
    r = approve_head(r, HEAD, T1)
    _, demand = approve_hq(r, HQ, local(2026, 11, 30, 9), unit=hospital, demand_id="DM-1",
                           policy=policy)
    assert demand.delivery_day == date(2026, 11, 30)
    assert demand.requested_day == date(2026, 11, 28) and demand.rolled_over


def test_wished_day_kept_and_cutoff_applied_at_hq_approval(hospital, catalogue, policy):
    r = approve_head(file(hospital, catalogue, policy, delivery_day=date(2026, 11, 28)), HEAD, T1)
    _, on_time = approve_hq(r, HQ, T2, unit=hospital, demand_id="DM-1", policy=policy)
    _, late = approve_hq(r, HQ, local(2026, 11, 28, 11), unit=hospital, demand_id="DM-2",
                         policy=policy)
    assert (on_time.delivery_day, on_time.rolled_over) == (date(2026, 11, 28), False)
    assert (late.delivery_day, late.rolled_over) == (date(2026, 11, 29), True)
