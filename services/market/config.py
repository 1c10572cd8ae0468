"""Market's settings beyond the platform's (services.common.config), checked at start: a bad
value stops the process with a message that names the variable.

| variable | default | what |
|---|---|---|
| MARKET_ORDER_CUTOFF | 20:00 | local time on the day before delivery after which household orders close (an outlet may set its own) |
| MARKET_ORDER_CUTOFF_DAYS_BEFORE | 1 | the cut-off is on the day before delivery (1); 0: on the delivery day itself (same-day delivery, 当日下单当日配送) |
| MARKET_PURCHASE_LIST_CUTOFF | 18:00 | local time on the day before pickup by which a 代买 list reaches its supply point |
| MARKET_PURCHASE_INTERVAL_DAYS | 3 | at least this many days between two pickups of one village |
| MARKET_MAX_PRICE_FEN | 100000 | the highest price per unit on a sellable list |
"""

from __future__ import annotations

from dataclasses import replace
from datetime import time

from services.common.config import ConfigError, Settings, _int
from services.market.domain.policy import DEFAULT_POLICY, MarketPolicy


def _time(env: dict, name: str, default: time) -> time:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a local time HH:MM, got {raw!r} / {name} 应为 HH:MM") from None


def market_policy(settings: Settings) -> MarketPolicy:
    env, d = settings.extra, DEFAULT_POLICY
    return replace(
        d,
        order_cutoff=_time(env, "MARKET_ORDER_CUTOFF", d.order_cutoff),
        order_cutoff_days_before=_int(env, "MARKET_ORDER_CUTOFF_DAYS_BEFORE", d.order_cutoff_days_before, 0, 7),
        purchase_list_cutoff=_time(env, "MARKET_PURCHASE_LIST_CUTOFF", d.purchase_list_cutoff),
        purchase_interval_days=_int(env, "MARKET_PURCHASE_INTERVAL_DAYS", d.purchase_interval_days, 1, 30),
        max_price_fen=_int(env, "MARKET_MAX_PRICE_FEN", d.max_price_fen, 1, 10_000_000),
    )
