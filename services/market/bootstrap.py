"""Build market's context from settings: the one place that wires adapters to the domain."""

from __future__ import annotations

from services.common.catalogue import load_catalogue
from services.common.config import Settings
from services.common.db import make_engine
from services.common.migrate import check_at_head
from services.market.config import market_policy
from services.market.domain.payments import RecordingPaymentPort
from services.market.handlers.base import MarketContext


def build_context(settings: Settings, *, pool_size: int = 10) -> MarketContext:
    engine = make_engine(settings.database_url, pool_size=pool_size)
    check_at_head("market", engine)
    # the household reference's key: the county secret, as intake pseudonymises beneficiaries
    return MarketContext(engine=engine, catalogue=load_catalogue(settings.catalogue_path),
                         clock=settings.clock(), tz=settings.timezone,
                         household_key=("market-household:" + settings.secret).encode(),
                         policy=market_policy(settings), payments=RecordingPaymentPort())
