"""Trips (RULES.md §10): from pick lists to vehicle trips with manifests, routed by PyVRP.

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
PyVRP runs under a MaxRuntime limit with a fixed seed. When the fleet cannot serve every part,
a second solve makes parts optional (with a prize far above any detour) and reports what is
left unserved.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput, NotFound

from .geo import local_xy_m, road_matrices
from .model import Depot, DropPoint, TimeSlot, Vehicle, positive_int
from .policy import TripPolicy


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


def _sec(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _ceil(x: float) -> int:
    return int(math.ceil(x - 1e-9))


def _reason(code: str) -> str:
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
            early = max(_sec(s.start), _sec(dep.loading_open))
            late = min(_sec(s.end), _sec(dep.loading_close))
            if late < early:
                continue
            slots.append(VehicleSlot(v, s, n, depot_idx[v.depot_id], early, late, _sec(s.end),
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
                unserved.append(Unserved(dep_id, drop_id, cold, tuple(mine), code, _reason(code)))
                continue
            max_g = max(s.cap_g for s in fleet)
            max_ml = max(s.cap_ml for s in fleet)
            chunks, oversize = _chunk(mine, max_g, max_ml)
            if oversize:
                unserved.append(Unserved(dep_id, drop_id, cold, tuple(oversize), "OVERSIZE",
                                         _reason("OVERSIZE")))
            for chunk in chunks:
                parts.append(Part(
                    depot_idx=d_i, drop_idx=drop_idx[drop_id],
                    location=len(depot_list) + drop_idx[drop_id], cold=cold, lines=tuple(chunk),
                    load_g=_ceil(sum(ln.quantity * ln.weight_kg * 1000 for ln in chunk)),
                    load_ml=_ceil(sum(ln.quantity * ln.volume_l * 1000 for ln in chunk)),
                    tw_early=_sec(dp.window_open), tw_late=_sec(dp.window_close),
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


# --- PyVRP ------------------------------------------------------------------------------------

def _problem_data(inst: RoutingInstance, prize: int | None):
    from pyvrp import Client, Location, ProblemData, VehicleType
    from pyvrp import Depot as PDepot

    n_dep = len(inst.depots)
    tokens = n_dep > 1
    xs, ys = local_xy_m([d.lat for d in inst.depots] + [p.lat for p in inst.drop_points],
                        [d.lon for d in inst.depots] + [p.lon for p in inst.drop_points])
    locations = [Location(x=float(round(x)), y=float(round(y))) for x, y in zip(xs, ys, strict=True)]
    depots = [PDepot(location=i, service_duration=inst.depot_service_s, name=d.id)
              for i, d in enumerate(inst.depots)]
    clients = []
    for p in inst.parts:
        g = max(p.load_g, 1)
        demand = [p.load_g, p.load_ml, g if p.cold else 0]
        if tokens:
            demand += [g if k == p.depot_idx else 0 for k in range(n_dep)]
        clients.append(Client(
            location=p.location, delivery=demand, service_duration=p.service_s,
            tw_early=p.tw_early, tw_late=p.tw_late, required=prize is None, prize=prize or 0,
            name=f"{inst.drop_points[p.drop_idx].id}{'/cold' if p.cold else ''}"))
    types = []
    members: list[list[int]] = []
    index: dict[tuple, int] = {}
    for si, s in enumerate(inst.slots):
        key = (s.depot_idx, s.cap_g, s.cap_ml, s.refrigerated, s.tw_early, s.start_late, s.tw_late)
        if key not in index:
            index[key] = len(types)
            cap = [s.cap_g, s.cap_ml, s.cap_g if s.refrigerated else 0]
            if tokens:
                cap += [s.cap_g if k == s.depot_idx else 0 for k in range(n_dep)]
            types.append(dict(capacity=cap, start_depot=s.depot_idx, end_depot=s.depot_idx,
                              tw_early=s.tw_early, start_late=s.start_late, tw_late=s.tw_late))
            members.append([])
        members[index[key]].append(si)
    vehicle_types = [VehicleType(num_available=len(m), **t) for t, m in zip(types, members, strict=True)]
    data = ProblemData(locations, clients, depots, vehicle_types, [inst.dist], [inst.dur])
    return data, members


def _stop(limit_s: float, max_iterations: int | None):
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

    class WallMaxRuntime(MaxRuntime):
        """MaxRuntime whose clock starts now: PyVRP's starts at its first check, after the
        initial local search, which on a few hundred clients takes a noticeable part of a
        second. (If a later PyVRP renames the attribute, this degrades to plain MaxRuntime.)"""

        def __init__(self, max_runtime: float):
            super().__init__(max_runtime)
            self._start_runtime = _time.perf_counter()

    runtime = WallMaxRuntime(limit_s)
    if max_iterations is None:
        return runtime
    return MultipleCriteria([runtime, MaxIterations(max_iterations)])


def _fleet_may_suffice(inst: RoutingInstance) -> bool:
    """A cheap necessary condition; when it fails the solve goes straight to optional parts."""
    for d in range(len(inst.depots)):
        fleet = [s for s in inst.slots if s.depot_idx == d]
        cold = [s for s in fleet if s.refrigerated]
        parts = [p for p in inst.parts if p.depot_idx == d]
        if sum(p.load_g for p in parts) > sum(s.cap_g for s in fleet):
            return False
        if sum(p.load_ml for p in parts) > sum(s.cap_ml for s in fleet):
            return False
        if sum(p.load_g for p in parts if p.cold) > sum(s.cap_g for s in cold):
            return False
    return True


def solve_pyvrp(
    inst: RoutingInstance, policy: TripPolicy | None = None, *, started: float | None = None,
) -> tuple[list[tuple[int, list[int]]], SolverStats]:
    """Route the instance with PyVRP. Returns routes as (slot index, part indices in order).

    started: time.perf_counter() when the caller began (preparing the instance counts against
    the first phase's limit)."""
    from pyvrp import solve

    policy = policy or inst.policy
    if not inst.parts or not inst.slots:
        return [], SolverStats("none", 0.0, 0, True)
    phases = []
    if _fleet_may_suffice(inst):
        phases.append(("required", None, policy.time_limit_s))
    prize = int(10 * int(inst.dist.max(initial=0)) + 1_000_000)
    phases.append(("optional", prize, policy.fallback_time_limit_s))
    t0 = _time.perf_counter()
    iterations = 0
    for k, (phase, pz, limit) in enumerate(phases):
        phase_t0 = started if (k == 0 and started is not None) else _time.perf_counter()
        data, members = _problem_data(inst, pz)
        # the limit covers preparing and building the model too
        limit = max(0.05, limit - (_time.perf_counter() - phase_t0))
        res = solve(data, _stop(limit, policy.max_iterations), seed=policy.seed,
                    collect_stats=False, display=False)
        iterations += res.num_iterations
        if res.is_feasible() or phase == "optional":
            break
    routes: list[tuple[int, list[int]]] = []
    queues = [list(m) for m in members]
    for r in res.best.routes():
        slot_idx = queues[r.vehicle_type()].pop(0)
        visits = [a.idx for a in r.schedule() if a.is_client()]
        if visits:
            routes.append((slot_idx, visits))
    return routes, SolverStats(phase, _time.perf_counter() - t0, iterations, res.is_feasible())


# --- the product path -------------------------------------------------------------------------

def build_trips(
    pick_lists: Iterable[PickList],
    *,
    depots: Iterable[Depot],
    vehicles: Iterable[Vehicle],
    drop_points: Iterable[DropPoint],
    catalogue: Catalogue,
    delivery_day: date,
    policy: TripPolicy | None = None,
    delivery_staff: Mapping[str, int] | None = None,
) -> TripPlan:
    """Build the day's trips. delivery_staff: delivery persons available per drop point."""
    policy = policy or TripPolicy()
    t0 = _time.perf_counter()
    inst = prepare_instance(pick_lists, depots=depots, vehicles=vehicles, drop_points=drop_points,
                            catalogue=catalogue, delivery_day=delivery_day, policy=policy)
    routes, stats = solve_pyvrp(inst, policy, started=t0)
    return assemble(inst, routes, stats, delivery_staff or {})


def assemble(
    inst: RoutingInstance,
    routes: list[tuple[int, list[int]]],
    stats: SolverStats,
    delivery_staff: Mapping[str, int],
) -> TripPlan:
    """Turn routes into trips with manifests; anything a route breaks is not trusted: its parts
    are reported unserved rather than sent out on an impossible trip."""
    at = inst.day_start

    def ts(sec: int) -> datetime:
        return at + timedelta(seconds=int(sec))

    served: set[int] = set()
    trips: list[Trip] = []
    unserved = list(inst.unserved)
    for slot_idx, part_ids in routes:
        chk = check_route(inst, slot_idx, part_ids)
        if chk.violations:
            continue
        s = inst.slots[slot_idx]
        served.update(part_ids)
        stops: list[Stop] = []
        for k, pid in enumerate(part_ids):
            p = inst.parts[pid]
            dp = inst.drop_points[p.drop_idx]
            if stops and stops[-1].drop_point_id == dp.id:
                last = stops[-1]
                stops[-1] = Stop(last.seq, last.drop_point_id, last.requester_id, last.arrive_at,
                                 last.service_start,
                                 ts(chk.service_starts[k] + p.service_s), last.window,
                                 last.lines + p.lines)
                continue
            stops.append(Stop(
                seq=len(stops) + 1, drop_point_id=dp.id, requester_id=dp.requester_id,
                arrive_at=ts(chk.arrivals[k]), service_start=ts(chk.service_starts[k]),
                leave_at=ts(chk.service_starts[k] + p.service_s),
                window=(ts(p.tw_early), ts(p.tw_late)), lines=p.lines))
        v = s.vehicle
        trips.append(Trip(
            trip_id=f"{inst.delivery_day:%Y%m%d}-{v.id}-{s.slot_no + 1}",
            delivery_day=inst.delivery_day, depot_id=v.depot_id, vehicle_id=v.id,
            pass_number=v.pass_number, driver=v.driver, clerk=v.clerk, refrigerated=v.refrigerated,
            slot=(ts(_sec(s.slot.start)), ts(_sec(s.slot.end))), loading_at=ts(chk.start),
            depart_at=ts(chk.start + inst.depot_service_s), return_at=ts(chk.return_at),
            stops=tuple(stops), distance_m=chk.distance_m,
            load_kg=round(sum(ln.quantity * ln.weight_kg for st in stops for ln in st.lines), 3),
            load_l=round(sum(ln.quantity * ln.volume_l for st in stops for ln in st.lines), 3),
            capacity_kg=v.capacity_kg, capacity_l=v.capacity_l))
    for pid, p in enumerate(inst.parts):
        if pid not in served:
            unserved.append(Unserved(inst.depots[p.depot_idx].id,
                                     inst.drop_points[p.drop_idx].id, p.cold, p.lines,
                                     "NOT_ROUTED", _reason("NOT_ROUTED")))
    trips.sort(key=lambda t: (t.depot_id, t.depart_at, t.vehicle_id))
    return TripPlan(
        delivery_day=inst.delivery_day, trips=tuple(trips),
        unserved=tuple(sorted(unserved, key=lambda u: (u.depot_id, u.drop_point_id, u.cold))),
        staffing=staffing([inst.drop_points[i] for i in sorted({inst.parts[p].drop_idx for p in served})],
                          delivery_staff, inst.policy.households_per_delivery_person),
        total_distance_m=sum(t.distance_m for t in trips), solver=stats)


def staffing(
    drop_points: Iterable[DropPoint], available: Mapping[str, int], households_per_person: int = 10,
) -> Staffing:
    """One delivery person per N households at each drop point served (每10户配备1名配送人员)."""
    if households_per_person <= 0:
        raise InvalidInput("policy.households_per_delivery_person", "must be > 0")
    lines = tuple(
        StaffingLine(dp.id, dp.requester_id, dp.households,
                     -(-dp.households // households_per_person), int(available.get(dp.id, 0)))
        for dp in sorted(drop_points, key=lambda d: d.id))
    req = sum(ln.required for ln in lines)
    avail = sum(ln.available for ln in lines)
    return Staffing(lines, req, avail, sum(ln.short for ln in lines))
