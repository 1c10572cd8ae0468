"""Use cases of the reports process: make the day's report once (or again on request), and check
the day's deadlines once per kind and day. Two schedulers may run: each use case takes a lock
(a PostgreSQL advisory lock; on SQLite the write transaction is one) and reads the marker row
under it, so the files are made and the event recorded once."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.schema import Table

from services.common.db import UnitOfWork, is_postgres
from services.reports.adapters.files import sha256_of, write_files
from services.reports.domain import schedule as sc
from services.reports.domain.facts import DayFacts

log = logging.getLogger(__name__)
SOURCE = "reports"


class County(Protocol):
    def day_facts(self, day: date, now: datetime) -> DayFacts: ...
    def policy(self) -> sc.Policy: ...
    def plans(self, day: date) -> list[tuple[str, str]]: ...
    def dispatched_plans(self, day: date) -> set[str]: ...


@dataclass
class ReportsContext:
    engine: Engine
    tables: dict[str, Table]
    now: Callable[[], datetime]
    tz: ZoneInfo
    schedule: sc.Schedule
    out_dir: Path
    county: County

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, self.tables, SOURCE, self.now)


@dataclass(frozen=True)
class Made:
    day: date
    directory: Path
    files: dict[str, str]  # name → sha256
    times_made: int


def _lock(conn: Connection, name: str) -> None:
    """Held until the transaction ends. SQLite needs none: its write transaction (BEGIN
    IMMEDIATE) already shuts out the other writers."""
    if is_postgres(conn):
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(f"reports:{name}".encode())})


def make_report(ctx: ReportsContext, day: date, *, again: bool = False) -> Made | None:
    """Write the day's files and record `daily_report_ready`; None when already made (and not
    asked again)."""
    days = ctx.tables["report_days"]
    with ctx.uow() as uow:
        _lock(uow.conn, "report")
        row = uow.conn.execute(select(days).where(days.c.day == day)).first()
        if row is not None and not again:
            return None
        now = ctx.now()
        facts = ctx.county.day_facts(day, now)
        out = ctx.out_dir / day.isoformat()
        files = {p.name: sha256_of(p) for p in write_files(facts, out)}
        times = (row.times_made if row else 0) + 1
        values = {"made_at": now, "times_made": times, "files": files}
        if row is None:
            uow.conn.execute(insert(days).values(day=day, **values))
        else:
            uow.conn.execute(update(days).where(days.c.day == day).values(**values))
        uow.record_event("daily_report_ready", {
            "day": day.isoformat(), "generated_at": now.isoformat(), "times_made": times,
            "late": day < now.astimezone(ctx.tz).date(),
            "files": [{"name": n, "sha256": h} for n, h in sorted(files.items())]})
        uow.commit()
    log.info("daily report made", extra={"day": day.isoformat(), "times_made": times})
    return Made(day, out, files, times)


def _done(ctx: ReportsContext, since: date) -> tuple[set[date], date | None, set[tuple[str, date]]]:
    """Reports made since `since`, the first report ever made, deadlines checked since `since`."""
    days, warned = ctx.tables["report_days"], ctx.tables["deadline_warnings"]
    with ctx.engine.connect() as conn:
        made = {r.day for r in conn.execute(select(days.c.day).where(days.c.day >= since))}
        first = conn.execute(select(func.min(days.c.day))).scalar()
        raised = {(r.kind, r.day) for r in conn.execute(
            select(warned.c.kind, warned.c.day).where(warned.c.day >= since))}
    return made, first, raised


def _lateness(ctx: ReportsContext, check: sc.Check) -> sc.Late:
    plans = ctx.county.plans(check.day)
    if check.kind == sc.PLAN_NOT_APPROVED:
        return sc.plan_lateness(check.day, [status for _, status in plans])
    approved = [plan_id for plan_id, status in plans if status == "approved"]
    return sc.dispatch_lateness(check.day, approved, ctx.county.dispatched_plans(check.day) if approved else set())


def check_deadline(ctx: ReportsContext, check: sc.Check) -> sc.Late | None:
    """Check one deadline once; record `deadline_missed` when something is late. None when
    another scheduler checked it first."""
    warned = ctx.tables["deadline_warnings"]
    with ctx.uow() as uow:
        _lock(uow.conn, "deadlines")
        if uow.conn.execute(select(warned.c.kind).where(
                warned.c.kind == check.kind, warned.c.day == check.day)).first() is not None:
            return None
        late = _lateness(ctx, check)
        now = ctx.now()
        uow.conn.execute(insert(warned).values(kind=check.kind, day=check.day, checked_at=now,
                                               late=late.count))
        if late.count:
            uow.record_event("deadline_missed", {
                "kind": check.kind, "day": check.day.isoformat(),
                "due_at": check.due_at.strftime("%H:%M"), "checked_at": now.isoformat(),
                "count": late.count, "what": late.what, "what_zh": late.what_zh})
        uow.commit()
    if late.count:
        log.warning("deadline missed / 逾期未完成", extra={"kind": check.kind, "day": check.day.isoformat(),
                                                      "count": late.count, "what": late.what})
    return late


def tick(ctx: ReportsContext) -> None:
    """One look at the county clock: whatever is due now and not done yet."""
    local = ctx.now().astimezone(ctx.tz)
    made, first, raised = _done(ctx, local.date() - timedelta(days=max(1, ctx.schedule.catch_up_days)))
    for day in sc.reports_due(local, ctx.schedule, made, first):
        make_report(ctx, day)
    for check in sc.deadline_checks(local, ctx.schedule, ctx.county.policy(), raised):
        check_deadline(ctx, check)
