"""The ingest's unit of work: one group of MQTT messages in one transaction (dead letters,
statuses, sensors' last readings, alarm evaluation, alerts); readings of zones nobody registered
(held, the capped unregistered-sensor alerts); the sensor-offline timer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from operator import attrgetter

from services.common.db import UnitOfWork
from services.monitoring import state as st
from services.monitoring.adapters import (
    alert_store,
    dead_letters,
    lot_store,
    sensor_store,
    zone_store,
)
from services.monitoring.adapters.schema import aware
from services.monitoring.adapters.zone_store import ZoneRow
from services.monitoring.domain import alerts as al
from services.monitoring.domain import spoilage
from services.monitoring.domain.alarms import CLEARED, AlarmTransition, ZoneAlarms, in_time_order
from services.monitoring.domain.offline import (
    OFFLINE,
    SensorTransition,
    offline_transition,
)
from services.monitoring.domain.readings import Reading, Rejected
from services.monitoring.handlers.alerts import clear_key, raise_candidate
from services.monitoring.handlers.base import MonitoringContext
from services.monitoring.handlers.zones import zone_interval

_sensor, _temp = attrgetter("sensor"), attrgetter("temp_c")


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


def _load_zone_evals(ctx: MonitoringContext, uow: UnitOfWork, keys: Sequence[str],
                     versions: Mapping[str, int], zone_map: Mapping[str, ZoneRow]) -> dict[str, ZoneEval]:
    """The zones' evaluation state from their state rows and sensors' rows (two queries for all)."""
    if not keys:
        return {}
    rows = zone_store.state_rows(uow.conn, keys)
    sensors = sensor_store.of_zones(uow.conn, keys)
    out: dict[str, ZoneEval] = {}
    for key in keys:
        row, info = rows[key], zone_map.get(key)
        thermal = st.restore_thermal(key, row.thermal, ctx.spoilage_policy)
        sc = ctx.storage_class(info.storage_class if info else None)
        za = None
        if sc is not None:
            depot, _, zone = key.partition("/")
            za = st.new_zone_alarms(depot, zone, sc, ctx.config.alarm_policy)
            interval = zone_interval(ctx, info)
            for r in sensors.get(key, ()):
                za.set_interval(r.sensor, interval)
                st.load_sensor_evaluators(za, r.sensor, r.evaluators)
            st.load_open_rules(za, row.open_rules)
        out[key] = ZoneEval(version=versions[key], storage_class=sc.code if sc else None, alarms=za,
                            thermal=thermal)
    return out


def warm_zone_evals(ctx: MonitoringContext, uow: UnitOfWork, cache: EvalCache,
                    zone_map: Mapping[str, ZoneRow], chunk: int = 500) -> int:
    """Decode the stored evaluation state of every registered zone that has one into `cache`, up
    to its size. A restarted ingest does this before it connects, so that its first groups, and
    the alarms in them, do not wait for it. Read without locks: a copy another process moves on
    afterwards fails the version check of the next group and is loaded again."""
    keys = sorted(zone_map)[:cache.max_zones]
    for i in range(0, len(keys), chunk):
        versions = {k: r.version for k, r in zone_store.state_rows(uow.conn, keys[i:i + chunk]).items()}
        cache.zones.update(_load_zone_evals(ctx, uow, sorted(versions), versions, zone_map))
    return len(cache.zones)


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
    sensor_store.save_statuses(uow.conn, ((sc.depot, sc.zone, sc.name, sc.status, sc.at) for sc in statuses), now)
    if not readings:
        return out

    by_zone: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        by_zone[r.zone_key].append(r)
    keys = sorted(by_zone)
    zone_store.ensure_state_rows(uow.conn, [k for k in keys if k not in cache.zones], now)
    versions = zone_store.lock_state(uow.conn, keys)
    if len(cache.zones) > cache.max_zones:
        cache.zones.clear()

    def stale(key: str) -> bool:  # moved on in another process, or its storage class changed
        ze, info = cache.zones.get(key), zone_map.get(key)
        return ze is None or ze.version != versions[key] or ze.storage_class != (info.storage_class if info else None)

    cache.zones.update(_load_zone_evals(ctx, uow, [k for k in keys if stale(k)], versions, zone_map))
    sensor_rows: list[dict] = []
    zone_rows: list[dict] = []
    for key in keys:
        info, version, ze = zone_map.get(key), versions[key], cache.zones[key]
        za = ze.alarms
        interval = zone_interval(ctx, info) if za is not None else None
        in_order, stamps = in_time_order(by_zone[key])
        newest = dict(zip(map(_sensor, in_order), in_order, strict=True))  # the last one per sensor is its newest
        if za is not None:
            for sensor in newest.keys() - za._intervals.keys():
                za.set_interval(sensor, interval)
            out.transitions.extend(za.feed_sorted(in_order))
        ze.thermal.feed_series(stamps, list(map(_temp, in_order)))
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
    sensor_store.save_readings(uow.conn, sensor_rows)
    zone_store.save_states(conn, zone_rows)

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
                lots_of[t.zone_key] = lot_store.available_ids(uow.conn, t.zone_key)
            c = replace(c, lot_ids=tuple(lots_of[t.zone_key]))
        res = raise_candidate(uow, c, t.at, value=t.value, sensor=t.sensor)
        if res is not None:
            out.alerts.append((res[0].alert_id, res[1]))
    return out


def raise_unregistered(ctx: MonitoringContext, uow: UnitOfWork, depot: str,
                       sensors: Mapping[str, Iterable[str]], registered_under: Mapping[str, str | None],
                       at: datetime) -> tuple[list[str], list[str]]:
    """One open alert per (depot, zone), an open one left as it is, up to the depot's cap
    (SUPPLY_UNREGISTERED_ALERTS_PER_DEPOT); beyond it one alert says the cap was hit. `sensors`
    by zone id. Returns the zones alerted now and the zones over the cap (only counted)."""
    open_zones = alert_store.open_zones(uow.conn, "unregistered_sensor", "UNREGISTERED_SENSOR", depot)
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
    open_now = alert_store.open_zones(uow.conn, "unregistered_sensor", "UNREGISTERED_SENSOR", depot)
    if alert is not None and len(open_now) < ctx.config.unregistered_alerts_per_depot:
        clear_key(uow, al.unregistered_cap_reached(depot, 0, ()).key, at,
                  {"reason": "below the cap again / 未登记库区告警已低于上限"})
    return alert.alert_id if alert else None


def check_offline(ctx: MonitoringContext) -> list[SensorTransition]:
    now = ctx.clock.now()
    out: list[SensorTransition] = []
    with ctx.uow() as uow:
        for r in sensor_store.for_offline_check(uow.conn):
            seconds = r.interval_s or r.zone_interval
            t = offline_transition(
                r.depot, r.zone, r.sensor, expected_since=aware(r.expected_since),
                last_heard=aware(r.last_received_at), last_reading=aware(r.last_ts),
                interval=timedelta(seconds=seconds) if seconds else None,
                status_offline=r.status == OFFLINE or r.gw_status == OFFLINE,
                reported_offline=r.reported_offline, now=now, policy=ctx.config.offline_policy)
            if t is None:
                continue
            if not sensor_store.mark_reported(uow.conn, r.sensor_key, r.reported_offline, t.state == OFFLINE):
                continue
            c = al.from_offline(t, ctx.alert_policy)
            if t.state == OFFLINE:
                raise_candidate(uow, c, now, update_existing=False, sensor=t.sensor)
            else:
                clear_key(uow, c.key, now, c.evidence, sensor=t.sensor)
            out.append(t)
        uow.commit()
    return out
