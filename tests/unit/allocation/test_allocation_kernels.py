"""The numeric kernels: fair share, least-distance transport, interval overlay."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.fairshare import fair_share
from services.allocation.domain.sourcing import overlay, transport

FAST = settings(max_examples=150, deadline=None, derandomize=True)


@FAST
@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=30), st.integers(0, 3 * 10**6))
def test_fair_share_is_proportional_up_to_one_unit(asks, supply):
    q = np.array(asks)
    a = fair_share(np.zeros(len(q), dtype=np.int64), q, np.array([supply]))
    give = min(supply, int(q.sum()))
    assert int(a.sum()) == give
    assert (a >= 0).all() and (a <= q).all()
    exact = q * give / q.sum()
    assert (np.abs(a - exact) < 1).all()
    for i in range(len(q)):
        if a[i] < q[i]:
            assert ((a - 1) * q[i] < (a[i] + 1) * q).all()


def test_fair_share_ties_go_to_the_first_line_in_order():
    a = fair_share(np.zeros(3, dtype=np.int64), np.array([1, 1, 1]), np.array([2]))
    assert a.tolist() == [1, 1, 0]
    # several groups at once, interleaved
    a = fair_share(np.array([0, 1, 0, 1]), np.array([10, 5, 30, 5]), np.array([20, 100]))
    assert a.tolist() == [5, 5, 15, 5]


def test_fair_share_exact_beyond_int64_products():
    a = fair_share(np.zeros(2, dtype=np.int64), np.array([3 * 10**12, 10**12]),
                   np.array([2 * 10**12]))
    assert a.tolist() == [15 * 10**11, 5 * 10**11]


def _lp_optimum(need, supply, cost):
    import highspy

    nr, nd = cost.shape
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    for _ in range(nr * nd):
        h.addVar(0, inf)
    h.changeColsCost(nr * nd, np.arange(nr * nd, dtype=np.int32), cost.ravel().astype(float))
    for r in range(nr):
        idx = np.arange(r * nd, (r + 1) * nd, dtype=np.int32)
        h.addRow(float(need[r]), float(need[r]), nd, idx, np.ones(nd))
    for d in range(nd):
        idx = np.arange(d, nr * nd, nd, dtype=np.int32)
        h.addRow(-inf, float(supply[d]), nr, idx, np.ones(nr))
    h.run()
    return h.getInfo().objective_function_value


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.data())
def test_transport_is_least_distance(data):
    nr = data.draw(st.integers(1, 6))
    nd = data.draw(st.integers(1, 4))
    need = np.array(data.draw(st.lists(st.integers(1, 30), min_size=nr, max_size=nr)))
    extra = data.draw(st.lists(st.integers(0, 30), min_size=nd, max_size=nd))
    share = np.array(data.draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd)))
    supply = (need.sum() * share // share.sum()) + np.array(extra) + 1
    supply[0] += need.sum()  # always feasible
    cost = np.array(data.draw(st.lists(st.integers(0, 50_000), min_size=nr * nd,
                                       max_size=nr * nd))).reshape(nr, nd)
    k = data.draw(st.integers(1, nd))
    r, d, q, _ = transport(need, supply, cost, k)
    assert np.bincount(r, weights=q, minlength=nr).tolist() == need.tolist()
    assert (np.bincount(d, weights=q, minlength=nd) <= supply).all()
    got = float((cost[r, d] * q).sum())
    best = _lp_optimum(need, supply, cost)
    assert got >= best - 1e-6
    if k == nd:  # all depots offered: optimal (with fewer, only near-optimal is promised)
        assert abs(got - best) <= 1e-6 * max(1.0, best)


def test_overlay_splits_consecutive_quantities():
    # flows of 3 and 4 units starting at 2 against lots of 4, 2, 5 units
    fa, lb, qty = overlay(np.array([2, 5]), np.array([5, 9]), np.cumsum([4, 2, 5]))
    assert list(zip(fa.tolist(), lb.tolist(), qty.tolist(), strict=True)) == [
        (0, 0, 2), (0, 1, 1), (1, 1, 1), (1, 2, 3)]
