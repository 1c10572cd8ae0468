"""Worked cases of the allocation engine, with answers computed by hand."""

from __future__ import annotations

import pytest

from services.allocation.domain import Policy, ReserveDraw, reserve_floors
from services.allocation.domain import reasons as rs
from services.common.errors import InvalidInput
from tests.unit.allocation.allocation_support import (
    CAT,
    DAY,
    depot,
    line,
    lot,
    policy,
    requester,
    run,
)


def picks(pl):
    return [(p.depot_id, p.lot_id, p.quantity) for p in pl.picks]


def test_hospital_first_then_villages_at_one_fill_rate():
    """100 bags: hospital (tier 1) asks 30, villages (tier 3) ask 50 and 100.

    Hospital 30. Villages share 70 at rate 70/150: 23.33 and 46.67 → floors 23 and 46, the
    unit left goes to the larger remainder (0.67): 23 and 47. Not 35/35.
    """
    reqs = [requester("H1", 1, 0, kind="hospital"), requester("V1", 2, 0), requester("V2", 3, 0)]
    lines = [line("H1", "RICE-10KG", 30, tier=1), line("V1", "RICE-10KG", 50, tier=3),
             line("V2", "RICE-10KG", 100, tier=3)]
    plan = run(lines, [lot("L1", "D1", "RICE-10KG", 100)], reqs, [depot("D1")])
    got = {pl.requester_id: pl.allocated for pl in plan.lines}
    assert got == {"H1": 30, "V1": 23, "V2": 47}
    v1 = next(pl for pl in plan.lines if pl.requester_id == "V1")
    assert v1.unmet == 27
    assert rs.FAIR_SHARE in v1.codes and rs.TIER_ORDER in v1.codes
    h1 = next(pl for pl in plan.lines if pl.requester_id == "H1")
    assert rs.FAIR_SHARE not in h1.codes and h1.unmet == 0
    assert picks(h1) == [("D1", "L1", 30)]
    for pl in plan.lines:
        for r in pl.reasons:
            assert r.zh and r.en
    fair = next(r for r in v1.reasons if r.code == rs.FAIR_SHARE)
    assert "70/150" in fair.en and "46.7%" in fair.en and "满足率" in fair.zh


def test_tiers_strictly_in_order():
    reqs = [requester("A"), requester("B")]
    lines = [line("A", "OIL-5L", 10, tier=4), line("B", "OIL-5L", 10, tier=3)]
    plan = run(lines, [lot("L1", "D1", "OIL-5L", 15)], reqs, [depot("D1")])
    got = {pl.tier: pl.allocated for pl in plan.lines}
    assert got == {3: 10, 4: 5}
    t4 = next(pl for pl in plan.lines if pl.tier == 4)
    tier_reason = next(r for r in t4.reasons if r.code == rs.TIER_ORDER)
    assert "higher tiers drew 10" in tier_reason.en


def test_nearer_depot_runs_out_mid_plan_so_the_next_nearest_serves():
    """D1 (0,0) holds 40, D2 (10,0) holds 100. Hospital at (4.5,0), village at (0,1).

    by_tier: the hospital (tier 1) takes 30 from its nearest D1, the village (tier 3) then
    finds 10 left at D1 and gets 20 from D2: [(D1,10), (D2,20)], NEXT_DEPOT.
    whole_day: least total distance sends the village (1 km from D1, 10 km from D2) all of
    D1's 30 and the hospital (4.5 / 5.5 km) 10 from D1 and 20 from D2: 185 vs 346 unit-km.
    """
    reqs = [requester("H1", 4.5, 0, kind="hospital"), requester("V1", 0, 1)]
    deps = [depot("D1", 0, 0), depot("D2", 10, 0)]
    lots = [lot("L1", "D1", "FLOUR-5KG", 40), lot("L2", "D2", "FLOUR-5KG", 100)]
    lines = [line("H1", "FLOUR-5KG", 30, tier=1), line("V1", "FLOUR-5KG", 30, tier=3)]

    plan = run(lines, lots, reqs, deps, policy(sourcing="by_tier"))
    h1, v1 = (next(pl for pl in plan.lines if pl.requester_id == r) for r in ("H1", "V1"))
    assert picks(h1) == [("D1", "L1", 30)]
    assert picks(v1) == [("D1", "L1", 10), ("D2", "L2", 20)]
    assert v1.depot_ids == ("D1", "D2")
    assert rs.NEXT_DEPOT in v1.codes and rs.NEXT_DEPOT not in h1.codes
    assert next(r for r in v1.reasons if r.code == rs.NEXT_DEPOT).en.startswith(
        "The nearest depot D1")

    plan = run(lines, lots, reqs, deps, policy(sourcing="whole_day"))
    h1, v1 = (next(pl for pl in plan.lines if pl.requester_id == r) for r in ("H1", "V1"))
    assert picks(v1) == [("D1", "L1", 30)]
    assert picks(h1) == [("D1", "L1", 10), ("D2", "L2", 20)]


