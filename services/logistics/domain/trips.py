"""Trips (RULES.md §10): the trips and manifests made from pick lists, the routing instance they
are solved from, and the check of one route (solver-neutral); trip_building.py solves it.

The routing problem:
- one routing client per *part*: the goods one depot sends one drop point, split into a cold
  part (storage classes in policy.cold_classes) and an ambient part, and a part larger than the
  biggest eligible vehicle split again;
- multi-depot: each part is bound to the depot it was picked at; each vehicle slot starts
  and ends at its depot;
- heterogeneous fleet: one PyVRP VehicleType per group of identical (depot, capacities,
  refrigeration, time slot) vehicles;
- load dimensions: grams, millilitres, "cold grams" (capacity 0 on ambient vehicles, so cold
  goods ride only in refrigerated ones) and, with several depots, one "depot grams" dimension
  per depot (capacity 0 on other depots' vehicles);
- time: seconds since local midnight of the delivery day; a vehicle leaves within its slot and
  its depot's loading hours and is back by the end of its slot; a drop point is served within
  its receiving window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput, NotFound

from .geo import road_matrices
from .model import Depot, DropPoint, TimeSlot, Vehicle, positive_int
from .policy import TripPolicy

if TYPE_CHECKING:  # numpy is imported by geo when an instance is prepared (issue #16)
    import numpy as np


@dataclass(frozen=True, slots=True)
class PickLine:
    plan_line_id: str
    item_code: str
    lot_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PickList:
    """What one depot sends one drop point on the delivery day."""

    depot_id: str
    drop_point_id: str
    lines: tuple[PickLine, ...]


@dataclass(frozen=True, slots=True)
class ManifestLine:
    plan_line_id: str
    item_code: str
    name_zh: str
    name_en: str
    unit: str
    lot_id: str
    quantity: int
    weight_kg: float
    volume_l: float
    cold: bool


@dataclass(frozen=True, slots=True)
class Stop:
    seq: int
    drop_point_id: str
    requester_id: str
    arrive_at: datetime
    service_start: datetime
    leave_at: datetime
    window: tuple[datetime, datetime]
    lines: tuple[ManifestLine, ...]


@dataclass(frozen=True, slots=True)
class Trip:
    """One vehicle leaving its depot in its slot, serving drop points, coming back."""

    trip_id: str
    delivery_day: date
    depot_id: str
    vehicle_id: str
    pass_number: str
    driver: str
    clerk: str
    refrigerated: bool
    slot: tuple[datetime, datetime]
    loading_at: datetime
    depart_at: datetime
    return_at: datetime
    stops: tuple[Stop, ...]
    distance_m: int
    load_kg: float
    load_l: float
    capacity_kg: int
    capacity_l: int

    def manifest(self) -> list[tuple[int, str, ManifestLine]]:
        """The trip's manifest (装车清单): (stop seq, drop point, line) in stop order."""
        return [(s.seq, s.drop_point_id, ln) for s in self.stops for ln in s.lines]


@dataclass(frozen=True, slots=True)
class Unserved:
    depot_id: str
    drop_point_id: str
    cold: bool
    lines: tuple[ManifestLine, ...]
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class StaffingLine:
    drop_point_id: str
    requester_id: str
    households: int
    required: int
    available: int

    @property
    def short(self) -> int:
        return max(0, self.required - self.available)


@dataclass(frozen=True, slots=True)
class Staffing:
    """每10户配备1名配送人员: delivery persons needed at the drop points served."""

    lines: tuple[StaffingLine, ...]
    required: int
    available: int
    short: int


@dataclass(frozen=True, slots=True)
class SolverStats:
    phase: str  # required | optional (prize-collecting fallback) | none
    runtime_s: float
    iterations: int
    feasible: bool


@dataclass(frozen=True, slots=True)
class TripPlan:
    delivery_day: date
    trips: tuple[Trip, ...]
    unserved: tuple[Unserved, ...]
    staffing: Staffing
    total_distance_m: int
    solver: SolverStats


