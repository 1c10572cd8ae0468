"""Sourcing kernels: least-distance transport (nearest depot first) and interval overlays.

transport() assigns requesters' quantities to depots at least total distance. When every
requester's nearest depot holding stock can carry all the requesters that have it as nearest,
that assignment is optimal (each unit travels its shortest distance) and no solver runs.
Otherwise it is a min-cost flow (OR-Tools, arcs added as numpy arrays) over each requester's
`candidates` nearest depots; if those cannot carry the demand, over all depots.

overlay() splits consecutive quantities against consecutive stock (first-expiry-first-out
lots in a depot, a requester's pieces against its lines) without a Python loop per unit;
picks_per_line() turns the resulting pieces into each line's LotPick tuples.
"""

from __future__ import annotations

import numpy as np
from ortools.graph.python import min_cost_flow

from .model import LotPick

_BIG_CAP = 2**40


def transport(need: np.ndarray, supply: np.ndarray, dist_m: np.ndarray, candidates: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Least-distance assignment.

    need: int per requester (len R, > 0); supply: int per depot (len K, > 0), sum ≥ need;
    dist_m: R×K integer costs (metres). Returns (requester idx, depot idx, qty) of the flows
    with qty > 0, sorted by (requester, depot), and how many solver runs it took.
    """
    n_req, n_dep = dist_m.shape
    nearest = np.argmin(dist_m, axis=1)
    load = np.bincount(nearest, weights=need, minlength=n_dep)
    if np.all(load <= supply):
        r = np.arange(n_req)
        return r, nearest, need.astype(np.int64), 0
    runs = 0
    k = min(candidates, n_dep)
    while True:
        runs += 1
        if k < n_dep:
            cand = np.argsort(dist_m, axis=1, kind="stable")[:, :k]
            tail = cand.ravel()
            head_r = np.repeat(np.arange(n_req), k)
        else:
            tail = np.tile(np.arange(n_dep), n_req)
            head_r = np.repeat(np.arange(n_req), n_dep)
        cost = dist_m[head_r, tail]
        mcf = min_cost_flow.SimpleMinCostFlow()
        arcs = mcf.add_arcs_with_capacity_and_unit_cost(
            tail, head_r + n_dep, np.full(len(tail), _BIG_CAP, dtype=np.int64), cost)
        mcf.set_nodes_supplies(np.arange(n_dep + n_req),
                               np.concatenate([supply, -need]).astype(np.int64))
        status = mcf.solve_max_flow_with_min_cost()
        if status != mcf.OPTIMAL:  # pragma: no cover - inputs are validated before
            raise RuntimeError(f"min cost flow failed: {status}")
        if mcf.maximum_flow() == int(need.sum()) or k >= n_dep:
            break
        k = n_dep
    flow = mcf.flows(arcs)
    keep = flow > 0
    r, d, q = head_r[keep], tail[keep], flow[keep].astype(np.int64)
    order = np.lexsort((d, r))
    return r[order], d[order], q[order], runs


def overlay(a_start: np.ndarray, a_end: np.ndarray, b_end: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlaps of intervals a = [a_start, a_end) (sorted, disjoint) with the partition
    b = [b_end[j-1], b_end[j]) (b_end non-decreasing from a start of 0).

    Returns (a index, b index, overlap length) for every non-empty overlap, in order.
    """
    if len(a_start) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    pts = np.sort(np.concatenate([a_start, a_end, b_end]), kind="stable")  # merges runs
    pts = pts[np.r_[True, pts[1:] != pts[:-1]]]
    lo, hi = pts[:-1], pts[1:]
    ia = np.searchsorted(a_start, lo, side="right") - 1
    ok = ia >= 0
    ia_c = np.where(ok, ia, 0)
    ok &= lo < a_end[ia_c]
    ib = np.searchsorted(b_end, lo, side="right")
    ok &= ib < len(b_end)
    return ia[ok], ib[ok], (hi - lo)[ok]


def picks_per_line(n, t_line, t_kind, t_lot, tq, lots):
    """LotPick tuples per line (item itself) and per substituted line (packages).

    Identical (lot, quantity) picks share one object, and lines served from a single lot
    share the 1-tuple, so a county day does not build one object per line and lot.
    """
    empty = np.empty(1, dtype=object)
    empty[0] = ()
    line_picks = np.repeat(empty, n)
    sub_picks: dict[int, tuple[LotPick, ...]] = {}
    if not len(t_line):
        return line_picks.tolist(), sub_picks
    qmax = int(tq.max()) + 1
    key = t_lot * qmax + tq
    uniq, inv = np.unique(key, return_inverse=True)
    objs = np.empty(len(uniq), dtype=object)
    singles = np.empty(len(uniq), dtype=object)
    for j, k in enumerate(uniq.tolist()):
        lot = lots[k // qmax]
        pick = LotPick(lot.depot_id, lot.lot_id, k % qmax, lot.expiry)
        objs[j] = pick
        singles[j] = (pick,)
    seg = t_line * 2 + t_kind
    first = np.r_[True, seg[1:] != seg[:-1]]
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, len(seg)])
    one = counts == 1
    s1 = starts[one]
    d1 = s1[t_kind[s1] == 0]
    line_picks[t_line[d1]] = singles[inv[d1]]
    multi = ~one & (t_kind[starts] == 0)
    for s, c in zip(starts[multi].tolist(), counts[multi].tolist(), strict=True):
        line_picks[int(t_line[s])] = tuple(objs[inv[s:s + c]].tolist())
    packs = t_kind[starts] == 1
    for s, c in zip(starts[packs].tolist(), counts[packs].tolist(), strict=True):
        sub_picks[int(t_line[s])] = tuple(objs[inv[s:s + c]].tolist())
    return line_picks.tolist(), sub_picks
