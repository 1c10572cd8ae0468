"""Plan states and the daily cycle (domain.plan_state) and the county policy (domain.county_policy)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.allocation.domain import plan_state as ps
from services.allocation.domain.county_policy import CountyPolicy, apply_changes
from services.common.catalogue import load_catalogue
from services.common.errors import InvalidInput, RuleRefused

CST = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 1)
CAT = load_catalogue()


def at(h: int, m: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, h, m, tzinfo=CST)


def propose(day_plans, n: int, trigger=ps.PlanTrigger.MANUAL, when=None):
    return ps.propose(day_plans, plan_id=f"P-{n}", delivery_day=DAY, trigger=trigger,
                      at=when or at(11, 1), by="hq-1", policy_version=0,
                      dispatch_deadline=at(17))


def test_versions_count_up_and_a_new_version_supersedes_the_proposed_one():
    v1, superseded = propose([], 1, ps.PlanTrigger.CUTOFF)
    assert (v1.version, v1.status, superseded) == (1, ps.PlanStatus.PROPOSED, [])
    v2, superseded = propose([v1], 2)
    assert v2.version == 2
    assert [(p.plan_id, p.status, p.superseded_by) for p in superseded] == [
        ("P-1", ps.PlanStatus.SUPERSEDED, "P-2")]


def test_only_the_latest_proposed_version_can_be_decided():
    v1, _ = propose([], 1)
    v2, (v1s,) = propose([v1], 2)
    day = [v1s, v2]
    with pytest.raises(RuleRefused) as exc:
        ps.approve(v1s, day, by="hq-1", at=at(12))
    assert exc.value.rule == ps.PLAN_SUPERSEDED and "P-2" in exc.value.message
    # a proposed version that is not the latest (data written by an older release) is refused too
    with pytest.raises(RuleRefused) as exc:
        ps.approve(v1, [v1, v2], by="hq-1", at=at(12))
    assert exc.value.rule == ps.NOT_LATEST_VERSION
    approved = ps.approve(v2, day, by="hq-1", at=at(12))
    assert (approved.status, approved.decided_by, approved.late) == (ps.PlanStatus.APPROVED, "hq-1",
                                                                     False)


def test_an_approved_plan_is_immutable_and_closes_the_day():
    v1, _ = propose([], 1)
    approved = ps.approve(v1, [v1], by="hq-1", at=at(12))
    for decide in (lambda: ps.approve(approved, [approved], by="hq-2", at=at(13)),
                   lambda: ps.reject(approved, [approved], by="hq-2", at=at(13), reason="no")):
        with pytest.raises(RuleRefused) as exc:
            decide()
        assert exc.value.rule == ps.PLAN_ALREADY_APPROVED
    with pytest.raises(RuleRefused) as exc:
        propose([approved], 2)
    assert exc.value.rule == ps.DAY_ALREADY_APPROVED


def test_reject_needs_a_reason_and_a_rejected_plan_cannot_be_approved_but_replanned():
    v1, _ = propose([], 1)
    with pytest.raises(InvalidInput) as exc:
        ps.reject(v1, [v1], by="hq-1", at=at(12), reason="  ")
    assert exc.value.field == "reason"
    rejected = ps.reject(v1, [v1], by="hq-1", at=at(12), reason="口罩需求需复核")
    assert (rejected.status, rejected.decision_reason) == (ps.PlanStatus.REJECTED, "口罩需求需复核")
    with pytest.raises(RuleRefused) as exc:
        ps.approve(rejected, [rejected], by="hq-1", at=at(12, 5))
    assert exc.value.rule == ps.PLAN_REJECTED
    v2, superseded = propose([rejected], 2)
    assert v2.version == 2 and superseded == []  # a rejected version stays rejected


def test_approval_after_the_dispatch_deadline_is_late_not_refused():
    v1, _ = propose([], 1)
    assert ps.approve(v1, [v1], by="hq", at=at(17)).late is False
    assert ps.approve(v1, [v1], by="hq", at=at(17, 1)).late is True


def test_the_cutoff_plans_a_day_only_once():
    assert ps.cutoff_due([])
    v1, _ = propose([], 1, ps.PlanTrigger.CUTOFF)
    assert not ps.cutoff_due([v1])
    rejected = ps.reject(v1, [v1], by="hq", at=at(12), reason="redo")
    assert not ps.cutoff_due([rejected])  # after a rejection HQ asks for the next version


def test_saved_plans_only_after_the_cutoff_and_not_for_past_days_dry_runs_always():
    cutoff = at(11)
    with pytest.raises(RuleRefused) as exc:
        ps.check_can_run(DAY, at(10, 59), cutoff, DAY, dry_run=False)
    assert exc.value.rule == ps.BEFORE_CUTOFF
    ps.check_can_run(DAY, at(11), cutoff, DAY, dry_run=False)
    with pytest.raises(RuleRefused) as exc:
        ps.check_can_run(DAY - timedelta(days=1), at(12), cutoff, DAY, dry_run=False)
    assert exc.value.rule == ps.DAY_PASSED
    ps.check_can_run(DAY, at(9), cutoff, DAY, dry_run=True)


# ---- the county policy -------------------------------------------------------------------
def test_cycle_times_are_county_local_and_follow_cutoff_days_before():
    p = CountyPolicy()
    assert p.cutoff_at(DAY, CST) == at(11) and p.dispatch_deadline_at(DAY, CST) == at(17)
    assert p.due_day(at(10, 59), CST) is None
    assert p.due_day(at(11), CST) == DAY
    # 11:00 local is 03:00 UTC: a UTC clock reading is compared in county time
    assert p.due_day(at(11).astimezone(ZoneInfo("UTC")), CST) == DAY
    day_before = replace(p, cutoff_days_before=1)
    assert day_before.cutoff_at(DAY, CST) == at(11, day=DAY - timedelta(days=1))
    assert day_before.due_day(at(11, 30), CST) == DAY + timedelta(days=1)


def test_changes_make_the_next_version_and_no_change_keeps_it():
    p0 = CountyPolicy()
    p1 = apply_changes(p0, {"cutoff": "10:30", "reserve_days": {"grain_oil": 20}}, CAT,
                       by="hq-1", at=at(9))
    assert (p1.version, p1.cutoff, p1.reserve_days, p1.updated_by) == (
        1, "10:30", {"grain_oil": 20.0}, "hq-1")
    assert apply_changes(p1, {"cutoff": "10:30"}, CAT, by="hq-2", at=at(9)) is p1
    engine = apply_changes(p1, {"tier_order": [1, 3, 2, 4, 5], "allow_package_substitution": False,
                                "below_reserve_tiers": [2, 1]}, CAT, by="hq", at=at(9)).engine_policy()
    assert engine.tier_order == (1, 3, 2, 4, 5) and not engine.allow_package_substitution
    assert engine.below_reserve_tiers == frozenset({1, 2}) and engine.reserve_days == {"grain_oil": 20.0}


@pytest.mark.parametrize("changes, field", [
    ({"tier_order": [1, 2, 3, 4]}, "policy.tier_order"),
    ({"tier_order": [1, 2, 3, 4, 4]}, "policy.tier_order[4]"),
    ({"tier_order": [1, 2, 3, 4, 9]}, "policy.tier_order[4]"),
    ({"reserve_days": {"gold": 3}}, "policy.reserve_days[gold]"),
    ({"reserve_days": {"pork": -1}}, "policy.reserve_days[pork]"),
    ({"reserve_days": {"pork": float("nan")}}, "policy.reserve_days[pork]"),
    ({"cutoff": "25:00"}, "policy.cutoff"),
    ({"cutoff": "11"}, "policy.cutoff"),
    ({"dispatch_deadline": "10:00"}, "policy.dispatch_deadline"),
    ({"cutoff": "18:00"}, "policy.cutoff"),
    ({"cutoff_days_before": 8}, "policy.cutoff_days_before"),
    ({"min_days_to_expiry": -1}, "policy.min_days_to_expiry"),
    ({"below_reserve_tiers": [0]}, "policy.below_reserve_tiers[0]"),
    ({"allow_package_substitution": "yes"}, "policy.allow_package_substitution"),
    ({"timezone": "UTC"}, "policy.timezone"),
])
def test_bad_values_are_refused_naming_the_field(changes, field):
    with pytest.raises(InvalidInput) as exc:
        apply_changes(CountyPolicy(), changes, CAT, by="hq", at=at(9))
    assert exc.value.field == field