# --- the routing instance ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Part:
    """One routing client: a cold or ambient delivery from one depot to one drop point."""

    depot_idx: int
    drop_idx: int
    location: int
    cold: bool
    lines: tuple[ManifestLine, ...]
    load_g: int
    load_ml: int
    tw_early: int
    tw_late: int
    service_s: int


@dataclass(frozen=True, slots=True)
class VehicleSlot:
    """One vehicle in one of its time slots: one possible trip."""

    vehicle: Vehicle
    slot: TimeSlot
    slot_no: int
    depot_idx: int
    tw_early: int  # earliest start of loading
    start_late: int  # latest start of loading (depot loading hours, slot)
    tw_late: int  # back at the depot by
    cap_g: int
    cap_ml: int

    @property
    def refrigerated(self) -> bool:
        return self.vehicle.refrigerated


@dataclass
class RoutingInstance:
    """Everything a router needs, solver-neutral (the bench runs other routers on it).

    Locations: depots first (index = depot index), then drop points.
    """

    delivery_day: date
    day_start: datetime
    depots: list[Depot]
    drop_points: list[DropPoint]
    parts: list[Part]
    slots: list[VehicleSlot]
    dist: np.ndarray
    dur: np.ndarray
    depot_service_s: int
    unserved: list[Unserved] = field(default_factory=list)
    policy: TripPolicy = field(default_factory=TripPolicy)

    def can_carry(self, s: VehicleSlot, p: Part) -> bool:
        """Site rules of a part: its depot's vehicles only, cold goods refrigerated only."""
        return s.depot_idx == p.depot_idx and (s.refrigerated or not p.cold)


