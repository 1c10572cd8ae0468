"""Sensors and gateways (tables sensors, gateways): each sensor's last reading and alarm
evaluator state as the ingest leaves them, reported statuses (retained online/offline, a
gateway's last will), and whether its offline alert has been raised."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, case, func, or_, select, update
from sqlalchemy.engine import Connection

from services.common.db import insert_many
from services.monitoring.adapters import schema
from services.monitoring.adapters.schema import dialect_insert


def expect_sensor(conn: Connection, *, depot: str, zone: str, sensor: str,
                  interval_s: float | None, since: datetime) -> None:
    """A sensor the zones file says the zone has (kept as it is when already known)."""
    conn.execute(dialect_insert(conn, schema.sensors).values(
        sensor_key=f"{depot}/{zone}/{sensor}", depot=depot, zone=zone, sensor=sensor,
        interval_s=interval_s, expected_since=since, reported_offline=False).on_conflict_do_nothing())


def save_readings(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Upsert each sensor's newest reading (an older one does not replace a newer), its gateway
    (when known) and its evaluator state. One executemany of a statement compiled once: this runs
    for every sensor in every ingest group."""
    insert_many(conn, schema.sensors, rows, statement=_save_readings_statement)


def _save_readings_statement(conn: Connection):
    s = schema.sensors
    ins = dialect_insert(conn, s)
    ex = ins.excluded
    newer = or_(s.c.last_ts.is_(None), ex.last_ts > s.c.last_ts)

    def newest(col):
        return case((newer, getattr(ex, col)), else_=getattr(s.c, col))

    return ins.on_conflict_do_update(index_elements=[s.c.sensor_key], set_={
        "gateway": func.coalesce(ex.gateway, s.c.gateway),
        "last_ts": newest("last_ts"), "last_seq": newest("last_seq"),
        "last_temp_c": newest("last_temp_c"), "last_rh": newest("last_rh"),
        "last_received_at": ex.last_received_at,
        "evaluators": ex.evaluators,
    })


def save_statuses(conn: Connection, changes: Iterable[tuple[str, str | None, str, str, datetime]],
                  now: datetime) -> None:
    """Reported statuses, (depot, zone, sensor or gateway, status, at) with zone None for a
    gateway, in arrival order (a later one of the same sensor wins). One executemany per table: a
    gateway's reconnect brings every sensor's retained status at once."""
    sensors, gateways = [], []
    for depot, zone, name, status, at in changes:
        if zone is None:
            gateways.append({"gateway_key": f"{depot}/{name}", "depot": depot, "gateway": name,
                             "status": status, "status_at": at})
        else:
            sensors.append({"sensor_key": f"{depot}/{zone}/{name}", "depot": depot, "zone": zone,
                            "sensor": name, "expected_since": now, "status": status, "status_at": at,
                            "reported_offline": False})
    insert_many(conn, schema.gateways, gateways, statement=_gateway_status_statement)
    insert_many(conn, schema.sensors, sensors, statement=_sensor_status_statement)


def _status_statement(conn: Connection, table, key):
    ins = dialect_insert(conn, table)
    return ins.on_conflict_do_update(index_elements=[key], set_={
        "status": ins.excluded.status, "status_at": ins.excluded.status_at})


def _gateway_status_statement(conn: Connection):
    return _status_statement(conn, schema.gateways, schema.gateways.c.gateway_key)


def _sensor_status_statement(conn: Connection):
    return _status_statement(conn, schema.sensors, schema.sensors.c.sensor_key)


def of_zone(conn: Connection, depot: str, zone: str) -> list[Row]:
    """The zone's sensors, by name (every column)."""
    s = schema.sensors
    return conn.execute(select(s).where(s.c.depot == depot, s.c.zone == zone).order_by(s.c.sensor)).all()


def of_zones(conn: Connection, zone_keys: Iterable[str]) -> dict[str, list[Row]]:
    """{zone key: its sensors, by name (every column)} for these zones (in one query)."""
    keys = set(zone_keys)
    s = schema.sensors
    out: dict[str, list[Row]] = {}
    rows = conn.execute(select(s).where(s.c.zone.in_(sorted({k.partition("/")[2] for k in keys})))
                        .order_by(s.c.depot, s.c.zone, s.c.sensor)).all()
    for r in rows:
        key = f"{r.depot}/{r.zone}"
        if key in keys:
            out.setdefault(key, []).append(r)
    return out


def for_offline_check(conn: Connection) -> list[Row]:
    """Every sensor with what the offline rule needs: its own and its zone's interval, its status
    and its gateway's, when last heard, and whether it is reported offline."""
    s, g, z = schema.sensors, schema.gateways, schema.zones
    return conn.execute(
        select(s.c.sensor_key, s.c.depot, s.c.zone, s.c.sensor, s.c.expected_since,
               s.c.last_received_at, s.c.last_ts, s.c.interval_s, s.c.status,
               s.c.reported_offline, g.c.status.label("gw_status"), z.c.interval_s.label("zone_interval"))
        .select_from(s.outerjoin(g, and_(g.c.depot == s.c.depot, g.c.gateway == s.c.gateway))
                     .outerjoin(z, and_(z.c.depot == s.c.depot, z.c.zone == s.c.zone)))
        .order_by(s.c.sensor_key)).all()


def mark_reported(conn: Connection, sensor_key: str, was_offline: bool, offline: bool) -> bool:
    """A conditional update: of two workers checking at once, one wins (True) and alerts."""
    s = schema.sensors
    return bool(conn.execute(update(s).where(s.c.sensor_key == sensor_key, s.c.reported_offline == was_offline)
                             .values(reported_offline=offline)).rowcount)
