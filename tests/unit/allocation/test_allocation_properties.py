"""Properties of the allocation engine on random small days (hypothesis)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.allocation.domain import DemandLine, Depot, Plan, Policy, Requester, StockLot
from services.allocation.domain import reasons as rs
from tests.unit.allocation.allocation_support import (
    CAT,
    DAY,
    NO_RESERVE,
    depot,
    distance,
    lot,
    requester,
    run,
)

ITEMS = ("RICE-10KG", "CABBAGE-KG", "POTATO-KG", "CARROT-KG", "VEG-PACK-STD", "MASK-N95")
ASKED = ITEMS + ("BAIJIU-500ML",)
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Day:
    lines: list[DemandLine]
    lots: list[StockLot]
    requesters: list[Requester]
    depots: list[Depot]
    policy: Policy

    def plan(self, **over) -> Plan:
        return run(over.get("lines", self.lines), self.lots, self.requesters, self.depots,
                   self.policy)


@st.composite
def days(draw) -> Day:
    n_req = draw(st.integers(1, 5))
    reqs = [requester(f"R{i}", draw(st.integers(0, 20)), draw(st.integers(0, 20)))
            for i in range(n_req)]
    n_dep = draw(st.integers(1, 3))
    deps = [depot(f"D{j}", draw(st.integers(0, 20)), draw(st.integers(0, 20)))
            for j in range(n_dep)]
    lots = [lot(f"L{k:02d}", f"D{draw(st.integers(0, n_dep - 1))}", draw(st.sampled_from(ITEMS)),
                draw(st.integers(0, 80)), draw(st.integers(-3, 30)))
            for k in range(draw(st.integers(0, 9)))]
    lines = [DemandLine(f"DM{draw(st.integers(0, 4))}", k, f"R{draw(st.integers(0, n_req - 1))}",
                        draw(st.sampled_from(ASKED)), draw(st.integers(1, 60)),
                        draw(st.integers(1, 5)), draw(st.booleans()))
             for k in range(draw(st.integers(1, 14)))]
    floors = draw(st.dictionaries(st.sampled_from(ITEMS), st.integers(0, 60), max_size=3))
    pol = Policy(
        reserve_days=NO_RESERVE, reserve_floor_overrides=floors,
        sourcing=draw(st.sampled_from(("whole_day", "by_tier"))),
        allow_package_substitution=draw(st.booleans()),
        package_rounding=draw(st.sampled_from(("up", "down"))),
        candidate_depots=draw(st.integers(1, 3)),
    )
    return Day(lines, lots, reqs, deps, pol)


def usable(day: Day) -> list[StockLot]:
    first = DAY + timedelta(days=day.policy.min_days_to_expiry)
    return [x for x in day.lots if x.expiry >= first and x.available > 0]


def drawn_by_item(plan: Plan, tiers=None) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for pl in plan.lines:
        if tiers is None or pl.tier in tiers:
            out[pl.item_code] += pl.allocated
            if pl.substitution:
                out[pl.substitution.package_code] += pl.substitution.packages
    return out


@SETTINGS
@given(days())
def test_never_more_than_stock_nor_more_than_asked(day):
    plan = day.plan()
    lots = {x.lot_id: x for x in day.lots}
    ok = {x.lot_id for x in usable(day)}
    for lot_id, q in plan.drawn_by_lot().items():
        assert lot_id in ok, "drew an expired or empty lot"
        assert q <= lots[lot_id].available
    for pl in plan.lines:
        assert 0 <= pl.allocated <= pl.asked
        assert pl.allocated == sum(p.quantity for p in pl.picks)
        assert all(lots[p.lot_id].item_code == pl.item_code for p in pl.picks)
        covers = 0
        if pl.substitution:
            s = pl.substitution
            assert s.packages == sum(p.quantity for p in s.picks) > 0
            assert all(lots[p.lot_id].item_code == s.package_code for p in s.picks)
            assert 0 < s.covers <= min(pl.asked - pl.allocated, s.packages * s.units_per_package)
            covers = s.covers
        assert pl.unmet == pl.asked - pl.allocated - covers >= 0
        assert pl.reasons and all(r.zh and r.en for r in pl.reasons)
        if pl.unmet:
            assert set(pl.codes) & rs.SHORTAGE_CODES, pl
        assert (rs.ABNORMAL_FLAGGED in pl.codes) == pl.flagged_abnormal


@SETTINGS
@given(days())
def test_fill_rates_within_a_tier_are_max_min_fair(day):
    plan = day.plan()
    groups = defaultdict(list)
    for pl in plan.lines:
        groups[(pl.item_code, pl.tier)].append(pl)
    opened = {(s.item_code, s.tier): s.available for s in plan.summaries}
    for key, pls in groups.items():
        if not CAT.items[key[0]].essential:
            assert all(pl.allocated == 0 for pl in pls)
            continue
        short = [pl for pl in pls if pl.allocated < pl.asked]
        for i in short:
            for j in pls:
                # taking a unit from j would not lift j's rate above i's raised one
                assert (j.allocated - 1) * i.asked < (i.allocated + 1) * j.asked, (i, j)
        if short:  # no unit the tier could have had is left unallocated
            assert sum(pl.allocated for pl in pls) == opened[key]


@SETTINGS
@given(days())
def test_tiers_strictly_in_order(day):
    plan = day.plan()
    by_item = defaultdict(list)
    for pl in plan.lines:
        by_item[pl.item_code].append(pl)
    for pls in by_item.values():
        short_tiers = [pl.tier for pl in pls if pl.allocated < pl.asked]
        if short_tiers:
            first_short = min(short_tiers)
            assert all(pl.allocated == 0 for pl in pls if pl.tier > first_short)
    # a tier short of a package directly gets it first: no lower tier gets it as substitute
    for pl in plan.lines:
        if pl.item_code == "VEG-PACK-STD" and pl.allocated < pl.asked:
            assert all(o.substitution is None for o in plan.lines if o.tier > pl.tier)


@settings(SETTINGS, max_examples=40)
@given(days())
def test_a_higher_tier_is_never_worse_off_because_a_lower_tier_exists(day):
    full = {pl.key: pl for pl in day.plan().lines}
    for t in (1, 2, 3, 4):
        kept = [ln for ln in day.lines if ln.tier <= t]
        if not kept or len(kept) == len(day.lines):
            continue
        for pl in day.plan(lines=kept).lines:
            other = full[pl.key]
            assert pl.allocated == other.allocated, (t, pl, other)
            assert pl.substitution is None and other.substitution is None or (
                pl.substitution.packages == other.substitution.packages)


@SETTINGS
@given(days())
def test_reserve_floors_hold_for_ordinary_tiers(day):
    plan = day.plan()
    stock: dict[str, int] = defaultdict(int)
    for x in usable(day):
        stock[x.item_code] += x.available
    ordinary = drawn_by_item(plan, tiers={3, 4, 5})
    everyone = drawn_by_item(plan)
    for code, floor in day.policy.reserve_floor_overrides.items():
        if ordinary.get(code, 0) > 0:
            assert stock[code] - everyone[code] >= floor, code
    below = {d.item_code for d in plan.reserve_draws}
    for code, floor in day.policy.reserve_floor_overrides.items():
        if floor and stock[code] - everyone.get(code, 0) < floor and everyone.get(code, 0):
            # only frontline / vulnerable take an item under its floor, and it is recorded
            assert code in below


@SETTINGS
@given(days())
def test_nearest_depot_first_and_fefo(day):
    plan = day.plan()
    req = {r.id: r for r in day.requesters}
    dep = {d.id: d for d in day.depots}
    left: dict[tuple[str, str], int] = defaultdict(int)
    for x in usable(day):
        left[(x.item_code, x.depot_id)] += x.available
    drawn = plan.drawn_by_lot()
    lots = {x.lot_id: x for x in day.lots}
    for lot_id, q in drawn.items():
        x = lots[lot_id]
        left[(x.item_code, x.depot_id)] -= q
    for pl in plan.lines:
        groups = [(pl.item_code, pl.picks)]
        if pl.substitution:
            groups.append((pl.substitution.package_code, pl.substitution.picks))
        for code, picks in groups:
            dists = [distance(req[pl.requester_id], dep[p.depot_id]) for p in picks]
            assert dists == sorted(dists), "picks are listed nearest first"
            for p in picks:
                used = distance(req[pl.requester_id], dep[p.depot_id])
                for (c, d), q in left.items():
                    if c == code and q > 0:  # a depot with stock left is not nearer
                        assert distance(req[pl.requester_id], dep[d]) >= used - 0.002
    # FEFO: a lot is drawn only when every earlier-expiring lot of its depot is used up
    for x in usable(day):
        if drawn.get(x.lot_id):
            for y in usable(day):
                if ((y.item_code, y.depot_id) == (x.item_code, x.depot_id)
                        and (y.expiry, y.lot_id) < (x.expiry, x.lot_id)):
                    assert drawn.get(y.lot_id, 0) == y.available


@SETTINGS
@given(days(), st.randoms(use_true_random=False))
def test_same_input_same_plan_in_any_order(day, rnd):
    plan = day.plan()
    assert plan == day.plan()
    shuffled = replace(day, lines=rnd.sample(day.lines, len(day.lines)),
                       lots=rnd.sample(day.lots, len(day.lots)),
                       requesters=rnd.sample(day.requesters, len(day.requesters)),
                       depots=rnd.sample(day.depots, len(day.depots)))
    assert shuffled.plan() == plan
    assert [pl.key for pl in plan.lines] == sorted(pl.key for pl in plan.lines)
