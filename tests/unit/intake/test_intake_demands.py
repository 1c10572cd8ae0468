from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.intake.domain import (
    DemandOrigin,
    DemandPolicy,
    DemandStatus,
    LineRuleRefused,
    RequestedLine,
    Tier,
    apply_delivery_results,
    build_lines,
    cancel_demand,
    derive_tier,
    notices,
    submit_demand,
)
from tests.unit.intake.intake_support import local

D = date(2026, 11, 28)
MORNING = local(2026, 11, 28, 9)


def submit(requester, catalogue, lines, *, at=MORNING, day=None, policy=None, demand_id="DM-1"):
    return submit_demand(demand_id=demand_id, requester=requester, lines=lines,
                         catalogue=catalogue, policy=policy or DemandPolicy(), at=at,
                         delivery_day=day)


def line(code, qty, note=""):
    return {"item_code": code, "quantity": qty, "note": note}


# --- tiers -------------------------------------------------------------------------------

def test_tier_order():
    assert [t.value for t in sorted(Tier)] == [1, 2, 3, 4, 5]
    assert Tier.FRONTLINE_MEDICAL < Tier.VULNERABLE < Tier.SEALED_AREA < Tier.CONTROLLED_AREA < Tier.GENERAL
    assert Tier.SEALED_AREA.label == "sealed_area"


@pytest.mark.parametrize("unit_type", ["hospital", "fever_clinic", "isolation_site"])
def test_frontline_units_are_tier_1(make_unit, unit_type):
    assert derive_tier(make_unit(unit_type)) is Tier.FRONTLINE_MEDICAL


def test_nursing_home_is_vulnerable(make_unit):
    assert derive_tier(make_unit("nursing_home")) is Tier.VULNERABLE


def test_an_ordinary_line_of_a_special_need_item_keeps_its_requesters_tier(
        sealed_village, prevention_village, make_unit, catalogue, policy):
    """RULES §3.2: the tier follows the line's origin, not the item."""
    formula = [RequestedLine("FORMULA-STAGE1", 30)]
    tiers = [build_lines(formula, r, catalogue, policy)[0].tier
             for r in (sealed_village, prevention_village, make_unit("school"), make_unit("hospital"))]
    assert tiers == [Tier.SEALED_AREA, Tier.GENERAL, Tier.GENERAL, Tier.FRONTLINE_MEDICAL]


def test_area_tiers_follow_risk_level(sealed_village, controlled_community, prevention_village):
    assert derive_tier(sealed_village) is Tier.SEALED_AREA
    assert derive_tier(controlled_community) is Tier.CONTROLLED_AREA
    assert derive_tier(prevention_village) is Tier.GENERAL


@pytest.mark.parametrize("unit_type", ["school", "enterprise"])
def test_schools_and_enterprises_are_general(make_unit, unit_type):
    assert derive_tier(make_unit(unit_type)) is Tier.GENERAL


def test_caller_cannot_choose_the_tier(prevention_village, catalogue):
    d = submit(prevention_village, catalogue, [{"item_code": "RICE-10KG", "quantity": 5, "tier": 1}])
    assert d.lines[0].tier is Tier.GENERAL


# --- submission ----------------------------------------------------------------------------

def test_submit_demand(sealed_village, catalogue):
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 30, "东头"), line("FORMULA-STAGE1", 4)])
    assert (d.id, d.requester_id, d.delivery_day, d.status) == ("DM-1", "V-001", D, DemandStatus.OPEN)
    assert (d.requested_day, d.rolled_over, d.origin) == (None, False, DemandOrigin.DIRECT)
    assert d.cutoff_at == local(2026, 11, 28, 11)
    assert [(ln.line_no, ln.item_code, ln.quantity, ln.tier) for ln in d.lines] == [
        (0, "RICE-10KG", 30, Tier.SEALED_AREA), (1, "FORMULA-STAGE1", 4, Tier.SEALED_AREA)]
    assert d.lines[0].note == "东头"
    assert d.top_tier is Tier.SEALED_AREA


def test_submit_at_cutoff_rolls_over(sealed_village, catalogue):
    ok = submit(sealed_village, catalogue, [line("RICE-10KG", 1)],
                at=local(2026, 11, 28, 10, 59, 59), day=D)
    late = submit(sealed_village, catalogue, [line("RICE-10KG", 1)],
                  at=local(2026, 11, 28, 11, 0, 0), day="2026-11-28")
    assert (ok.delivery_day, ok.rolled_over) == (D, False)
    assert (late.delivery_day, late.requested_day, late.rolled_over) == (date(2026, 11, 29), D, True)
    assert late.cutoff_at == local(2026, 11, 29, 11)


