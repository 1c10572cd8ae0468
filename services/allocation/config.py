"""Allocation's settings beyond the platform's (services.common.config), checked at start so that
a typo stops the process with a message that names the variable. The county policy's defaults
(SUPPLY_DEMAND_CUTOFF …) are read by bootstrap.default_policy.

| variable | default | what |
|---|---|---|
| SUPPLY_ALLOCATION_TICK_SECONDS | 10 | seconds (0.1 … 3600) between the worker's looks at the cut-off |
| SUPPLY_STOCK_TIMEOUT_SECONDS | 30 | seconds (0.1 … 600) a call to logistics for the stock may take |
| SUPPLY_SERVICE_TOKEN | first admin token of SUPPLY_AUTH_TOKENS | the token allocation presents to logistics |
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import DEV_TOKEN, ConfigError, Settings, seconds


@dataclass(frozen=True)
class AllocationConfig:
    tick_s: float
    stock_timeout_s: float
    service_token: str


def load_allocation_config(settings: Settings) -> AllocationConfig:
    return AllocationConfig(
        tick_s=seconds(settings, "SUPPLY_ALLOCATION_TICK_SECONDS", 10, 0.1, 3600),
        stock_timeout_s=seconds(settings, "SUPPLY_STOCK_TIMEOUT_SECONDS", 30, 0.1, 600),
        service_token=_service_token(settings),
    )


def _service_token(settings: Settings) -> str:
    """SUPPLY_SERVICE_TOKEN, else (one machine, one token list) the first admin token of
    SUPPLY_AUTH_TOKENS; outside production the development token."""
    token = settings.extra.get("SUPPLY_SERVICE_TOKEN", "").strip()
    if token:
        return token
    for tok, (_, role, _) in settings.auth_tokens.items():
        if role == "admin":
            return tok
    if settings.env != "production":
        return DEV_TOKEN
    raise ConfigError("SUPPLY_SERVICE_TOKEN must be set: allocation calls logistics with it "
                      "/ 须设置 SUPPLY_SERVICE_TOKEN:分配服务凭它调用物流服务")
