from datetime import UTC, date, datetime, time

import pytest

from services.common.errors import InvalidInput
from services.intake.domain import DemandPolicy
from tests.unit.intake.intake_support import local

D = date(2026, 11, 28)


def test_local_day_converts_utc_to_county_time():
    p = DemandPolicy()
    assert p.local_day(datetime(2026, 11, 27, 16, 30, tzinfo=UTC)) == D
    assert p.local_day(datetime(2026, 11, 27, 15, 59, 59, tzinfo=UTC)) == date(2026, 11, 27)


def test_cutoff_is_11_local_on_the_delivery_day():
    assert DemandPolicy().cutoff_at(D) == local(2026, 11, 28, 11)


def test_just_before_cutoff_is_accepted_for_the_requested_day():
    t = DemandPolicy().delivery_target(local(2026, 11, 28, 10, 59, 59, 999999), D)
    assert (t.day, t.requested_day, t.rolled_over) == (D, D, False)
    assert t.cutoff_at == local(2026, 11, 28, 11)


def test_exactly_at_cutoff_rolls_to_the_next_day():
    t = DemandPolicy().delivery_target(local(2026, 11, 28, 11, 0, 0), D)
    assert (t.day, t.requested_day, t.rolled_over) == (date(2026, 11, 29), D, True)
    assert t.cutoff_at == local(2026, 11, 29, 11)


def test_utc_input_is_judged_in_county_time():
    p = DemandPolicy()
    before = p.delivery_target(datetime(2026, 11, 28, 2, 59, 59, tzinfo=UTC), D)
    at = p.delivery_target(datetime(2026, 11, 28, 3, 0, 0, tzinfo=UTC), D)
    assert before.day == D and not before.rolled_over
    assert at.day == date(2026, 11, 29) and at.rolled_over


def test_utc_evening_is_already_the_next_local_day():
    # 2026-11-28 20:00 UTC is 2026-11-29 04:00 local: asking for the 28th is in the past.
    with pytest.raises(InvalidInput) as e:
        DemandPolicy().delivery_target(datetime(2026, 11, 28, 20, 0, tzinfo=UTC), D)
    assert e.value.field == "delivery_day"


def test_without_a_requested_day_the_earliest_open_day_is_taken():
    p = DemandPolicy()
    morning = p.delivery_target(local(2026, 11, 28, 9), None)
    afternoon = p.delivery_target(local(2026, 11, 28, 15), None)
    assert (morning.day, morning.requested_day, morning.rolled_over) == (D, None, False)
    assert (afternoon.day, afternoon.rolled_over) == (date(2026, 11, 29), False)


def test_future_day_is_kept_even_after_todays_cutoff():
    t = DemandPolicy().delivery_target(local(2026, 11, 28, 18), date(2026, 12, 2))
    assert t.day == date(2026, 12, 2) and not t.rolled_over


def test_rollover_crosses_month_and_year():
    t = DemandPolicy().delivery_target(local(2026, 12, 31, 11, 30), date(2026, 12, 31))
    assert t.day == date(2027, 1, 1) and t.rolled_over


def test_past_and_far_days_are_invalid():
    p = DemandPolicy(max_days_ahead=30)
    with pytest.raises(InvalidInput, match="in the past") as e:
        p.delivery_target(local(2026, 11, 28, 9), date(2026, 11, 27))
    assert e.value.field == "delivery_day"
    with pytest.raises(InvalidInput, match="at most 30 days"):
        p.delivery_target(local(2026, 11, 28, 9), date(2026, 12, 29))
    assert p.delivery_target(local(2026, 11, 28, 9), date(2026, 12, 28)).day == date(2026, 12, 28)


def test_cutoff_the_day_before_delivery():
    p = DemandPolicy(cutoff_days_before=1)
    assert p.cutoff_at(date(2026, 11, 29)) == local(2026, 11, 28, 11)
    assert p.delivery_target(local(2026, 11, 28, 10), date(2026, 11, 29)).day == date(2026, 11, 29)
    late = p.delivery_target(local(2026, 11, 28, 11), date(2026, 11, 29))
    assert late.day == date(2026, 11, 30) and late.rolled_over
    # today's own cut-off was yesterday: the earliest open day is tomorrow
    assert p.delivery_target(local(2026, 11, 28, 10), None).day == date(2026, 11, 29)