def test_one_requester_split_nearest_first():
    reqs = [requester("V1", 0, 0)]
    deps = [depot("FAR", 20, 0), depot("NEAR", 1, 0)]
    lots = [lot("LF", "FAR", "SALT-500G", 100), lot("LN", "NEAR", "SALT-500G", 10)]
    plan = run([line("V1", "SALT-500G", 30)], lots, reqs, deps)
    assert picks(plan.lines[0]) == [("NEAR", "LN", 10), ("FAR", "LF", 20)]


def test_lots_first_expiry_first_out():
    lots = [lot("A", "D1", "NOODLE-1KG", 10, days_left=30),
            lot("B", "D1", "NOODLE-1KG", 10, days_left=10),
            lot("C", "D1", "NOODLE-1KG", 10, days_left=20)]
    plan = run([line("V1", "NOODLE-1KG", 15)], lots, [requester("V1")], [depot("D1")])
    assert picks(plan.lines[0]) == [("D1", "B", 10), ("D1", "C", 5)]
    assert rs.FEFO in plan.lines[0].codes


def test_expired_lot_excluded_and_same_day_expiry_excluded_by_default():
    lots = [lot("X", "D1", "EGG-30", 50, days_left=-1),
            lot("Y", "D1", "EGG-30", 50, days_left=0),
            lot("Z", "D1", "EGG-30", 10, days_left=5)]
    plan = run([line("V1", "EGG-30", 30)], lots, [requester("V1")], [depot("D1")])
    pl = plan.lines[0]
    assert picks(pl) == [("D1", "Z", 10)]
    assert pl.unmet == 20
    assert plan.excluded_lots == ("X", "Y")
    assert rs.EXPIRED_EXCLUDED in pl.codes and rs.FAIR_SHARE in pl.codes
    assert any(w.code == rs.EXPIRED_EXCLUDED for w in plan.warnings)
    # a county that accepts a lot expiring on the delivery day says so in its policy
    plan = run([line("V1", "EGG-30", 30)], lots, [requester("V1")], [depot("D1")],
               policy(min_days_to_expiry=0))
    assert picks(plan.lines[0]) == [("D1", "Y", 30)]
    assert plan.excluded_lots == ("X",)


def test_only_expired_stock_means_no_stock():
    lots = [lot("X", "D1", "EGG-30", 50, days_left=-3)]
    plan = run([line("V1", "EGG-30", 5)], lots, [requester("V1")], [depot("D1")])
    pl = plan.lines[0]
    assert pl.allocated == 0 and pl.unmet == 5 and pl.picks == ()
    assert {rs.NO_STOCK, rs.EXPIRED_EXCLUDED} <= set(pl.codes)
    assert rs.NEAREST_DEPOT not in pl.codes


def test_reserve_floor_blocks_tier_5_while_tier_2_draws_below_with_a_warning():
    """Population 1000 × rice 0.04 bag/day × 15 days = floor 600 bags. Stock 650."""
    reqs = [requester("P", population=1000), requester("V2"), requester("V5")]
    pol = Policy()
    floors = reserve_floors(reqs, pol, CAT, ["RICE-10KG"])
    assert floors["RICE-10KG"].quantity == 600
    stock = [lot("L1", "D1", "RICE-10KG", 650)]

    alone = run([line("V5", "RICE-10KG", 100, tier=5)], stock, reqs, [depot("D1")], pol)
    pl = alone.lines[0]
    assert pl.allocated == 50 and pl.unmet == 50
    assert rs.RESERVE_FLOOR in pl.codes
    assert "600" in next(r for r in pl.reasons if r.code == rs.RESERVE_FLOOR).en
    assert alone.reserve_draws == ()

    plan = run([line("V2", "RICE-10KG", 100, tier=2), line("V5", "RICE-10KG", 20, tier=5)],
               stock, reqs, [depot("D1")], pol)
    v2, v5 = (next(pl for pl in plan.lines if pl.requester_id == r) for r in ("V2", "V5"))
    assert v2.allocated == 100 and rs.RESERVE_DRAW in v2.codes
    assert v5.allocated == 0 and v5.unmet == 20
    assert rs.RESERVE_FLOOR in v5.codes and rs.FAIR_SHARE not in v5.codes
    assert plan.reserve_draws == (ReserveDraw("RICE-10KG", "grain_oil", 2, 600, 650, 550),)
    assert plan.reserve_draws[0].below_floor == 50
    warn = next(w for w in plan.warnings if w.code == "RESERVE_DRAWN")
    assert "650" in warn.en and "550" in warn.en and "储备" in warn.zh


