"""Monitoring use cases: load, call the domain, save, record events — in one unit of work.

Functions here take an open UnitOfWork and do not commit; the caller commits (the ingest after a
batch group, the gRPC servicer through run_idempotent, the worker through consume), so the
alert transition, its history row and its outbox event land in one transaction with the state
change that caused them.

Locking (ADR 0002): everything that reads-modifies-writes a zone's evaluation state takes the
zone's `zone_state` row FOR UPDATE first (zones in sorted order), and alerts are loaded FOR
UPDATE; on SQLite every write transaction holds the file's write lock (BEGIN IMMEDIATE) anyway.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from services.common.auth import Caller
from services.common.catalogue import Catalogue, StorageClass
from services.common.clock import Clock
from services.common.db import UnitOfWork, is_postgres, utcnow
from services.common.errors import InvalidInput, NotFound
from services.common.repository import Page
from services.common.serde import from_jsonable, to_jsonable
from services.monitoring import state as st
from services.monitoring.adapters import dead_letters, schema
from services.monitoring.config import MonitoringConfig, ZoneSpec
from services.monitoring.domain import alerts as al
from services.monitoring.domain import hazmat, prices, spoilage
from services.monitoring.domain.alarms import CLEARED, AlarmTransition, ZoneAlarms
from services.monitoring.domain.offline import OFFLINE, ONLINE, OfflinePolicy, SensorTransition
from services.monitoring.domain.readings import Reading, Rejected, zone_key
from services.monitoring.domain.zones import HoldPolicy

log = logging.getLogger(__name__)

HELD = ("available", "quarantined")
ACK_ROLES = ("hq", "depot_keeper", "operator")
PRICE_ROLES = ("hq", "department", "market_supervisor", "operator")
# Who reads what (docs/integration.md, access matrix; admin reads everything). Nothing here
# is personal data. Alerts (cold chain, reserves, prices) go also to departments and market
# supervisors, and to a gateway's own token (the console's one upstream alert stream).
SENSOR_READ_ROLES = ("hq", "depot_keeper", "operator", "auditor")  # zone status, sensor history
ALERT_READ_ROLES = (*SENSOR_READ_ROLES, "department", "market_supervisor", "gateway")


class Actor(Caller):
    """Who is calling (from the caller's token)."""


@dataclass
class MonitoringContext:
    engine: Engine
    catalogue: Catalogue
    clock: Clock
    config: MonitoringConfig
    timezone: ZoneInfo
    alert_policy: al.AlertPolicy = field(default_factory=al.AlertPolicy)
    spoilage_policy: spoilage.SpoilagePolicy = field(default_factory=spoilage.SpoilagePolicy)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, schema.tables, "monitoring", self.clock.now)

    def storage_class(self, code: str | None) -> StorageClass | None:
        return self.catalogue.storage_classes.get(code) if code else None


def _insert(conn: Connection, table):
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def aware(t: datetime | None) -> datetime | None:
    """A stored instant as aware UTC (SQLite gives back naive UTC, PostgreSQL aware)."""
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


# =============================================================================================
# Zones
# =============================================================================================

@dataclass(frozen=True)
class ZoneRow:
    zone_key: str
    depot: str
    zone: str
    storage_class: str
    interval_s: float | None
    source: str