def test_submit_with_utc_instant(sealed_village, catalogue):
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 1)],
               at=datetime(2026, 11, 28, 3, 0, tzinfo=UTC), day=D)
    assert d.rolled_over and d.delivery_day == date(2026, 11, 29)


@pytest.mark.parametrize("day,msg", [("2026-11-27", "in the past"), ("2026-13-01", "YYYY-MM-DD"),
                                     ("tomorrow", "YYYY-MM-DD")])
def test_bad_delivery_day(sealed_village, catalogue, day, msg):
    with pytest.raises(InvalidInput, match=msg) as e:
        submit(sealed_village, catalogue, [line("RICE-10KG", 1)], day=day)
    assert e.value.field == "delivery_day"


def test_standard_package_may_be_demanded(sealed_village, catalogue):
    d = submit(sealed_village, catalogue, [line("VEG-PACK-STD", 100)])
    assert d.lines[0].item_code == "VEG-PACK-STD" and d.lines[0].tier is Tier.SEALED_AREA


def test_proto_like_lines_and_lowercase_codes(sealed_village, catalogue):
    d = submit(sealed_village, catalogue, [SimpleNamespace(item_code="rice-10kg", quantity=3, note="")])
    assert d.lines[0].item_code == "RICE-10KG"


# --- refusals ------------------------------------------------------------------------------

def test_a_non_essential_or_unknown_line_is_left_out_and_the_rest_accepted(sealed_village, catalogue,
                                                                          policy):
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 10), line("CIGARETTES-CARTON", 2),
                                           line("NOPE-1", 1), line("OIL-5L", 1)])
    assert [(ln.line_no, ln.item_code) for ln in d.lines] == [(0, "RICE-10KG"), (3, "OIL-5L")]
    assert [(r.line_no, r.item_code, r.field, r.code) for r in d.refused_lines] == [
        (1, "CIGARETTES-CARTON", "lines[1].item_code", "NON_ESSENTIAL"),
        (2, "NOPE-1", "lines[2].item_code", "UNKNOWN_ITEM")]
    assert "烟酒等非必须品除外" in d.refused_lines[0].zh and "non-essential" in d.refused_lines[0].en
    assert [n.code for n in notices(d, policy)] == ["NON_ESSENTIAL", "UNKNOWN_ITEM"]


def test_a_demand_whose_every_line_is_refused_raises_the_first_lines_error(sealed_village, catalogue):
    with pytest.raises(RuleRefused) as e:
        submit(sealed_village, catalogue, [line("CIGARETTES-CARTON", 2), line("NOPE-1", 1)])
    err = e.value
    assert err.rule == "NON_ESSENTIAL"
    assert isinstance(err, LineRuleRefused) and err.field == "lines[0].item_code"
    assert "烟酒等非必须品除外" in err.message and "non-essential" in err.message


@pytest.mark.parametrize("lines,field", [
    ([line("NOPE-1", 1)], "lines[0].item_code"),
    ([line("RICE-10KG", 1), {"quantity": 1}], "lines[1].item_code"),
    ([line("RICE-10KG", 0)], "lines[0].quantity"),
    ([line("RICE-10KG", -3)], "lines[0].quantity"),
    ([line("RICE-10KG", 2.5)], "lines[0].quantity"),
    ([line("RICE-10KG", "two")], "lines[0].quantity"),
    ([line("RICE-10KG", True)], "lines[0].quantity"),
    ([line("RICE-10KG", None)], "lines[0].quantity"),
    ([line("RICE-10KG", 1_000_001)], "lines[0].quantity"),
    ([line("RICE-10KG", 1, "x" * 201)], "lines[0].note"),
    ([line("OIL-5L", 1), line("RICE-10KG", 1), line("RICE-10KG", 2)], "lines[2].item_code"),
    ([], "lines"),
])
def test_bad_lines_name_the_field(sealed_village, catalogue, lines, field):
    with pytest.raises(InvalidInput) as e:
        submit(sealed_village, catalogue, lines)
    assert e.value.field == field


def test_duplicate_item_message_points_at_first_line(sealed_village, catalogue):
    with pytest.raises(InvalidInput, match=r"RICE-10KG repeats lines\[0\]"):
        submit(sealed_village, catalogue, [line("RICE-10KG", 1), line("RICE-10KG", 2)])


