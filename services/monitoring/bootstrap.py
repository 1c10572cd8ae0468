"""Build monitoring's context from settings: the one place that wires adapters to the domain."""

from __future__ import annotations

import logging

from services.common.catalogue import load_catalogue
from services.common.config import Settings
from services.common.db import make_engine
from services.common.migrate import check_at_head
from services.monitoring.config import load_zones_file, monitoring_config
from services.monitoring.handlers.base import MonitoringContext
from services.monitoring.handlers.zones import apply_zones_file

log = logging.getLogger(__name__)


def build_context(settings: Settings, *, pool_size: int = 10,
                  checkpoint_every: float | None = None) -> MonitoringContext:
    config = monitoring_config(settings)
    engine = make_engine(settings.database_url, pool_size=pool_size, checkpoint_every=checkpoint_every)
    check_at_head("monitoring", engine)
    catalogue = load_catalogue(settings.catalogue_path)
    ctx = MonitoringContext(engine=engine, catalogue=catalogue, clock=settings.clock(),
                            config=config, timezone=settings.timezone)
    if config.zones_file is not None:
        specs = load_zones_file(config.zones_file, catalogue)
        changed = apply_zones_file(ctx, specs)
        log.info("zones file applied", extra={"file": str(config.zones_file), "zones": len(specs),
                                              "changed": changed})
    return ctx


def spool_dir(settings: Settings, name: str):
    """Per-process InfluxDB spool directory under var/ (one writer owns a directory)."""
    return settings.var_dir / "monitoring" / "spool" / name
