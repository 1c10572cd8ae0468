"""The monitoring context, who may call what, and the small helpers the use cases share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from services.common.catalogue import Catalogue, StorageClass
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput
from services.monitoring.adapters import schema
from services.monitoring.config import MonitoringConfig
from services.monitoring.domain import alerts as al
from services.monitoring.domain import spoilage

ACK_ROLES = ("hq", "depot_keeper", "operator")

PRICE_ROLES = ("hq", "department", "market_supervisor", "operator")

# Who reads what (docs/integration.md, access matrix; admin reads everything). Nothing here
# is personal data. Alerts (cold chain, reserves, prices) go also to departments and market
# supervisors, and to a gateway's own token (the console's one upstream alert stream).
SENSOR_READ_ROLES = ("hq", "depot_keeper", "operator", "auditor")  # zone status, sensor history

ALERT_READ_ROLES = (*SENSOR_READ_ROLES, "department", "market_supervisor", "gateway")


@dataclass
class MonitoringContext:
    engine: Engine
    catalogue: Catalogue
    clock: Clock
    config: MonitoringConfig
    timezone: ZoneInfo
    alert_policy: al.AlertPolicy = field(default_factory=al.AlertPolicy)
    spoilage_policy: spoilage.SpoilagePolicy = field(default_factory=spoilage.SpoilagePolicy)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, schema.tables, "monitoring", self.clock.now)

    def storage_class(self, code: str | None) -> StorageClass | None:
        return self.catalogue.storage_classes.get(code) if code else None


def iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def required(payload: Mapping[str, Any], name: str, kind: type = str) -> Any:
    v = payload.get(name)
    if v is None or (kind is str and (not isinstance(v, str) or not v)):
        raise InvalidInput(f"payload.{name}", "required")
    if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise InvalidInput(f"payload.{name}", f"must be an integer, got {v!r}")
    return v