def test_configurable_cutoff_time_and_zone():
    p = DemandPolicy(cutoff=time(9, 30), timezone="Asia/Urumqi")  # UTC+6
    assert p.cutoff_at(D) == datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    assert p.delivery_target(datetime(2026, 11, 28, 3, 30, tzinfo=UTC), D).rolled_over


def test_three_day_cycle_with_anchor():
    p = DemandPolicy(cycle_days=3, cycle_anchor=D)
    assert p.is_delivery_day(date(2026, 12, 1)) and not p.is_delivery_day(date(2026, 11, 29))
    with pytest.raises(InvalidInput, match="not a delivery day; next is 2026-12-01"):
        p.delivery_target(local(2026, 11, 28, 9), date(2026, 11, 29))
    rolled = p.delivery_target(local(2026, 11, 28, 12), D)
    assert rolled.day == date(2026, 12, 1) and rolled.rolled_over
    assert p.delivery_target(local(2026, 11, 29, 12), None).day == date(2026, 12, 1)
    assert p.next_delivery_day(D) == date(2026, 12, 1)


def test_naive_datetime_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        DemandPolicy().delivery_target(datetime(2026, 11, 28, 9), D)


def test_over_norm_boundary():
    p = DemandPolicy()
    # norm = 0.04 × 1000 × 1 = 40; limit = 3 × 40 = 120
    assert not p.is_over_norm(120, 0.04, 1000)
    assert p.is_over_norm(121, 0.04, 1000)
    assert not p.is_over_norm(10**6, 0.0, 1000)  # no norm, never flagged
    assert DemandPolicy(cycle_days=3).is_over_norm(361, 0.04, 1000)
    assert not DemandPolicy(cycle_days=3).is_over_norm(360, 0.04, 1000)
    # 3 × 0.29 × 100 is 86.99999999999999 in floats: the limit itself is not over the norm
    assert not p.is_over_norm(87, 0.29, 100)
    assert p.is_over_norm(88, 0.29, 100)


@pytest.mark.parametrize("kwargs", [
    {"cycle_days": 0}, {"over_norm_factor": 0}, {"max_lines": 0}, {"cutoff_days_before": -1},
    {"timezone": "Mars/Olympus"},
])
def test_bad_policy_is_refused(kwargs):
    with pytest.raises(Exception):  # noqa: B017 - ValueError or ZoneInfoNotFoundError
        DemandPolicy(**kwargs)


# ---- the county's cut-off, from allocation's policy (policy_changed) ------------------------
def test_the_county_cut_off_replaces_the_built_in_one_and_a_newer_version_wins():
    from services.intake.domain import county_cutoff

    county = county_cutoff({"version": 3, "cutoff": "09:30", "cutoff_days_before": 1,
                            "updated_at": "2026-11-27T01:00:00Z", "tier_order": [1, 2, 3, 4, 5]})
    p = DemandPolicy().following(county)
    assert p.cutoff_at(D) == local(2026, 11, 27, 9, 30)
    assert DemandPolicy().following(None) == DemandPolicy()
    assert county.supersedes(None) and county.supersedes(2)
    assert not county.supersedes(3) and not county.supersedes(4)


@pytest.mark.parametrize(("payload", "field"), [
    ({"cutoff": "11:00", "cutoff_days_before": 0}, "payload.version"),
    ({"version": 1, "cutoff": "25:00", "cutoff_days_before": 0}, "payload.cutoff"),
    ({"version": 1, "cutoff": "11:00", "cutoff_days_before": 8}, "payload.cutoff_days_before"),
    ({"version": 1, "cutoff": "11:00", "cutoff_days_before": 0, "updated_at": "yesterday"},
     "payload.updated_at"),
])
def test_a_bad_policy_changed_names_its_field(payload, field):
    from services.intake.domain import county_cutoff

    with pytest.raises(InvalidInput) as exc:
        county_cutoff(payload)
    assert exc.value.field == field


def test_an_open_demand_follows_its_days_new_cut_off():
    from services.intake.domain import CountyCutoff, Demand, follow_cutoff

    demand = Demand(id="DM-1", requester_id="V1", delivery_day=D, requested_day=D,
                    rolled_over=False, submitted_at=local(2026, 11, 28, 8), lines=(),
                    cutoff_at=DemandPolicy().cutoff_at(D))
    earlier = DemandPolicy().following(CountyCutoff(1, time(9, 0), 0))
    assert follow_cutoff(demand, earlier).cutoff_at == local(2026, 11, 28, 9)
