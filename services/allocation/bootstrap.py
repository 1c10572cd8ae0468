"""Build allocation's context from settings: the one place that wires adapters to the domain."""

from __future__ import annotations

import logging
from dataclasses import replace

from services.allocation.adapters.stock import StockSource
from services.allocation.config import (
    POLICY_VARIABLES,
    load_allocation_config,
    load_policy_defaults,
)
from services.allocation.domain.county_policy import CountyPolicy, apply_changes
from services.allocation.handlers.base import AllocationContext
from services.common.catalogue import load_catalogue
from services.common.config import ConfigError, Settings
from services.common.db import make_engine
from services.common.errors import InvalidInput
from services.common.migrate import check_at_head

log = logging.getLogger(__name__)


def build_context(settings: Settings, *, pool_size: int = 10,
                  stock: StockSource | None = None) -> AllocationContext:
    """The worker passes no stock source: it never plans itself (see entrypoints/worker.py)."""
    engine = make_engine(settings.database_url, pool_size=pool_size)
    check_at_head("allocation", engine)
    catalogue = load_catalogue(settings.catalogue_path)
    return AllocationContext(engine=engine, catalogue=catalogue, clock=settings.clock(),
                             tz=settings.timezone,
                             default_policy=default_policy(settings, catalogue), stock=stock)


def default_policy(settings: Settings, catalogue=None) -> CountyPolicy:
    """Version 0 of the policy, until HQ sets one: SUPPLY_DEMAND_CUTOFF (HH:MM, 11:00, shared
    with intake), SUPPLY_DEMAND_CUTOFF_DAYS_BEFORE (0), SUPPLY_DISPATCH_DEADLINE (17:00)."""
    try:
        policy = apply_changes(CountyPolicy(), load_policy_defaults(settings).changes(),
                               catalogue or load_catalogue(settings.catalogue_path),
                               by="", at=None, prefix="config")
    except InvalidInput as exc:
        name = POLICY_VARIABLES.get(exc.field.removeprefix("config."), exc.field)
        why = exc.message.removeprefix(f"{exc.field}: ")
        raise ConfigError(f"{name}: {why} (allocation policy from the environment) "
                          f"/ 环境变量 {name} 有误") from None
    return replace(policy, version=0, updated_at=None, updated_by="")


def grpc_stock_source(settings: Settings):
    """StockSource over logistics' gRPC API (imported here, never in the worker)."""
    from services.allocation.adapters.logistics_client import GrpcStockSource

    config = load_allocation_config(settings)
    return GrpcStockSource(settings.grpc_target("logistics"), config.service_token,
                           timeout=config.stock_timeout_s, tls=settings.grpc_tls)
