"""Allocation's settings beyond the platform's (services.common.config), checked at start so that
a typo stops the process with a message that names the variable. The county policy's version 0
(until HQ sets one with SetPolicy) comes from the last three.

| variable | default | what |
|---|---|---|
| SUPPLY_ALLOCATION_TICK_SECONDS | 10 | seconds (0.1 … 3600) between the worker's looks at the cut-off |
| SUPPLY_STOCK_TIMEOUT_SECONDS | 30 | seconds (0.1 … 600) a call to logistics for the stock may take |
| SUPPLY_SERVICE_TOKEN | first admin token of SUPPLY_AUTH_TOKENS | the token allocation presents to logistics |
| SUPPLY_DEMAND_CUTOFF | 11:00 | HH:MM, the demands' cut-off (shared with intake through policy_changed) |
| SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE | 0 | the cut-off for day D falls on D minus this many days |
| SUPPLY_DISPATCH_DEADLINE | 17:00 | HH:MM, the plan's approval deadline; later than the cut-off |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


POLICY_VARIABLES = {"cutoff": "SUPPLY_DEMAND_CUTOFF",
                    "cutoff_days_before": "SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE",
                    "dispatch_deadline": "SUPPLY_DISPATCH_DEADLINE"}


@dataclass(frozen=True)
class PolicyDefaults:
    """The county policy's fields the environment sets (None: the policy's own default). Their
    values are checked against the policy's rules by bootstrap.default_policy, naming the
    variable."""
    cutoff: str | None = None
    cutoff_days_before: int | None = None
    dispatch_deadline: str | None = None

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in POLICY_VARIABLES
                if getattr(self, name) is not None}


def load_policy_defaults(settings: Settings) -> PolicyDefaults:
    env = settings.extra
    days = env.get("SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE")
    if days is not None:
        try:
            days = int(days)
        except ValueError:
            raise ConfigError(f"SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE must be an integer, got {days!r} "
                              f"/ SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE 应为整数") from None
    return PolicyDefaults(cutoff=env.get("SUPPLY_DEMAND_CUTOFF"), cutoff_days_before=days,
                          dispatch_deadline=env.get("SUPPLY_DISPATCH_DEADLINE"))
