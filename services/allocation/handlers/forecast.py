"""The forecast of an item's daily issues, beside its moving-average baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from services.allocation.adapters import demand_store
from services.allocation.domain.forecast import (
    Backtest,
    Forecast,
    forecast_demand,
    moving_average_backtest,
)
from services.allocation.handlers.base import AllocationContext
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, RuleRefused


@dataclass(frozen=True)
class ForecastView:
    item_code: str
    requester_id: str
    series: tuple[tuple[date, int], ...]
    forecast: Forecast
    outlier_days: tuple[date, ...]
    baseline: Backtest | None
    baseline_note: str


def forecast(ctx: AllocationContext, uow: UnitOfWork, *, item_code: str, requester_id: str,
             until_day: date | None, sample_days: int, coefficient: float | None,
             window: int, holdout: int) -> ForecastView:
    """Daily issues of an item (one requester's, or county-wide) from demand_closed events:
    the improved mean-deviation forecast (domain.forecast) and the moving-average baseline with
    its error on the last `holdout` days."""
    if not item_code:
        raise InvalidInput("item_code", "required")
    if item_code not in ctx.catalogue.items:
        raise InvalidInput("item_code", f"unknown item code {item_code!r} "
                                        f"(catalogue {ctx.catalogue.version})")
    sample_days = sample_days or 28
    if not 1 <= sample_days <= 366:
        raise InvalidInput("sample_days", "must be 1 … 366")
    window, holdout = window or 7, holdout or 7
    if not 1 <= window <= 90:
        raise InvalidInput("baseline_window", "must be 1 … 90")
    if not 1 <= holdout <= 90:
        raise InvalidInput("baseline_holdout", "must be 1 … 90")
    coefficient = 1.0 if coefficient is None else coefficient
    if not math.isfinite(coefficient) or coefficient < 0:
        raise InvalidInput("coefficient", "must be a finite number ≥ 0 (1 = no change)")
    until = until_day or (ctx.clock.now().astimezone(ctx.tz).date() - timedelta(days=1))
    start = until - timedelta(days=sample_days - 1)
    per_day = demand_store.issued_per_day(uow.conn, item_code, start, until, requester_id)
    if not per_day:
        who = f"requester {requester_id}" if requester_id else "the county"
        raise RuleRefused("NO_HISTORY", f"no issues of {item_code} to {who} between {start} and "
                                        f"{until} / 该时段无发放记录")
    first = min(per_day)
    days = [first + timedelta(days=i) for i in range((until - first).days + 1)]
    values = [per_day.get(x, 0) for x in days]
    fc = forecast_demand(values, coefficient)
    outliers = tuple(days[i] for i in fc.cleaned.removed)
    baseline, note = None, ""
    if len(values) >= window + holdout:
        baseline = moving_average_backtest(values, window, holdout)
    else:
        note = (f"baseline needs {window + holdout} days of history (window + holdout), "
                f"have {len(values)}")
    return ForecastView(item_code, requester_id, tuple(zip(days, values, strict=True)), fc,
                        outliers, baseline, note)
