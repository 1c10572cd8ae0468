"""Max-min fair fill rates within a tier (RULES.md §3.6), vectorised over many groups.

Each line may get at most what it asked, so water-filling on the fill rate allocated/asked
reaches one common level r = supply / asked for all lines of a short group: the max-min fair
point, which is a proportional split of the supply, never an equal split of quantity. Integers
come from the largest-remainder method: every line gets floor(asked × r), and the units left
go one each to the largest remainders, ties to the line that comes first in the given order
(the engine orders by requester id, then demand id and line number). So every line receives
floor(asked × r) or that plus one: no line's rate can be raised without lowering another's
below it, up to one unit.
"""

from __future__ import annotations

import numpy as np

_SAFE = 2**62


def fair_share(group: np.ndarray, asks: np.ndarray, supply: np.ndarray) -> np.ndarray:
    """Integer allocation per line.

    group: group index per line (0..G-1), lines of a group in tie-break order (not
    necessarily contiguous). asks: int > 0 per line. supply: int ≥ 0 per group (may exceed
    the group's total ask). Returns the allocation per line (int64).
    """
    n_groups = len(supply)
    asks = asks.astype(np.int64, copy=False)
    total = np.bincount(group, weights=asks, minlength=n_groups).astype(np.int64)
    give = np.minimum(total, supply.astype(np.int64))
    short = give < total
    out = asks.copy()
    if not short.any():
        return out
    sl = short[group]
    g = group[sl]
    q = asks[sl]
    s = give[g]
    t = total[g]
    if int(q.max()) * int(s.max()) >= _SAFE:  # exact integers beyond int64
        prod = q.astype(object) * s.astype(object)
        base = (prod // t.astype(object)).astype(np.int64)
        rem = (prod % t.astype(object)).astype(np.float64)
    else:
        prod = q * s
        base = prod // t
        rem = prod % t
    left = give - np.bincount(g, weights=base, minlength=n_groups).astype(np.int64)
    pos = np.arange(len(g))
    order = np.lexsort((pos, -rem, g))
    g_sorted = g[order]
    starts = np.searchsorted(g_sorted, g_sorted, side="left")
    rank = pos - starts
    bonus = np.zeros(len(g), dtype=np.int64)
    bonus[order] = (rank < left[g_sorted]).astype(np.int64)
    out[sl] = base + bonus
    return out
