"""Depots, zones, vehicles and requesters' drop points in the database (rows in, domain out)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, time
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from services.logistics.adapters.schema import depots, drop_points, requesters, vehicles, zones
from services.logistics.domain.model import Depot, TimeSlot, Vehicle, Zone


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M")


def _time(value: str, default: time) -> time:
    """A stored "H:MM" or "HH:MM" (written by _hhmm or checked by parse_hhmm on the way in)."""
    if not value:
        return default
    hour, minute = value.strip().split(":")
    return time(int(hour), int(minute))


def depot_row(conn: Connection, depot_id: str):
    return conn.execute(select(depots).where(depots.c.id == depot_id)).first()


def depot_rows(conn: Connection) -> list:
    return conn.execute(select(depots).order_by(depots.c.id)).all()


def depot_ids(conn: Connection) -> list[str]:
    return [r.id for r in conn.execute(select(depots.c.id).order_by(depots.c.id))]


def depot_from_row(row) -> Depot:
    return Depot(row.id, row.name, row.lat, row.lon, _time(row.loading_open, time(6)),
                 _time(row.loading_close, time(16)))


def add_depot(conn: Connection, depot: Depot, *, at: datetime, by: str) -> None:
    conn.execute(insert(depots).values(
        id=depot.id, name=depot.name, lat=depot.lat, lon=depot.lon,
        loading_open=_hhmm(depot.loading_open), loading_close=_hhmm(depot.loading_close),
        registered_at=at, registered_by=by))


def zone_row(conn: Connection, zone_id: str):
    return conn.execute(select(zones).where(zones.c.id == zone_id)).first()


def zone_rows(conn: Connection) -> list:
    return conn.execute(select(zones).order_by(zones.c.id)).all()


def zone_from_row(row) -> Zone:
    return Zone(row.id, row.depot_id, row.storage_class, int(row.capacity_l))


def zones_of(conn: Connection, depot_id: str | None = None) -> dict[str, Zone]:
    q = select(zones).order_by(zones.c.id)
    if depot_id is not None:
        q = q.where(zones.c.depot_id == depot_id)
    return {r.id: zone_from_row(r) for r in conn.execute(q)}


def add_zone(conn: Connection, zone: Zone, name: str, *, at: datetime, by: str) -> None:
    conn.execute(insert(zones).values(id=zone.id, depot_id=zone.depot_id, name=name,
                                      storage_class=zone.storage_class, capacity_l=zone.capacity_l,
                                      registered_at=at, registered_by=by))


def vehicle_json(v: Vehicle) -> dict:
    return {**{f.name: getattr(v, f.name) for f in dataclasses.fields(v) if f.name != "slots"},
            "slots": [[_hhmm(s.start), _hhmm(s.end)] for s in v.slots]}


def vehicle_from_json(data: Mapping[str, Any]) -> Vehicle:
    slots = tuple(TimeSlot(_time(a, time(0)), _time(b, time(0))) for a, b in data.get("slots", ()))
    return Vehicle(**{**{k: v for k, v in data.items() if k != "slots"}, "slots": slots})


def save_vehicle(conn: Connection, vehicle: Vehicle, *, at: datetime) -> None:
    row = {"depot_id": vehicle.depot_id, "data": vehicle_json(vehicle), "updated_at": at}
    if conn.execute(select(vehicles.c.id).where(vehicles.c.id == vehicle.id)).first() is None:
        conn.execute(insert(vehicles).values(id=vehicle.id, **row))
    else:
        conn.execute(update(vehicles).where(vehicles.c.id == vehicle.id).values(**row))


def vehicles_of(conn: Connection) -> list[Vehicle]:
    return [vehicle_from_json(r.data) for r in
            conn.execute(select(vehicles.c.data).order_by(vehicles.c.id))]


def requesters_by_id(conn: Connection, requester_ids: Sequence[str]) -> dict[str, Any]:
    return {r.id: r for r in conn.execute(select(requesters).where(requesters.c.id.in_(requester_ids)))}


def drop_points_by_requester(conn: Connection, requester_ids: Sequence[str]) -> dict[str, list]:
    """Each requester's drop point rows, by drop point id."""
    out: dict[str, list] = {}
    for r in conn.execute(select(drop_points).where(drop_points.c.requester_id.in_(requester_ids))
                          .order_by(drop_points.c.drop_point_id)):
        out.setdefault(r.requester_id, []).append(r)
    return out


def villages_population(conn: Connection) -> int:
    """People of the villages and communities together (the county's stock serves them)."""
    total = conn.execute(select(func.coalesce(func.sum(requesters.c.population), 0))
                         .where(requesters.c.kind.in_(("village", "community")))).scalar_one()
    return int(total or 0)


def requester_version(conn: Connection, requester_id: str) -> int | None:
    row = conn.execute(select(requesters.c.version).where(requesters.c.id == requester_id)).first()
    return None if row is None else int(row.version)


def save_requester(conn: Connection, requester_id: str, row: Mapping[str, Any], *, new: bool,
                   points: Sequence[Mapping[str, Any]]) -> None:
    """The requester's row and, replacing what was there, its drop points."""
    if new:
        conn.execute(insert(requesters).values(id=requester_id, **row))
    else:
        conn.execute(update(requesters).where(requesters.c.id == requester_id).values(**row))
    conn.execute(delete(drop_points).where(drop_points.c.requester_id == requester_id))
    for p in points:
        conn.execute(insert(drop_points).values(requester_id=requester_id, **p))
