"""Prices (gRPC SubmitPrices): validate, store, and raise or clear price_rise alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput
from services.monitoring.adapters import price_store
from services.monitoring.domain import alerts as al
from services.monitoring.domain import prices
from services.monitoring.domain.alarms import CLEARED
from services.monitoring.handlers.alerts import clear_key, raise_candidate
from services.monitoring.handlers.base import PRICE_ROLES, MonitoringContext


@dataclass(frozen=True)
class PriceResult:
    observation: prices.PriceObservation
    rise: prices.PriceRise | None
    alert_id: str | None
    action: str | None


def submit_prices(ctx: MonitoringContext, uow: UnitOfWork, actor: Caller,
                  submissions: Sequence[Mapping[str, Any]]) -> list[PriceResult]:
    actor.require(*PRICE_ROLES)
    policy = ctx.config.price_policy
    now = ctx.clock.now()
    today = now.astimezone(ctx.timezone).date()
    observations = []
    for i, raw in enumerate(submissions):
        raw = dict(raw)
        if not raw.get("day"):
            raw["day"] = today.isoformat()
        try:
            observations.append(prices.validate_submission(raw, policy, today))
        except InvalidInput as exc:
            raise InvalidInput(f"prices[{i}].{exc.field}", exc.message.split(": ", 1)[-1]) from None
    seen: dict[tuple, int] = {}
    for i, o in enumerate(observations):
        k = (o.product, o.market, o.day)
        if k in seen:
            raise InvalidInput(f"prices[{i}]", f"repeats prices[{seen[k]}] (same product, market and day)")
        seen[k] = i
    return [record_price(ctx, uow, o, actor.identity, now, today) for o in observations]


def record_price(ctx: MonitoringContext, uow: UnitOfWork, o: prices.PriceObservation, submitted_by: str,
                 now, today) -> PriceResult:
    """Store one day's price (a later one for the same product, market and day replaces it), then
    raise a price_rise alert on an abnormal rise, or clear the open one when today's is normal."""
    policy = ctx.config.price_policy
    price_store.save(uow.conn, o, submitted_by, now)
    history = price_store.history(uow.conn, o.product, o.market,
                                  o.day - timedelta(days=policy.baseline_days), o.day)
    rise = prices.detect_price_rise(o, history, policy)
    key = al.alert_key("price_rise", None, None, "PRICE_RISE", f"{o.product}@{o.market}")
    alert_id = action = None
    if rise is not None:
        res = raise_candidate(uow, al.from_price_rise(rise, ctx.alert_policy), now,
                              value=float(rise.rise_pct))
        if res is not None:
            alert_id, action = res[0].alert_id, res[1]
    elif o.day == today:
        cleared = clear_key(uow, key, now, {"reason": "price back within threshold / 价格回落",
                                            "price_fen": o.price_fen})
        if cleared is not None:
            alert_id, action = cleared.alert_id, CLEARED
    return PriceResult(o, rise, alert_id, action)


def apply_sellable_list(ctx: MonitoringContext, uow: UnitOfWork, envelope: Mapping[str, Any]) -> list[PriceResult]:
    """market's sellable_list_published: the watched products' prices on the list
    (MONITORING_PRICE_ITEMS), market = the outlet, into the same price watch as SubmitPrices."""
    now = ctx.clock.now()
    today = now.astimezone(ctx.timezone).date()
    observations = prices.observations_from_list(envelope["payload"], ctx.config.price_items, today)
    by = f"market:{envelope['payload']['outlet_id']}"
    return [record_price(ctx, uow, o, by, now, today) for o in observations]
