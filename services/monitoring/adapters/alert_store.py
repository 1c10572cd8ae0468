"""Alerts stored as JSON beside their indexed columns (table alerts), and their history (table
alert_history: one row per transition, the WatchAlerts cursor and the `alarm` export, and the
only copy of an alert's history: an alert's row does not repeat it, so that an update costs the
same after its hundredth transition as after its first). Open alerts are read FOR UPDATE: the
caller is about to change them (ADR 0002); they come without their history, which
`with_history` adds for display."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection

from services.common.db import utcnow
from services.common.errors import InvalidInput
from services.common.serde import from_jsonable, to_jsonable
from services.monitoring.adapters import schema
from services.monitoring.adapters.schema import aware
from services.monitoring.domain import alerts as al


def from_data(data: Any) -> al.Alert:
    """An alert row's JSON → Alert, without history. Rows written before the history moved out
    of them still carry it: it is dropped here (the history table has the same transitions), and
    their last one gives `updated_at`."""
    history = data.get("history") if isinstance(data, dict) else None
    if history is not None:
        data = {k: v for k, v in data.items() if k != "history"}
    alert = from_jsonable(al.Alert, data)
    if alert.updated_at is None:
        alert.updated_at = from_jsonable(al.AlertHistoryEntry, history[-1]).at if history else alert.opened_at
    return alert


def _data(alert: al.Alert) -> dict[str, Any]:
    data = to_jsonable(alert)
    del data["history"]
    return data


def _entry(action: str, at: datetime, by: str | None, note: str | None, payload: Any) -> al.AlertHistoryEntry:
    """A history row → the entry the domain recorded: its evidence is the alert's as the row's
    event carried it (an acknowledgement records none)."""
    evidence = payload.get("evidence") if isinstance(payload, dict) and action != al.ACKNOWLEDGED else None
    return al.AlertHistoryEntry(action, aware(at), by, note, evidence)


def with_history(conn: Connection, alerts: Sequence[al.Alert]) -> list[al.Alert]:
    """The alerts with their whole history from the history table, oldest first (one query)."""
    by_id = {a.alert_id: a for a in alerts}
    for a in alerts:
        a.history = []
    if by_id:
        h = schema.alert_history
        rows = conn.execute(select(h.c.alert_id, h.c.action, h.c.at, h.c.by, h.c.note, h.c.payload)
                            .where(h.c.alert_id.in_(list(by_id))).order_by(h.c.id))
        for r in rows:
            by_id[r.alert_id].history.append(_entry(r.action, r.at, r.by, r.note, r.payload))
    return list(alerts)


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


def open_in_zone(conn: Connection, depot: str, zone: str) -> list[al.Alert]:
    """A zone's open alerts, oldest first, for reading (not locked)."""
    a = schema.alerts
    return [from_data(r.data) for r in conn.execute(
        select(a.c.data).where(a.c.depot == depot, a.c.zone == zone, a.c.open_key.is_not(None))
        .order_by(a.c.opened_at)).all()]


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
            "cleared_at": alert.cleared_at, "data": _data(alert)}
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


# --- reads for the API: ListAlerts and WatchAlerts

@dataclass(frozen=True)
class AlertFilter:
    states: tuple[str, ...] = ()  # opened | acknowledged | cleared; empty: all
    kinds: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    depot: str = ""
    zone: str = ""
    opened_after: datetime | None = None
    opened_before: datetime | None = None
    spoilage_only: bool = False


def _kind_and_place(t, f: AlertFilter) -> list[Any]:
    """The filters alerts and their history rows share (both tables have these columns)."""
    where: list[Any] = []
    if f.kinds:
        where.append(t.c.kind.in_(f.kinds))
    if f.severities:
        where.append(t.c.severity.in_(f.severities))
    if f.depot:
        where.append(t.c.depot == f.depot)
    if f.zone:
        where.append(t.c.zone == f.zone)
    return where


