"""Build intake's context from settings: the one place that wires adapters to the domain."""

from __future__ import annotations

from services.common.catalogue import load_catalogue
from services.common.config import Settings
from services.common.db import make_engine
from services.common.migrate import check_at_head
from services.intake import domain as d
from services.intake.config import load_intake_config, spreadsheet_policy
from services.intake.handlers.base import IntakeContext


def build_context(settings: Settings, *, pool_size: int = 10,
                  checkpoint_every: float | None = None) -> IntakeContext:
    engine = make_engine(settings.database_url, pool_size=pool_size, checkpoint_every=checkpoint_every)
    check_at_head("intake", engine)
    policy = demand_policy(settings)
    return IntakeContext(engine=engine, catalogue=load_catalogue(settings.catalogue_path),
                         clock=settings.clock(), secret=settings.secret.encode(), policy=policy,
                         donation_policy=d.DonationPolicy(timezone=str(settings.timezone)),
                         spreadsheet_policy=spreadsheet_policy(settings))


def demand_policy(settings: Settings) -> d.DemandPolicy:
    """SUPPLY_DEMAND_CYCLE_DAYS, SUPPLY_OVER_NORM_FACTOR (config.py): RULES.md §2, §6. The cut-off
    is not set here: allocation's policy owns it and intake follows its policy_changed events
    (handlers.demand_policy, docs/adr/0008)."""
    cfg = load_intake_config(settings)
    return d.DemandPolicy(timezone=str(settings.timezone), cycle_days=cfg.demand_cycle_days,
                          over_norm_factor=cfg.over_norm_factor)
