"""Zones: the zone map, registration (logistics' event, the zones file, stock), and the
zones' evaluation-state rows (locked in sorted order: ADR 0002)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from services.common.db import UnitOfWork, utcnow
from services.common.errors import InvalidInput
from services.monitoring import state as st
from services.monitoring.adapters import schema, zone_store
from services.monitoring.adapters.schema import dialect_insert
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
    z = schema.zones
    key = zone_key(depot, zone)
    row = uow.conn.execute(select(z).where(z.c.zone_key == key)).first()
    now = utcnow()
    if row is None:
        inserted = uow.conn.execute(dialect_insert(uow.conn, z).values(
            zone_key=key, depot=depot, zone=zone, storage_class=storage_class, capacity=capacity,
            interval_s=interval_s, source=source, updated_at=now).on_conflict_do_nothing()).rowcount
        if inserted:
            return True
        row = uow.conn.execute(select(z).where(z.c.zone_key == key)).one()  # a concurrent insert won
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
        uow.conn.execute(update(z).where(z.c.zone_key == key).values(**changes, updated_at=now))
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
                uow.conn.execute(dialect_insert(uow.conn, schema.sensors).values(
                    sensor_key=f"{spec.zone_key}/{sensor}", depot=spec.depot, zone=spec.zone,
                    sensor=sensor, interval_s=spec.interval_s, expected_since=now,
                    reported_offline=False).on_conflict_do_nothing())
        uow.commit()
    return changed


def zone_interval(ctx: MonitoringContext, info: ZoneRow | None) -> timedelta:
    if info is not None and info.interval_s:
        return timedelta(seconds=info.interval_s)
    return ctx.config.sensor_interval


def zone_state_for_update(uow: UnitOfWork, key: str) -> tuple[int, spoilage.ThermalHistory, Any]:
    zone_store.ensure_state_rows(uow.conn, [key], utcnow())
    zone_store.lock_state(uow.conn, [key])
    zs = schema.zone_state
    row = uow.conn.execute(select(zs.c.version, zs.c.thermal, zs.c.open_rules)
                           .where(zs.c.zone_key == key)).one()
    return row.version, st.restore_thermal(key, row.thermal), row.open_rules


def lock_zones_sorted(uow: UnitOfWork, keys: Iterable[str | None]) -> None:
    """Lock every zone a lot move touches up front, in the ingest's (sorted) order: no deadlock."""
    keys = sorted(k for k in keys if k)
    zone_store.ensure_state_rows(uow.conn, keys, utcnow())
    zone_store.lock_state(uow.conn, keys)


def save_thermal(uow: UnitOfWork, key: str, version: int, h: spoilage.ThermalHistory) -> None:
    zs = schema.zone_state
    uow.conn.execute(update(zs).where(zs.c.zone_key == key).values(
        version=version + 1, thermal=st.thermal_state(h), updated_at=utcnow()))
