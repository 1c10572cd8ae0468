"""The HQ board's pure shaping (services/console/domain/board.py): the county day's deadlines
with the minutes left (negative once passed), demands by tier and township, fill rates."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.console.domain.board import (
    DemandRow,
    deadlines,
    fill_rate,
    parse_hhmm,
    tier_township_table,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 28)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 28, hh, mm, ss, tzinfo=SHANGHAI)


def minutes_left(now: datetime, **policy) -> dict[str, int]:
    args = {"cutoff": "11:00", "dispatch": "17:00", "report": "17:30", **policy}
    return {d.code: d.minutes_left for d in deadlines(now, SHANGHAI, DAY, **args)}


def test_the_three_deadlines_of_the_day_in_county_time():
    ds = deadlines(at(10, 0), SHANGHAI, DAY, "11:00", "17:00", "17:30")
    assert [d.code for d in ds] == ["cutoff", "dispatch", "report"]
    assert [d.at for d in ds] == [at(11, 0), at(17, 0), at(17, 30)]
    assert [d.minutes_left for d in ds] == [60, 420, 450]
    assert not any(d.passed for d in ds)


def test_a_utc_now_counts_the_same_as_county_time():
    assert minutes_left(datetime(2026, 11, 28, 2, 0, tzinfo=UTC)) == minutes_left(at(10, 0))


def test_passed_deadlines_have_negative_minutes():
    ds = {d.code: d for d in deadlines(at(17, 10), SHANGHAI, DAY, "11:00", "17:00", "17:30")}
    assert ds["cutoff"].minutes_left == -370 and ds["cutoff"].passed
    assert ds["dispatch"].minutes_left == -10 and ds["dispatch"].passed
    assert ds["report"].minutes_left == 20 and not ds["report"].passed


def test_the_deadline_minute_itself_is_not_yet_passed_half_a_minute_later_it_is():
    on_time = {d.code: d for d in deadlines(at(11, 0), SHANGHAI, DAY, "11:00", "17:00", "17:30")}
    assert on_time["cutoff"].minutes_left == 0 and not on_time["cutoff"].passed
    late = {d.code: d for d in deadlines(at(11, 0, 30), SHANGHAI, DAY, "11:00", "17:00", "17:30")}
    assert late["cutoff"].passed


def test_a_county_policy_moves_the_deadlines():
    assert minutes_left(at(8, 0), cutoff="09:30", dispatch="16:00") == {
        "cutoff": 90, "dispatch": 480, "report": 570}


@pytest.mark.parametrize("raw", ["", "11", "25:00", "11:60", "aa:bb", "11:00:00", None])
def test_a_bad_time_falls_back_to_the_rules_default(raw):
    assert parse_hhmm(raw, time(11)) == time(11)
    assert minutes_left(at(10, 0), cutoff=raw)["cutoff"] == 60


def test_parse_hhmm():
    assert parse_hhmm("07:05", time(11)) == time(7, 5)
    assert parse_hhmm("0:00", time(11)) == time(0, 0)


def row(i: int, township: str, tier: int, flagged: bool = False) -> DemandRow:
    return DemandRow(f"D{i}", f"R{i}", township, tier, 3, flagged, "open")


def test_demands_by_tier_and_township():
    rows = [row(1, "青溪镇", 3), row(2, "城关镇", 3), row(3, "城关镇", 1), row(4, "青溪镇", 3),
            row(5, "白沙乡", 5, flagged=True)]
    townships, table, per_tier = tier_township_table((r.top_tier, r.township, 1) for r in rows)
    assert townships == sorted({"青溪镇", "城关镇", "白沙乡"})
    assert list(table) == [1, 3, 5]  # tiers in order, only those with demands
    assert table[3] == {"城关镇": 1, "白沙乡": 0, "青溪镇": 2}
    assert table[1] == {"城关镇": 1, "白沙乡": 0, "青溪镇": 0}
    assert all(list(cells) == townships for cells in table.values())  # every cell, zeros included
    assert per_tier == Counter({3: 3, 1: 1, 5: 1})
    assert sum(sum(cells.values()) for cells in table.values()) == len(rows)


def test_no_demands_gives_an_empty_table():
    assert tier_township_table([]) == ([], {}, Counter())


def test_fill_rate():
    assert fill_rate(5, 10) == 0.5
    assert fill_rate(0, 10) == 0.0
    assert fill_rate(10, 10) == 1.0
    assert fill_rate(0, 0) is None and fill_rate(3, -1) is None


def test_minutes_left_rounds_down_to_whole_minutes():
    ds = deadlines(at(10, 59, 1), SHANGHAI, DAY, "11:00", "17:00", "17:30")
    assert ds[0].minutes_left == 0
    ds = deadlines(at(11, 0) + timedelta(minutes=1, seconds=1), SHANGHAI, DAY, "11:00", "17:00", "17:30")
    assert ds[0].minutes_left == -2
