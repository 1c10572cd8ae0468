"""Alerts: load, save (row + history + outbox event), raise, clear, acknowledge; their
transitions exported to InfluxDB's `alarm` measurement (worker)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from services.common.db import UnitOfWork, is_postgres, utcnow
from services.common.errors import InvalidInput, NotFound
from services.common.serde import from_jsonable, to_jsonable
from services.monitoring.adapters import schema
from services.monitoring.adapters.schema import aware
from services.monitoring.domain import alerts as al
from services.monitoring.domain.alarms import CLEARED
from services.monitoring.handlers.base import ACK_ROLES, Actor, MonitoringContext, iso

log = logging.getLogger(__name__)


def alert_is_spoilage(a: al.Alert) -> bool:
    """Lots must be quarantined: spoilage or MKT findings, and alarms of rules with spoilage: true."""
    return a.kind in ("spoilage", "mkt") or (a.kind == "alarm" and bool(a.evidence.get("spoilage")))


def alert_from_data(data: Any) -> al.Alert:
    return from_jsonable(al.Alert, data)


def load_open_alert(uow: UnitOfWork, key: str) -> al.Alert | None:
    a = schema.alerts
    row = uow.conn.execute(select(a.c.data).where(a.c.open_key == key).with_for_update()).first()
    return None if row is None else alert_from_data(row.data)


def load_open_alerts(uow: UnitOfWork, *where) -> list[al.Alert]:
    a = schema.alerts
    rows = uow.conn.execute(select(a.c.data).where(a.c.open_key.is_not(None), *where)
                            .order_by(a.c.alert_id).with_for_update()).all()
    return [alert_from_data(r.data) for r in rows]


def get_alert(uow: UnitOfWork, alert_id: str, *, lock: bool = False) -> al.Alert:
    if not alert_id:
        raise InvalidInput("alert_id", "required")
    a = schema.alerts
    q = select(a.c.data).where(a.c.alert_id == alert_id)
    row = uow.conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound(f"alert_id: no alert {alert_id!r} / 未找到该告警")
    return alert_from_data(row.data)


def event_payload(alert: al.Alert, action: str, at: datetime, by: str | None = None,
                  note: str | None = None) -> dict[str, Any]:
    payload = alert.to_event_payload()
    payload.update({"spoilage": alert_is_spoilage(alert), "state": alert.state, "action": action,
                    "at": iso(at), "severity": alert.severity, "subject": alert.subject})
    if by is not None:
        payload["by"] = by
    if note is not None:
        payload["note"] = note
    if alert.acknowledged_by:
        payload["acknowledged_by"] = alert.acknowledged_by
    return payload


EVENT_OF = {"opened": "alert_raised", "updated": "alert_updated",
            "acknowledged": "alert_acknowledged", "cleared": "alert_cleared"}


def save_alert(uow: UnitOfWork, alert: al.Alert, action: str, at: datetime, *, new: bool = False,
               by: str | None = None, note: str | None = None, value: float | None = None,
               sensor: str | None = None) -> None:
    """Persist the alert, append its history row, record its event (all in this transaction)."""
    a, h = schema.alerts, schema.alert_history
    now = utcnow()
    spoil = alert_is_spoilage(alert)
    cols = {"severity": alert.severity, "state": alert.state, "spoilage": spoil,
            "open_key": alert.key if alert.is_open else None, "updated_at": at,
            "cleared_at": alert.cleared_at, "data": to_jsonable(alert)}
    if new:
        uow.conn.execute(a.insert().values(
            alert_id=alert.alert_id, key=alert.key, kind=alert.kind, depot=alert.depot,
            zone=alert.zone, rule_code=alert.rule_code, subject=alert.subject,
            opened_at=alert.opened_at, **cols))
    else:
        uow.conn.execute(update(a).where(a.c.alert_id == alert.alert_id).values(**cols))
    payload = event_payload(alert, action, at, by, note)
    uow.conn.execute(h.insert().values(
        alert_id=alert.alert_id, action=action, at=at, by=by, note=note, kind=alert.kind,
        severity=alert.severity, depot=alert.depot, zone=alert.zone, rule_code=alert.rule_code,
        value=value, sensor=sensor, payload=payload, exported=False, recorded_at=now))
    uow.record_event(EVENT_OF[action], payload)


def raise_candidate(uow: UnitOfWork, c: al.AlertCandidate, at: datetime, *,
                    update_existing: bool = True, value: float | None = None,
                    sensor: str | None = None) -> tuple[al.Alert, str] | None:
    """Open an alert for the candidate, or update the open one with its key (AlertBook's rule).
    With update_existing False an open alert is left as it is (returns None)."""
    existing = load_open_alert(uow, c.key)
    if existing is not None and not update_existing:
        return None
    book = al.AlertBook([existing] if existing else [])
    alert, action = book.raise_(c, at)
    save_alert(uow, alert, action, at, new=existing is None, value=value, sensor=sensor)
    return alert, action


def clear_key(uow: UnitOfWork, key: str, at: datetime, evidence: Mapping[str, Any] | None = None,
              *, value: float | None = None, sensor: str | None = None) -> al.Alert | None:
    existing = load_open_alert(uow, key)
    if existing is None:
        return None
    alert = al.AlertBook([existing]).clear(key, at, evidence)
    assert alert is not None
    save_alert(uow, alert, CLEARED, at, value=value, sensor=sensor)
    return alert


def acknowledge_alert(ctx: MonitoringContext, uow: UnitOfWork, actor: Actor, alert_id: str,
                      note: str) -> al.Alert:
    actor.require(*ACK_ROLES)
    if len(note) > 1000:
        raise InvalidInput("note", "longer than 1000 characters")
    alert = get_alert(uow, alert_id, lock=True)
    at = ctx.clock.now()
    alert.acknowledge(actor.identity, at, note)
    save_alert(uow, alert, "acknowledged", at, by=actor.identity, note=note)
    return alert


def export_alarm_lines(ctx: MonitoringContext, write_lines, limit: int = 500) -> int:
    """Unexported alert history rows → `alarm` lines → `write_lines(lines)` (durable: written or
    spooled) → marked exported, in one transaction; several workers skip each other's rows."""
    from services.monitoring.adapters.line_protocol import LineProtocolError, alarm_line

    h = schema.alert_history
    q = select(h.c.id, h.c.depot, h.c.zone, h.c.rule_code, h.c.kind, h.c.action, h.c.value,
               h.c.alert_id, h.c.at, h.c.sensor).where(h.c.exported.is_(False)).order_by(h.c.id).limit(limit)

    def lines_of(rows) -> list[str]:
        lines = []
        for r in rows:
            try:
                lines.append(alarm_line(r.depot, r.zone, r.rule_code, r.kind, r.action,
                                        float(r.value or 0.0), r.alert_id, aware(r.at), sensor=r.sensor))
            except LineProtocolError as exc:
                log.error("alarm line not encodable", extra={"alert_id": r.alert_id, "error": str(exc)})
        return lines

    def mark(uow, rows) -> None:
        uow.conn.execute(update(h).where(h.c.id.in_([r.id for r in rows])).values(exported=True))
        uow.commit()

    if is_postgres(ctx.engine):  # several workers: each claims its rows, holds them while writing
        with ctx.uow() as uow:
            rows = uow.conn.execute(q.with_for_update(skip_locked=True)).all()
            if rows:
                write_lines(lines_of(rows))
                mark(uow, rows)
            return len(rows)
    # SQLite: never hold the file's write lock while talking to InfluxDB (the ingest would wait);
    # a crash between writing and marking rewrites identical points next time
    with ctx.engine.connect() as conn:
        rows = conn.execute(q).all()
    if rows:
        write_lines(lines_of(rows))
        with ctx.uow() as uow:
            mark(uow, rows)
    return len(rows)
