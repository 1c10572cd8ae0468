"""Benchmark of the allocation engine (services.allocation.domain.allocate).

    .venv/bin/python bench/allocation_engine.py            # county day + city day
    .venv/bin/python bench/allocation_engine.py --quick    # small day, a few seconds

Generates seeded days (requesters, depots, lots, demand lines), times allocate() and its peak
memory, then checks the plan against two reference LPs solved with HiGHS:
(a) tiers as lexicographic objectives: maximise tier 1's total fill, fix it, then tier 2, …
    under the same stock and reserve-floor rules: the most any plan can fill per tier. The
    engine's fill per tier should equal it. Package items are not asked directly in the
    generated days (they serve as substitutes only), so direct fill is comparable; package
    substitution is reported on its own.
(b) the transport problem of the engine's own per-requester, per-item quantities (items and
    substitute packages) from the depots' usable stock at least total distance. The engine's
    total distance should be within 2 % of it.
For the city day the LPs are solved on a sample of items (said in the output).
Targets: county day < 2 s, city day < 30 s.
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.allocation.domain import (  # noqa: E402
    DemandLine,
    Depot,
    Plan,
    Policy,
    Requester,
    StockLot,
    allocate,
)
from services.allocation.domain.geo import haversine_km  # noqa: E402
from services.common.catalogue import Catalogue, load_catalogue  # noqa: E402

DELIVERY_DAY = date(2026, 3, 2)
TIER_SHARE = (0.04, 0.10, 0.26, 0.30, 0.30)


@dataclass
class Day:
    name: str
    requesters: list[Requester]
    depots: list[Depot]
    stock: list[StockLot]
    demands: list[DemandLine]


def item_codes(cat: Catalogue, n_items: int) -> tuple[list[str], list[str], list[str]]:
    """(asked items, package items (stock only), non-essential items asked)."""
    essential = [c for c, it in sorted(cat.items.items()) if it.essential and not it.is_package]
    packages = [c for c, it in sorted(cat.items.items()) if it.is_package]
    non_ess = [c for c, it in sorted(cat.items.items()) if not it.essential]
    n_ess = max(1, min(len(essential), n_items - len(packages) - 1))
    return essential[:n_ess], packages, non_ess[:1]


def generate(name: str, n_req: int, n_dep: int, n_lines: int, n_items: int, span_km: float,
             seed: int, cat: Catalogue) -> Day:
    rng = np.random.default_rng(seed)
    lat0, lon0 = 30.0, 120.0
    dlat = span_km / 111.0
    dlon = span_km / (111.0 * math.cos(math.radians(lat0)))
    n_town = max(3, n_req // 20)
    town_c = rng.uniform(0, 1, (n_town, 2))
    town_of = rng.integers(0, n_town, n_req)
    pos = np.clip(town_c[town_of] + rng.normal(0, 0.05, (n_req, 2)), 0, 1)
    kinds = np.where(rng.uniform(size=n_req) < 0.04, "hospital", "village")
    pop = np.where(kinds == "hospital", rng.integers(200, 1500, n_req),
                   rng.integers(300, 6000, n_req))
    requesters = [
        Requester(f"R{i:05d}", f"T{int(town_of[i]):03d}", lat0 + float(pos[i, 0]) * dlat,
                  lon0 + float(pos[i, 1]) * dlon, int(pop[i]), str(kinds[i]))
        for i in range(n_req)
    ]
    dpos = rng.uniform(0, 1, (n_dep, 2))
    depots = [Depot(f"DEP{j:03d}", lat0 + float(dpos[j, 0]) * dlat,
                    lon0 + float(dpos[j, 1]) * dlon) for j in range(n_dep)]

    asked_items, packages, non_ess = item_codes(cat, n_items)
    all_items = asked_items + non_ess
    # demand lines: demands of 1..7 lines, one requester and tier per demand
    lines_per = rng.integers(1, 8, n_lines)
    cum = np.cumsum(lines_per)
    n_dem = int(np.searchsorted(cum, n_lines)) + 1
    lines_per = lines_per[:n_dem]
    lines_per[-1] -= int(cum[n_dem - 1] - n_lines)
    li_dem = np.repeat(np.arange(n_dem), lines_per)
    li_no = np.arange(n_lines) - np.repeat(np.cumsum(lines_per) - lines_per, lines_per) + 1
    weights = pop / pop.sum()
    dem_req = rng.choice(n_req, n_dem, p=weights)
    hosp = kinds[dem_req] == "hospital"
    dem_tier = rng.choice(5, n_dem, p=TIER_SHARE) + 1
    dem_tier = np.where(hosp, 1, np.where(dem_tier == 1, 2, dem_tier))
    p_item = np.r_[np.full(len(asked_items), 1.0), np.full(len(non_ess), 0.002)]
    li_item = rng.choice(len(all_items), len(li_dem), p=p_item / p_item.sum())
    li_qty = np.maximum(1, np.rint(rng.lognormal(1.6, 0.9, len(li_dem)))).astype(int)
    li_abn = rng.uniform(size=len(li_dem)) < 0.01
    li_qty = np.where(li_abn, li_qty * 8, li_qty)
    # shuffle line order: the engine must not depend on it
    perm = rng.permutation(len(li_dem))
    demands = [
        DemandLine(f"DM{int(li_dem[k]):08d}", int(li_no[k]), requesters[int(dem_req[li_dem[k]])].id,
                   all_items[int(li_item[k])], int(li_qty[k]), int(dem_tier[li_dem[k]]),
                   bool(li_abn[k]))
        for k in perm.tolist()
    ]
    # stock: around the reserve floor plus a random share of the day's demand
    pol = Policy()
    population = int(pop.sum())
    asked_qty = np.bincount(li_item, weights=li_qty, minlength=len(all_items))
    stock: list[StockLot] = []
    lot_no = 0
    stock_items = [(c, float(asked_qty[i])) for i, c in enumerate(asked_items)]
    veg_need = sum(q for c, q in stock_items if c in ("POTATO-KG", "CABBAGE-KG", "CARROT-KG"))
    stock_items += [(p, veg_need / 6) for p in packages]
    for code, need in stock_items:
        it = cat.items[code]
        days = pol.days_for(it.group, cat) or 0
        floor = days * population * it.per_capita_daily
        total = floor * rng.uniform(0.85, 1.15) + need * rng.uniform(0.4, 1.4)
        n_lots = max(1, int(n_dep * rng.uniform(1.0, 2.5)))
        lot_dep = rng.choice(n_dep, n_lots, p=rng.dirichlet(np.full(n_dep, 2.0)))
        share = rng.dirichlet(np.full(n_lots, 1.5))
        qtys = np.floor(share * total).astype(int)
        for j in range(n_lots):
            if qtys[j] <= 0:
                continue
            lot_no += 1
            exp = DELIVERY_DAY + timedelta(days=int(rng.integers(-5, it.shelf_life_days + 1)))
            stock.append(StockLot(f"LOT{lot_no:07d}", depots[int(lot_dep[j])].id, code,
                                  int(qtys[j]), exp))
    return Day(name, requesters, depots, stock, demands)


# ---- measurement -------------------------------------------------------------------------
def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed_allocate(day: Day, policy: Policy, cat: Catalogue) -> tuple[Plan, float, float]:
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    plan = allocate(day.demands, day.stock, day.requesters, day.depots, policy, cat,
                    DELIVERY_DAY)
    dt = time.perf_counter() - t0
    return plan, dt, rss_mb() - before


def usable_lots(day: Day, policy: Policy) -> list[StockLot]:
    first = DELIVERY_DAY + timedelta(days=policy.min_days_to_expiry)
    return [x for x in day.stock if x.expiry >= first and x.available > 0]


def lp_tier_fill(day: Day, plan: Plan, policy: Policy, items: list[str]) -> dict[int, float]:
    """(a) lexicographic LP: the most each tier can fill, tier by tier, per the rules."""
    import highspy

    tiers = list(policy.tier_order)
    floors = {f.item_code: f.quantity for f in plan.floors}
    usable: dict[str, int] = {}
    for x in usable_lots(day, policy):
        usable[x.item_code] = usable.get(x.item_code, 0) + x.available
    asked: dict[tuple[str, int], int] = {}
    cat = load_catalogue()
    item_set = set(items)
    for d in day.demands:
        if d.item_code in item_set and cat.items[d.item_code].essential:
            asked[(d.item_code, d.tier)] = asked.get((d.item_code, d.tier), 0) + d.quantity
    keys = sorted(asked)
    col = {k: j for j, k in enumerate(keys)}
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    for k in keys:
        h.addVar(0.0, float(asked[k]))
    # stock per item
    for code in sorted({k[0] for k in keys}):
        js = [col[k] for k in keys if k[0] == code]
        h.addRow(-inf, float(usable.get(code, 0)), len(js), np.array(js, dtype=np.int32),
                 np.ones(len(js)))
    best: dict[int, float] = {}
    below = [t for t in tiers if t in policy.below_reserve_tiers]
    floor_added = False
    for t in tiers:
        if t not in policy.below_reserve_tiers and not floor_added:
            # ordinary tiers: Σ ordinary ≤ max(0, usable − floor − what the earlier tiers took)
            for code in sorted({k[0] for k in keys}):
                took = sum(h.getSolution().col_value[col[(code, b)]] for b in below
                           if (code, b) in col) if best else 0.0
                cap = max(0.0, usable.get(code, 0) - floors.get(code, 0) - took)
                js = [col[k] for k in keys if k[0] == code and k[1] not in below]
                if js:
                    h.addRow(-inf, cap, len(js), np.array(js, dtype=np.int32), np.ones(len(js)))
            floor_added = True
        js = [col[k] for k in keys if k[1] == t]
        cost = np.zeros(len(keys))
        cost[js] = -1.0
        h.changeColsCost(len(keys), np.arange(len(keys), dtype=np.int32), cost)
        h.run()
        val = -h.getInfo().objective_function_value if js else 0.0
        best[t] = val
        if js:
            h.addRow(val - 1e-6, inf, len(js), np.array(js, dtype=np.int32), np.ones(len(js)))
    return best


def lp_transport(day: Day, plan: Plan, policy: Policy, items: list[str]) -> tuple[float, float]:
    """(b) least total distance for the engine's own per-requester quantities of `items`.

    Returns (engine km·units, optimal km·units) over those items.
    """
    import highspy

    req_i = {r.id: i for i, r in enumerate(day.requesters)}
    dep_i = {d.id: j for j, d in enumerate(day.depots)}
    dist = haversine_km([r.lat for r in day.requesters], [r.lon for r in day.requesters],
                        [d.lat for d in day.depots], [d.lon for d in day.depots])
    item_set = set(items)
    need: dict[tuple[str, int], int] = {}
    engine_km = 0.0
    for pl in plan.lines:
        r = req_i[pl.requester_id]
        groups = [(pl.item_code, pl.picks)]
        if pl.substitution:
            groups.append((pl.substitution.package_code, pl.substitution.picks))
        for code, picks in groups:
            if code not in item_set:
                continue
            for p in picks:
                need[(code, r)] = need.get((code, r), 0) + p.quantity
                engine_km += p.quantity * dist[r, dep_i[p.depot_id]]
    sup: dict[tuple[str, int], int] = {}
    for x in usable_lots(day, policy):
        if x.item_code in item_set:
            k = (x.item_code, dep_i[x.depot_id])
            sup[k] = sup.get(k, 0) + x.available
    total_opt = 0.0
    for code in sorted(item_set):
        reqs = sorted(r for (c, r) in need if c == code)
        deps = sorted(d for (c, d) in sup if c == code)
        if not reqs:
            continue
        nr, nd = len(reqs), len(deps)
        cost = dist[np.ix_(reqs, deps)].ravel()  # var (r, d) at r*nd + d
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        lp = highspy.HighsLp()
        lp.num_col_ = nr * nd
        lp.num_row_ = nr + nd
        lp.col_cost_ = cost
        lp.col_lower_ = np.zeros(nr * nd)
        lp.col_upper_ = np.full(nr * nd, highspy.kHighsInf)
        b = np.array([need[(code, r)] for r in reqs], dtype=float)
        s = np.array([sup[(code, d)] for d in deps], dtype=float)
        lp.row_lower_ = np.r_[b, np.full(nd, -highspy.kHighsInf)]
        lp.row_upper_ = np.r_[b, s]
        # column (r, d) has a 1 in row r and in row nr + d
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        rr = np.repeat(np.arange(nr), nd)
        dd = np.tile(np.arange(nd), nr)
        lp.a_matrix_.start_ = np.arange(0, 2 * nr * nd + 1, 2, dtype=np.int32)
        lp.a_matrix_.index_ = np.stack([rr, nr + dd], axis=1).ravel().astype(np.int32)
        lp.a_matrix_.value_ = np.ones(2 * nr * nd)
        h.passModel(lp)
        h.run()
        total_opt += h.getInfo().objective_function_value
    return engine_km, total_opt


def engine_tier_fill(plan: Plan, items: list[str]) -> dict[int, int]:
    item_set = set(items)
    out: dict[int, int] = {}
    for s in plan.summaries:
        if s.item_code in item_set:
            out[s.tier] = out.get(s.tier, 0) + s.allocated
    return out


def report(day: Day, policy: Policy, cat: Catalogue, target_s: float, lp_items: int | None,
           seed: int) -> bool:
    print(f"\n=== {day.name}: {len(day.requesters)} requesters, {len(day.depots)} depots, "
          f"{len({x.item_code for x in day.stock} | {d.item_code for d in day.demands})} items, "
          f"{len(day.stock)} lots, {len(day.demands):,} demand lines ===")
    plan, dt, mem = timed_allocate(day, policy, cat)
    plan2, dt2, _ = timed_allocate(day, policy, cat)
    same = plan == plan2
    n_sub = sum(1 for pl in plan.lines if pl.substitution)
    asked = sum(pl.asked for pl in plan.lines)
    got = sum(pl.allocated for pl in plan.lines)
    print(f"allocate(): {dt:.2f} s (repeat {dt2:.2f} s; target < {target_s:.0f} s)  "
          f"peak RSS growth {mem:,.0f} MB (process peak {rss_mb():,.0f} MB)  "
          f"deterministic: {same}")
    print(f"  filled {got:,}/{asked:,} units ({got / asked:.1%}); substituted lines {n_sub:,}; "
          f"reserve draws {len(plan.reserve_draws)}; warnings {len(plan.warnings)}; "
          f"solver runs {plan.stats.get('solver_runs')} of "
          f"{plan.stats.get('transport_stages')} transport stages")
    all_items = sorted({x.item_code for x in day.stock} | {d.item_code for d in day.demands})
    if lp_items is not None and lp_items < len(all_items):
        rng = np.random.default_rng(seed + 7)
        items = sorted(rng.choice(all_items, lp_items, replace=False).tolist())
        # keep the packages in the sample so substitution is covered by the check
        items = sorted(set(items) | {c for c in all_items if cat.items[c].is_package})
        print(f"  LPs on a sample of {len(items)} of {len(all_items)} items: {', '.join(items)}")
    else:
        items = all_items
    t0 = time.perf_counter()
    best = lp_tier_fill(day, plan, policy, items)
    eng = engine_tier_fill(plan, items)
    ta = time.perf_counter() - t0
    print(f"  (a) lexicographic tier LP (HiGHS, {ta:.1f} s): most any plan can fill per tier")
    print(f"      {'tier':>4} {'engine':>12} {'LP best':>12} {'ratio':>8}")
    ok = same and dt < target_s
    for t in policy.tier_order:
        e, b = eng.get(t, 0), best.get(t, 0.0)
        ratio = e / b if b else 1.0
        ok &= abs(e - b) <= 1e-6 * max(1.0, b) + 0.5
        print(f"      {t:>4} {e:>12,} {b:>12,.0f} {ratio:>8.4f}")
    t0 = time.perf_counter()
    ekm, okm = lp_transport(day, plan, policy, items)
    tb = time.perf_counter() - t0
    gap = ekm / okm - 1 if okm else 0.0
    ok &= gap <= 0.02
    print(f"  (b) transport LP of the engine's own quantities (HiGHS, {tb:.1f} s):")
    print(f"      engine {ekm:,.0f} unit·km   optimal {okm:,.0f} unit·km   "
          f"ratio {ekm / okm if okm else 1:.4f} (gap {gap:+.2%}, target ≤ +2 %)")
    print(f"  => {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small day only (smoke test)")
    ap.add_argument("--seed", type=int, default=20260302)
    ap.add_argument("--sourcing", choices=("whole_day", "by_tier"), default=Policy().sourcing)
    ap.add_argument("--skip-city", action="store_true")
    args = ap.parse_args(argv)
    cat = load_catalogue()
    policy = Policy(sourcing=args.sourcing)
    ok = True
    runs = ([("quick day", 60, 8, 5_000, 40, 30.0, 2.0, None)] if args.quick else
            [("county day", 300, 20, 200_000, 40, 60.0, 2.0, None)]
            + ([] if args.skip_city else
               [("city day", 2_000, 100, 2_000_000, 40, 80.0, 30.0, 6)]))
    for name, n_req, n_dep, n_lines, n_items, span, target, lp_items in runs:
        t0 = time.perf_counter()
        day = generate(name, n_req, n_dep, n_lines, n_items, span, args.seed, cat)
        print(f"\n[generated {name} in {time.perf_counter() - t0:.1f} s]")
        ok &= report(day, policy, cat, target, lp_items, args.seed)
        del day
        gc.collect()
    print(f"\nmachine: {sys.platform}, CPUs {len(__import__('os').sched_getaffinity(0))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
