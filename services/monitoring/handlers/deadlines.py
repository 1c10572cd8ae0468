"""Missed deadlines of the county day (the reports process's `deadline_missed`) as alerts, so HQ
sees them on its board beside the cold stores' alarms and acknowledges them there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.db import UnitOfWork
from services.common.errors import InvalidInput
from services.monitoring.adapters import alert_store
from services.monitoring.domain import alerts as al
from services.monitoring.handlers.alerts import clear_key, raise_candidate
from services.monitoring.handlers.base import MonitoringContext, required


def deadline_missed(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any]) -> None:
    p = envelope["payload"]
    count = p.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise InvalidInput("payload.count", "must be a whole number ≥ 1")
    c = al.deadline_missed(required(p, "kind"), required(p, "day"), str(p.get("due_at", ""))[:5], count,
                           str(p.get("what_zh", ""))[:200], str(p.get("what", ""))[:200], ctx.alert_policy)
    raise_candidate(uow, c, ctx.clock.now(), value=float(count))


def expire_deadline_alerts(ctx: MonitoringContext, uow: UnitOfWork) -> None:
    """A missed deadline stays on the board through the evening, then clears by itself."""
    now = ctx.clock.now()
    for alert in alert_store.open_alerts(uow.conn, kinds=("deadline_missed",),
                                         updated_before=now - ctx.config.deadline_alert_ttl):
        clear_key(uow, alert.key, now, {"reason": "the day is over / 当日已过"})
