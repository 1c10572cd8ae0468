"""Depots, zones and vehicles (registered by HQ) and requesters' drop points (from intake)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from services.common.db import UnitOfWork
from services.common.errors import Conflict, InvalidInput, NotFound
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import schema
from services.logistics.domain.model import (
    Depot,
    TimeSlot,
    Vehicle,
    Zone,
)
from services.logistics.domain.receipts import (
    zone_occupancy,
)
from services.logistics.handlers.base import (
    SETUP_ROLES,
    Actor,
    LogisticsContext,
    check_id,
    hhmm,
    parse_hhmm,
    required_text,
    utc,
)


def depot_row(uow: UnitOfWork, depot_id: str, f: str = "depot_id"):
    if not depot_id:
        raise InvalidInput(f, "required")
    row = uow.conn.execute(select(schema.depots).where(schema.depots.c.id == depot_id)).first()
    if row is None:
        raise NotFound(f"{f}: no depot {depot_id!r} / 未登记的仓库")
    return row


def depot_from_row(row) -> Depot:
    return Depot(row.id, row.name, row.lat, row.lon, parse_hhmm(row.loading_open, "", time(6)),
                 parse_hhmm(row.loading_close, "", time(16)))


def register_depot(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, spec: Mapping[str, Any]):
    actor.require(*SETUP_ROLES)
    depot_id = check_id(spec.get("id"), "depot.id")
    name = required_text(spec.get("name"), "depot.name")
    try:
        lat, lon = float(spec["lat"]), float(spec["lon"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("depot.location", "required (lat, lon)") from None
    if lat == 0.0 and lon == 0.0:
        raise InvalidInput("depot.location", "required (lat, lon)")
    depot = Depot(depot_id, name, lat, lon,
                  parse_hhmm(spec.get("loading_open"), "depot.loading_hours.start", time(6)),
                  parse_hhmm(spec.get("loading_close"), "depot.loading_hours.end", time(16)))
    existing = uow.conn.execute(select(schema.depots).where(schema.depots.c.id == depot_id)).first()
    if existing is not None:
        if depot_from_row(existing) != depot:
            raise Conflict(f"depot {depot_id!r} is already registered with other details")
        return existing
    uow.conn.execute(insert(schema.depots).values(
        id=depot.id, name=depot.name, lat=depot.lat, lon=depot.lon,
        loading_open=hhmm(depot.loading_open), loading_close=hhmm(depot.loading_close),
        registered_at=utc(ctx.clock.now()), registered_by=actor.identity))
    return uow.conn.execute(select(schema.depots).where(schema.depots.c.id == depot_id)).first()


def zones_of(conn: Connection, depot_id: str | None = None) -> dict[str, Zone]:
    q = select(schema.zones).order_by(schema.zones.c.id)
    if depot_id is not None:
        q = q.where(schema.zones.c.depot_id == depot_id)
    return {r.id: Zone(r.id, r.depot_id, r.storage_class, int(r.capacity_l)) for r in conn.execute(q)}


def depots_with_zones(conn: Connection) -> list[tuple[Any, list[Any], dict[str, Zone]]]:
    """Each depot's row, its zone rows and its zones, by id."""
    depots = conn.execute(select(schema.depots).order_by(schema.depots.c.id)).all()
    zone_rows = conn.execute(select(schema.zones).order_by(schema.zones.c.id)).all()
    zones = zones_of(conn)
    return [(d, [z for z in zone_rows if z.depot_id == d.id], zones) for d in depots]


def register_zone(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, spec: Mapping[str, Any]):
    actor.require(*SETUP_ROLES)
    zone_id = check_id(spec.get("id"), "zone.id")
    depot_id = spec.get("depot_id") or ""
    depot_row(uow, depot_id, "zone.depot_id")
    sclass = spec.get("storage_class") or ""
    if sclass not in ctx.catalogue.storage_classes:
        raise InvalidInput("zone.storage_class",
                           f"must be one of {', '.join(ctx.catalogue.storage_classes)}, got {sclass!r}")
    capacity = spec.get("capacity_l")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0:
        raise InvalidInput("zone.capacity_l", f"must be an integer > 0 (litres), got {capacity!r}")
    name = (spec.get("name") or "").strip() or zone_id
    zone = Zone(zone_id, depot_id, sclass, capacity)
    t = schema.zones
    existing = uow.conn.execute(select(t).where(t.c.id == zone_id)).first()
    if existing is not None:
        if (Zone(existing.id, existing.depot_id, existing.storage_class, int(existing.capacity_l)) != zone
                or existing.name != name):
            raise Conflict(f"zone {zone_id!r} is already registered with other details")
        return existing
    uow.conn.execute(insert(t).values(id=zone_id, depot_id=depot_id, name=name, storage_class=sclass,
                                      capacity_l=capacity, registered_at=utc(ctx.clock.now()),
                                      registered_by=actor.identity))
    uow.record_event("zone_registered", {"depot_id": depot_id, "zone_id": zone_id,
                                         "storage_class": sclass, "capacity_l": capacity,
                                         "name": name})
    return uow.conn.execute(select(t).where(t.c.id == zone_id)).first()


