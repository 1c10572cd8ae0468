"""Forecast (改进均值偏差法), moving-average baseline, material classes, abnormal requisitions."""

from __future__ import annotations

import math

import pytest

from services.allocation.domain.forecast import (
    AbnormalPolicy,
    ForecastPolicy,
    check_abnormal,
    classify_material,
    classify_plan_items,
    epidemic_coefficient,
    flag_abnormal,
    forecast_demand,
    moving_average_backtest,
    remove_outliers,
)
from services.common.catalogue import load_catalogue
from services.common.errors import InvalidInput
from tests.unit.allocation.allocation_support import line, requester


def test_outliers_removed_by_tukey_fences():
    sample = [10, 12, 11, 13, 12, 11, 95, 12]
    c = remove_outliers(sample)
    assert c.removed == (6,)
    assert 95 not in c.kept and len(c.kept) == 7


def test_outliers_removed_by_median_absolute_deviation():
    sample = [10, 12, 11, 13, 12, 11, 40, 12]
    c = remove_outliers(sample, ForecastPolicy(outlier_method="mad"))
    assert c.removed == (6,)
    flat = remove_outliers([5, 5, 5, 5, 30, 5], ForecastPolicy(outlier_method="mad"))
    assert flat.removed == (4,)
    short = remove_outliers([1, 100], ForecastPolicy())
    assert short.removed == ()


def test_forecast_is_mean_plus_safety_stock_times_epidemic_coefficient():
    sample = [10, 12, 11, 13, 12, 11, 95, 12]  # 95 is removed first
    kept = [10, 12, 11, 13, 12, 11, 12]
    mean = sum(kept) / 7
    sigma = math.sqrt(sum((x - mean) ** 2 for x in kept) / 6)
    coeff = epidemic_coefficient([30, 36], [15, 18])  # 33 / 16.5 = 2
    assert coeff == pytest.approx(2.0)
    f = forecast_demand(sample, coeff, ForecastPolicy(safety_z=1.65, lead_time_days=4))
    assert f.mean == pytest.approx(mean)
    assert f.sigma == pytest.approx(sigma)
    assert f.safety_stock == pytest.approx(1.65 * sigma * 2)
    assert f.demand == pytest.approx((mean + 1.65 * sigma * 2) * 2)
    assert f.quantity == math.ceil(f.demand)
    with pytest.raises(InvalidInput):
        epidemic_coefficient(10, 0)
    with pytest.raises(InvalidInput):
        forecast_demand([], 1.0)


def test_moving_average_backtest_error_on_held_out_days():
    series = [10] * 7 + [10, 20, 10]
    bt = moving_average_backtest(series, window=7, holdout=3)
    # predictions: mean of the 7 days before each held-out day
    assert bt.predictions == pytest.approx((10.0, 10.0, 80 / 7))
    assert bt.mae == pytest.approx((0 + 10 + abs(80 / 7 - 10)) / 3)
    assert bt.mape == pytest.approx((0 + 0.5 + abs(80 / 7 - 10) / 10) / 3)
    with pytest.raises(InvalidInput):
        moving_average_backtest([1, 2, 3], window=7, holdout=3)


@pytest.mark.parametrize("epi, normal, cycle, short, expected", [
    (200, 100, 1, False, "I"),      # ratio 2
    (150, 100, 5, False, "I"),      # cycle ≥ 5
    (110, 100, 1, True, "I"),       # supplier capacity short
    (150, 100, 3, False, "II"),     # 1 < 1.5 < 2, 3 ≤ 3 < 5
    (150, 100, 2, False, None),     # cycle too short for II
    (100, 100, 4, False, None),     # ratio 1: not above normal
])
def test_material_classes(epi, normal, cycle, short, expected):
    mc = classify_material(epi, normal, cycle, short)
    assert mc.material_class == expected
    if expected:
        assert mc.reasons and all(r.zh and r.en for r in mc.reasons)


def test_plan_items_are_classed_from_the_days_demand_and_the_catalogues_procurement_class():
    """1 000 people: rice (catalogue II) 40 a normal day; masks (catalogue I) 100; eggs (no class)
    30; a gown has no per-capita norm, so no ratio: only the catalogue speaks."""
    classes = {c.item_code: c for c in classify_plan_items(
        {"RICE-10KG": 60, "MASK-N95": 50, "EGG-30": 90, "FLOUR-5KG": 30, "GOWN-PROTECTIVE": 9},
        1000, load_catalogue())}
    assert (classes["RICE-10KG"].material_class, classes["RICE-10KG"].ratio) == ("II", 1.5)
    assert classes["FLOUR-5KG"].material_class is None  # catalogue II, but 30 is a normal day
    assert classes["MASK-N95"].material_class == "I"  # half of normal, yet listed I
    assert [r.code for r in classes["MASK-N95"].reasons] == ["CATALOGUE_CLASS"]
    assert (classes["EGG-30"].material_class, classes["EGG-30"].ratio) == ("I", 3.0)
    assert classes["GOWN-PROTECTIVE"].ratio is None
    assert all(r.zh and r.en for c in classes.values() for r in c.reasons)


def test_abnormal_requisition_against_own_history_and_peers():
    reqs = [requester(f"V{i}", population=1000) for i in range(5)]
    lines = [line(f"V{i}", "RICE-10KG", 10) for i in range(4)] + [line("V4", "RICE-10KG", 50)]
    history = {("V0", "RICE-10KG"): [2, 3, 3, 2]}
    checks = {c.requester_id: c for c in check_abnormal(lines, reqs, history)}
    assert checks["V4"].flagged and [r.code for r in checks["V4"].reasons] == ["ABOVE_PEERS"]
    assert checks["V0"].flagged and [r.code for r in checks["V0"].reasons] == [
        "ABOVE_OWN_HISTORY"]
    assert not checks["V1"].flagged
    loose = AbnormalPolicy(own_factor=10, peer_factor=10)
    assert not any(c.flagged for c in check_abnormal(lines, reqs, history, loose))
    out = flag_abnormal(lines, reqs, history)
    assert [ln.requester_id for ln in out if ln.flagged_abnormal] == ["V0", "V4"]
