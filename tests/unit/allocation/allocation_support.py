"""Builders for allocation tests: places on a small km grid, lots, lines, plan checks."""

from __future__ import annotations

import math
from datetime import date, timedelta

from services.allocation.domain import (
    DemandLine,
    Depot,
    Plan,
    Policy,
    Requester,
    StockLot,
    allocate,
)
from services.allocation.domain.geo import haversine_km
from services.common.catalogue import load_catalogue

DAY = date(2026, 3, 2)
LAT0, LON0 = 30.0, 120.0
CAT = load_catalogue()
# no reserve anywhere unless a test sets one
NO_RESERVE = {g: 0 for g in CAT.groups}


def at(x_km: float, y_km: float) -> tuple[float, float]:
    """(lat, lon) of a point x km east and y km north of the county seat."""
    return LAT0 + y_km / 111.195, LON0 + x_km / (111.195 * math.cos(math.radians(LAT0)))


def requester(rid: str, x: float = 0.0, y: float = 0.0, population: int = 0,
              kind: str = "village") -> Requester:
    lat, lon = at(x, y)
    return Requester(rid, "T1", lat, lon, population, kind)


def depot(did: str, x: float = 0.0, y: float = 0.0) -> Depot:
    lat, lon = at(x, y)
    return Depot(did, lat, lon)


def lot(lot_id: str, depot_id: str, item: str, qty: int, days_left: int = 100) -> StockLot:
    return StockLot(lot_id, depot_id, item, qty, DAY + timedelta(days=days_left))


_seq = iter(range(1, 10**9))


def line(requester_id: str, item: str, qty: int, tier: int = 5, demand_id: str | None = None,
         line_no: int = 1, abnormal: bool = False) -> DemandLine:
    return DemandLine(demand_id or f"DM{next(_seq):06d}", line_no, requester_id, item, qty,
                      tier, abnormal)


def policy(**over) -> Policy:
    over.setdefault("reserve_days", NO_RESERVE)
    return Policy(**over)


def run(lines, lots, requesters, depots, pol: Policy | None = None, day: date = DAY) -> Plan:
    return allocate(lines, lots, requesters, depots, pol or policy(), CAT, day)


def distance(r: Requester, d: Depot) -> float:
    return float(haversine_km([r.lat], [r.lon], [d.lat], [d.lon])[0, 0])