def seconds_since_midnight(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _ceil(x: float) -> int:
    return int(math.ceil(x - 1e-9))


def unserved_reason(code: str) -> str:
    return {
        "NO_VEHICLE": "该仓库无可用车辆 / no vehicle of this depot has a usable slot",
        "NO_REFRIGERATED_VEHICLE": "冷链物资须冷藏车运输,该仓库无冷藏车 / cold goods ride only in "
                                   "refrigerated vehicles and this depot has none",
        "OVERSIZE": "单件超过最大车辆载重或容积 / one unit exceeds the largest vehicle",
        "NOT_ROUTED": "车辆运力或接收时间窗不足,未能排入车次 / the fleet's capacity or the "
                      "receiving windows leave no room for it",
    }[code]


def prepare_instance(
    pick_lists: Iterable[PickList],
    *,
    depots: Iterable[Depot],
    vehicles: Iterable[Vehicle],
    drop_points: Iterable[DropPoint],
    catalogue: Catalogue,
    delivery_day: date,
    policy: TripPolicy | None = None,
) -> RoutingInstance:
    policy = policy or TripPolicy()
    if policy.speed_kmh <= 0 or policy.road_factor <= 0:
        raise InvalidInput("policy.speed_kmh", "speed and road factor must be > 0")
    depot_by_id = {d.id: d for d in depots}
    drop_by_id = {p.id: p for p in drop_points}
    tz = ZoneInfo(policy.timezone)
    day_start = datetime.combine(delivery_day, time(0), tz)

    # merge pick lists per (depot, drop point), validate lines
    merged: dict[tuple[str, str], list[ManifestLine]] = {}
    for i, pl in enumerate(pick_lists):
        if pl.depot_id not in depot_by_id:
            raise NotFound(f"pick_lists[{i}].depot_id: unknown depot {pl.depot_id!r}")
        if pl.drop_point_id not in drop_by_id:
            raise NotFound(f"pick_lists[{i}].drop_point_id: unknown drop point {pl.drop_point_id!r}")
        for j, ln in enumerate(pl.lines):
            item = catalogue.items.get(ln.item_code)
            if item is None:
                raise NotFound(f"pick_lists[{i}].lines[{j}].item_code: unknown item {ln.item_code!r}")
            positive_int(ln.quantity, f"pick_lists[{i}].lines[{j}].quantity")
            merged.setdefault((pl.depot_id, pl.drop_point_id), []).append(ManifestLine(
                plan_line_id=ln.plan_line_id, item_code=item.code, name_zh=item.name_zh,
                name_en=item.name_en, unit=item.unit, lot_id=ln.lot_id, quantity=ln.quantity,
                weight_kg=item.weight_kg, volume_l=item.volume_l,
                cold=item.storage_class in policy.cold_classes))

    used_depots = sorted({d for d, _ in merged})
    used_drops = sorted({p for _, p in merged})
    depot_list = [depot_by_id[d] for d in used_depots]
    drop_list = [drop_by_id[p] for p in used_drops]
    depot_idx = {d: i for i, d in enumerate(used_depots)}
    drop_idx = {p: i for i, p in enumerate(used_drops)}

    # vehicle slots, clipped to the depot's loading hours
    slots: list[VehicleSlot] = []
    for v in sorted(vehicles, key=lambda v: v.id):
        if v.depot_id not in depot_idx:
            continue
        dep = depot_by_id[v.depot_id]
        for n, s in enumerate(sorted(v.slots or (TimeSlot(*policy.default_slot),),
                                     key=lambda s: s.start)):
            early = max(seconds_since_midnight(s.start), seconds_since_midnight(dep.loading_open))
            late = min(seconds_since_midnight(s.end), seconds_since_midnight(dep.loading_close))
            if late < early:
                continue
            slots.append(VehicleSlot(v, s, n, depot_idx[v.depot_id], early, late, seconds_since_midnight(s.end),
                                     v.capacity_kg * 1000, v.capacity_l * 1000))

    parts: list[Part] = []
    unserved: list[Unserved] = []
    service_s = int(round(policy.stop_service_min * 60))
    for (dep_id, drop_id), lines in sorted(merged.items()):
        d_i = depot_idx[dep_id]
        dp = drop_by_id[drop_id]
        for cold in (False, True):
            mine = [ln for ln in lines if ln.cold == cold]
            if not mine:
                continue
            fleet = [s for s in slots if s.depot_idx == d_i and (s.refrigerated or not cold)]
            if not fleet:
                code = "NO_REFRIGERATED_VEHICLE" if cold and any(
                    s.depot_idx == d_i for s in slots) else "NO_VEHICLE"
                unserved.append(Unserved(dep_id, drop_id, cold, tuple(mine), code, unserved_reason(code)))
                continue
            max_g = max(s.cap_g for s in fleet)
            max_ml = max(s.cap_ml for s in fleet)
            chunks, oversize = _chunk(mine, max_g, max_ml)
            if oversize:
                unserved.append(Unserved(dep_id, drop_id, cold, tuple(oversize), "OVERSIZE",
                                         unserved_reason("OVERSIZE")))
            for chunk in chunks:
                parts.append(Part(
                    depot_idx=d_i, drop_idx=drop_idx[drop_id],
                    location=len(depot_list) + drop_idx[drop_id], cold=cold, lines=tuple(chunk),
                    load_g=_ceil(sum(ln.quantity * ln.weight_kg * 1000 for ln in chunk)),
                    load_ml=_ceil(sum(ln.quantity * ln.volume_l * 1000 for ln in chunk)),
                    tw_early=seconds_since_midnight(dp.window_open), tw_late=seconds_since_midnight(dp.window_close),
                    service_s=service_s))

    lat = [d.lat for d in depot_list] + [p.lat for p in drop_list]
    lon = [d.lon for d in depot_list] + [p.lon for p in drop_list]
    dist, dur = road_matrices(lat, lon, road_factor=policy.road_factor, speed_kmh=policy.speed_kmh)
    return RoutingInstance(
        delivery_day=delivery_day, day_start=day_start, depots=depot_list, drop_points=drop_list,
        parts=parts, slots=slots, dist=dist, dur=dur,
        depot_service_s=int(round(policy.depot_loading_min * 60)), unserved=unserved,
        policy=policy)


def _chunk(lines: list[ManifestLine], max_g: int, max_ml: int):
    """Split lines into loads that fit the biggest vehicle; a line may be split by quantity."""
    chunks: list[list[ManifestLine]] = []
    oversize: list[ManifestLine] = []
    cur: list[ManifestLine] = []
    g = ml = 0.0
    for ln in lines:
        ug, uml = ln.weight_kg * 1000, ln.volume_l * 1000
        if ug > max_g or uml > max_ml:
            oversize.append(ln)
            continue
        left = ln.quantity
        while left:
            fit = left
            if ug > 0:
                fit = min(fit, int((max_g - g + 1e-6) // ug))
            if uml > 0:
                fit = min(fit, int((max_ml - ml + 1e-6) // uml))
            if fit <= 0:
                chunks.append(cur)
                cur, g, ml = [], 0.0, 0.0
                continue
            cur.append(ln if fit == ln.quantity else _with_qty(ln, fit))
            g += fit * ug
            ml += fit * uml
            left -= fit
    if cur:
        chunks.append(cur)
    return chunks, oversize


def _with_qty(ln: ManifestLine, q: int) -> ManifestLine:
    return ManifestLine(ln.plan_line_id, ln.item_code, ln.name_zh, ln.name_en, ln.unit, ln.lot_id,
                        q, ln.weight_kg, ln.volume_l, ln.cold)


# --- checking a route (solver-neutral) -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RouteCheck:
    distance_m: int
    load_g: int
    load_ml: int
    start: int  # loading starts (s since midnight)
    arrivals: tuple[int, ...]
    service_starts: tuple[int, ...]
    return_at: int
    violations: tuple[str, ...]


def check_route(inst: RoutingInstance, slot_idx: int, part_ids: list[int]) -> RouteCheck:
    """Schedule a route as early as its slot allows and list what it breaks: capacity, cold
    goods in an ambient vehicle, another depot's goods, receiving windows, slot end. The
    departure is then delayed by the first stop's waiting time (no idle truck at a gate)."""
    s = inst.slots[slot_idx]
    depot_loc = s.depot_idx
    v: list[str] = []
    load_g = sum(inst.parts[p].load_g for p in part_ids)
    load_ml = sum(inst.parts[p].load_ml for p in part_ids)
    if load_g > s.cap_g:
        v.append(f"weight {load_g} g > {s.cap_g} g")
    if load_ml > s.cap_ml:
        v.append(f"volume {load_ml} ml > {s.cap_ml} ml")
    t = s.tw_early + inst.depot_service_s
    prev = depot_loc
    dist = 0
    arrivals, starts = [], []
    for pid in part_ids:
        p = inst.parts[pid]
        if p.depot_idx != s.depot_idx:
            v.append(f"part {pid} belongs to another depot")
        if p.cold and not s.refrigerated:
            v.append(f"part {pid} is cold, vehicle {s.vehicle.id} is not refrigerated")
        t += int(inst.dur[prev, p.location])
        dist += int(inst.dist[prev, p.location])
        arrivals.append(t)
        t = max(t, p.tw_early)
        if t > p.tw_late:
            v.append(f"part {pid} served at {t} s, window closes at {p.tw_late} s")
        starts.append(t)
        t += p.service_s
        prev = p.location
    t += int(inst.dur[prev, depot_loc])
    dist += int(inst.dist[prev, depot_loc])
    if t > s.tw_late:
        v.append(f"back at {t} s, slot ends at {s.tw_late} s")
    shift = 0
    if starts:
        shift = max(0, min(s.start_late - s.tw_early, starts[0] - arrivals[0]))
    arrivals = [a + shift if i == 0 else a for i, a in enumerate(arrivals)]
    return RouteCheck(dist, load_g, load_ml, s.tw_early + shift, tuple(arrivals), tuple(starts),
                      t, tuple(v))