def load_zone_map(conn: Connection) -> dict[str, ZoneRow]:
    z = schema.zones
    rows = conn.execute(select(z.c.zone_key, z.c.depot, z.c.zone, z.c.storage_class,
                               z.c.interval_s, z.c.source)).all()
    return {r.zone_key: ZoneRow(*r) for r in rows}


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
        inserted = uow.conn.execute(_insert(uow.conn, z).values(
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
                uow.conn.execute(_insert(uow.conn, schema.sensors).values(
                    sensor_key=f"{spec.zone_key}/{sensor}", depot=spec.depot, zone=spec.zone,
                    sensor=sensor, interval_s=spec.interval_s, expected_since=now,
                    reported_offline=False).on_conflict_do_nothing())
        uow.commit()
    return changed


def _zone_interval(ctx: MonitoringContext, info: ZoneRow | None) -> timedelta:
    if info is not None and info.interval_s:
        return timedelta(seconds=info.interval_s)
    return ctx.config.sensor_interval


# =============================================================================================
# Alerts: load, save (row + history + outbox event)
# =============================================================================================

def alert_is_spoilage(a: al.Alert) -> bool:
    """Lots must be quarantined: spoilage or MKT findings, and alarms of rules with spoilage: true."""
    return a.kind in ("spoilage", "mkt") or (a.kind == "alarm" and bool(a.evidence.get("spoilage")))


def _alert_from_row(data: Any) -> al.Alert:
    return from_jsonable(al.Alert, data)


def load_open_alert(uow: UnitOfWork, key: str) -> al.Alert | None:
    a = schema.alerts
    row = uow.conn.execute(select(a.c.data).where(a.c.open_key == key).with_for_update()).first()
    return None if row is None else _alert_from_row(row.data)


def load_open_alerts(uow: UnitOfWork, *where) -> list[al.Alert]:
    a = schema.alerts
    rows = uow.conn.execute(select(a.c.data).where(a.c.open_key.is_not(None), *where)
                            .order_by(a.c.alert_id).with_for_update()).all()
    return [_alert_from_row(r.data) for r in rows]


def get_alert(uow: UnitOfWork, alert_id: str, *, lock: bool = False) -> al.Alert:
    if not alert_id:
        raise InvalidInput("alert_id", "required")
    a = schema.alerts
    q = select(a.c.data).where(a.c.alert_id == alert_id)
    row = uow.conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFound(f"alert_id: no alert {alert_id!r} / 未找到该告警")
    return _alert_from_row(row.data)


def event_payload(alert: al.Alert, action: str, at: datetime, by: str | None = None,
                  note: str | None = None) -> dict[str, Any]:
    payload = alert.to_event_payload()
    payload.update({"spoilage": alert_is_spoilage(alert), "state": alert.state, "action": action,
                    "at": _iso(at), "severity": alert.severity, "subject": alert.subject})
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


# =============================================================================================
# Ingest: one group of MQTT messages in one transaction
# =============================================================================================

@dataclass
class ZoneEval:
    """A process's decoded copy of a zone's evaluation state, valid while `version` matches."""

    version: int
    storage_class: str | None
    alarms: ZoneAlarms | None
    thermal: spoilage.ThermalHistory


class EvalCache:
    def __init__(self, max_zones: int = 100_000):
        self.zones: dict[str, ZoneEval] = {}
        self.max_zones = max_zones

    def invalidate(self, keys: Iterable[str]) -> None:
        for k in keys:
            self.zones.pop(k, None)


@dataclass(frozen=True)
class StatusChange:
    depot: str
    zone: str | None  # None for a gateway
    name: str  # sensor or gateway id
    status: str
    at: datetime


@dataclass
class IngestOutcome:
    transitions: list[AlarmTransition] = field(default_factory=list)
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (alert_id, action)


def _ensure_zone_rows(uow: UnitOfWork, keys: Iterable[str], now: datetime) -> None:
    rows = [{"zone_key": k, "version": 0, "thermal": {}, "open_rules": {}, "updated_at": now}
            for k in keys]
    if rows:
        uow.conn.execute(_insert(uow.conn, schema.zone_state).on_conflict_do_nothing(), rows)


def lock_zones(uow: UnitOfWork, keys: Sequence[str]) -> dict[str, int]:
    """Lock the zones' state rows (sorted order: no deadlock between processes); their versions."""
    zs = schema.zone_state
    rows = uow.conn.execute(select(zs.c.zone_key, zs.c.version)
                            .where(zs.c.zone_key.in_(sorted(keys)))
                            .order_by(zs.c.zone_key).with_for_update()).all()
    return {r.zone_key: r.version for r in rows}


def _load_zone_eval(ctx: MonitoringContext, uow: UnitOfWork, key: str, version: int,
                    info: ZoneRow | None) -> ZoneEval:
    zs, s = schema.zone_state, schema.sensors
    row = uow.conn.execute(select(zs.c.thermal, zs.c.open_rules).where(zs.c.zone_key == key)).one()
    thermal = st.restore_thermal(key, row.thermal, ctx.spoilage_policy)
    sc = ctx.storage_class(info.storage_class if info else None)
    za = None
    if sc is not None:
        depot, _, zone = key.partition("/")
        za = st.new_zone_alarms(depot, zone, sc, ctx.config.alarm_policy)
        interval = _zone_interval(ctx, info)
        for r in uow.conn.execute(select(s.c.sensor, s.c.evaluators)
                                  .where(s.c.depot == depot, s.c.zone == zone)).all():
            za.set_interval(r.sensor, interval)
            st.load_sensor_evaluators(za, r.sensor, r.evaluators)
        st.load_open_rules(za, row.open_rules)
    return ZoneEval(version=version, storage_class=sc.code if sc else None, alarms=za, thermal=thermal)


def record_ingest(ctx: MonitoringContext, uow: UnitOfWork, cache: EvalCache, zone_map: Mapping[str, ZoneRow],
                  readings: Sequence[Reading], gateway_of: Mapping[str, str],
                  statuses: Sequence[StatusChange], rejects: Sequence[tuple[str, Rejected]],
                  client_id: str) -> IngestOutcome:
    """One group of MQTT messages: dead letters, statuses, sensors' last readings and evaluator
    state, zones' thermal sums, alarm transitions → alerts. The caller commits, then acks; on any
    error it must `cache.invalidate()` the zones of `readings` (their decoded copies moved on)."""
    now = ctx.clock.now()
    out = IngestOutcome()
    conn = uow.conn
    if rejects:
        dead_letters.store(conn, rejects, now, client_id, ctx.config.max_reject_rows)
    _record_statuses(uow, statuses, now)
    if not readings:
        return out

    by_zone: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        by_zone[r.zone_key].append(r)
    keys = sorted(by_zone)
    _ensure_zone_rows(uow, [k for k in keys if k not in cache.zones], now)
    versions = lock_zones(uow, keys)
    if len(cache.zones) > cache.max_zones:
        cache.zones.clear()

    sensor_rows: list[dict] = []
    zone_rows: list[dict] = []
    for key in keys:
        info = zone_map.get(key)
        version = versions[key]
        ze = cache.zones.get(key)
        sc_code = info.storage_class if info else None
        if ze is None or ze.version != version or ze.storage_class != sc_code:
            ze = cache.zones[key] = _load_zone_eval(ctx, uow, key, version, info)
        rs = sorted(by_zone[key], key=lambda r: (r.ts, r.sensor))
        za = ze.alarms
        if za is not None:
            interval = _zone_interval(ctx, info)
            for sensor in {r.sensor for r in rs}:
                if sensor not in za._intervals:
                    za.set_interval(sensor, interval)
            for r in rs:
                out.transitions.extend(za.feed(r))
        newest: dict[str, Reading] = {}
        for r in rs:
            ze.thermal.feed(r.ts, r.temp_c)
            newest[r.sensor] = r  # rs is in time order: the last one per sensor is its newest
        for sensor, r in newest.items():
            sensor_rows.append({
                "sensor_key": r.sensor_key, "depot": r.depot, "zone": r.zone, "sensor": sensor,
                "gateway": gateway_of.get(r.sensor_key), "expected_since": now, "last_ts": r.ts,
                "last_received_at": now, "last_seq": r.seq, "last_temp_c": r.temp_c,
                "last_rh": r.rh, "reported_offline": False,
                "evaluators": st.sensor_evaluators(za, sensor) if za is not None else None,
            })
        ze.version = version + 1
        zone_rows.append({"k": key, "v": ze.version, "thermal": st.thermal_state(ze.thermal),
                          "open_rules": st.open_rules_state(za) if za is not None else {},
                          "at": now})
    _upsert_sensor_readings(uow, sensor_rows)
    zs = schema.zone_state
    conn.execute(update(zs).where(zs.c.zone_key == bindparam("k")).values(
        version=bindparam("v"), thermal=bindparam("thermal"), open_rules=bindparam("open_rules"),
        updated_at=bindparam("at")), zone_rows)

    lots_of: dict[str, list[str]] = {}
    for t in out.transitions:
        c = al.from_alarm(t, ctx.alert_policy)
        if t.state == CLEARED:
            alert = clear_key(uow, c.key, t.at, c.evidence, value=t.value, sensor=t.sensor)
            if alert is not None:
                out.alerts.append((alert.alert_id, CLEARED))
            continue
        if t.spoilage:
            if t.zone_key not in lots_of:
                lots_of[t.zone_key] = zone_lot_ids(uow, t.zone_key)
            c = replace(c, lot_ids=tuple(lots_of[t.zone_key]))
        res = raise_candidate(uow, c, t.at, value=t.value, sensor=t.sensor)
        if res is not None:
            out.alerts.append((res[0].alert_id, res[1]))
    return out


# --- zones nobody registered (domain/zones.py): held readings, the unregistered-sensor alert

def zones_named(conn: Connection, zone_ids: Iterable[str]) -> dict[str, list[ZoneRow]]:
    """Every registered zone with one of these zone ids, by zone id (any depot)."""
    ids = sorted(set(zone_ids))
    out: dict[str, list[ZoneRow]] = defaultdict(list)
    if not ids:
        return out
    z = schema.zones
    for r in conn.execute(select(z.c.zone_key, z.c.depot, z.c.zone, z.c.storage_class, z.c.interval_s,
                                 z.c.source).where(z.c.zone.in_(ids))).all():
        out[r.zone].append(ZoneRow(*r))
    return out


def hold_readings(uow: UnitOfWork, readings: Sequence[Reading], gateway_of: Mapping[str, str],
                  now: datetime) -> None:
    if readings:
        uow.conn.execute(schema.held_readings.insert(), [
            {"zone_key": r.zone_key, "sensor_key": r.sensor_key, "depot": r.depot, "zone": r.zone,
             "sensor": r.sensor, "gateway": gateway_of.get(r.sensor_key), "ts": r.ts, "seq": r.seq,
             "temp_c": r.temp_c, "rh": r.rh, "received_at": now} for r in readings])


@dataclass(frozen=True)
class HeldReading:
    id: int
    reading: Reading
    gateway: str | None


def held_readings_of(conn: Connection, keys: Iterable[str], limit: int = 100_000) -> list[HeldReading]:
    """The held readings of these zones, oldest first."""
    keys = sorted(set(keys))
    if not keys:
        return []
    hr = schema.held_readings
    rows = conn.execute(select(hr).where(hr.c.zone_key.in_(keys)).order_by(hr.c.ts, hr.c.id)
                        .limit(limit)).all()
    return [HeldReading(r.id, Reading(r.depot, r.zone, r.sensor, aware(r.ts), r.seq, r.temp_c, r.rh),
                        r.gateway) for r in rows]


def registered_held_zones(conn: Connection, limit: int = 100) -> list[str]:
    """Zones with held readings that are registered now: theirs are to be judged."""
    hr, z = schema.held_readings, schema.zones
    return list(conn.execute(select(hr.c.zone_key).distinct()
                             .select_from(hr.join(z, z.c.zone_key == hr.c.zone_key))
                             .order_by(hr.c.zone_key).limit(limit)).scalars())


def delete_held(ctx: MonitoringContext, ids: Sequence[int]) -> None:
    hr = schema.held_readings
    with ctx.uow() as uow:
        for i in range(0, len(ids), 1000):
            uow.conn.execute(hr.delete().where(hr.c.id.in_(list(ids[i:i + 1000]))))
        uow.commit()


def trim_held(ctx: MonitoringContext, policy: HoldPolicy, now: datetime) -> int:
    """Enforce the hold's bounds: retention, newest `per_sensor` per sensor, `max_rows` in all."""
    hr = schema.held_readings
    with ctx.uow() as uow:
        n = uow.conn.execute(hr.delete().where(hr.c.received_at < now - policy.retention)).rowcount
        rank = func.row_number().over(partition_by=hr.c.sensor_key,
                                      order_by=(hr.c.ts.desc(), hr.c.id.desc())).label("rank")
        ranked = select(hr.c.id, rank).subquery()
        n += uow.conn.execute(hr.delete().where(hr.c.id.in_(
            select(ranked.c.id).where(ranked.c.rank > policy.per_sensor)))).rowcount
        floor = uow.conn.execute(select(hr.c.id).order_by(hr.c.id.desc())
                                 .offset(policy.max_rows).limit(1)).scalar()
        if floor is not None:
            n += uow.conn.execute(hr.delete().where(hr.c.id <= floor)).rowcount
        uow.commit()
    return n


def _open_unregistered_zones(uow: UnitOfWork, depot: str) -> list[str]:
    a = schema.alerts
    return list(uow.conn.execute(select(a.c.zone).where(
        a.c.kind == "unregistered_sensor", a.c.depot == depot, a.c.rule_code == "UNREGISTERED_SENSOR",
        a.c.open_key.is_not(None))).scalars())


def raise_unregistered(ctx: MonitoringContext, uow: UnitOfWork, depot: str,
                       sensors: Mapping[str, Iterable[str]], registered_under: Mapping[str, str | None],
                       at: datetime) -> tuple[list[str], list[str]]:
    """One open alert per (depot, zone), an open one left as it is, up to the depot's cap
    (SUPPLY_UNREGISTERED_ALERTS_PER_DEPOT); beyond it one alert says the cap was hit. `sensors`
    by zone id. Returns the zones alerted now and the zones over the cap (only counted)."""
    open_zones = _open_unregistered_zones(uow, depot)
    cap = ctx.config.unregistered_alerts_per_depot
    alert, over = al.unregistered_zones_to_alert(sensors, open_zones, cap)
    for zone in alert:
        raise_candidate(uow, al.unregistered_sensor(depot, zone, sensors[zone],
                                                    registered_under=registered_under.get(zone),
                                                    policy=ctx.alert_policy), at, update_existing=False)
    if over:
        raise_candidate(uow, al.unregistered_cap_reached(depot, cap, over, ctx.alert_policy), at,
                        update_existing=False)
    return alert, over


def clear_unregistered(ctx: MonitoringContext, uow: UnitOfWork, depot: str, zone: str,
                       at: datetime, released: int) -> str | None:
    key = al.unregistered_sensor(depot, zone, ()).key
    alert = clear_key(uow, key, at, {"reason": "zone registered; held readings judged / 库区已登记, 暂存数据已判定",
                                     "released": released})
    if alert is not None and len(_open_unregistered_zones(uow, depot)) < ctx.config.unregistered_alerts_per_depot:
        clear_key(uow, al.unregistered_cap_reached(depot, 0, ()).key, at,
                  {"reason": "below the cap again / 未登记库区告警已低于上限"})
    return alert.alert_id if alert else None


def _upsert_sensor_readings(uow: UnitOfWork, rows: list[dict]) -> None:
    if not rows:
        return
    s = schema.sensors
    ins = _insert(uow.conn, s)
    ex = ins.excluded
    newer = or_(s.c.last_ts.is_(None), ex.last_ts > s.c.last_ts)

    def newest(col):
        from sqlalchemy import case

        return case((newer, getattr(ex, col)), else_=getattr(s.c, col))

    stmt = ins.on_conflict_do_update(index_elements=[s.c.sensor_key], set_={
        "gateway": func.coalesce(ex.gateway, s.c.gateway),
        "last_ts": newest("last_ts"), "last_seq": newest("last_seq"),
        "last_temp_c": newest("last_temp_c"), "last_rh": newest("last_rh"),
        "last_received_at": ex.last_received_at,
        "evaluators": ex.evaluators,
    })
    uow.conn.execute(stmt, rows)


def _record_statuses(uow: UnitOfWork, statuses: Sequence[StatusChange], now: datetime) -> None:
    for sc in statuses:
        if sc.zone is None:
            g = schema.gateways
            stmt = _insert(uow.conn, g).values(gateway_key=f"{sc.depot}/{sc.name}", depot=sc.depot,
                                               gateway=sc.name, status=sc.status, status_at=sc.at)
            uow.conn.execute(stmt.on_conflict_do_update(
                index_elements=[g.c.gateway_key], set_={"status": sc.status, "status_at": sc.at}))
        else:
            s = schema.sensors
            stmt = _insert(uow.conn, s).values(
                sensor_key=f"{sc.depot}/{sc.zone}/{sc.name}", depot=sc.depot, zone=sc.zone,
                sensor=sc.name, expected_since=now, status=sc.status, status_at=sc.at,
                reported_offline=False)
            uow.conn.execute(stmt.on_conflict_do_update(
                index_elements=[s.c.sensor_key], set_={"status": sc.status, "status_at": sc.at}))


def zone_lot_ids(uow: UnitOfWork, key: str) -> list[str]:
    lt = schema.lots
    rows = uow.conn.execute(select(lt.c.lot_id).where(lt.c.zone_key == key, lt.c.status == "available",
                                                      lt.c.on_hand > 0).order_by(lt.c.lot_id)).all()
    return [r.lot_id for r in rows]


# =============================================================================================
# Sensor offline (worker timer)
# =============================================================================================

def offline_transition(depot: str, zone: str, sensor: str, *, expected_since: datetime,
                       last_heard: datetime | None, last_reading: datetime | None,
                       interval: timedelta | None, status_offline: bool, reported_offline: bool,
                       now: datetime, policy: OfflinePolicy) -> SensorTransition | None:
    """OfflineTracker.check for one stored sensor: offline when silent for the timeout or when its
    status (or its gateway's last will) says offline; online again once heard and not offline."""
    silent = now - (last_heard or expected_since) >= policy.timeout(interval)
    down = status_offline or silent
    if down and not reported_offline:
        return SensorTransition(depot, zone, sensor, OFFLINE, now,
                                "last_will" if status_offline else "silent", last_reading)
    if not down and reported_offline:
        return SensorTransition(depot, zone, sensor, ONLINE, now, "heard", last_reading)
    return None


def check_offline(ctx: MonitoringContext) -> list[SensorTransition]:
    now = ctx.clock.now()
    s, g, z = schema.sensors, schema.gateways, schema.zones
    out: list[SensorTransition] = []
    with ctx.uow() as uow:
        rows = uow.conn.execute(
            select(s.c.sensor_key, s.c.depot, s.c.zone, s.c.sensor, s.c.expected_since,
                   s.c.last_received_at, s.c.last_ts, s.c.interval_s, s.c.status,
                   s.c.reported_offline, g.c.status.label("gw_status"), z.c.interval_s.label("zone_interval"))
            .select_from(s.outerjoin(g, and_(g.c.depot == s.c.depot, g.c.gateway == s.c.gateway))
                         .outerjoin(z, and_(z.c.depot == s.c.depot, z.c.zone == s.c.zone)))
            .order_by(s.c.sensor_key)).all()
        for r in rows:
            seconds = r.interval_s or r.zone_interval
            t = offline_transition(
                r.depot, r.zone, r.sensor, expected_since=aware(r.expected_since),
                last_heard=aware(r.last_received_at), last_reading=aware(r.last_ts),
                interval=timedelta(seconds=seconds) if seconds else None,
                status_offline=r.status == OFFLINE or r.gw_status == OFFLINE,
                reported_offline=r.reported_offline, now=now, policy=ctx.config.offline_policy)
            if t is None:
                continue
            # a conditional update: two workers checking at once raise the alert once
            won = uow.conn.execute(update(s).where(s.c.sensor_key == r.sensor_key,
                                                   s.c.reported_offline == r.reported_offline)
                                   .values(reported_offline=t.state == OFFLINE)).rowcount
            if not won:
                continue
            c = al.from_offline(t, ctx.alert_policy)
            if t.state == OFFLINE:
                raise_candidate(uow, c, now, update_existing=False, sensor=t.sensor)
            else:
                clear_key(uow, c.key, now, c.evidence, sensor=t.sensor)
            out.append(t)
        uow.commit()
    return out


# =============================================================================================
# Lots, spoilage, MKT, near expiry, segregation (worker)
# =============================================================================================

def _req(payload: Mapping[str, Any], name: str, kind: type = str) -> Any:
    v = payload.get(name)
    if v is None or (kind is str and (not isinstance(v, str) or not v)):
        raise InvalidInput(f"payload.{name}", "required")
    if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise InvalidInput(f"payload.{name}", f"must be an integer, got {v!r}")
    return v


def _parse_instant(v: Any, name: str, default: datetime) -> datetime:
    if v in (None, ""):
        return default
    try:
        t = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"payload.{name}", f"not an ISO-8601 instant: {v!r}") from None
    if t.tzinfo is None:
        raise InvalidInput(f"payload.{name}", f"needs a UTC offset: {v!r}")
    return t.astimezone(UTC)


def _parse_day(v: Any, name: str) -> date | None:
    if v in (None, ""):
        return None
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError:
        raise InvalidInput(f"payload.{name}", f"not a day YYYY-MM-DD: {v!r}") from None


def _zone_state_for_update(uow: UnitOfWork, key: str) -> tuple[int, spoilage.ThermalHistory, Any]:
    _ensure_zone_rows(uow, [key], utcnow())
    lock_zones(uow, [key])
    zs = schema.zone_state
    row = uow.conn.execute(select(zs.c.version, zs.c.thermal, zs.c.open_rules)
                           .where(zs.c.zone_key == key)).one()
    return row.version, st.restore_thermal(key, row.thermal), row.open_rules


def _lock_zones_sorted(uow: UnitOfWork, keys: Iterable[str | None]) -> None:
    """Lock every zone a lot move touches up front, in the ingest's (sorted) order: no deadlock."""
    keys = sorted(k for k in keys if k)
    _ensure_zone_rows(uow, keys, utcnow())
    lock_zones(uow, keys)


def _save_thermal(uow: UnitOfWork, key: str, version: int, h: spoilage.ThermalHistory) -> None:
    zs = schema.zone_state
    uow.conn.execute(update(zs).where(zs.c.zone_key == key).values(
        version=version + 1, thermal=st.thermal_state(h), updated_at=utcnow()))


def _account(data: Any) -> spoilage.LotThermalAccount | None:
    return None if data is None else from_jsonable(spoilage.LotThermalAccount, data)


def _expires_at(ctx: MonitoringContext, day: date | None) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ctx.timezone)


