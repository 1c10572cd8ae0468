"""Alerts: load, save (row + history + outbox event), raise, clear, acknowledge; their
transitions exported to InfluxDB's `alarm` measurement (worker)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork, is_postgres
from services.common.errors import InvalidInput, NotFound
from services.monitoring.adapters import alert_store
from services.monitoring.adapters.schema import aware
from services.monitoring.domain import alerts as al
from services.monitoring.domain.alarms import CLEARED
from services.monitoring.handlers.base import ACK_ROLES, MonitoringContext, iso

log = logging.getLogger(__name__)


def get_alert(uow: UnitOfWork, alert_id: str, *, lock: bool = False) -> al.Alert:
    if not alert_id:
        raise InvalidInput("alert_id", "required")
    alert = alert_store.get(uow.conn, alert_id, lock=lock)
    if alert is None:
        raise NotFound(f"alert_id: no alert {alert_id!r} / 未找到该告警")
    return alert


def event_payload(alert: al.Alert, action: str, at: datetime, by: str | None = None,
                  note: str | None = None) -> dict[str, Any]:
    payload = alert.to_event_payload()
    payload.update({"spoilage": al.alert_is_spoilage(alert), "state": alert.state, "action": action,
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
    payload = event_payload(alert, action, at, by, note)
    alert_store.save(uow.conn, alert, action, at, payload, new=new, spoilage=al.alert_is_spoilage(alert),
                     by=by, note=note, value=value, sensor=sensor)
    uow.record_event(EVENT_OF[action], payload)


def raise_candidate(uow: UnitOfWork, c: al.AlertCandidate, at: datetime, *,
                    update_existing: bool = True, value: float | None = None,
                    sensor: str | None = None) -> tuple[al.Alert, str] | None:
    """Open an alert for the candidate, or update the open one with its key (AlertBook's rule).
    With update_existing False an open alert is left as it is (returns None)."""
    existing = alert_store.open_alert(uow.conn, c.key)
    if existing is not None and not update_existing:
        return None
    book = al.AlertBook([existing] if existing else [])
    alert, action = book.raise_(c, at)
    save_alert(uow, alert, action, at, new=existing is None, value=value, sensor=sensor)
    return alert, action


def clear_key(uow: UnitOfWork, key: str, at: datetime, evidence: Mapping[str, Any] | None = None,
              *, value: float | None = None, sensor: str | None = None) -> al.Alert | None:
    existing = alert_store.open_alert(uow.conn, key)
    if existing is None:
        return None
    alert = al.AlertBook([existing]).clear(key, at, evidence)
    assert alert is not None
    save_alert(uow, alert, CLEARED, at, value=value, sensor=sensor)
    return alert


def acknowledge_alert(ctx: MonitoringContext, uow: UnitOfWork, actor: Caller, alert_id: str,
                      note: str) -> al.Alert:
    actor.require(*ACK_ROLES)
    if len(note) > 1000:
        raise InvalidInput("note", "longer than 1000 characters")
    alert = get_alert(uow, alert_id, lock=True)
    at = ctx.clock.now()
    alert.acknowledge(actor.identity, at, note)
    save_alert(uow, alert, "acknowledged", at, by=actor.identity, note=note)
    return alert_store.with_history(uow.conn, [alert])[0]


def export_alarm_lines(ctx: MonitoringContext, write_lines, limit: int = 500) -> int:
    """Unexported alert history rows → `alarm` lines → `write_lines(lines)` (durable: written or
    spooled) → marked exported, in one transaction; several workers skip each other's rows."""
    from services.monitoring.adapters.line_protocol import LineProtocolError, alarm_line

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
        alert_store.mark_exported(uow.conn, [r.id for r in rows])
        uow.commit()

    if is_postgres(ctx.engine):  # several workers: each claims its rows, holds them while writing
        with ctx.uow() as uow:
            rows = alert_store.unexported_history(uow.conn, limit, claim=True)
            if rows:
                write_lines(lines_of(rows))
                mark(uow, rows)
            return len(rows)
    # SQLite: never hold the file's write lock while talking to InfluxDB (the ingest would wait);
    # a crash between writing and marking rewrites identical points next time
    with ctx.engine.connect() as conn:
        rows = alert_store.unexported_history(conn, limit)
    if rows:
        write_lines(lines_of(rows))
        with ctx.uow() as uow:
            mark(uow, rows)
    return len(rows)
