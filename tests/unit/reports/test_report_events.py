"""The reports process's use cases on a migrated SQLite database with a fake county: the events
they record carry the fields docs/events.md lists and nothing personal, each once."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select

from services.common.clock import FixedClock
from services.common.db import make_engine
from services.common.migrate import upgrade
from services.reports import handlers
from services.reports.adapters.schema import tables
from services.reports.domain.facts import DayFacts
from services.reports.domain.schedule import Policy, Schedule

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 1)


class FakeCounty:
    def __init__(self, plans):
        self.plans_ = plans
        self.collected = 0

    def day_facts(self, day, now):
        self.collected += 1
        return DayFacts(day=day, timezone=str(TZ), generated_at=now)

    def policy(self):
        return Policy(dispatch_deadline=time(17, 0))

    def plans(self, day):
        return self.plans_

    def dispatched_plans(self, day):
        return set()


def _ctx(tmp_path, clock, county):
    url = f"sqlite:///{tmp_path / 'reports.db'}"
    upgrade("reports", url)
    return handlers.ReportsContext(engine=make_engine(url), tables=tables, now=clock.now, tz=TZ,
                                   schedule=Schedule(), out_dir=tmp_path / "reports", county=county)


def _outbox(ctx):
    with ctx.engine.connect() as conn:
        return [json.loads(r.body) for r in conn.execute(select(tables["outbox"]).order_by(tables["outbox"].c.id))]


def test_the_day_is_made_once_at_its_time_and_its_event_names_the_files_by_checksum(tmp_path):
    clock = FixedClock(datetime(2026, 12, 1, 17, 29, tzinfo=TZ).astimezone(UTC))
    county = FakeCounty([("P-1", "approved")])
    ctx = _ctx(tmp_path, clock, county)
    handlers.tick(ctx)
    assert not [e for e in _outbox(ctx) if e["event_type"] == "daily_report_ready"]
    clock.advance(minutes=1)
    handlers.tick(ctx)
    handlers.tick(ctx)
    ready = [e for e in _outbox(ctx) if e["event_type"] == "daily_report_ready"]
    assert county.collected == 1 and len(ready) == 1 and ready[0]["source"] == "reports"
    payload = ready[0]["payload"]
    assert set(payload) == {"day", "generated_at", "times_made", "late", "files"}
    assert payload["day"] == "2026-12-01" and payload["times_made"] == 1
    assert {f["name"] for f in payload["files"]} >= {"daily-report.md", "daily-report.xlsx", "disclosure.html"}
    assert all(len(f["sha256"]) == 64 for f in payload["files"])
    assert handlers.make_report(ctx, DAY) is None
    assert handlers.make_report(ctx, DAY, again=True).times_made == 2


def test_a_plan_waiting_at_1630_is_one_deadline_missed_and_trips_are_not_checked_without_approval(tmp_path):
    clock = FixedClock(datetime(2026, 12, 1, 16, 30, tzinfo=TZ).astimezone(UTC))
    ctx = _ctx(tmp_path, clock, FakeCounty([("P-1", "superseded"), ("P-2", "proposed")]))
    handlers.tick(ctx)
    clock.advance(minutes=45)  # past the dispatch deadline too
    handlers.tick(ctx)
    missed = [e["payload"] for e in _outbox(ctx) if e["event_type"] == "deadline_missed"]
    assert len(missed) == 1
    assert set(missed[0]) == {"kind", "day", "due_at", "checked_at", "count", "what", "what_zh"}
    assert (missed[0]["kind"], missed[0]["day"], missed[0]["due_at"], missed[0]["count"]) == (
        "plan_not_approved", "2026-12-01", "16:30", 1)


def test_after_a_night_down_the_scheduler_makes_the_missed_evening_late_then_today_on_time(tmp_path):
    clock = FixedClock(datetime(2026, 12, 1, 17, 30, tzinfo=TZ).astimezone(UTC))
    ctx = _ctx(tmp_path, clock, FakeCounty([("P-1", "approved")]))
    handlers.tick(ctx)  # the 1st, on time
    clock.advance(days=2, hours=-8)  # down from the 1st's evening until 09:30 on the 3rd
    handlers.tick(ctx)
    ready = [e["payload"] for e in _outbox(ctx) if e["event_type"] == "daily_report_ready"]
    assert [(p["day"], p["late"]) for p in ready] == [("2026-12-01", False), ("2026-12-02", True)]
    assert (tmp_path / "reports" / "2026-12-02" / "daily-report.md").exists()
    handlers.tick(ctx)  # made once
    clock.advance(hours=8)  # 17:30 on the 3rd
    handlers.tick(ctx)
    ready = [e["payload"] for e in _outbox(ctx) if e["event_type"] == "daily_report_ready"]
    assert [(p["day"], p["late"]) for p in ready][1:] == [("2026-12-02", True), ("2026-12-03", False)]
