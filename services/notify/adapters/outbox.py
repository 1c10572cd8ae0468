"""The notifications outbox: stored when the event is consumed, claimed for a while by the sender
that tries it (so that two senders never send one notification at once), then sent, rescheduled
or given up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from services.common.db import UnitOfWork, is_postgres
from services.notify.adapters.schema import notifications as n


def enqueue(uow: UnitOfWork, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose notification_id is new; returns how many were."""
    if not rows:
        return 0
    have = set(uow.conn.scalars(select(n.c.notification_id).where(
        n.c.notification_id.in_([r["notification_id"] for r in rows]))))
    new = [r for r in rows if r["notification_id"] not in have]
    if new:
        uow.conn.execute(n.insert(), new)
    return len(new)


def claim_due(engine: Engine, now: datetime, lease: timedelta, limit: int = 100) -> list[dict[str, Any]]:
    """Pending rows due by `now`, their next try moved `lease` ahead so no other sender takes them.
    created_at comes back in UTC (SQLite gives it without its zone)."""
    with engine.begin() as conn:
        q = (select(n).where(n.c.state == "pending", n.c.next_attempt_at <= now)
             .order_by(n.c.next_attempt_at).limit(limit))
        if is_postgres(engine):
            q = q.with_for_update(skip_locked=True)
        rows = conn.execute(q).all()
        if rows:
            conn.execute(update(n).where(n.c.notification_id.in_([r.notification_id for r in rows]))
                         .values(next_attempt_at=now + lease))
    return [{**r._mapping, "created_at": r.created_at.replace(tzinfo=UTC) if r.created_at.tzinfo is None
             else r.created_at} for r in rows]


def mark_sent(engine: Engine, notification_id: str, attempts: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(n).where(n.c.notification_id == notification_id)
                     .values(state="sent", attempts=attempts, sent_at=now, last_error=None))


def mark_failed(engine: Engine, notification_id: str, attempts: int, error: str,
                retry_at: datetime | None) -> None:
    """Try again at retry_at, or give up (state dead) when it is None."""
    values: dict[str, Any] = {"attempts": attempts, "last_error": error[:500]}
    values.update({"next_attempt_at": retry_at} if retry_at else {"state": "dead"})
    with engine.begin() as conn:
        conn.execute(update(n).where(n.c.notification_id == notification_id).values(**values))


def release(engine: Engine, notification_id: str, at: datetime) -> None:
    """Hand a claimed row back untried (its channel failed earlier in the same round)."""
    with engine.begin() as conn:
        conn.execute(update(n).where(n.c.notification_id == notification_id).values(next_attempt_at=at))


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {state: count for state, count in conn.execute(
            select(n.c.state, func.count()).group_by(n.c.state))}