def _enter_zone(ctx: MonitoringContext, uow: UnitOfWork, acct: spoilage.LotThermalAccount,
                key: str, at: datetime) -> None:
    version, h, _ = _zone_state_for_update(uow, key)
    models = st.thermal_models(h)
    acct.enter(h, at)
    if st.thermal_models(h) != models:
        _save_thermal(uow, key, version, h)


def _leave_zone(ctx: MonitoringContext, uow: UnitOfWork, acct: spoilage.LotThermalAccount,
                at: datetime) -> None:
    if acct.zone_key is None:
        return
    _, h, _ = _zone_state_for_update(uow, acct.zone_key)
    acct.leave(h, at)


def stock_received(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any]) -> None:
    """A receipt put away: the lot is now in its zone (its thermal account starts there)."""
    p = envelope["payload"]
    lot_id, item_code = _req(p, "lot_id"), _req(p, "item_code")
    depot, zone = _req(p, "depot_id"), _req(p, "zone_id")
    quantity = _req(p, "quantity", int)
    try:
        item = ctx.catalogue.item(item_code)
    except Exception:
        raise InvalidInput("payload.item_code", f"unknown item code {item_code!r}") from None
    storage_class = p.get("storage_class") or item.storage_class
    register_zone(ctx, uow, depot, zone, storage_class, source="stock", field_prefix="payload.")
    occurred = _parse_instant(envelope.get("occurred_at"), "occurred_at", ctx.clock.now())
    received_at = _parse_instant(p.get("received_at"), "received_at", occurred)
    expiry = _parse_day(p.get("expiry"), "expiry")
    key = zone_key(depot, zone)
    lt = schema.lots
    row = uow.conn.execute(select(lt).where(lt.c.lot_id == lot_id).with_for_update()).first()
    acct = _account(row.account) if row is not None else None
    if acct is None:
        acct = spoilage.open_account(lot_id, item_code, ctx.catalogue, received_at,
                                     _expires_at(ctx, expiry), ctx.spoilage_policy)
    if acct.zone_key != key:
        _lock_zones_sorted(uow, {key, acct.zone_key})
        _leave_zone(ctx, uow, acct, received_at)
        _enter_zone(ctx, uow, acct, key, received_at)
    values = {"item_code": item_code, "depot": depot, "zone": zone, "zone_key": key,
              "on_hand": quantity if row is None else max(row.on_hand, quantity),
              "status": "available" if row is None else row.status, "expiry": expiry,
              "received_at": received_at if row is None else aware(row.received_at),
              "account": to_jsonable(acct), "updated_at": utcnow()}
    if row is None:
        uow.conn.execute(lt.insert().values(lot_id=lot_id, ledger_seq=0, **values))
    else:
        uow.conn.execute(update(lt).where(lt.c.lot_id == lot_id).values(**values))
    audit_zone(ctx, uow, key, ctx.clock.now())
    if row is not None and row.zone_key != key:
        audit_zone(ctx, uow, row.zone_key, ctx.clock.now())
    check_expiry(ctx, uow, [lot_id])


