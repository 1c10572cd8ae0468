"""Zones: the zone map, registration (logistics' event, the zones file, stock), and the
zones' evaluation-state rows (locked in sorted order: ADR 0002)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from services.common.db import UnitOfWork, utcnow
from services.common.errors import InvalidInput
from services.monitoring import state as st
from services.monitoring.adapters import sensor_store, zone_store
from services.monitoring.adapters.zone_store import ZoneRow
from services.monitoring.config import ZoneSpec
from services.monitoring.domain import spoilage
from services.monitoring.domain.readings import zone_key
from services.monitoring.handlers.base import MonitoringContext


def register_zone(ctx: MonitoringContext, uow: UnitOfWork, depot: str, zone: str, storage_class: str,
                  *, capacity: int | None = None, interval_s: float | None = None,
                  source: str = "event", field_prefix: str = "") -> bool:
    """Upsert a zone. A zone registered by logistics' event is never overridden by the zones file
    or by a storage class learned from stock. Returns True when something changed."""
    if storage_class not in ctx.catalogue.storage_classes:
        raise InvalidInput(f"{field_prefix}storage_class",
                           f"{storage_class!r} is not one of {sorted(ctx.catalogue.storage_classes)}")
    key = zone_key(depot, zone)
    row = zone_store.zone_record(uow.conn, key)
    now = utcnow()
    if row is None:
        if zone_store.insert_zone(uow.conn, zone_key=key, depot=depot, zone=zone,
                                  storage_class=storage_class, capacity=capacity,
                                  interval_s=interval_s, source=source, updated_at=now):
            return True
        row = zone_store.zone_record(uow.conn, key, must_exist=True)  # a concurrent insert won
    if source != "event" and row.source == "event":
        return False
    if source == "stock" and row.source != "stock":
        return False
    changes = {}
    if row.storage_class != storage_class:
        changes["storage_class"] = storage_class
    if capacity is not None and row.capacity != capacity:
        changes["capacity"] = capacity
    if interval_s is not None and row.interval_s != interval_s:
        changes["interval_s"] = interval_s
    if row.source != source and source == "event":
        changes["source"] = source
    if changes:
        zone_store.update_zone(uow.conn, key, changes, now)
    return bool(changes)


def apply_zones_file(ctx: MonitoringContext, specs: Sequence[ZoneSpec]) -> int:
    """Zones (and their expected sensors) from SUPPLY_ZONES_FILE; idempotent, run at start."""
    changed = 0
    now = ctx.clock.now()
    with ctx.uow() as uow:
        for spec in specs:
            changed += register_zone(ctx, uow, spec.depot, spec.zone, spec.storage_class,
                                     capacity=spec.capacity, interval_s=spec.interval_s, source="file")
            for sensor in spec.sensors:
                sensor_store.expect_sensor(uow.conn, depot=spec.depot, zone=spec.zone,
                                           sensor=sensor, interval_s=spec.interval_s, since=now)
        uow.commit()
    return changed


def zone_interval(ctx: MonitoringContext, info: ZoneRow | None) -> timedelta:
    if info is not None and info.interval_s:
        return timedelta(seconds=info.interval_s)
    return ctx.config.sensor_interval


def zone_state_for_update(uow: UnitOfWork, key: str) -> tuple[int, spoilage.ThermalHistory, Any]:
    zone_store.ensure_state_rows(uow.conn, [key], utcnow())
    zone_store.lock_state(uow.conn, [key])
    row = zone_store.state_row(uow.conn, key)
    return row.version, st.restore_thermal(key, row.thermal), row.open_rules


def lock_zones_sorted(uow: UnitOfWork, keys: Iterable[str | None]) -> None:
    """Lock every zone a lot move touches up front, in the ingest's (sorted) order: no deadlock."""
    keys = sorted(k for k in keys if k)
    zone_store.ensure_state_rows(uow.conn, keys, utcnow())
    zone_store.lock_state(uow.conn, keys)


def save_thermal(uow: UnitOfWork, key: str, version: int, h: spoilage.ThermalHistory) -> None:
    zone_store.save_thermal(uow.conn, key, version, st.thermal_state(h), utcnow())
