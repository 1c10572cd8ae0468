"""Demand forecast, material classes and abnormal requisitions (RULES.md §5, 篇9).

Forecast, the improved mean-deviation method (改进均值偏差法):

    demand = (mean issued quantity + safety stock over the sample period) × epidemic coefficient
    epidemic coefficient = mean demand under the new situation ÷ mean demand now

computed on the sample after outliers are removed. Outliers: Tukey's fences by default (a day
is an outlier when outside [Q1 − k·IQR, Q3 + k·IQR], k = 1.5), or the modified z-score on the
median absolute deviation (|0.6745·(x − median) / MAD| > 3.5, Iglewicz & Hoaglin), which
holds up better on short samples with one spike. Safety stock = z × σ × √(lead time days),
σ the standard deviation of the cleaned daily issues (z = 1.65: 95 % one-sided service).

A moving-average baseline with its error on held-out days (MAE, MAPE) tells whether the
forecast beats the simplest thing that could work.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput

from .model import DemandLine, Reason, Requester

if TYPE_CHECKING:  # numpy is imported where a forecast is computed: an API at rest holds none
    import numpy as np

OUTLIER_METHODS = ("iqr", "mad", "none")


@dataclass(frozen=True)
class ForecastPolicy:
    """outlier_method: "iqr" (Tukey's fences, factor iqr_k), "mad" (modified z-score above
    mad_z), or "none". min_sample: fewer points than this are not cleaned (fences need data).
    safety_z: service-level factor of the safety stock; lead_time_days: replenishment cycle.
    """

    outlier_method: str = "iqr"
    iqr_k: float = 1.5
    mad_z: float = 3.5
    min_sample: int = 5
    safety_z: float = 1.65
    lead_time_days: float = 1.0

    def __post_init__(self):
        if self.outlier_method not in OUTLIER_METHODS:
            raise InvalidInput("forecast_policy.outlier_method", f"one of {OUTLIER_METHODS}")
        if self.iqr_k <= 0 or self.mad_z <= 0 or self.safety_z < 0 or self.lead_time_days < 0:
            raise InvalidInput("forecast_policy", "factors must be positive")


@dataclass(frozen=True)
class Cleaned:
    kept: tuple[float, ...]
    removed: tuple[int, ...]  # positions in the sample
    low: float
    high: float


@dataclass(frozen=True)
class Forecast:
    mean: float
    sigma: float
    safety_stock: float
    coefficient: float
    demand: float
    cleaned: Cleaned

    @property
    def quantity(self) -> int:
        """The forecast as a whole number of units (rounded up: a forecast is a need)."""
        return math.ceil(round(self.demand, 9))


@dataclass(frozen=True)
class Backtest:
    window: int
    predictions: tuple[float, ...]
    actuals: tuple[float, ...]
    mae: float
    mape: float | None  # over held-out days with actual > 0; None when there are none


def _sample(values: Iterable[float], field: str) -> np.ndarray:
    import numpy as np
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        raise InvalidInput(field, "needs at least one value")
    if not np.all(np.isfinite(arr)) or (arr < 0).any():
        raise InvalidInput(field, "values must be finite and ≥ 0")
    return arr


def remove_outliers(values: Sequence[float], policy: ForecastPolicy = ForecastPolicy()
                    ) -> Cleaned:
    import numpy as np
    x = _sample(values, "sample")
    if policy.outlier_method == "none" or x.size < policy.min_sample:
        return Cleaned(tuple(x.tolist()), (), float(x.min()), float(x.max()))
    if policy.outlier_method == "iqr":
        q1, q3 = np.percentile(x, [25, 75])
        iqr = q3 - q1
        low, high = q1 - policy.iqr_k * iqr, q3 + policy.iqr_k * iqr
    else:
        med = float(np.median(x))
        mad = float(np.median(np.abs(x - med)))
        if mad == 0:  # most days equal: those are the sample, anything else is a spike
            low = high = med
        else:
            span = policy.mad_z * mad / 0.6745
            low, high = med - span, med + span
    keep = (x >= low) & (x <= high)
    return Cleaned(tuple(x[keep].tolist()), tuple(np.flatnonzero(~keep).tolist()),
                   float(low), float(high))


def epidemic_coefficient(new_situation: float | Sequence[float], now: float | Sequence[float]
                         ) -> float:
    """Mean demand under the new situation ÷ mean demand now (篇9)."""
    import numpy as np
    new = float(np.mean(_sample(np.atleast_1d(new_situation), "new_situation")))
    cur = float(np.mean(_sample(np.atleast_1d(now), "now")))
    if cur <= 0:
        raise InvalidInput("now", "mean demand now must be > 0")
    return new / cur


def forecast_demand(issued: Sequence[float], coefficient: float = 1.0,
                    policy: ForecastPolicy = ForecastPolicy()) -> Forecast:
    """Daily demand by the improved mean-deviation method from a sample of daily issues."""
    import numpy as np
    if not math.isfinite(coefficient) or coefficient < 0:
        raise InvalidInput("coefficient", "must be finite and ≥ 0")
    cleaned = remove_outliers(issued, policy)
    kept = np.asarray(cleaned.kept)
    mean = float(kept.mean())
    sigma = float(kept.std(ddof=1)) if kept.size > 1 else 0.0
    safety = policy.safety_z * sigma * math.sqrt(policy.lead_time_days)
    return Forecast(mean, sigma, safety, coefficient, (mean + safety) * coefficient, cleaned)


def moving_average_backtest(series: Sequence[float], window: int = 7, holdout: int = 7
                            ) -> Backtest:
    """Predict each of the last `holdout` days by the mean of the `window` days before it."""
    import numpy as np
    x = _sample(series, "series")
    if window < 1 or holdout < 1 or x.size < window + holdout:
        raise InvalidInput("series", f"needs ≥ window + holdout = {window + holdout} days")
    csum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(x.size - holdout, x.size)
    pred = (csum[idx] - csum[idx - window]) / window
    act = x[idx]
    err = np.abs(pred - act)
    pos = act > 0
    mape = float(np.mean(err[pos] / act[pos])) if pos.any() else None
    return Backtest(window, tuple(pred.tolist()), tuple(act.tolist()), float(err.mean()), mape)


# ---- material classes (篇9) ------------------------------------------------------------------
@dataclass(frozen=True)
class ClassPolicy:
    """Class I: ratio ≥ class1_ratio, or cycle ≥ class1_cycle_days, or supplier capacity short.
    Class II: 1 < ratio < class1_ratio and class2_cycle_days ≤ cycle < class1_cycle_days."""

    class1_ratio: float = 2.0
    class1_cycle_days: float = 5.0
    class2_cycle_days: float = 3.0


@dataclass(frozen=True)
class MaterialClass:
    material_class: str | None  # "I", "II" or None (ordinary)
    ratio: float
    reasons: tuple[Reason, ...]


CATALOGUE_CLASS = "CATALOGUE_CLASS"


def classify_material(epidemic_demand: float, normal_demand: float,
                      procurement_cycle_days: float | None,
                      supplier_capacity_short: bool = False,
                      policy: ClassPolicy = ClassPolicy(), *, listed: str | None = None
                      ) -> MaterialClass:
    """procurement_cycle_days None: not known; `listed` (the catalogue's class) then stands for
    the procurement facts: "I" a cycle ≥ class1_cycle_days or short supplier capacity, "II" a
    cycle in [class2_cycle_days, class1_cycle_days)."""
    if normal_demand <= 0:
        ratio = math.inf if epidemic_demand > 0 else 1.0
    else:
        ratio = epidemic_demand / normal_demand
    why: list[Reason] = []
    if ratio >= policy.class1_ratio:
        why.append(Reason("CLASS_I_RATIO", f"疫情期需求为常态的{ratio:.2f}倍（≥{policy.class1_ratio:g}）",
                          f"epidemic demand is {ratio:.2f}× normal (≥ {policy.class1_ratio:g})"))
    if procurement_cycle_days is not None and procurement_cycle_days >= policy.class1_cycle_days:
        why.append(Reason("CLASS_I_CYCLE",
                          f"采购周期{procurement_cycle_days:g}天（≥{policy.class1_cycle_days:g}天）",
                          f"procurement cycle {procurement_cycle_days:g} days "
                          f"(≥ {policy.class1_cycle_days:g})"))
    if procurement_cycle_days is None and listed == "I":
        why.append(Reason(CATALOGUE_CLASS, "目录登记为I类（采购周期长或供应商产能不足）",
                          "the catalogue lists it as class I (long procurement cycle or "
                          "supplier capacity short)"))
    if supplier_capacity_short:
        why.append(Reason("CLASS_I_CAPACITY", "供应商产能不足", "supplier capacity short"))
    if why:
        return MaterialClass("I", ratio, tuple(why))
    if procurement_cycle_days is None:
        cycle_ii = listed == "II"
        cycle_zh, cycle_en = "目录登记采购周期", "procurement cycle as the catalogue lists it"
    else:
        cycle_ii = policy.class2_cycle_days <= procurement_cycle_days < policy.class1_cycle_days
        cycle_zh, cycle_en = f"采购周期{procurement_cycle_days:g}天", \
            f"procurement cycle {procurement_cycle_days:g} days"
    if 1 < ratio < policy.class1_ratio and cycle_ii:
        return MaterialClass("II", ratio, (Reason(
            "CLASS_II", f"需求为常态的{ratio:.2f}倍，{cycle_zh}（{policy.class2_cycle_days:g}至"
                        f"{policy.class1_cycle_days:g}天）",
            f"demand {ratio:.2f}× normal, {cycle_en} ({policy.class2_cycle_days:g} … "
            f"{policy.class1_cycle_days:g} days)"),))
    return MaterialClass(None, ratio, ())


@dataclass(frozen=True)
class ItemClass:
    """An item's class on a plan day. normal_daily: the county's normal daily consumption
    (population × per-capita norm); ratio None when the item has no norm."""

    item_code: str
    material_class: str | None
    catalogue_class: str | None
    asked: int
    normal_daily: float
    ratio: float | None
    reasons: tuple[Reason, ...]


def classify_plan_items(asked: Mapping[str, int], population: int, catalogue: Catalogue,
                        policy: ClassPolicy = ClassPolicy()) -> tuple[ItemClass, ...]:
    """RULES.md §5 for each item asked on a plan day: the day's demand over normal demand from
    the data, the procurement facts from the catalogue's class (the data has none)."""
    out = []
    for code in sorted(asked):
        item = catalogue.items[code]
        normal = population * item.per_capita_daily
        known = normal > 0
        mc = classify_material(asked[code] if known else 0, normal if known else 0, None,
                               policy=policy, listed=item.material_class)
        out.append(ItemClass(code, mc.material_class, item.material_class, asked[code], normal,
                             mc.ratio if known else None, mc.reasons))
    return tuple(out)


# ---- abnormal requisitions (异常申领, 篇9 §六) ------------------------------------------------
@dataclass(frozen=True)
class AbnormalPolicy:
    """A requester's day total of an item is abnormal when it is above own_factor × the median
    of its own past days (with at least min_history of them), or its per-capita quantity is
    above peer_factor × the median per-capita of its peers asking the same item that day (with
    at least min_peers peers with a population)."""

    own_factor: float = 3.0
    min_history: int = 3
    peer_factor: float = 3.0
    min_peers: int = 3


@dataclass(frozen=True)
class AbnormalCheck:
    requester_id: str
    item_code: str
    quantity: int
    flagged: bool
    reasons: tuple[Reason, ...]


def check_abnormal(
    lines: Iterable[DemandLine],
    requesters: Iterable[Requester],
    history: Mapping[tuple[str, str], Sequence[float]] | None = None,
    policy: AbnormalPolicy = AbnormalPolicy(),
) -> list[AbnormalCheck]:
    """One check per (requester, item) of the day, sorted. `history`: (requester id, item code)
    → that requester's past daily quantities of the item."""
    import numpy as np
    history = history or {}
    pop = {r.id: r.population for r in requesters}
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for ln in lines:
        totals[(ln.requester_id, ln.item_code)] += ln.quantity
    per_capita: dict[str, list[float]] = defaultdict(list)
    for (rid, code), q in totals.items():
        if pop.get(rid, 0) > 0:
            per_capita[code].append(q / pop[rid])
    out = []
    for (rid, code), q in sorted(totals.items()):
        why: list[Reason] = []
        past = [float(v) for v in history.get((rid, code), ())]
        if len(past) >= policy.min_history:
            med = float(np.median(past))
            if med > 0 and q > policy.own_factor * med:
                why.append(Reason(
                    "ABOVE_OWN_HISTORY",
                    f"申领{q}，为本单位以往日中位数{med:g}的{q / med:.1f}倍（>{policy.own_factor:g}倍）",
                    f"asks {q}, {q / med:.1f}× its own past daily median {med:g} "
                    f"(> {policy.own_factor:g}×)"))
        peers = per_capita.get(code, [])
        if pop.get(rid, 0) > 0 and len(peers) - 1 >= policy.min_peers:
            mine = q / pop[rid]
            others = list(peers)
            others.remove(mine)
            med = float(np.median(others))
            if med > 0 and mine > policy.peer_factor * med:
                why.append(Reason(
                    "ABOVE_PEERS",
                    f"人均申领{mine:.3g}，为同类申领人均中位数{med:.3g}的{mine / med:.1f}倍",
                    f"per capita {mine:.3g}, {mine / med:.1f}× the peers' median {med:.3g} "
                    f"(> {policy.peer_factor:g}×)"))
        out.append(AbnormalCheck(rid, code, q, bool(why), tuple(why)))
    return out


def flag_abnormal(lines: Sequence[DemandLine], requesters: Iterable[Requester],
                  history: Mapping[tuple[str, str], Sequence[float]] | None = None,
                  policy: AbnormalPolicy = AbnormalPolicy()) -> list[DemandLine]:
    """The lines with flagged_abnormal set where check_abnormal flags their requester-item."""
    flagged = {(c.requester_id, c.item_code)
               for c in check_abnormal(lines, requesters, history, policy) if c.flagged}
    return [replace(ln, flagged_abnormal=True)
            if (ln.requester_id, ln.item_code) in flagged else ln for ln in lines]
