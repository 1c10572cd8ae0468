"""The daily allocation engine (每日调配方案): who gets what, from where, and why.

allocate() is a pure, deterministic function of its inputs (RULES.md §3, §4):

1. Tiers strictly in policy order (急用优先, 一线优先, 重点地区优先): a tier draws an item only
   from what the tiers before it left, so a higher tier is served in full before a lower tier
   gets any of a contested item, and nothing a lower tier asks changes a higher tier's share.
2. Within a tier, a short item is shared at one fill rate (max-min fair, see fairshare.py):
   not an equal split of quantity. Integer rounding by largest remainder, ties to the lower
   requester id, then demand id and line number.
3. Reserve floors (policy.reserve_floors): ordinary tiers never take an item's county-wide
   usable stock below its floor. The floor protects a quantity, not named lots: ordinary
   tiers may draw from any depot nearest first, and since every depot issues first-expiry-
   first-out, what stays is each depot's latest-expiring stock, the right stock to hold in
   reserve. Tiers in policy.below_reserve_tiers (frontline, vulnerable) may draw below; the
   plan records each such draw (ReserveDraw), a warning and a RESERVE_DRAW reason.
4. Package substitution (标准化蔬菜包): the unmet part of a short item in a tier is offered as
   the standard packages containing it (catalogue.packages_containing, in code order), one
   package per N units of the item (N from the recipe; rounding per policy), shared within
   the tier at one fill rate like any short item, after the tier's own direct demand for the
   package and before the next tier.
5. Sourcing (就近调配): quantities are fixed first (any depot can serve any requester), then
   drawn from the depots by a least-distance transport per item, for the whole day at once
   (policy.sourcing "whole_day", the default: least total distance) or tier by tier
   ("by_tier": frontline takes the nearest stock first, later tiers what is left). Either
   way no requester is served from a depot while a nearer depot still holds the item at the
   end of the plan (an optimal transport never leaves that slack). A requester's units are
   listed nearest depot first and go to its higher-tier lines first; within a depot lots go
   earliest expiry first (FEFO). Lots with expiry < delivery day + policy.min_days_to_expiry
   are never allocated (default 1: a lot expiring on the delivery day itself is excluded).
6. Every line carries its reasons (rule code + zh/en sentence); every unmet unit has one of
   FAIR_SHARE, TIER_ORDER (higher tiers drew it), RESERVE_FLOOR, NO_STOCK or NON_ESSENTIAL.
   Abnormal-flagged lines are allocated normally and carry ABNORMAL_FLAGGED.

Work is grouped by item and tier and done on numpy arrays; the only per-line Python work is
reading the inputs and building the plan's objects.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import date
from itertools import repeat

import numpy as np

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput

from . import reasons as rs
from .explanation import reasons_per_line
from .fairshare import fair_share
from .geo import distance_matrix
from .model import (
    DemandLine,
    Depot,
    ExcludedLot,
    Plan,
    PlanLine,
    PlanWarning,
    Reason,
    Requester,
    ReserveDraw,
    StockLot,
    Substitution,
    TierSummary,
)
from .policy import Policy, reserve_floors
from .sourcing import overlay, picks_per_line, transport

_I64 = np.int64


def _index(objs, key: str, field: str) -> tuple[list, dict[str, int]]:
    ordered = sorted(objs, key=lambda o: getattr(o, key))
    idx: dict[str, int] = {}
    for i, o in enumerate(ordered):
        k = getattr(o, key)
        if k in idx:
            raise InvalidInput(field, f"duplicate id {k!r}")
        idx[k] = i
    return ordered, idx


def _int_array(values: Sequence, field: str, names: Sequence | None = None) -> np.ndarray:
    """Integers only (not bools, not floats); `field` is formatted with the bad position
    (or its name in `names`)."""
    if not len(values):
        return np.zeros(0, dtype=_I64)
    arr = np.array(values)
    if arr.dtype.kind not in "iu":
        for pos, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise InvalidInput(field.format(names[pos] if names else pos),
                                   f"must be an integer, got {v!r}")
    return arr.astype(_I64, copy=False)


def _sortable(ids: list[str]) -> np.ndarray:
    """Ids as a numpy array that sorts like Python strings (bytes when ASCII: faster)."""
    if not ids:
        return np.zeros(0, dtype="S1")
    try:
        return np.array(ids, dtype="S")
    except UnicodeEncodeError:
        return np.array(ids)


def _order(*keys: tuple[np.ndarray, int]) -> np.ndarray:
    """Stable argsort by several non-negative int keys (most significant first), each given
    with its bound; one composite int64 key when it fits, else lexsort."""
    bound = 1
    for _, size in keys:
        bound *= max(int(size), 1)
    if bound < 2**62:
        comp = np.zeros(len(keys[0][0]), dtype=_I64)
        for arr, size in keys:
            comp = comp * max(int(size), 1) + arr
        return np.argsort(comp, kind="stable")
    return np.lexsort(tuple(arr for arr, _ in reversed(keys)))


def _cat(xs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(xs) if xs else np.zeros(0, dtype=_I64)


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while the plan's objects are built.

    A city day builds millions of small acyclic objects; each generation-2 pass would walk
    all of them again. Reference counting still frees everything; the collector's state is
    restored on exit.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def allocate(
    demands: Sequence[DemandLine],
    stock: Sequence[StockLot],
    requesters: Sequence[Requester],
    depots: Sequence[Depot],
    policy: Policy,
    catalogue: Catalogue,
    delivery_day: date,
) -> Plan:
    """Make the allocation plan for `delivery_day`. Pure and deterministic (see module doc).

    Raises InvalidInput naming the field for an unknown requester, depot or item, a duplicate
    (demand_id, line_no) or lot_id, a quantity ≤ 0, a tier not in policy.tier_order, or
    negative stock.
    """
    with _gc_paused():
        return _allocate(demands, stock, requesters, depots, policy, catalogue, delivery_day)


def _allocate(demands, stock, requesters, depots, policy, catalogue, delivery_day) -> Plan:
    # ---- index the reference data -------------------------------------------------------
    req_list, req_idx = _index(requesters, "id", "requesters.id")
    dep_list, dep_idx = _index(depots, "id", "depots.id")
    n_req, n_dep = len(req_list), len(dep_list)

    # ---- demand lines, in canonical (demand_id, line_no) order ---------------------------
    demands = list(demands)
    n = len(demands)
    d_id = [d.demand_id for d in demands]
    d_no = [d.line_no for d in demands]
    d_req = [d.requester_id for d in demands]
    d_item = [d.item_code for d in demands]
    d_qty = [d.quantity for d in demands]
    d_tier = [d.tier for d in demands]
    d_abn = [d.flagged_abnormal for d in demands]
    ids = _sortable(d_id)
    line_no = _int_array(d_no, "demands[{}].line_no")
    canon = np.lexsort((line_no, ids)) if n else np.zeros(0, dtype=_I64)
    if n > 1:
        ids_s, ln_s = ids[canon], line_no[canon]
        dup = (ids_s[1:] == ids_s[:-1]) & (ln_s[1:] == ln_s[:-1])
        if dup.any():
            j = int(np.argmax(dup)) + 1
            raise InvalidInput(f"demands[{int(canon[j])}]",
                               f"duplicate line ({ids_s[j]!r}, {int(ln_s[j])})")
    del ids
    as_objects = np.empty(n, dtype=object)
    as_objects[:] = demands
    lines = as_objects[canon].tolist()
    del as_objects

    codes = sorted(set(d_item) | {lot.item_code for lot in stock})
    for code in codes:
        if code not in catalogue.items:
            where = (f"demands[{d_item.index(code)}].item_code" if code in d_item else
                     f"stock[{next(x.lot_id for x in stock if x.item_code == code)}].item_code")
            raise InvalidInput(where, f"unknown item {code!r} (catalogue {catalogue.version})")
    items = [catalogue.items[c] for c in codes]
    item_idx = {c: i for i, c in enumerate(codes)}
    n_item = len(codes)

    req = np.array(list(map(req_idx.get, d_req, repeat(-1, n))), dtype=_I64)
    if n and (req < 0).any():
        raise InvalidInput(f"demands[{int(np.argmax(req < 0))}].requester_id",
                           "unknown requester")
    item = np.array(list(map(item_idx.__getitem__, d_item)), dtype=_I64)
    qty = _int_array(d_qty, "demands[{}].quantity")
    if n and (qty <= 0).any():
        raise InvalidInput(f"demands[{int(np.argmax(qty <= 0))}].quantity", "must be > 0")
    tier = _int_array(d_tier, "demands[{}].tier")
    if n and (tier < 1).any():
        raise InvalidInput(f"demands[{int(np.argmax(tier < 1))}].tier", "must be ≥ 1")
    abnormal = np.array(d_abn, dtype=bool) if n else np.zeros(0, dtype=bool)
    del d_id, d_no, d_req, d_item, d_qty, d_tier, d_abn
    tier_order = policy.tier_order
    n_tier = len(tier_order)
    tier_map = np.full(max(max(tier_order), int(tier.max()) if n else 0) + 1, -1, dtype=_I64)
    for p, t in enumerate(tier_order):
        tier_map[t] = p
    tpos = tier_map[tier] if n else np.zeros(0, dtype=_I64)
    if n and (tpos < 0).any():
        raise InvalidInput(f"demands[{int(np.argmax(tpos < 0))}].tier",
                           f"not in policy.tier_order {tier_order}")
    req, item, qty, tier, tpos, abnormal = (x[canon] for x in (req, item, qty, tier, tpos,
                                                               abnormal))

    # ---- stock lots ----------------------------------------------------------------------
    lots, _ = _index(stock, "lot_id", "stock.lot_id")
    lot_dep = np.fromiter((dep_idx.get(x.depot_id, -1) for x in lots), dtype=_I64,
                          count=len(lots))
    if (lot_dep < 0).any():
        bad = lots[int(np.argmax(lot_dep < 0))]
        raise InvalidInput(f"stock[{bad.lot_id}].depot_id", f"unknown depot {bad.depot_id!r}")
    lot_item = np.fromiter((item_idx[x.item_code] for x in lots), dtype=_I64, count=len(lots))
    lot_avail = _int_array([x.available for x in lots], "stock[{}].available",
                           [x.lot_id for x in lots])
    if (lot_avail < 0).any():
        raise InvalidInput(f"stock[{lots[int(np.argmax(lot_avail < 0))].lot_id}].available",
                           "must be ≥ 0")
    lot_exp = np.fromiter((x.expiry.toordinal() for x in lots), dtype=_I64, count=len(lots))
    usable_from = delivery_day.toordinal() + policy.min_days_to_expiry
    usable = (lot_exp >= usable_from) & (lot_avail > 0)
    expired = (lot_exp < usable_from) & (lot_avail > 0)
    expired_at = np.flatnonzero(expired).tolist()
    excluded_lots = tuple(lots[i].lot_id for i in expired_at)
    usable_total = np.bincount(lot_item[usable], weights=lot_avail[usable],
                               minlength=n_item).astype(_I64)
    expired_qty = np.bincount(lot_item[expired], weights=lot_avail[expired],
                              minlength=n_item).astype(_I64)
    expired_lots = np.bincount(lot_item[expired], minlength=n_item)

    floors = reserve_floors(req_list, policy, catalogue, codes)
    floor = np.array([floors[c].quantity if c in floors else 0 for c in codes], dtype=_I64)
    handled = np.array([it.essential or policy.allocate_non_essential for it in items],
                       dtype=bool)

    # ---- quantities: tier by tier ---------------------------------------------------------
    alloc = np.zeros(n, dtype=_I64)
    sub_pkg = np.full(n, -1, dtype=_I64)
    sub_k = np.zeros(n, dtype=_I64)
    sub_cover = np.zeros(n, dtype=_I64)
    asked_ti = np.zeros((n_tier, n_item), dtype=_I64)
    open_ti = np.zeros((n_tier, n_item), dtype=_I64)
    given_ti = np.zeros((n_tier, n_item), dtype=_I64)
    before_ti = np.zeros((n_tier, n_item), dtype=_I64)
    after_ti = np.zeros((n_tier, n_item), dtype=_I64)
    subgiven_ti = np.zeros((n_tier, n_item), dtype=_I64)
    lines_ti = np.zeros((n_tier, n_item), dtype=_I64)

    # packages that may stand in for each item: (package index, units of the item per package)
    pkg_recipes: list[tuple[int, np.ndarray]] = []
    if policy.allow_package_substitution:
        pkgs = sorted({p.code for c in codes for p in catalogue.packages_containing(c)
                       if p.code in item_idx})
        for pc in pkgs:
            per = np.zeros(n_item, dtype=_I64)
            for comp in catalogue.items[pc].components:
                if comp.item_code in item_idx:
                    per[item_idx[comp.item_code]] = comp.quantity
            pkg_recipes.append((item_idx[pc], per))

    order = _order((tpos, n_tier), (item, n_item), (req, n_req))
    bounds = np.searchsorted(tpos[order], np.arange(n_tier + 1))
    remaining = usable_total.copy()
    for p, t in enumerate(tier_order):
        idx = order[bounds[p]:bounds[p + 1]]
        may_break_floor = t in policy.below_reserve_tiers
        before_ti[p] = remaining
        open_now = remaining if may_break_floor else np.maximum(remaining - floor, 0)
        open_now = np.where(handled, open_now, 0)
        open_ti[p] = open_now
        if len(idx):
            it, q = item[idx], qty[idx]
            asked_ti[p] = np.bincount(it, weights=q, minlength=n_item)
            lines_ti[p] = np.bincount(it, minlength=n_item)
            a = fair_share(it, q, open_now)
            alloc[idx] = a
            given_ti[p] = np.bincount(it, weights=a, minlength=n_item)
            remaining = remaining - given_ti[p]
            unmet = q - a
            for pk, per in pkg_recipes:
                m = (unmet > 0) & (per[it] > 0) & (sub_pkg[idx] < 0)
                if not m.any():
                    continue
                open_pk = int(remaining[pk] if may_break_floor
                              else max(remaining[pk] - floor[pk], 0))
                if open_pk <= 0:
                    continue
                c_idx, u, units = idx[m], unmet[m], per[it[m]]
                k_ask = -(-u // units) if policy.package_rounding == "up" else u // units
                keep = k_ask > 0
                c_idx, u, units, k_ask = c_idx[keep], u[keep], units[keep], k_ask[keep]
                if not len(c_idx):
                    continue
                o = np.lexsort((c_idx, req[c_idx]))
                c_idx, u, units, k_ask = c_idx[o], u[o], units[o], k_ask[o]
                k = fair_share(np.zeros(len(c_idx), dtype=_I64), k_ask,
                               np.array([open_pk], dtype=_I64))
                got = k > 0
                sub_pkg[c_idx[got]] = pk
                sub_k[c_idx[got]] = k[got]
                sub_cover[c_idx[got]] = np.minimum(u[got], k[got] * units[got])
                used = int(k.sum())
                remaining[pk] -= used
                subgiven_ti[p, pk] += used
        after_ti[p] = remaining

    # ---- sourcing: least-distance transport per item (and tier, by policy) -------------
    dist_km = distance_matrix(policy.distance,
                              [r.lat for r in req_list], [r.lon for r in req_list],
                              [d.lat for d in dep_list], [d.lon for d in dep_list])
    dist_m = np.rint(dist_km * 1000.0).astype(_I64)
    lu = np.flatnonzero(usable)
    supply = np.zeros((n_item, n_dep), dtype=_I64)
    np.add.at(supply, (lot_item[lu], lot_dep[lu]), lot_avail[lu])

    direct = np.flatnonzero(alloc > 0)
    subst = np.flatnonzero(sub_k > 0)
    c_line = np.concatenate([direct, subst])
    c_kind = np.concatenate([np.zeros(len(direct), _I64), np.ones(len(subst), _I64)])
    c_item = np.concatenate([item[direct], sub_pkg[subst]])
    c_tp = tpos[c_line]
    c_req = req[c_line]
    c_qty = np.concatenate([alloc[direct], sub_k[subst]])
    by_tier = policy.sourcing == "by_tier"
    c_stage = c_tp if by_tier else np.zeros(len(c_line), dtype=_I64)
    co = _order((c_item, n_item), (c_stage, n_tier), (c_req, n_req), (c_tp, n_tier),
                (c_kind, 2), (c_line, n))
    c_line, c_kind, c_item, c_tp = c_line[co], c_kind[co], c_item[co], c_tp[co]
    c_req, c_qty, c_stage = c_req[co], c_qty[co], c_stage[co]

    f_item, f_stage, f_req, f_dep, f_qty = [], [], [], [], []
    solver_runs = 0
    stage_key = c_item * (n_tier + 1) + c_stage
    if len(stage_key):
        starts = np.flatnonzero(np.r_[True, stage_key[1:] != stage_key[:-1]])
        ends = np.r_[starts[1:], len(stage_key)]
        for s0, s1 in zip(starts.tolist(), ends.tolist(), strict=True):
            i = int(c_item[s0])
            rq = c_req[s0:s1]
            rstart = np.flatnonzero(np.r_[True, rq[1:] != rq[:-1]])
            reqs = rq[rstart]
            need = np.add.reduceat(c_qty[s0:s1], rstart)
            dsel = np.flatnonzero(supply[i] > 0)
            r, d, q, runs = transport(need, supply[i, dsel], dist_m[np.ix_(reqs, dsel)],
                                      policy.candidate_depots)
            solver_runs += runs
            dd = dsel[d]
            np.subtract.at(supply[i], dd, q)
            f_item.append(np.full(len(r), i, dtype=_I64))
            f_stage.append(np.full(len(r), c_stage[s0], dtype=_I64))
            f_req.append(reqs[r])
            f_dep.append(dd)
            f_qty.append(q)
    f_item, f_stage, f_req, f_dep, f_qty = map(_cat, (f_item, f_stage, f_req, f_dep, f_qty))

    # ---- FEFO: each depot's flows against its lots, earliest expiry first ---------------
    lo = lu[np.lexsort((lu, lot_exp[lu], lot_dep[lu], lot_item[lu]))]
    lot_end = np.cumsum(lot_avail[lo])
    lot_block = lot_item[lo] * n_dep + lot_dep[lo]
    block_first = np.flatnonzero(np.r_[True, lot_block[1:] != lot_block[:-1]][:len(lo)])
    block_base = dict(zip(lot_block[block_first].tolist(),
                          (lot_end[block_first] - lot_avail[lo][block_first]).tolist(),
                          strict=True))
    fo = np.lexsort((f_req, f_stage, f_dep, f_item))
    f_item, f_stage, f_req, f_dep, f_qty = (x[fo] for x in (f_item, f_stage, f_req, f_dep, f_qty))
    f_block = f_item * n_dep + f_dep
    f_cum = np.cumsum(f_qty)
    f_first = np.r_[True, f_block[1:] != f_block[:-1]] if len(f_block) else np.zeros(0, bool)
    first_pos = np.maximum.accumulate(np.where(f_first, np.arange(len(f_block)), 0))
    within = f_cum - f_qty - (f_cum - f_qty)[first_pos]
    base = np.array([block_base[b] for b in f_block.tolist()], dtype=_I64)
    f_start = base + within
    fi, li, pq = overlay(f_start, f_start + f_qty, lot_end)
    p_item, p_stage, p_req, p_dep = f_item[fi], f_stage[fi], f_req[fi], f_dep[fi]
    p_lot = lo[li]

    # ---- pieces against the lines: nearest depot first, then FEFO; lines in tier order ----
    po = np.lexsort((p_lot, lot_exp[p_lot], p_dep, dist_m[p_req, p_dep], p_req, p_stage,
                     p_item))
    p_lot, p_dep, pq = p_lot[po], p_dep[po], pq[po]
    # claims are already sorted by (item, stage, requester, tier, kind, line)
    c_end = np.cumsum(c_qty)
    ci, pi, tq = overlay(c_end - c_qty, c_end, np.cumsum(pq))
    t_line, t_kind, t_lot, t_dep = c_line[ci], c_kind[ci], p_lot[pi], p_dep[pi]

    # nearest depot holding the item at the start of the day, to explain NEXT_DEPOT
    stocked = np.zeros((n_item, n_dep), dtype=bool)
    stocked[lot_item[lu], lot_dep[lu]] = True
    nearest = np.zeros((n_item, n_req), dtype=_I64)
    for i in np.flatnonzero(stocked.any(axis=1)).tolist():
        nearest[i] = np.argmin(np.where(stocked[i], dist_m, np.iinfo(_I64).max), axis=1)
    d_sel = t_kind == 0
    tl, td = t_line[d_sel], t_dep[d_sel]
    near_of_t = nearest[item[tl], req[tl]]
    far = td != near_of_t
    next_dep = np.full(n, -1, dtype=_I64)
    next_dep[tl[far]] = near_of_t[far]

    # ---- build the plan ---------------------------------------------------------------------
    to = np.argsort(t_line * 2 + t_kind, kind="stable")
    t_line, t_kind, t_lot, t_dep, tq = t_line[to], t_kind[to], t_lot[to], t_dep[to], tq[to]
    line_picks, sub_picks = picks_per_line(n, t_line, t_kind, t_lot, tq, lots)

    subs: list[Substitution | None] = [None] * n
    per_map = dict(pkg_recipes)
    for j in np.flatnonzero(sub_k > 0).tolist():
        pk = int(sub_pkg[j])
        per = int(per_map[pk][item[j]])
        subs[j] = Substitution(codes[pk], int(sub_k[j]), per, int(sub_cover[j]),
                               sub_picks.get(j, ()))
    unmet_final = qty - alloc - sub_cover

    line_reasons = reasons_per_line(
        n, item, tpos, alloc, next_dep, sub_pkg, abnormal, items, tier_order, policy, floor,
        floors, asked_ti, open_ti, given_ti, before_ti, after_ti, usable_total, expired_qty,
        expired_lots, handled, pkg_recipes, dep_list, n_dep, n_item)

    plan_lines = tuple(map(PlanLine, lines, alloc.tolist(), line_picks, subs,
                           unmet_final.tolist(), line_reasons))

    draws, warnings, summaries = [], [], []
    for p, t in enumerate(tier_order):
        for i in range(n_item):
            if lines_ti[p, i] or subgiven_ti[p, i]:
                summaries.append(TierSummary(codes[i], t, int(lines_ti[p, i]),
                                             int(asked_ti[p, i]), int(open_ti[p, i]),
                                             int(given_ti[p, i]), int(subgiven_ti[p, i])))
            if (t in policy.below_reserve_tiers and floor[i] > 0
                    and after_ti[p, i] < floor[i] and after_ti[p, i] < before_ti[p, i]):
                draws.append(ReserveDraw(codes[i], items[i].group, t, int(floor[i]),
                                         int(before_ti[p, i]), int(after_ti[p, i])))
                zh, en = rs.reserve_warning_text(items[i], t, int(floor[i]),
                                                 int(before_ti[p, i]), int(after_ti[p, i]))
                warnings.append(PlanWarning("RESERVE_DRAWN", codes[i], zh, en))
    expired_why: dict[int, Reason] = {}
    for i in np.flatnonzero(expired_qty > 0).tolist():
        r = expired_why[i] = rs.expired_excluded(items[i], int(expired_qty[i]),
                                                 int(expired_lots[i]), policy.min_days_to_expiry)
        warnings.append(PlanWarning(rs.EXPIRED_EXCLUDED, codes[i], r.zh, r.en))
    excluded = tuple(ExcludedLot(lots[j].lot_id, lots[j].depot_id, lots[j].item_code,
                                 lots[j].available, lots[j].expiry, expired_why[int(lot_item[j])])
                     for j in expired_at)

    return Plan(
        delivery_day=delivery_day,
        catalogue_version=catalogue.version,
        lines=plan_lines,
        floors=tuple(floors[c] for c in sorted(floors)),
        reserve_draws=tuple(draws),
        warnings=tuple(warnings),
        summaries=tuple(summaries),
        excluded_lots=excluded_lots,
        excluded=excluded,
        stats={"lines": n, "lots": len(lots), "solver_runs": solver_runs,
               "transport_stages": int(len(np.unique(stage_key))) if len(stage_key) else 0},
    )
