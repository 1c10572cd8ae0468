"""The reports process's schedule on a FixedClock: the day's report once its time has come, the
deadline checks once per kind and delivery day, and what counts as late."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from services.common.clock import FixedClock
from services.reports.domain import schedule as sc

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 1)


def _local(clock: FixedClock) -> datetime:
    return clock.now().astimezone(TZ)


def test_the_report_is_due_at_its_time_and_once():
    clock = FixedClock(datetime(2026, 12, 1, 17, 29, tzinfo=TZ))
    s = sc.Schedule()
    assert sc.report_due(_local(clock), s, set()) is None
    clock.advance(minutes=1)
    assert sc.report_due(_local(clock), s, set()) == DAY
    assert sc.report_due(_local(clock), s, {DAY}) is None
    clock.advance(hours=7)  # after midnight: the next day's report waits for its 17:30
    assert sc.report_due(_local(clock), s, {DAY}) is None


def test_the_report_time_is_configurable():
    clock = FixedClock(datetime(2026, 12, 1, 9, 0, tzinfo=TZ))
    assert sc.report_due(_local(clock), sc.Schedule(report_at=time(9, 0)), set()) == DAY


def test_deadline_checks_fall_due_at_their_times_once_per_kind_and_day():
    clock = FixedClock(datetime(2026, 12, 1, 16, 29, tzinfo=TZ))
    s, policy = sc.Schedule(), sc.Policy(dispatch_deadline=time(17, 0))
    assert sc.deadline_checks(_local(clock), s, policy, set()) == []
    clock.advance(minutes=1)
    assert sc.deadline_checks(_local(clock), s, policy, set()) == [
        sc.Check(sc.PLAN_NOT_APPROVED, DAY, time(16, 30))]
    clock.advance(minutes=30)
    raised = {(sc.PLAN_NOT_APPROVED, DAY)}
    assert sc.deadline_checks(_local(clock), s, policy, raised) == [
        sc.Check(sc.TRIPS_NOT_DISPATCHED, DAY, time(17, 0))]
    raised.add((sc.TRIPS_NOT_DISPATCHED, DAY))
    assert sc.deadline_checks(_local(clock), s, policy, raised) == []


def test_the_checked_day_follows_the_policys_cutoff_days_before():
    clock = FixedClock(datetime(2026, 12, 1, 16, 45, tzinfo=TZ))
    checks = sc.deadline_checks(_local(clock), sc.Schedule(), sc.Policy(cutoff_days_before=1), set())
    assert [c.day for c in checks] == [date(2026, 12, 2)]


def test_a_plan_is_late_unless_a_version_is_approved():
    assert sc.plan_lateness(DAY, ["superseded", "approved"]).count == 0
    late = sc.plan_lateness(DAY, ["superseded", "proposed"])
    assert (late.kind, late.count) == (sc.PLAN_NOT_APPROVED, 1) and "approval" in late.what
    assert sc.plan_lateness(DAY, []).what == "no plan made for the day"


def test_trips_are_late_for_each_approved_plan_not_dispatched():
    assert sc.dispatch_lateness(DAY, ["P-1"], {"P-1"}).count == 0
    late = sc.dispatch_lateness(DAY, ["P-1", "P-2"], {"P-1"})
    assert (late.kind, late.count) == (sc.TRIPS_NOT_DISPATCHED, 1)


def test_a_scheduler_down_at_report_time_makes_the_missed_days_late_oldest_first():
    s = sc.Schedule(catch_up_days=3)
    morning = datetime(2026, 12, 5, 9, 0, tzinfo=TZ)  # down since the evening of the 2nd
    made = {date(2026, 12, 1), date(2026, 12, 2)}
    assert sc.reports_due(morning, s, made, first_made=date(2026, 12, 1)) == [
        date(2026, 12, 3), date(2026, 12, 4)]
    evening = datetime(2026, 12, 5, 17, 30, tzinfo=TZ)
    assert sc.reports_due(evening, s, made | {date(2026, 12, 3), date(2026, 12, 4)},
                          first_made=date(2026, 12, 1)) == [date(2026, 12, 5)]


def test_catch_up_goes_back_at_most_its_days_and_never_before_the_first_report():
    morning = datetime(2026, 12, 10, 9, 0, tzinfo=TZ)
    assert sc.reports_due(morning, sc.Schedule(catch_up_days=2), set(), first_made=date(2026, 12, 1)) == [
        date(2026, 12, 8), date(2026, 12, 9)]
    assert sc.reports_due(morning, sc.Schedule(catch_up_days=0), set(), first_made=date(2026, 12, 1)) == []
    # a new install (no report ever made) and the day of the first report itself: nothing to catch up
    assert sc.reports_due(morning, sc.Schedule(), set(), first_made=None) == []
    assert sc.reports_due(morning, sc.Schedule(), set(), first_made=date(2026, 12, 8)) == [date(2026, 12, 9)]
