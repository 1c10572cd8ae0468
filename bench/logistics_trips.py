"""Benchmark of trip building (services.logistics.domain.trips and trip_building).

    .venv/bin/python bench/logistics_trips.py            # 100, 300, 500 drop points, 10 s limits
    .venv/bin/python bench/logistics_trips.py --quick    # 60 drop points, 2 s limits

A seeded county (about 60 × 60 km, several depots, villages in clusters plus scattered
hamlets) sends rice, oil, noodles and, to part of the drop points, chilled pork and milk.
Each drop point is supplied by its nearest depot; 30 vehicles (a third refrigerated, two
sizes) are spread over the depots by demand. Receiving windows: most 08:00-18:00, some morning
or afternoon only. The same routing instance (the product's `prepare_instance`: cold / ambient
parts, depot binding, loading hours, slots) goes to:
  (a) PyVRP, the product path (`solve_pyvrp`), MaxRuntime limit, fixed seed;
  (b) a nearest-neighbour baseline written here (each vehicle in turn takes the nearest part
      it may carry, has room for and can still reach in its window);
  (c) OR-Tools routing (pywrapcp): the same capacities (kg, litres), depot binding and cold
      chain as allowed vehicles, time windows, optional parts with the same penalty;
      PATH_CHEAPEST_ARC then GUIDED_LOCAL_SEARCH under the same limit.
Every route is re-checked with the product's `check_route`; only feasible routes count.
Target: PyVRP shorter than both at 300 drop points within 10 s.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import warnings
from datetime import date
from datetime import time as dtime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.catalogue import load_catalogue  # noqa: E402
from services.logistics.domain.geo import haversine_m  # noqa: E402
from services.logistics.domain.model import Depot, DropPoint, Vehicle  # noqa: E402
from services.logistics.domain.policy import TripPolicy  # noqa: E402
from services.logistics.domain.trip_building import solve_pyvrp  # noqa: E402
from services.logistics.domain.trips import (  # noqa: E402
    PickLine,
    PickList,
    RoutingInstance,
    check_route,
    prepare_instance,
)

DAY = date(2026, 3, 2)
N_VEHICLES = 30
N_DEPOTS = 4
CENTRE = (30.0, 120.0)
KM_LAT = 1 / 111.0
KM_LON = 1 / (111.0 * math.cos(math.radians(CENTRE[0])))


def county(n_points: int, seed: int = 2026):
    rng = random.Random(seed)

    def pos(x_km: float, y_km: float) -> tuple[float, float]:
        return CENTRE[0] + y_km * KM_LAT, CENTRE[1] + x_km * KM_LON

    depots = []
    for i, (x, y) in enumerate([(-15, -12), (16, -10), (-12, 17), (14, 15)][:N_DEPOTS]):
        lat, lon = pos(x + rng.uniform(-3, 3), y + rng.uniform(-3, 3))
        depots.append(Depot(f"D{i + 1}", f"仓库{i + 1}", lat, lon, dtime(6, 0), dtime(12, 0)))
    towns = [(rng.uniform(-28, 28), rng.uniform(-28, 28)) for _ in range(12)]
    points = []
    for i in range(n_points):
        if rng.random() < 0.7:
            tx, ty = rng.choice(towns)
            x, y = tx + rng.gauss(0, 3.5), ty + rng.gauss(0, 3.5)
        else:
            x, y = rng.uniform(-30, 30), rng.uniform(-30, 30)
        lat, lon = pos(max(-30, min(30, x)), max(-30, min(30, y)))
        r = rng.random()
        window = ((dtime(8, 0), dtime(12, 0)) if r < 0.15 else
                  (dtime(13, 0), dtime(17, 30)) if r < 0.3 else (dtime(8, 0), dtime(18, 0)))
        points.append(DropPoint(f"P{i:03d}", f"V{i:03d}", lat, lon, *window,
                                households=rng.randint(40, 400)))
    dlat = [d.lat for d in depots]
    dlon = [d.lon for d in depots]
    picks = []
    for dp in points:
        dm = haversine_m(dlat + [dp.lat], dlon + [dp.lon])[-1, :-1]
        depot = depots[int(dm.argmin())]
        hh = dp.households
        lines = [PickLine(f"PL-{dp.id}-R", "RICE-10KG", f"L-{depot.id}-R", max(1, hh // 20)),
                 PickLine(f"PL-{dp.id}-O", "OIL-5L", f"L-{depot.id}-O", max(1, hh // 40)),
                 PickLine(f"PL-{dp.id}-N", "NOODLE-1KG", f"L-{depot.id}-N", max(1, hh // 10))]
        if rng.random() < 0.4:
            lines += [PickLine(f"PL-{dp.id}-P", "PORK-KG", f"L-{depot.id}-P", max(1, hh // 8)),
                      PickLine(f"PL-{dp.id}-M", "MILK-1L", f"L-{depot.id}-M", max(1, hh // 10))]
        picks.append(PickList(depot.id, dp.id, tuple(lines)))
    return depots, points, picks


def fleet(depots, picks, catalogue):
    """30 vehicles over the depots by demand; big and small trucks, a third refrigerated."""
    kg = {d.id: 0.0 for d in depots}
    cold = {d.id: 0.0 for d in depots}
    for pl in picks:
        for ln in pl.lines:
            it = catalogue.item(ln.item_code)
            kg[pl.depot_id] += ln.quantity * it.weight_kg
            if it.storage_class == "chilled":
                cold[pl.depot_id] += ln.quantity * it.weight_kg
    total = sum(kg.values())
    share = {d: max(3, round(N_VEHICLES * kg[d] / total)) for d in kg}
    while sum(share.values()) > N_VEHICLES:
        share[max(share, key=share.get)] -= 1
    while sum(share.values()) < N_VEHICLES:
        share[min(share, key=share.get)] += 1
    vehicles = []
    for d in depots:
        n = share[d.id]
        n_big = (n + 1) // 2
        # sizes: big = 1.0 c, small = 0.6 c, total capacity 1.3 × demand
        c = 1.3 * kg[d.id] / (n_big + 0.6 * (n - n_big))
        cold_cap = sum(c if k < n_big else 0.6 * c for k in range(n) if k % 3 == 0)
        if cold_cap < 1.3 * cold[d.id]:
            c *= 1.3 * cold[d.id] / cold_cap
        for k in range(n):
            cap = int(math.ceil((c if k < n_big else 0.6 * c) / 50) * 50)
            vehicles.append(Vehicle(f"{d.id}-V{k + 1:02d}", f"浙通{d.id}{k + 1:02d}", cap, cap * 4,
                                    k % 3 == 0, d.id, f"司机{d.id}{k}", f"押运{d.id}{k}"))
    return vehicles


# --- (b) nearest neighbour ---------------------------------------------------------------------

def nearest_neighbour(inst: RoutingInstance) -> list[tuple[int, list[int]]]:
    left = set(range(len(inst.parts)))
    routes = []
    for si, s in enumerate(inst.slots):
        route: list[int] = []
        g = ml = 0
        t = s.tw_early + inst.depot_service_s
        here = s.depot_idx
        while True:
            best, best_d = None, None
            for pid in left:
                p = inst.parts[pid]
                if not inst.can_carry(s, p) or g + p.load_g > s.cap_g or ml + p.load_ml > s.cap_ml:
                    continue
                arrive = t + int(inst.dur[here, p.location])
                start = max(arrive, p.tw_early)
                if start > p.tw_late:
                    continue
                if start + p.service_s + int(inst.dur[p.location, s.depot_idx]) > s.tw_late:
                    continue
                d = int(inst.dist[here, p.location])
                if best_d is None or d < best_d or (d == best_d and pid < best):
                    best, best_d = pid, d
            if best is None:
                break
            p = inst.parts[best]
            t = max(t + int(inst.dur[here, p.location]), p.tw_early) + p.service_s
            g += p.load_g
            ml += p.load_ml
            here = p.location
            route.append(best)
            left.discard(best)
        if route:
            routes.append((si, route))
    return routes


# --- (c) OR-Tools ------------------------------------------------------------------------------

def ortools_routes(inst: RoutingInstance, limit_s: float) -> list[tuple[int, list[int]]]:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    n_dep, parts, slots = len(inst.depots), inst.parts, inst.slots
    nodes_loc = list(range(n_dep)) + [p.location for p in parts]
    service = [inst.depot_service_s] * n_dep + [p.service_s for p in parts]
    dist = inst.dist[nodes_loc][:, nodes_loc]
    dur = inst.dur[nodes_loc][:, nodes_loc] + [[s] for s in service]
    starts = [s.depot_idx for s in slots]
    manager = pywrapcp.RoutingIndexManager(len(nodes_loc), len(slots), starts, starts)
    routing = pywrapcp.RoutingModel(manager)
    dist_cb = routing.RegisterTransitMatrix(dist.astype(int).tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(dist_cb)
    g_cb = routing.RegisterUnaryTransitVector([0] * n_dep + [p.load_g for p in parts])
    ml_cb = routing.RegisterUnaryTransitVector([0] * n_dep + [p.load_ml for p in parts])
    routing.AddDimensionWithVehicleCapacity(g_cb, 0, [s.cap_g for s in slots], True, "kg")
    routing.AddDimensionWithVehicleCapacity(ml_cb, 0, [s.cap_ml for s in slots], True, "l")
    t_cb = routing.RegisterTransitMatrix(dur.astype(int).tolist())
    day = 24 * 3600
    routing.AddDimension(t_cb, day, day, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    penalty = int(10 * int(inst.dist.max()) + 1_000_000)  # as PyVRP's prize
    for j, p in enumerate(parts):
        idx = manager.NodeToIndex(n_dep + j)
        tdim.CumulVar(idx).SetRange(p.tw_early, p.tw_late)
        routing.SetAllowedVehiclesForIndex(
            [v for v, s in enumerate(slots) if inst.can_carry(s, p)], idx)
        routing.AddDisjunction([idx], penalty)
    for v, s in enumerate(slots):
        tdim.CumulVar(routing.Start(v)).SetRange(s.tw_early, s.start_late)
        tdim.CumulVar(routing.End(v)).SetRange(0, s.tw_late)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH)
    params.time_limit.FromMilliseconds(int(limit_s * 1000))
    sol = routing.SolveWithParameters(params)
    routes = []
    if sol is None:
        return routes
    for v in range(len(slots)):
        idx = routing.Start(v)
        seq = []
        while not routing.IsEnd(idx):
            node = manager.IndexToNode(idx)
            if node >= n_dep:
                seq.append(node - n_dep)
            idx = sol.Value(routing.NextVar(idx))
        if seq:
            routes.append((v, seq))
    return routes


def evaluate(inst: RoutingInstance, routes) -> dict:
    dist = served = bad = 0
    for si, seq in routes:
        chk = check_route(inst, si, seq)
        if chk.violations:
            bad += 1
            continue
        dist += chk.distance_m
        served += len(seq)
    return {"km": dist / 1000, "served": served, "routes": len(routes), "bad": bad}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one small county, 2 s limits")
    ap.add_argument("--limit", type=float, default=None, help="solver time limit, seconds")
    args = ap.parse_args()
    sizes = [60] if args.quick else [100, 300, 500]
    limit = args.limit or (2.0 if args.quick else 10.0)
    catalogue = load_catalogue()
    warnings.simplefilter("ignore")
    print(f"trip building: {N_VEHICLES} vehicles, {N_DEPOTS} depots, limit {limit:g} s, seed fixed")
    print(f"{'drops':>5} {'parts':>5} {'method':<16} {'served':>9} {'routes':>6} {'km':>9} "
          f"{'wall s':>7} {'km / PyVRP':>10}")
    verdicts = []
    for n in sizes:
        depots, points, picks = county(n)
        vehicles = fleet(depots, picks, catalogue)
        policy = TripPolicy(time_limit_s=limit, fallback_time_limit_s=limit, seed=1)
        t0 = time.perf_counter()
        inst = prepare_instance(picks, depots=depots, vehicles=vehicles, drop_points=points,
                                catalogue=catalogue, delivery_day=DAY, policy=policy)
        prep = time.perf_counter() - t0
        rows = []
        t0 = time.perf_counter()
        routes, stats = solve_pyvrp(inst, policy, started=t0 - prep)
        wall = time.perf_counter() - t0 + prep
        rows.append(("PyVRP", evaluate(inst, routes), wall, stats.phase))
        t0 = time.perf_counter()
        routes = nearest_neighbour(inst)
        wall = time.perf_counter() - t0 + prep
        rows.append(("nearest-neigh.", evaluate(inst, routes), wall, ""))
        t0 = time.perf_counter()
        routes = ortools_routes(inst, limit)
        wall = time.perf_counter() - t0 + prep
        rows.append(("OR-Tools GLS", evaluate(inst, routes), wall, ""))
        base = rows[0][1]["km"]
        for name, ev, wall, note in rows:
            flag = f" ({ev['bad']} infeasible routes dropped)" if ev["bad"] else ""
            note = f" [{note}]" if note and note != "required" else ""
            print(f"{n:>5} {len(inst.parts):>5} {name:<16} {ev['served']:>4}/{len(inst.parts):<4} "
                  f"{ev['routes']:>6} {ev['km']:>9.1f} {wall:>7.2f} {ev['km'] / base:>10.3f}"
                  f"{flag}{note}")
        all_served = all(r[1]["served"] == len(inst.parts) for r in rows[:1])
        best = all(rows[0][1]["km"] < r[1]["km"] or rows[0][1]["served"] > r[1]["served"]
                   for r in rows[1:])
        verdicts.append((n, all_served and best, rows[0][2]))
    for n, ok, wall in verdicts:
        if n == 300 or args.quick:
            print(f"target at {n} drop points: PyVRP shorter than both within {limit:g} s: "
                  f"{'met' if ok and wall <= limit + 0.5 else 'NOT met'} (wall {wall:.1f} s)")


if __name__ == "__main__":
    main()