def stock_changed(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any]) -> None:
    """Any ledger movement: on hand, status, and a move to another zone."""
    p = envelope["payload"]
    lot_id = _req(p, "lot_id")
    on_hand = _req(p, "on_hand", int)
    seq = p.get("ledger_seq") or 0
    status = p.get("status") or "available"
    lt = schema.lots
    row = uow.conn.execute(select(lt).where(lt.c.lot_id == lot_id).with_for_update()).first()
    now = ctx.clock.now()
    at = _parse_instant(envelope.get("occurred_at"), "occurred_at", now)
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
        item_code = _req(p, "item_code")
        try:
            item = ctx.catalogue.item(item_code)
        except Exception:
            raise InvalidInput("payload.item_code", f"unknown item code {item_code!r}") from None
        register_zone(ctx, uow, depot, zone, item.storage_class, source="stock", field_prefix="payload.")
        acct = spoilage.open_account(lot_id, item_code, ctx.catalogue, at, None, ctx.spoilage_policy)
        _enter_zone(ctx, uow, acct, key, at)
        uow.conn.execute(lt.insert().values(
            lot_id=lot_id, item_code=item_code, depot=depot, zone=zone, zone_key=key,
            on_hand=on_hand, status=new_status, expiry=None, received_at=at, ledger_seq=seq,
            account=to_jsonable(acct), updated_at=utcnow()))
        audit_zone(ctx, uow, key, now)
        return
    acct = _account(row.account)
    if acct is not None:
        _lock_zones_sorted(uow, {key, acct.zone_key})
        if gone:
            _leave_zone(ctx, uow, acct, at)
        elif acct.zone_key != key:
            _leave_zone(ctx, uow, acct, at)
            _enter_zone(ctx, uow, acct, key, at)
    uow.conn.execute(update(lt).where(lt.c.lot_id == lot_id).values(
        depot=depot, zone=zone, zone_key=key, on_hand=max(on_hand, 0), status=new_status,
        ledger_seq=seq or row.ledger_seq, account=to_jsonable(acct) if acct else None,
        updated_at=utcnow()))
    if gone:
        clear_lot_alerts(uow, lot_id, now)
    for k in sorted({key, row.zone_key}):
        audit_zone(ctx, uow, k, now)


