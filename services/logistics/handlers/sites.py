"""Depots, zones and vehicles (registered by HQ) and requesters' drop points (from intake)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

from sqlalchemy.engine import Connection

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import Conflict, InvalidInput, NotFound
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import sites_store as db
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
    LogisticsContext,
    check_id,
    parse_hhmm,
    required_text,
    utc,
)


def depot_row(uow: UnitOfWork, depot_id: str, f: str = "depot_id"):
    if not depot_id:
        raise InvalidInput(f, "required")
    row = db.depot_row(uow.conn, depot_id)
    if row is None:
        raise NotFound(f"{f}: no depot {depot_id!r} / 未登记的仓库")
    return row


def register_depot(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller, spec: Mapping[str, Any]):
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
    existing = db.depot_row(uow.conn, depot_id)
    if existing is not None:
        if db.depot_from_row(existing) != depot:
            raise Conflict(f"depot {depot_id!r} is already registered with other details")
        return existing
    db.add_depot(uow.conn, depot, at=utc(ctx.clock.now()), by=actor.identity)
    return db.depot_row(uow.conn, depot_id)


def depots_with_zones(conn: Connection) -> list[tuple[Any, list[Any], dict[str, Zone]]]:
    """Each depot's row, its zone rows and its zones, by id."""
    zone_rows = db.zone_rows(conn)
    zones = {r.id: db.zone_from_row(r) for r in zone_rows}
    return [(d, [z for z in zone_rows if z.depot_id == d.id], zones) for d in db.depot_rows(conn)]


def register_zone(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller, spec: Mapping[str, Any]):
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
    existing = db.zone_row(uow.conn, zone_id)
    if existing is not None:
        if db.zone_from_row(existing) != zone or existing.name != name:
            raise Conflict(f"zone {zone_id!r} is already registered with other details")
        return existing
    db.add_zone(uow.conn, zone, name, at=utc(ctx.clock.now()), by=actor.identity)
    uow.record_event("zone_registered", {"depot_id": depot_id, "zone_id": zone_id,
                                         "storage_class": sclass, "capacity_l": capacity,
                                         "name": name})
    return db.zone_row(uow.conn, zone_id)


def zone_used_l(ctx: LogisticsContext, conn: Connection, zone: Zone) -> float:
    bal = store.load_balances(conn, zone_ids=[zone.id], lock=False)
    return zone_occupancy(zone, bal.values(), ctx.catalogue).used_l


def register_vehicle(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller,
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
    db.save_vehicle(uow.conn, vehicle, at=utc(ctx.clock.now()))
    return vehicle


def apply_requester(ctx: LogisticsContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> bool:
    """requester_registered / requester_updated: keep the drop points (物资存放点) and the
    households and population. An older version than ours changes nothing."""
    rid = payload.get("requester_id")
    if not rid:
        raise InvalidInput("payload.requester_id", "required")
    version = int(payload.get("version") or 1)
    have = db.requester_version(uow.conn, rid)
    if have is not None and have >= version:
        return False
    loc = payload.get("location") or {}
    households = payload.get("households")
    row = {"kind": str(payload.get("kind") or ""), "population": payload.get("population"),
           "households": households, "lat": float(loc.get("lat") or 0.0),
           "lon": float(loc.get("lon") or 0.0), "version": version,
           "updated_at": utc(ctx.clock.now())}
    points = payload.get("drop_points") or []
    share = -(-int(households or 0) // max(1, len(points))) if points else 0
    db.save_requester(uow.conn, rid, row, new=have is None, points=[{
        "drop_point_id": str(p.get("id") or ""), "name": str(p.get("name") or ""),
        "lat": float((p.get("location") or loc).get("lat") or 0.0),
        "lon": float((p.get("location") or loc).get("lon") or 0.0),
        "window_open": p.get("window_start") or "08:00",
        "window_close": p.get("window_end") or "18:00", "households": share} for p in points])
    return True