def zone_used_l(ctx: LogisticsContext, conn: Connection, zone: Zone) -> float:
    bal = store.load_balances(conn, zone_ids=[zone.id], lock=False)
    return zone_occupancy(zone, bal.values(), ctx.catalogue).used_l


def register_vehicle(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor,
                     spec: Mapping[str, Any]) -> Vehicle:
    actor.require(*SETUP_ROLES)
    vid = check_id(spec.get("id"), "vehicle.id")
    depot_id = spec.get("depot_id") or ""
    depot_row(uow, depot_id, "vehicle.depot_id")
    slots = []
    for i, s in enumerate(spec.get("slots") or ()):
        slots.append(TimeSlot(parse_hhmm(s.get("start"), f"vehicle.slots[{i}].start", time(0)),
                              parse_hhmm(s.get("end"), f"vehicle.slots[{i}].end", time(0))))
    try:
        vehicle = Vehicle(
            id=vid, pass_number=str(spec.get("pass_number") or ""),
            capacity_kg=spec.get("capacity_kg"), capacity_l=spec.get("capacity_l"),
            refrigerated=bool(spec.get("refrigerated")), depot_id=depot_id,
            driver=str(spec.get("driver") or ""), clerk=str(spec.get("clerk") or ""),
            slots=tuple(slots))
    except ValueError as exc:  # TimeSlot end <= start
        raise InvalidInput("vehicle.slots", str(exc)) from None
    t = schema.vehicles
    row = {"depot_id": depot_id, "data": vehicle_json(vehicle), "updated_at": utc(ctx.clock.now())}
    if uow.conn.execute(select(t.c.id).where(t.c.id == vid)).first() is None:
        uow.conn.execute(insert(t).values(id=vid, **row))
    else:
        uow.conn.execute(update(t).where(t.c.id == vid).values(**row))
    return vehicle


def vehicle_json(v: Vehicle) -> dict:
    return {**{f.name: getattr(v, f.name) for f in dataclasses.fields(v) if f.name != "slots"},
            "slots": [[hhmm(s.start), hhmm(s.end)] for s in v.slots]}


def vehicle_from_json(data: Mapping[str, Any]) -> Vehicle:
    slots = tuple(TimeSlot(parse_hhmm(a, "", time(0)), parse_hhmm(b, "", time(0)))
                  for a, b in data.get("slots", ()))
    return Vehicle(**{**{k: v for k, v in data.items() if k != "slots"}, "slots": slots})


def vehicles_of(conn: Connection) -> list[Vehicle]:
    return [vehicle_from_json(r.data) for r in
            conn.execute(select(schema.vehicles.c.data).order_by(schema.vehicles.c.id))]


def apply_requester(ctx: LogisticsContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> bool:
    """requester_registered / requester_updated: keep the drop points (物资存放点) and the
    households and population. An older version than ours changes nothing."""
    rid = payload.get("requester_id")
    if not rid:
        raise InvalidInput("payload.requester_id", "required")
    version = int(payload.get("version") or 1)
    t = schema.requesters
    have = uow.conn.execute(select(t.c.version).where(t.c.id == rid)).first()
    if have is not None and have.version >= version:
        return False
    loc = payload.get("location") or {}
    households = payload.get("households")
    row = {"kind": str(payload.get("kind") or ""), "population": payload.get("population"),
           "households": households, "lat": float(loc.get("lat") or 0.0),
           "lon": float(loc.get("lon") or 0.0), "version": version,
           "updated_at": utc(ctx.clock.now())}
    if have is None:
        uow.conn.execute(insert(t).values(id=rid, **row))
    else:
        uow.conn.execute(update(t).where(t.c.id == rid).values(**row))
    dp = schema.drop_points
    uow.conn.execute(delete(dp).where(dp.c.requester_id == rid))
    points = payload.get("drop_points") or []
    share = -(-int(households or 0) // max(1, len(points))) if points else 0
    for p in points:
        ploc = p.get("location") or loc
        uow.conn.execute(insert(dp).values(
            requester_id=rid, drop_point_id=str(p.get("id") or ""), name=str(p.get("name") or ""),
            lat=float(ploc.get("lat") or 0.0), lon=float(ploc.get("lon") or 0.0),
            window_open=p.get("window_start") or "08:00", window_close=p.get("window_end") or "18:00",
            households=share))
    return True