def lot_status(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any], status: str) -> None:
    """lot_quarantined / lot_released: the lot's status (a quarantined lot is not alerted again).
    A `lot_released` that reports a write-off carries the lot's resulting status (a partial
    write-off of quarantined stock leaves it quarantined): that status wins."""
    p = envelope["payload"]
    lot_id = _req(p, "lot_id")
    if p.get("outcome") == "written_off" and p.get("status") in ("quarantined", "available", "written_off"):
        status = p["status"]
    lt = schema.lots
    row = uow.conn.execute(select(lt.c.status).where(lt.c.lot_id == lot_id).with_for_update()).first()
    if row is None or row.status in ("gone", "written_off"):
        return
    uow.conn.execute(update(lt).where(lt.c.lot_id == lot_id).values(status=status, updated_at=utcnow()))


LOT_ALERT_KINDS = ("spoilage", "mkt", "near_expiry")


def clear_lot_alerts(uow: UnitOfWork, lot_id: str, at: datetime) -> None:
    a = schema.alerts
    for alert in load_open_alerts(uow, a.c.subject == lot_id, a.c.kind.in_(LOT_ALERT_KINDS)):
        clear_key(uow, alert.key, at, {"reason": "lot no longer held / 批次已出库或核销"})


def _held_lots(uow: UnitOfWork, key: str) -> list[Any]:
    lt = schema.lots
    return uow.conn.execute(select(lt.c.lot_id, lt.c.item_code, lt.c.status)
                            .where(lt.c.zone_key == key, lt.c.status.in_(HELD), lt.c.on_hand > 0)
                            .order_by(lt.c.lot_id)).all()


