"""What the county day asks of the reports process at a given county-local instant: the day's
report once its time has come, and the deadline checks (RULES: the plan approved in time, trips
dispatched by the dispatch deadline). Pure: the caller says what was already done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

PLAN_NOT_APPROVED = "plan_not_approved"
TRIPS_NOT_DISPATCHED = "trips_not_dispatched"
KINDS = (PLAN_NOT_APPROVED, TRIPS_NOT_DISPATCHED)


@dataclass(frozen=True)
class Schedule:
    report_at: time = time(17, 30)
    plan_approved_by: time = time(16, 30)
    # how many past days a scheduler that was down at their report time still makes, late
    catch_up_days: int = 3


@dataclass(frozen=True)
class Policy:
    """The part of allocation's policy the deadlines come from (GetPolicy)."""

    dispatch_deadline: time = time(17, 0)
    cutoff_days_before: int = 0

    def planning_day(self, today: date) -> date:
        """The delivery day whose plan is made, approved and dispatched today."""
        return today + timedelta(days=self.cutoff_days_before)


@dataclass(frozen=True)
class Check:
    kind: str
    day: date  # the delivery day that is late
    due_at: time  # county time it was due


def report_due(local_now: datetime, schedule: Schedule, made: set[date]) -> date | None:
    """Today, once the report's time has passed and today's report is not made yet."""
    today = local_now.date()
    if local_now.time() >= schedule.report_at and today not in made:
        return today
    return None


def reports_due(local_now: datetime, schedule: Schedule, made: set[date],
                first_made: date | None) -> list[date]:
    """Every report due and not made, oldest first: the days the scheduler missed (it was down
    at their report time), at most `catch_up_days` back, then today once its time has come.
    Nothing before the county's first report (`first_made`): a new install has no evenings to
    catch up."""
    today = local_now.date()
    missed = []
    if first_made is not None:
        for back in range(schedule.catch_up_days, 0, -1):
            day = today - timedelta(days=back)
            if day > first_made and day not in made:
                missed.append(day)
    now_due = report_due(local_now, schedule, made)
    return missed + ([now_due] if now_due else [])


def deadline_checks(local_now: datetime, schedule: Schedule, policy: Policy,
                    raised: set[tuple[str, date]]) -> list[Check]:
    """The deadlines passed today that have not been checked (raised) yet for their day."""
    day = policy.planning_day(local_now.date())
    due = []
    for kind, at in ((PLAN_NOT_APPROVED, schedule.plan_approved_by),
                     (TRIPS_NOT_DISPATCHED, policy.dispatch_deadline)):
        if local_now.time() >= at and (kind, day) not in raised:
            due.append(Check(kind, day, at))
    return due


@dataclass(frozen=True)
class Late:
    """What a check found late; nothing late when `count` is 0."""

    kind: str
    day: date
    count: int
    what: str  # English, for the event and the log; no personal data
    what_zh: str


def plan_lateness(day: date, statuses: list[str]) -> Late:
    """statuses: the day's plan versions' statuses (allocation's ListPlans)."""
    approved = "approved" in statuses
    proposed = sum(1 for s in statuses if s == "proposed")
    if approved:
        return Late(PLAN_NOT_APPROVED, day, 0, "", "")
    if not statuses:
        return Late(PLAN_NOT_APPROVED, day, 1, "no plan made for the day", "当日无调配方案")
    return Late(PLAN_NOT_APPROVED, day, max(proposed, 1),
                f"{proposed} plan version(s) waiting for HQ approval", f"{proposed} 个方案版本待指挥部审批")


def dispatch_lateness(day: date, approved_plans: list[str], dispatched: set[str]) -> Late:
    """approved_plans: ids of the day's approved plans; dispatched: plan ids whose trips are built
    (logistics' ListTrips dispatches with status dispatched)."""
    late = [p for p in approved_plans if p not in dispatched]
    if not late:
        return Late(TRIPS_NOT_DISPATCHED, day, 0, "", "")
    return Late(TRIPS_NOT_DISPATCHED, day, len(late),
                f"{len(late)} approved plan(s) without dispatched trips", f"{len(late)} 个已批方案未发车")
