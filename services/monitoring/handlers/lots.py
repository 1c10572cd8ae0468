"""Lots from logistics' events: thermal accounts per zone, segregation audit, near expiry,
spoilage and MKT (worker timer), reserve floor alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

from services.common.days import parse_day, parse_instant
from services.common.db import UnitOfWork, utcnow
from services.common.errors import InvalidInput
from services.common.serde import to_jsonable
from services.monitoring import state as st
from services.monitoring.adapters import alert_store, lot_store, zone_store
from services.monitoring.adapters.schema import aware
from services.monitoring.domain import alerts as al
from services.monitoring.domain import hazmat, spoilage
from services.monitoring.domain.readings import zone_key
from services.monitoring.handlers.alerts import (
    clear_key,
    raise_candidate,
)
from services.monitoring.handlers.base import MonitoringContext, required
from services.monitoring.handlers.deadlines import expire_deadline_alerts
from services.monitoring.handlers.zones import (
    lock_zones_sorted,
    register_zone,
    save_thermal,
    zone_state_for_update,
)


def _expires_at(ctx: MonitoringContext, day: date | None) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ctx.timezone)


def _enter_zone(ctx: MonitoringContext, uow: UnitOfWork, acct: spoilage.LotThermalAccount,
                key: str, at: datetime) -> None:
    version, h, _ = zone_state_for_update(uow, key)
    models = st.thermal_models(h)
    acct.enter(h, at)
    if st.thermal_models(h) != models:
        save_thermal(uow, key, version, h)


def _leave_zone(ctx: MonitoringContext, uow: UnitOfWork, acct: spoilage.LotThermalAccount,
                at: datetime) -> None:
    if acct.zone_key is None:
        return
    _, h, _ = zone_state_for_update(uow, acct.zone_key)
    acct.leave(h, at)


def stock_received(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any]) -> None:
    """A receipt put away: the lot is now in its zone (its thermal account starts there)."""
    p = envelope["payload"]
    lot_id, item_code = required(p, "lot_id"), required(p, "item_code")
    depot, zone = required(p, "depot_id"), required(p, "zone_id")
    quantity = required(p, "quantity", int)
    try:
        item = ctx.catalogue.item(item_code)
    except Exception:
        raise InvalidInput("payload.item_code", f"unknown item code {item_code!r}") from None
    storage_class = p.get("storage_class") or item.storage_class
    register_zone(ctx, uow, depot, zone, storage_class, source="stock", field_prefix="payload.")
    occurred = (parse_instant(envelope.get("occurred_at"), "payload.occurred_at", offset_required=True)
                or ctx.clock.now())
    received_at = (parse_instant(p.get("received_at"), "payload.received_at", offset_required=True)
                   or occurred)
    expiry = parse_day(p.get("expiry"), "payload.expiry")
    key = zone_key(depot, zone)
    row = lot_store.for_update(uow.conn, lot_id)
    acct = lot_store.account(row.account) if row is not None else None
    if acct is None:
        acct = spoilage.open_account(lot_id, item_code, ctx.catalogue, received_at,
                                     _expires_at(ctx, expiry), ctx.spoilage_policy)
    if acct.zone_key != key:
        lock_zones_sorted(uow, {key, acct.zone_key})
        _leave_zone(ctx, uow, acct, received_at)
        _enter_zone(ctx, uow, acct, key, received_at)
    values = {"item_code": item_code, "depot": depot, "zone": zone, "zone_key": key,
              "on_hand": quantity if row is None else max(row.on_hand, quantity),
              "status": "available" if row is None else row.status, "expiry": expiry,
              "received_at": received_at if row is None else aware(row.received_at),
              "account": to_jsonable(acct), "updated_at": utcnow()}
    if row is None:
        lot_store.insert(uow.conn, lot_id, ledger_seq=0, **values)
    else:
        lot_store.save(uow.conn, lot_id, **values)
    audit_zone(ctx, uow, key, ctx.clock.now())
    if row is not None and row.zone_key != key:
        audit_zone(ctx, uow, row.zone_key, ctx.clock.now())
    check_expiry(ctx, uow, [lot_id])


def stock_changed(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any]) -> None:
    """Any ledger movement: on hand, status, and a move to another zone."""
    p = envelope["payload"]
    lot_id = required(p, "lot_id")
    on_hand = required(p, "on_hand", int)
    seq = p.get("ledger_seq") or 0
    status = p.get("status") or "available"
    row = lot_store.for_update(uow.conn, lot_id)
    now = ctx.clock.now()
    at = parse_instant(envelope.get("occurred_at"), "payload.occurred_at", offset_required=True) or now
    if row is not None and seq and row.ledger_seq and seq <= row.ledger_seq:
        return  # an older movement than one already applied
    depot = p.get("depot_id") or (row.depot if row else None)
    zone = p.get("zone_id") or (row.zone if row else None)
    if depot is None or zone is None:
        raise InvalidInput("payload.zone_id", "required for a lot monitoring has not seen")
    key = zone_key(depot, zone)
    gone = on_hand <= 0 or status == "written_off"
    new_status = ("written_off" if status == "written_off" else "gone") if gone else status
    if row is None:
        if gone:
            return
        item_code = required(p, "item_code")
        try:
            item = ctx.catalogue.item(item_code)
        except Exception:
            raise InvalidInput("payload.item_code", f"unknown item code {item_code!r}") from None
        register_zone(ctx, uow, depot, zone, item.storage_class, source="stock", field_prefix="payload.")
        acct = spoilage.open_account(lot_id, item_code, ctx.catalogue, at, None, ctx.spoilage_policy)
        _enter_zone(ctx, uow, acct, key, at)
        lot_store.insert(uow.conn, lot_id, item_code=item_code, depot=depot, zone=zone, zone_key=key,
                         on_hand=on_hand, status=new_status, expiry=None, received_at=at, ledger_seq=seq,
                         account=to_jsonable(acct), updated_at=utcnow())
        audit_zone(ctx, uow, key, now)
        return
    acct = lot_store.account(row.account)
    if acct is not None:
        lock_zones_sorted(uow, {key, acct.zone_key})
        if gone:
            _leave_zone(ctx, uow, acct, at)
        elif acct.zone_key != key:
            _leave_zone(ctx, uow, acct, at)
            _enter_zone(ctx, uow, acct, key, at)
    lot_store.save(uow.conn, lot_id, depot=depot, zone=zone, zone_key=key, on_hand=max(on_hand, 0),
                   status=new_status, ledger_seq=seq or row.ledger_seq,
                   account=to_jsonable(acct) if acct else None, updated_at=utcnow())
    if gone:
        clear_lot_alerts(uow, lot_id, now)
    for k in sorted({key, row.zone_key}):
        audit_zone(ctx, uow, k, now)


def lot_status(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any], status: str) -> None:
    """lot_quarantined / lot_released: the lot's status (a quarantined lot is not alerted again).
    A `lot_released` that reports a write-off carries the lot's resulting status (a partial
    write-off of quarantined stock leaves it quarantined): that status wins."""
    p = envelope["payload"]
    lot_id = required(p, "lot_id")
    if p.get("outcome") == "written_off" and p.get("status") in ("quarantined", "available", "written_off"):
        status = p["status"]
    row = lot_store.for_update(uow.conn, lot_id)
    if row is None or row.status in ("gone", "written_off"):
        return
    lot_store.save(uow.conn, lot_id, status=status, updated_at=utcnow())


LOT_ALERT_KINDS = ("spoilage", "mkt", "near_expiry")


def clear_lot_alerts(uow: UnitOfWork, lot_id: str, at: datetime) -> None:
    for alert in alert_store.open_alerts(uow.conn, subject=lot_id, kinds=LOT_ALERT_KINDS):
        clear_key(uow, alert.key, at, {"reason": "lot no longer held / 批次已出库或核销"})


def audit_zone(ctx: MonitoringContext, uow: UnitOfWork, key: str, at: datetime) -> None:
    """Segregation audit of what logistics says the zone holds; stale violations clear."""
    info = zone_store.get(uow.conn, key)
    if info is None:
        return
    contents = hazmat.ZoneContents(info.depot, info.zone, info.storage_class, tuple(
        (r.lot_id, r.item_code) for r in lot_store.held_in_zone(uow.conn, key)))
    found = {}
    for v in hazmat.audit_zone(contents, ctx.catalogue):
        c = al.from_segregation(v, ctx.alert_policy)
        found[c.key] = c
    for alert in alert_store.open_alerts(uow.conn, kinds=("segregation",), depot=info.depot, zone=info.zone):
        if alert.key not in found:
            clear_key(uow, alert.key, at, {"reason": "segregation restored / 已恢复分区存放"})
    for c in found.values():
        existing = alert_store.open_alert(uow.conn, c.key)
        if existing is not None and set(existing.lot_ids) >= set(c.lot_ids):
            continue
        raise_candidate(uow, c, at)


def check_expiry(ctx: MonitoringContext, uow: UnitOfWork, lot_ids: Sequence[str] | None = None) -> int:
    """Near-expiry alerts for held lots (all of them, or `lot_ids`); an open one is updated once
    a day (days_left changes)."""
    lots = lot_store.expiring(uow.conn, lot_ids)
    now = ctx.clock.now()
    today = now.astimezone(ctx.timezone).date()
    n = 0
    for f in al.near_expiry(lots, today, ctx.catalogue, ctx.alert_policy):
        c = al.from_near_expiry(f, ctx.alert_policy)
        existing = alert_store.open_alert(uow.conn, c.key)
        if existing is not None and existing.evidence.get("days_left") == f.days_left:
            continue
        raise_candidate(uow, c, now)
        n += 1
    return n


def check_spoilage(ctx: MonitoringContext) -> int:
    """Remaining shelf life and MKT of every held lot from its zone's thermal sums; a lot whose life
    ran out or whose MKT is above its class's limit gets an alert with spoilage: true."""
    with ctx.uow() as uow:
        keys = lot_store.zones_with_accounts(uow.conn)
    raised = 0
    for key in sorted(keys):
        with ctx.uow() as uow:
            now = ctx.clock.now()
            _, h, _ = zone_state_for_update(uow, key)
            info = zone_store.get(uow.conn, key)
            sc = ctx.storage_class(info.storage_class if info else None)
            for r in lot_store.available_in_zone(uow.conn, key):
                acct = lot_store.account(r.account)
                if acct is None:
                    continue
                for f in spoilage.evaluate_lot(acct, h if acct.zone_key == key else None, sc, now,
                                               ctx.spoilage_policy):
                    c = al.from_spoilage(f, ctx.alert_policy)
                    if raise_candidate(uow, c, now, update_existing=False) is not None:
                        raised += 1
            uow.commit()
    with ctx.uow() as uow:
        raised += check_expiry(ctx, uow)
        expire_reserve_alerts(ctx, uow)
        expire_deadline_alerts(ctx, uow)
        uow.commit()
    return raised


def reserve_below_floor(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any]) -> None:
    p = envelope["payload"]
    group = required(p, "group")
    if group not in ctx.catalogue.groups:
        raise InvalidInput("payload.group", f"unknown item group {group!r}")
    try:
        days = float(p["days_of_supply"])
        floor = float(p["floor_days"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("payload.days_of_supply", "days_of_supply and floor_days must be numbers") from None
    c = al.reserve_below_floor(p.get("depot_id"), group, ctx.catalogue, days, floor, ctx.alert_policy)
    extra = {k: p[k] for k in ("usable_quantity", "daily_consumption") if k in p}
    c = replace(c, evidence={**c.evidence, **extra})
    raise_candidate(uow, c, ctx.clock.now(), value=days)


def expire_reserve_alerts(ctx: MonitoringContext, uow: UnitOfWork) -> None:
    cutoff = ctx.clock.now() - ctx.config.reserve_alert_ttl
    for alert in alert_store.open_alerts(uow.conn, kinds=("reserve_below_floor",), updated_before=cutoff):
        clear_key(uow, alert.key, ctx.clock.now(),
                  {"reason": "not re-raised by logistics / 储备已恢复(未再报告低于底线)"})