def audit_zone(ctx: MonitoringContext, uow: UnitOfWork, key: str, at: datetime) -> None:
    """Segregation audit of what logistics says the zone holds; stale violations clear."""
    z, a = schema.zones, schema.alerts
    info = uow.conn.execute(select(z.c.depot, z.c.zone, z.c.storage_class)
                            .where(z.c.zone_key == key)).first()
    if info is None:
        return
    contents = hazmat.ZoneContents(info.depot, info.zone, info.storage_class,
                                   tuple((r.lot_id, r.item_code) for r in _held_lots(uow, key)))
    found = {}
    for v in hazmat.audit_zone(contents, ctx.catalogue):
        c = al.from_segregation(v, ctx.alert_policy)
        found[c.key] = c
    for alert in load_open_alerts(uow, a.c.kind == "segregation", a.c.depot == info.depot,
                                  a.c.zone == info.zone):
        if alert.key not in found:
            clear_key(uow, alert.key, at, {"reason": "segregation restored / 已恢复分区存放"})
    for c in found.values():
        existing = load_open_alert(uow, c.key)
        if existing is not None and set(existing.lot_ids) >= set(c.lot_ids):
            continue
        raise_candidate(uow, c, at)


def check_expiry(ctx: MonitoringContext, uow: UnitOfWork, lot_ids: Sequence[str] | None = None) -> int:
    """Near-expiry alerts for held lots (all of them, or `lot_ids`); an open one is updated once
    a day (days_left changes)."""
    lt = schema.lots
    q = select(lt.c.lot_id, lt.c.item_code, lt.c.depot, lt.c.zone, lt.c.expiry).where(
        lt.c.status == "available", lt.c.on_hand > 0, lt.c.expiry.is_not(None))
    if lot_ids is not None:
        q = q.where(lt.c.lot_id.in_(list(lot_ids)))
    rows = uow.conn.execute(q).all()
    now = ctx.clock.now()
    today = now.astimezone(ctx.timezone).date()
    lots = [al.LotExpiry(r.lot_id, r.item_code, r.depot, r.zone, r.expiry) for r in rows]
    n = 0
    for f in al.near_expiry(lots, today, ctx.catalogue, ctx.alert_policy):
        c = al.from_near_expiry(f, ctx.alert_policy)
        existing = load_open_alert(uow, c.key)
        if existing is not None and existing.evidence.get("days_left") == f.days_left:
            continue
        raise_candidate(uow, c, now)
        n += 1
    return n