def test_standard_vegetable_package_when_cabbage_is_short():
    """Cabbage 10 kg for asks 30 and 10 (tier 3): rate 1/4 → 7.5 and 2.5 → 7 and 2, the unit
    left goes to V1 (equal remainders, lower requester id): 8 and 2. Unmet 22 and 8 kg; the
    vegetable package holds 2 kg cabbage → asks of 11 and 4 packages; 6 in stock → rate 6/15
    → 4.4 and 1.6 → 4 and 1, remainder .6 wins: V1 4, V2 2. Covered 8 and 4 kg.
    """
    reqs = [requester("V1"), requester("V2")]
    stock = [lot("C1", "D1", "CABBAGE-KG", 10), lot("P1", "D1", "VEG-PACK-STD", 6)]
    lines = [line("V1", "CABBAGE-KG", 30, tier=3), line("V2", "CABBAGE-KG", 10, tier=3)]
    plan = run(lines, stock, reqs, [depot("D1")])
    v1, v2 = (next(pl for pl in plan.lines if pl.requester_id == r) for r in ("V1", "V2"))
    assert (v1.allocated, v2.allocated) == (8, 2)
    assert v1.substitution.package_code == "VEG-PACK-STD"
    assert (v1.substitution.packages, v2.substitution.packages) == (4, 2)
    assert v1.substitution.units_per_package == 2
    assert (v1.substitution.covers, v2.substitution.covers) == (8, 4)
    assert (v1.unmet, v2.unmet) == (14, 4)
    assert [(p.lot_id, p.quantity) for p in v1.substitution.picks] == [("P1", 4)]
    assert rs.PACKAGE_SUBSTITUTE in v1.codes
    assert plan.drawn_by_lot() == {"C1": 10, "P1": 6}
    summary = {(s.item_code, s.tier): s for s in plan.summaries}
    assert summary[("VEG-PACK-STD", 3)].substituted_packages == 6

    plenty = [lot("C1", "D1", "CABBAGE-KG", 10), lot("P1", "D1", "VEG-PACK-STD", 100)]
    plan = run(lines, plenty, reqs, [depot("D1")])
    assert all(pl.unmet == 0 for pl in plan.lines)
    assert {pl.requester_id: pl.substitution.packages for pl in plan.lines} == {"V1": 11, "V2": 4}

    plan = run(lines, plenty, reqs, [depot("D1")], policy(allow_package_substitution=False))
    assert all(pl.substitution is None for pl in plan.lines)


def test_package_rounding_down_never_over_issues():
    stock = [lot("P1", "D1", "VEG-PACK-STD", 100)]
    lines = [line("V1", "CABBAGE-KG", 5, tier=3)]
    up = run(lines, stock, [requester("V1")], [depot("D1")])
    assert up.lines[0].substitution.packages == 3 and up.lines[0].unmet == 0
    down = run(lines, stock, [requester("V1")], [depot("D1")], policy(package_rounding="down"))
    assert down.lines[0].substitution.packages == 2 and down.lines[0].unmet == 1


def test_substitution_serves_a_higher_tier_before_a_lower_tiers_direct_package_demand():
    stock = [lot("P1", "D1", "VEG-PACK-STD", 5)]
    lines = [line("H1", "CABBAGE-KG", 6, tier=1), line("V1", "VEG-PACK-STD", 5, tier=4)]
    plan = run(lines, stock, [requester("H1"), requester("V1")], [depot("D1")])
    h1, v1 = (next(pl for pl in plan.lines if pl.requester_id == r) for r in ("H1", "V1"))
    assert h1.substitution.packages == 3 and v1.allocated == 2


def test_abnormal_line_is_allocated_normally_and_flagged():
    lines = [line("V1", "MASK-N95", 40, abnormal=True), line("V2", "MASK-N95", 40)]
    plan = run(lines, [lot("L1", "D1", "MASK-N95", 40)], [requester("V1"), requester("V2")],
               [depot("D1")])
    got = {pl.requester_id: pl.allocated for pl in plan.lines}
    assert got == {"V1": 20, "V2": 20}
    assert [pl.requester_id for pl in plan.flagged()] == ["V1"]
    assert rs.ABNORMAL_FLAGGED in plan.flagged()[0].codes