def test_quantity_bounds_come_from_policy(sealed_village, catalogue):
    p = DemandPolicy(max_quantity=10, max_lines=1)
    assert submit(sealed_village, catalogue, [line("RICE-10KG", 10)], policy=p).lines[0].quantity == 10
    with pytest.raises(InvalidInput, match="must be <= 10"):
        submit(sealed_village, catalogue, [line("RICE-10KG", 11)], policy=p)
    with pytest.raises(InvalidInput, match="at most 1 lines") as e:
        submit(sealed_village, catalogue, [line("RICE-10KG", 1), line("OIL-5L", 1)], policy=p)
    assert e.value.field == "lines"


def test_default_quantity_limit_is_one_million(sealed_village, catalogue):
    assert submit(sealed_village, catalogue, [line("RICE-10KG", 1_000_000)]).lines[0].quantity == 1_000_000


# --- over-norm flags ---------------------------------------------------------------------

def test_area_over_norm_flag(sealed_village, catalogue):
    # rice 0.04 bag/person/day × 1000 people = 40 bags; flagged above 3 × 40 = 120
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 120), line("OIL-5L", 18)])
    assert d.lines[0].norm_quantity == 40 and not d.lines[0].flagged and not d.flagged
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 121)])
    assert d.lines[0].flagged and d.flagged


def test_cycle_days_scale_the_norm(sealed_village, catalogue):
    p = DemandPolicy(cycle_days=3)
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 360), line("FLOUR-5KG", 271)], policy=p)
    assert d.lines[0].norm_quantity == 120 and not d.lines[0].flagged
    assert d.lines[1].norm_quantity == 90 and d.lines[1].flagged


def test_unit_medical_lines_flagged_against_headcount(make_unit, catalogue):
    hospital = make_unit("hospital")  # headcount 100 + 50 beds
    # N95 0.1 piece/person/day × 150 = 15; flagged above 45
    d = submit(hospital, catalogue, [line("MASK-N95", 45), line("MASK-SURGICAL-50", 10)])
    assert [ln.flagged for ln in d.lines] == [False, True]  # surgical: 0.02 × 150 = 3, limit 9
    d = submit(hospital, catalogue, [line("MASK-N95", 46)])
    assert d.lines[0].flagged
    staff_only = DemandPolicy(unit_basis_includes_beds=False)  # limit 3 × 10 = 30
    assert submit(hospital, catalogue, [line("MASK-N95", 31)], policy=staff_only).lines[0].flagged


def test_items_without_norm_are_never_flagged(make_unit, catalogue):
    d = submit(make_unit("fever_clinic"), catalogue, [line("GOWN-PROTECTIVE", 50_000)])
    assert d.lines[0].norm_quantity is None and not d.lines[0].flagged


# --- cancel --------------------------------------------------------------------------------

def test_cancel_before_cutoff(sealed_village, catalogue):
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 1)])
    c = cancel_demand(d, local(2026, 11, 28, 10, 59, 59), "duplicate")
    assert c.status is DemandStatus.CANCELLED and c.cancel_reason == "duplicate"
    assert c.closed_at == local(2026, 11, 28, 10, 59, 59)


def test_cancel_at_cutoff_is_refused(sealed_village, catalogue):
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 1)])
    with pytest.raises(RuleRefused) as e:
        cancel_demand(d, datetime(2026, 11, 28, 3, 0, tzinfo=UTC))
    assert e.value.rule == "CUTOFF_PASSED"


def test_cancel_rolled_demand_uses_its_own_cutoff(sealed_village, catalogue):
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 1)], at=local(2026, 11, 28, 11, 30), day=D)
    assert cancel_demand(d, local(2026, 11, 28, 18)).status is DemandStatus.CANCELLED


def test_cancel_twice_is_refused(sealed_village, catalogue):
    d = cancel_demand(submit(sealed_village, catalogue, [line("RICE-10KG", 1)]), MORNING)
    with pytest.raises(RuleRefused) as e:
        cancel_demand(d, MORNING)
    assert e.value.rule == "DEMAND_NOT_OPEN"


# --- delivery results ----------------------------------------------------------------------

EVENING = local(2026, 11, 28, 18)


def three_lines(requester, catalogue):
    return submit(requester, catalogue,
                  [line("RICE-10KG", 30), line("OIL-5L", 10, "5L"), line("FORMULA-STAGE1", 4)])