def check_spoilage(ctx: MonitoringContext) -> int:
    """Remaining shelf life and MKT of every held lot from its zone's thermal sums; a lot whose life
    ran out or whose MKT is above its class's limit gets an alert with spoilage: true."""
    lt, z = schema.lots, schema.zones
    with ctx.uow() as uow:
        keys = [r.zone_key for r in uow.conn.execute(
            select(lt.c.zone_key).where(lt.c.status == "available", lt.c.on_hand > 0,
                                        lt.c.account.is_not(None)).distinct()).all()]
    raised = 0
    for key in sorted(keys):
        with ctx.uow() as uow:
            now = ctx.clock.now()
            _, h, _ = _zone_state_for_update(uow, key)
            sc_row = uow.conn.execute(select(z.c.storage_class).where(z.c.zone_key == key)).first()
            sc = ctx.storage_class(sc_row.storage_class if sc_row else None)
            rows = uow.conn.execute(select(lt.c.lot_id, lt.c.account).where(
                lt.c.zone_key == key, lt.c.status == "available", lt.c.on_hand > 0)).all()
            for r in rows:
                acct = _account(r.account)
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
        uow.commit()
    return raised


# =============================================================================================
# Reserve floor (logistics' reserve_below_floor)
# =============================================================================================

def reserve_below_floor(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any]) -> None:
    p = envelope["payload"]
    group = _req(p, "group")
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
    a = schema.alerts
    cutoff = ctx.clock.now() - ctx.config.reserve_alert_ttl
    for alert in load_open_alerts(uow, a.c.kind == "reserve_below_floor", a.c.updated_at < cutoff):
        clear_key(uow, alert.key, ctx.clock.now(),
                  {"reason": "not re-raised by logistics / 储备已恢复(未再报告低于底线)"})


# =============================================================================================
# Prices (gRPC SubmitPrices)
# =============================================================================================

@dataclass(frozen=True)
class PriceResult:
    observation: prices.PriceObservation
    rise: prices.PriceRise | None
    alert_id: str | None
    action: str | None


def submit_prices(ctx: MonitoringContext, uow: UnitOfWork, actor: Actor,
                  submissions: Sequence[Mapping[str, Any]]) -> list[PriceResult]:
    actor.require(*PRICE_ROLES)
    policy = ctx.config.price_policy
    now = ctx.clock.now()
    today = now.astimezone(ctx.timezone).date()
    observations = []
    for i, raw in enumerate(submissions):
        raw = dict(raw)
        if not raw.get("day"):
            raw["day"] = today.isoformat()
        try:
            observations.append(prices.validate_submission(raw, policy, today))
        except InvalidInput as exc:
            raise InvalidInput(f"prices[{i}].{exc.field}", exc.message.split(": ", 1)[-1]) from None
    seen: dict[tuple, int] = {}
    for i, o in enumerate(observations):
        k = (o.product, o.market, o.day)
        if k in seen:
            raise InvalidInput(f"prices[{i}]", f"repeats prices[{seen[k]}] (same product, market and day)")
        seen[k] = i
    p = schema.prices
    out = []
    for o in observations:
        stmt = _insert(uow.conn, p).values(product=o.product, market=o.market, day=o.day,
                                           price_fen=o.price_fen, submitted_by=actor.identity,
                                           submitted_at=now)
        uow.conn.execute(stmt.on_conflict_do_update(
            index_elements=[p.c.product, p.c.market, p.c.day],
            set_={"price_fen": o.price_fen, "submitted_by": actor.identity, "submitted_at": now}))
        start = o.day - timedelta(days=policy.baseline_days)
        history = [prices.PriceObservation(r.product, r.market, r.day, r.price_fen)
                   for r in uow.conn.execute(select(p).where(
                       p.c.product == o.product, p.c.market == o.market,
                       p.c.day >= start, p.c.day < o.day)).all()]
        rise = prices.detect_price_rise(o, history, policy)
        key = al.alert_key("price_rise", None, None, "PRICE_RISE", f"{o.product}@{o.market}")
        alert_id = action = None
        if rise is not None:
            res = raise_candidate(uow, al.from_price_rise(rise, ctx.alert_policy), now,
                                  value=float(rise.rise_pct))
            if res is not None:
                alert_id, action = res[0].alert_id, res[1]
        elif o.day == today:
            cleared = clear_key(uow, key, now, {"reason": "price back within threshold / 价格回落",
                                                "price_fen": o.price_fen})
            if cleared is not None:
                alert_id, action = cleared.alert_id, CLEARED
        out.append(PriceResult(o, rise, alert_id, action))
    return out


# =============================================================================================
# Queries
# =============================================================================================

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


def _alert_where(f: AlertFilter) -> list[Any]:
    a = schema.alerts
    where: list[Any] = []
    for k in f.kinds:
        if k not in al.KINDS:
            raise InvalidInput("kinds", f"unknown alert kind {k!r}; one of {', '.join(al.KINDS)}")
    if f.states:
        where.append(a.c.state.in_(f.states))
    if f.kinds:
        where.append(a.c.kind.in_(f.kinds))
    if f.severities:
        where.append(a.c.severity.in_(f.severities))
    if f.depot:
        where.append(a.c.depot == f.depot)
    if f.zone:
        where.append(a.c.zone == f.zone)
    if f.opened_after is not None:
        where.append(a.c.opened_at >= f.opened_after)
    if f.opened_before is not None:
        where.append(a.c.opened_at < f.opened_before)
    if f.spoilage_only:
        where.append(a.c.spoilage.is_(True))
    return where


