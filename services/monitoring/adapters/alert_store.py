"""Alerts stored whole as JSON beside their indexed columns (table alerts), and their history
(table alert_history: one row per transition, the WatchAlerts cursor and the `alarm` export).
Open alerts are read FOR UPDATE: the caller is about to change them (ADR 0002)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from services.common.db import utcnow
from services.common.serde import from_jsonable, to_jsonable
from services.monitoring.adapters import schema
from services.monitoring.domain import alerts as al


def from_data(data: Any) -> al.Alert:
    return from_jsonable(al.Alert, data)


def open_alert(conn: Connection, key: str) -> al.Alert | None:
    a = schema.alerts
    row = conn.execute(select(a.c.data).where(a.c.open_key == key).with_for_update()).first()
    return None if row is None else from_data(row.data)


def open_alerts(conn: Connection, *, kinds: Sequence[str] = (), depot: str | None = None,
                zone: str | None = None, subject: str | None = None,
                updated_before: datetime | None = None) -> list[al.Alert]:
    a = schema.alerts
    where = [a.c.open_key.is_not(None)]
    if kinds:
        where.append(a.c.kind.in_(list(kinds)))
    for col, v in ((a.c.depot, depot), (a.c.zone, zone), (a.c.subject, subject)):
        if v is not None:
            where.append(col == v)
    if updated_before is not None:
        where.append(a.c.updated_at < updated_before)
    rows = conn.execute(select(a.c.data).where(*where).order_by(a.c.alert_id).with_for_update()).all()
    return [from_data(r.data) for r in rows]


def open_zones(conn: Connection, kind: str, rule_code: str, depot: str) -> list[str]:
    """The zones of a depot with an open alert of this kind and rule."""
    a = schema.alerts
    return list(conn.execute(select(a.c.zone).where(
        a.c.kind == kind, a.c.depot == depot, a.c.rule_code == rule_code,
        a.c.open_key.is_not(None))).scalars())


def get(conn: Connection, alert_id: str, *, lock: bool = False) -> al.Alert | None:
    a = schema.alerts
    q = select(a.c.data).where(a.c.alert_id == alert_id)
    row = conn.execute(q.with_for_update() if lock else q).first()
    return None if row is None else from_data(row.data)


def save(conn: Connection, alert: al.Alert, action: str, at: datetime, payload: dict[str, Any], *,
         new: bool, spoilage: bool, by: str | None, note: str | None, value: float | None,
         sensor: str | None) -> None:
    """The alert's row (inserted when `new`) and its history row for this transition."""
    a, h = schema.alerts, schema.alert_history
    cols = {"severity": alert.severity, "state": alert.state, "spoilage": spoilage,
            "open_key": alert.key if alert.is_open else None, "updated_at": at,
            "cleared_at": alert.cleared_at, "data": to_jsonable(alert)}
    if new:
        conn.execute(a.insert().values(
            alert_id=alert.alert_id, key=alert.key, kind=alert.kind, depot=alert.depot,
            zone=alert.zone, rule_code=alert.rule_code, subject=alert.subject,
            opened_at=alert.opened_at, **cols))
    else:
        conn.execute(update(a).where(a.c.alert_id == alert.alert_id).values(**cols))
    conn.execute(h.insert().values(
        alert_id=alert.alert_id, action=action, at=at, by=by, note=note, kind=alert.kind,
        severity=alert.severity, depot=alert.depot, zone=alert.zone, rule_code=alert.rule_code,
        value=value, sensor=sensor, payload=payload, exported=False, recorded_at=utcnow()))
