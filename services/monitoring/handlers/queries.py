"""Reads for the gRPC API: alerts and their history, a zone's status, the ingest's dead letters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, NotFound
from services.common.repository import Page
from services.monitoring import state as st
from services.monitoring.adapters import (
    alert_store,
    dead_letters,
    lot_store,
    sensor_store,
    zone_store,
)
from services.monitoring.adapters.schema import aware
from services.monitoring.domain import alerts as al
from services.monitoring.domain.readings import zone_key
from services.monitoring.handlers.base import SENSOR_READ_ROLES, MonitoringContext


def list_ingest_dead_letters(uow: UnitOfWork, actor: Caller, f: dead_letters.DeadLetterFilter,
                             page_size: int, page_token: str) -> Page[dead_letters.DeadLetter]:
    actor.require(*SENSOR_READ_ROLES)
    return dead_letters.page(uow.conn, f, page_size, page_token)


@dataclass(frozen=True)
class SensorView:
    sensor: str
    gateway: str | None
    last_ts: datetime | None
    last_temp_c: float | None
    last_rh: float | None
    last_seq: int | None
    status: str | None
    offline: bool


@dataclass(frozen=True)
class LotView:
    lot_id: str
    item_code: str
    on_hand: int
    status: str
    expiry: date | None
    received_at: datetime
    remaining_days: float | None
    sl_ref_days: float | None
    mkt_c: float | None


@dataclass(frozen=True)
class ZoneStatus:
    depot: str
    zone: str
    storage_class: str | None
    source: str | None
    sensors: list[SensorView]
    open_alerts: list[al.Alert]
    lots: list[LotView]
    zone_mkt_c: float | None
    at: datetime


def zone_status(ctx: MonitoringContext, uow: UnitOfWork, depot: str, zone: str) -> ZoneStatus:
    if not depot:
        raise InvalidInput("depot", "required")
    if not zone:
        raise InvalidInput("zone", "required")
    key = zone_key(depot, zone)
    info = zone_store.zone_record(uow.conn, key)
    srows = sensor_store.of_zone(uow.conn, depot, zone)
    if info is None and not srows:
        raise NotFound(f"zone: no zone {key!r} is registered or reporting / 未登记的库区")
    now = ctx.clock.now()
    h = st.restore_thermal(key, zone_store.thermal_of(uow.conn, key), ctx.spoilage_policy)
    sc = ctx.storage_class(info.storage_class if info else None)
    lots = []
    for r in lot_store.held_in_zone(uow.conn, key):
        acct = lot_store.account(r.account)
        remaining = mkt = None
        if acct is not None and acct.zone_key == key:
            if acct.model is not None:
                h.totals(now, acct.model)  # a decoded copy: registering a model here is harmless
            remaining = acct.remaining_days(h, now)
            mkt = acct.mkt_c(h, now, ctx.spoilage_policy) if sc and sc.mkt_limit_c is not None else None
        lots.append(LotView(r.lot_id, r.item_code, r.on_hand, r.status, r.expiry, aware(r.received_at),
                            remaining, acct.sl_ref_days if acct else None, mkt))
    alerts_ = alert_store.open_in_zone(uow.conn, depot, zone)
    sensors = [SensorView(r.sensor, r.gateway, aware(r.last_ts), r.last_temp_c, r.last_rh, r.last_seq,
                          r.status, r.reported_offline) for r in srows]
    zone_mkt = h.totals(now).mkt_c(ctx.spoilage_policy) if h.last_ts is not None else None
    return ZoneStatus(depot, zone, sc.code if sc else None, info.source if info else None, sensors,
                      alerts_, lots, zone_mkt, now)


MAX_HISTORY_RANGE = timedelta(days=90)


def history_bucket_seconds(start: datetime, end: datetime, max_points: int,
                           interval: tuple[int, int] | None) -> int:
    """GetSensorHistory's bucket width: `interval` (seconds, nanos) when given, else the
    narrowest whole-second width that keeps a series within `max_points`."""
    if end <= start:
        raise InvalidInput("end", "must be after start")
    if end - start > MAX_HISTORY_RANGE:
        raise InvalidInput("end", f"range longer than {MAX_HISTORY_RANGE.days} days")
    if not 1 <= max_points <= 10_000:
        raise InvalidInput("max_points", f"must be 1 … 10000, got {max_points}")
    span_s = (end - start).total_seconds()
    if interval is None:
        return max(1, math.ceil(span_s / max_points))
    seconds, nanos = interval
    if nanos or seconds < 1:
        raise InvalidInput("interval", "whole seconds, at least 1 s")
    if math.ceil(span_s / seconds) > max_points:
        raise InvalidInput("interval", f"{seconds} s buckets give more than {max_points} points "
                                       f"over {span_s:.0f} s; widen it or raise max_points")
    return seconds


def sensor_history(influx, actor: Caller, *, depot: str, zone: str, sensor: str, start: datetime | None,
                   end: datetime | None, max_points: int, interval: tuple[int, int] | None
                   ) -> tuple[int, dict]:
    """GetSensorHistory: (bucket seconds, {sensor: points}) from InfluxDB (`influx`: the
    adapter's sensor_history); InfluxError when InfluxDB does not answer."""
    actor.require(*SENSOR_READ_ROLES)
    for field, value in (("depot", depot), ("zone", zone), ("start", start), ("end", end)):
        if not value:
            raise InvalidInput(field, "required")
    seconds = history_bucket_seconds(start, end, max_points or 500, interval)
    return seconds, influx.sensor_history(depot, zone, sensor, start, end, seconds)