def list_alerts(uow: UnitOfWork, f: AlertFilter, page_size: int, page_token: str
                ) -> tuple[list[al.Alert], str, int]:
    """Newest first (opened_at, then alert id); keyset paging; also the total matching."""
    import base64

    if page_size < 0 or page_size > 500:
        raise InvalidInput("page.page_size", f"must be 0 … 500, got {page_size}")
    size = page_size or 50
    a = schema.alerts
    where = _alert_where(f)
    total = uow.conn.execute(select(func.count()).select_from(a).where(*where)).scalar_one()
    q = select(a.c.alert_id, a.c.opened_at, a.c.data).where(*where)
    if page_token:
        try:
            at_s, _, after_id = base64.urlsafe_b64decode(page_token.encode()).decode().partition("|")
            after_at = datetime.fromisoformat(at_s)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("page.page_token", "not a token returned by a previous page") from None
        q = q.where(or_(a.c.opened_at < after_at, and_(a.c.opened_at == after_at, a.c.alert_id < after_id)))
    rows = uow.conn.execute(q.order_by(a.c.opened_at.desc(), a.c.alert_id.desc()).limit(size + 1)).all()
    items = [_alert_from_row(r.data) for r in rows[:size]]
    token = ""
    if len(rows) > size:
        last = rows[size - 1]
        opened = aware(last.opened_at)
        token = base64.urlsafe_b64encode(f"{opened.isoformat()}|{last.alert_id}".encode()).decode()
    return items, token, total


def list_ingest_dead_letters(uow: UnitOfWork, actor: Actor, f: dead_letters.DeadLetterFilter,
                             page_size: int, page_token: str) -> Page[dead_letters.DeadLetter]:
    actor.require(*SENSOR_READ_ROLES)
    return dead_letters.page(uow.conn, f, page_size, page_token)


@dataclass(frozen=True)
class HistoryRow:
    id: int
    alert_id: str
    action: str
    at: datetime
    by: str | None
    note: str | None
    payload: dict


def history_since(uow: UnitOfWork, after_id: int, extra_ids: Sequence[int], f: AlertFilter,
                  limit: int = 500) -> list[HistoryRow]:
    """Alert history rows with id > after_id (or in extra_ids: ids skipped earlier because their
    transaction had not committed yet), filtered like ListAlerts (states do not apply)."""
    h = schema.alert_history
    cond = h.c.id > after_id
    if extra_ids:
        cond = or_(cond, h.c.id.in_(list(extra_ids)))
    where = [cond]
    if f.kinds:
        where.append(h.c.kind.in_(f.kinds))
    if f.severities:
        where.append(h.c.severity.in_(f.severities))
    if f.depot:
        where.append(h.c.depot == f.depot)
    if f.zone:
        where.append(h.c.zone == f.zone)
    rows = uow.conn.execute(select(h.c.id, h.c.alert_id, h.c.action, h.c.at, h.c.by, h.c.note, h.c.payload)
                            .where(*where).order_by(h.c.id).limit(limit)).all()
    return [HistoryRow(r.id, r.alert_id, r.action, aware(r.at), r.by, r.note, r.payload) for r in rows]


def last_history_id(uow: UnitOfWork) -> int:
    h = schema.alert_history
    return uow.conn.execute(select(func.coalesce(func.max(h.c.id), 0))).scalar_one()


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
    z, s, lt, a, zs = schema.zones, schema.sensors, schema.lots, schema.alerts, schema.zone_state
    info = uow.conn.execute(select(z.c.storage_class, z.c.source).where(z.c.zone_key == key)).first()
    srows = uow.conn.execute(select(s).where(s.c.depot == depot, s.c.zone == zone)
                             .order_by(s.c.sensor)).all()
    if info is None and not srows:
        raise NotFound(f"zone: no zone {key!r} is registered or reporting / 未登记的库区")
    now = ctx.clock.now()
    zrow = uow.conn.execute(select(zs.c.thermal).where(zs.c.zone_key == key)).first()
    h = st.restore_thermal(key, zrow.thermal if zrow else None, ctx.spoilage_policy)
    sc = ctx.storage_class(info.storage_class if info else None)
    lots = []
    for r in uow.conn.execute(select(lt).where(lt.c.zone_key == key, lt.c.status.in_(HELD),
                                               lt.c.on_hand > 0).order_by(lt.c.lot_id)).all():
        acct = _account(r.account)
        remaining = mkt = None
        if acct is not None and acct.zone_key == key:
            if acct.model is not None:
                h.totals(now, acct.model)  # a decoded copy: registering a model here is harmless
            remaining = acct.remaining_days(h, now)
            mkt = acct.mkt_c(h, now, ctx.spoilage_policy) if sc and sc.mkt_limit_c is not None else None
        lots.append(LotView(r.lot_id, r.item_code, r.on_hand, r.status, r.expiry, aware(r.received_at),
                            remaining, acct.sl_ref_days if acct else None, mkt))
    alerts_ = [_alert_from_row(r.data) for r in uow.conn.execute(
        select(a.c.data).where(a.c.depot == depot, a.c.zone == zone, a.c.open_key.is_not(None))
        .order_by(a.c.opened_at)).all()]
    sensors = [SensorView(r.sensor, r.gateway, aware(r.last_ts), r.last_temp_c, r.last_rh, r.last_seq,
                          r.status, r.reported_offline) for r in srows]
    zone_mkt = h.totals(now).mkt_c(ctx.spoilage_policy) if h.last_ts is not None else None
    return ZoneStatus(depot, zone, sc.code if sc else None, info.source if info else None, sensors,
                      alerts_, lots, zone_mkt, now)


def zone_storage_class(uow: UnitOfWork, depot: str, zone: str) -> str | None:
    z = schema.zones
    row = uow.conn.execute(select(z.c.storage_class).where(z.c.zone_key == zone_key(depot, zone))).first()
    return row.storage_class if row else None


# =============================================================================================
# Alert transitions → InfluxDB measurement `alarm` (worker)
# =============================================================================================

def export_alarm_lines(ctx: MonitoringContext, write_lines, limit: int = 500) -> int:
    """Unexported alert history rows → `alarm` lines → `write_lines(lines)` (durable: written or
    spooled) → marked exported, in one transaction; several workers skip each other's rows."""
    from services.monitoring.adapters.influx import LineProtocolError, alarm_line

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