def test_non_essentials_are_not_allocated():
    plan = run([line("V1", "BAIJIU-500ML", 2)], [lot("L1", "D1", "BAIJIU-500ML", 50)],
               [requester("V1")], [depot("D1")])
    pl = plan.lines[0]
    assert pl.allocated == 0 and pl.unmet == 2 and pl.codes == (rs.NON_ESSENTIAL,)


def test_every_unmet_unit_says_why_and_lines_are_sorted():
    reqs = [requester("A"), requester("B")]
    lines = [line("B", "OIL-5L", 10, tier=3, demand_id="Z"), line("A", "OIL-5L", 10, tier=4,
             demand_id="A"), line("A", "SOAP-BAR", 3, tier=5, demand_id="A", line_no=2)]
    plan = run(lines, [lot("L1", "D1", "OIL-5L", 12)], reqs, [depot("D1")])
    assert [pl.key for pl in plan.lines] == [("A", 1), ("A", 2), ("Z", 1)]
    assert plan.line("A", 2).item_code == "SOAP-BAR"
    for pl in plan.lines:
        if pl.unmet:
            assert set(pl.codes) & rs.SHORTAGE_CODES
    with pytest.raises(KeyError):
        plan.line("nope", 1)


def test_default_reserve_days_come_from_the_catalogue_groups():
    reqs = [requester("P", population=10_000)]
    floors = reserve_floors(reqs, Policy(), CAT)
    assert floors["RICE-10KG"].reserve_days == 15 and floors["RICE-10KG"].quantity == 6000
    assert floors["PORK-KG"].reserve_days == 3 and floors["PORK-KG"].quantity == 2100
    assert floors["POTATO-KG"].reserve_days == 7 and floors["POTATO-KG"].quantity == 10500
    assert floors["MASK-N95"].reserve_days == 30 and floors["MASK-N95"].quantity == 30000
    assert "EGG-30" not in floors and "VEG-PACK-STD" not in floors
    over = reserve_floors(reqs, Policy(reserve_floor_overrides={"EGG-30": 7}), CAT)
    assert over["EGG-30"].quantity == 7


def test_absolute_floors_raise_the_days_floor_never_lower_it():
    """An item code's absolute floor before its group's; max(days floor, absolute floor)."""
    reqs = [requester("P", population=10_000)]
    floors = reserve_floors(reqs, Policy(absolute_floors={
        "RICE-10KG": 8000, "pork": 1000, "vegetables": 20_000, "POTATO-KG": 500, "eggs": 40}), CAT)
    assert (floors["RICE-10KG"].quantity, floors["RICE-10KG"].by_absolute) == (8000, True)
    assert (floors["PORK-KG"].quantity, floors["PORK-KG"].by_absolute) == (2100, False)  # 3 days
    assert floors["CABBAGE-KG"].quantity == 20_000  # the group's floor, above 7 days' 14 000
    assert floors["POTATO-KG"].quantity == 10500  # its own 500 replaces the group's; days win
    assert floors["EGG-30"].quantity == 40 and floors["EGG-30"].reserve_days == 0


@pytest.mark.parametrize("bad, field", [
    (lambda: ([line("NOBODY", "OIL-5L", 1)], []), "demands[0].requester_id"),
    (lambda: ([line("V1", "OIL-5L", 0)], []), "demands[0].quantity"),
    (lambda: ([line("V1", "OIL-5L", 2.5)], []), "demands[0].quantity"),
    (lambda: ([line("V1", "NOT-AN-ITEM", 1)], []), "demands[0].item_code"),
    (lambda: ([line("V1", "OIL-5L", 1, tier=9)], []), "demands[0].tier"),
    (lambda: ([line("V1", "OIL-5L", 1, demand_id="D", line_no=1),
               line("V1", "OIL-5L", 2, demand_id="D", line_no=1)], []), "demands[1]"),
    (lambda: ([], [lot("L", "NOWHERE", "OIL-5L", 1)]), "stock[L].depot_id"),
    (lambda: ([], [lot("L", "D1", "OIL-5L", -1)]), "stock[L].available"),
    (lambda: ([], [lot("L", "D1", "OIL-5L", 1.5)]), "stock[L].available"),
])
def test_bad_input_names_the_field(bad, field):
    lines, lots = bad()
    with pytest.raises(InvalidInput) as e:
        run(lines, lots, [requester("V1")], [depot("D1")])
    assert e.value.field == field


def test_empty_day():
    plan = run([], [lot("L1", "D1", "OIL-5L", 3)], [requester("V1")], [depot("D1")])
    assert plan.lines == () and plan.delivery_day == DAY