def test_all_delivered_is_fulfilled(sealed_village, catalogue, policy):
    d = three_lines(sealed_village, catalogue)
    out = apply_delivery_results(d, {"RICE-10KG": 30, "OIL-5L": 12, "FORMULA-STAGE1": 4},
                                 at=EVENING, policy=policy, carry_over_id="DM-2")
    assert out.demand.status is DemandStatus.FULFILLED and out.carry_over is None
    assert out.demand.closed_at == EVENING and out.demand.carry_over_demand_id is None
    assert [ln.delivered for ln in out.demand.lines] == [30, 12, 4]


def test_partial_delivery_carries_the_remainder_to_the_next_day(sealed_village, catalogue, policy):
    d = three_lines(sealed_village, catalogue)
    out = apply_delivery_results(d, {"RICE-10KG": 20, "OIL-5L": 10}, at=EVENING, policy=policy,
                                 carry_over_id="DM-2")
    assert out.demand.status is DemandStatus.PARTLY_FULFILLED
    assert out.demand.carry_over_demand_id == "DM-2"
    assert [(ln.delivered, ln.remainder) for ln in out.demand.lines] == [(20, 10), (10, 0), (0, 4)]
    c = out.carry_over
    assert (c.id, c.status, c.origin, c.origin_ref) == ("DM-2", DemandStatus.OPEN,
                                                         DemandOrigin.CARRY_OVER, "DM-1")
    assert c.delivery_day == date(2026, 11, 29) and c.cutoff_at == local(2026, 11, 29, 11)
    assert [(ln.line_no, ln.item_code, ln.quantity, ln.tier, ln.delivered) for ln in c.lines] == [
        (0, "RICE-10KG", 10, Tier.SEALED_AREA, None), (1, "FORMULA-STAGE1", 4, Tier.SEALED_AREA, None)]


def test_nothing_delivered_is_rolled(sealed_village, catalogue, policy):
    d = three_lines(sealed_village, catalogue)
    out = apply_delivery_results(d, {}, at=EVENING, policy=policy, carry_over_id="DM-2")
    assert out.demand.status is DemandStatus.ROLLED
    assert [ln.quantity for ln in out.carry_over.lines] == [30, 10, 4]
    assert out.carry_over.lines[1].note == "5L"


def test_late_results_skip_days_whose_cutoff_passed(sealed_village, catalogue, policy):
    d = three_lines(sealed_village, catalogue)
    out = apply_delivery_results(d, {"RICE-10KG": 1}, at=local(2026, 11, 29, 14), policy=policy,
                                 carry_over_id="DM-2")
    assert out.carry_over.delivery_day == date(2026, 11, 30)


def test_delivery_results_are_validated(sealed_village, catalogue, policy):
    d = three_lines(sealed_village, catalogue)
    with pytest.raises(InvalidInput) as e:
        apply_delivery_results(d, {"PORK-KG": 1}, at=EVENING, policy=policy, carry_over_id="x")
    assert e.value.field == "delivered[PORK-KG]"
    with pytest.raises(InvalidInput) as e:
        apply_delivery_results(d, {"OIL-5L": -1}, at=EVENING, policy=policy, carry_over_id="x")
    assert e.value.field == "delivered[OIL-5L]"


def test_results_only_for_open_demands(sealed_village, catalogue, policy):
    d = three_lines(sealed_village, catalogue)
    closed = apply_delivery_results(d, {}, at=EVENING, policy=policy, carry_over_id="x").demand
    with pytest.raises(RuleRefused, match="DEMAND_NOT_OPEN"):
        apply_delivery_results(closed, {}, at=EVENING, policy=policy, carry_over_id="y")
    with pytest.raises(RuleRefused, match="DEMAND_NOT_OPEN"):
        apply_delivery_results(cancel_demand(d, MORNING), {}, at=EVENING, policy=policy,
                               carry_over_id="y")


def test_notices_explain_rollover_and_flags(sealed_village, catalogue, policy):
    from services.intake.domain import notices
    d = submit(sealed_village, catalogue, [line("RICE-10KG", 121), line("OIL-5L", 1)],
               at=local(2026, 11, 28, 11, 30), day=D)
    codes = [(n.code, n.en) for n in notices(d, policy)]
    assert codes[0][0] == "ROLLED_OVER" and "moved to 2026-11-29" in codes[0][1]
    assert codes[1][0] == "OVER_NORM" and "RICE-10KG: 121 is more than 3 × the per-capita norm (40)" in codes[1][1]
    assert len(codes) == 2
    assert notices(submit(sealed_village, catalogue, [line("OIL-5L", 1)]), policy) == ()
