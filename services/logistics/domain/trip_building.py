"""Building the day's trips (RULES.md §10): PyVRP solves the routing instance of trips.py (under
a MaxRuntime limit with a fixed seed; when the fleet cannot serve every part, a second solve
makes parts optional with a prize far above any detour and reports what is left unserved), and
its routes are assembled into trips with manifests and staffing."""

from __future__ import annotations

import time as _time
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput

from .geo import local_xy_m
from .model import Depot, DropPoint, Vehicle
from .policy import TripPolicy
from .trips import (
    PickList,
    RoutingInstance,
    SolverStats,
    Staffing,
    StaffingLine,
    Stop,
    Trip,
    TripPlan,
    Unserved,
    check_route,
    prepare_instance,
    seconds_since_midnight,
    unserved_reason,
)

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
            slot=(ts(seconds_since_midnight(s.slot.start)), ts(seconds_since_midnight(s.slot.end))), loading_at=ts(chk.start),
            depart_at=ts(chk.start + inst.depot_service_s), return_at=ts(chk.return_at),
            stops=tuple(stops), distance_m=chk.distance_m,
            load_kg=round(sum(ln.quantity * ln.weight_kg for st in stops for ln in st.lines), 3),
            load_l=round(sum(ln.quantity * ln.volume_l for st in stops for ln in st.lines), 3),
            capacity_kg=v.capacity_kg, capacity_l=v.capacity_l))
    for pid, p in enumerate(inst.parts):
        if pid not in served:
            unserved.append(Unserved(inst.depots[p.depot_idx].id,
                                     inst.drop_points[p.drop_idx].id, p.cold, p.lines,
                                     "NOT_ROUTED", unserved_reason("NOT_ROUTED")))
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
