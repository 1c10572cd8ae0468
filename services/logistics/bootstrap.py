"""Build logistics' context from settings: the one place that wires adapters to the domain.
Its own settings (SUPPLY_ROUTING_SECONDS, SUPPLY_LEDGER_KEY …): services/logistics/config.py.
"""

from __future__ import annotations

from services.common.catalogue import load_catalogue
from services.common.config import Settings
from services.common.db import make_engine
from services.common.migrate import check_at_head
from services.logistics.config import load_logistics_config
from services.logistics.domain.policy import (
    LedgerPolicy,
    PickPolicy,
    ReceiptPolicy,
    SupplyDaysPolicy,
    TripPolicy,
)
from services.logistics.handlers.base import LogisticsContext


def build_context(settings: Settings, *, pool_size: int = 10, check_schema: bool = True) -> LogisticsContext:
    engine = make_engine(settings.database_url, pool_size=pool_size)
    if check_schema:
        check_at_head("logistics", engine)
    cfg = load_logistics_config(settings)
    tz = str(settings.timezone)
    return LogisticsContext(
        engine=engine, catalogue=load_catalogue(settings.catalogue_path), clock=settings.clock(),
        timezone=tz, ledger_policy=LedgerPolicy(timezone=tz), ledger_key=cfg.ledger_key,
        receipt_policy=ReceiptPolicy(timezone=tz,
                                     min_shelf_days_on_arrival=cfg.min_shelf_days_on_arrival),
        pick_policy=PickPolicy(min_days_left_at_delivery=cfg.min_days_left_at_delivery),
        supply_policy=SupplyDaysPolicy(timezone=tz),
        trip_policy=TripPolicy(timezone=tz, time_limit_s=cfg.routing_s,
                               fallback_time_limit_s=cfg.routing_s, speed_kmh=cfg.trip_speed_kmh),
        donation_depot=cfg.donation_depot,
        population=cfg.population,
        delivery_staff_per_drop_point=cfg.delivery_staff_per_drop_point,
    )