def _alert_where(f: AlertFilter) -> list[Any]:
    a = schema.alerts
    where: list[Any] = []
    for k in f.kinds:
        if k not in al.KINDS:
            raise InvalidInput("kinds", f"unknown alert kind {k!r}; one of {', '.join(al.KINDS)}")
    if f.states:
        where.append(a.c.state.in_(f.states))
    where += _kind_and_place(a, f)
    if f.opened_after is not None:
        where.append(a.c.opened_at >= f.opened_after)
    if f.opened_before is not None:
        where.append(a.c.opened_at < f.opened_before)
    if f.spoilage_only:
        where.append(a.c.spoilage.is_(True))
    return where


def page(conn: Connection, f: AlertFilter, page_size: int, page_token: str
                ) -> tuple[list[al.Alert], str, int]:
    """ListAlerts: newest first (opened_at, then alert id); keyset paging; also the total matching."""
    if page_size < 0 or page_size > 500:
        raise InvalidInput("page.page_size", f"must be 0 … 500, got {page_size}")
    size = page_size or 50
    a = schema.alerts
    where = _alert_where(f)
    total = conn.execute(select(func.count()).select_from(a).where(*where)).scalar_one()
    q = select(a.c.alert_id, a.c.opened_at, a.c.data).where(*where)
    if page_token:
        try:
            at_s, _, after_id = base64.urlsafe_b64decode(page_token.encode()).decode().partition("|")
            after_at = datetime.fromisoformat(at_s)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("page.page_token", "not a token returned by a previous page") from None
        q = q.where(or_(a.c.opened_at < after_at, and_(a.c.opened_at == after_at, a.c.alert_id < after_id)))
    rows = conn.execute(q.order_by(a.c.opened_at.desc(), a.c.alert_id.desc()).limit(size + 1)).all()
    items = with_history(conn, [from_data(r.data) for r in rows[:size]])
    token = ""
    if len(rows) > size:
        last = rows[size - 1]
        opened = aware(last.opened_at)
        token = base64.urlsafe_b64encode(f"{opened.isoformat()}|{last.alert_id}".encode()).decode()
    return items, token, total


@dataclass(frozen=True)
class HistoryRow:
    id: int
    alert_id: str
    action: str
    at: datetime
    by: str | None
    note: str | None
    payload: dict


def history_since(conn: Connection, after_id: int, extra_ids: Sequence[int], f: AlertFilter,
                  limit: int = 500) -> list[HistoryRow]:
    """Alert history rows with id > after_id (or in extra_ids: ids skipped earlier because their
    transaction had not committed yet), filtered like ListAlerts (states do not apply)."""
    h = schema.alert_history
    cond = h.c.id > after_id
    if extra_ids:
        cond = or_(cond, h.c.id.in_(list(extra_ids)))
    where = [cond, *_kind_and_place(h, f)]
    rows = conn.execute(select(h.c.id, h.c.alert_id, h.c.action, h.c.at, h.c.by, h.c.note, h.c.payload)
                            .where(*where).order_by(h.c.id).limit(limit)).all()
    return [HistoryRow(r.id, r.alert_id, r.action, aware(r.at), r.by, r.note, r.payload) for r in rows]


def last_history_id(conn: Connection) -> int:
    h = schema.alert_history
    return conn.execute(select(func.coalesce(func.max(h.c.id), 0))).scalar_one()


def unexported_history(conn: Connection, limit: int, *, claim: bool = False) -> list:
    """The oldest alert history rows not yet exported as `alarm` lines; claim: FOR UPDATE SKIP
    LOCKED (PostgreSQL: several workers each take their own rows)."""
    h = schema.alert_history
    q = select(h.c.id, h.c.depot, h.c.zone, h.c.rule_code, h.c.kind, h.c.action, h.c.value,
               h.c.alert_id, h.c.at, h.c.sensor).where(h.c.exported.is_(False)).order_by(h.c.id).limit(limit)
    if claim:
        q = q.with_for_update(skip_locked=True)
    return conn.execute(q).all()


def mark_exported(conn: Connection, history_ids: Sequence[int]) -> None:
    h = schema.alert_history
    conn.execute(update(h).where(h.c.id.in_(list(history_ids))).values(exported=True))
