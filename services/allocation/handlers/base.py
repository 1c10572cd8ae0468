"""The allocation context and who may call what."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from services.allocation.adapters import schema
from services.allocation.adapters.stock import StockSource
from services.allocation.domain.county_policy import CountyPolicy
from services.common.auth import ROLES
from services.common.catalogue import Catalogue
from services.common.clock import Clock
from services.common.db import UnitOfWork

PLAN_ROLES = ("hq",)
POLICY_ROLES = ("hq",)
# Who reads what (docs/integration.md, access matrix; admin reads everything). Plans name
# villages and units, never people: depot keepers work from them, departments and auditors
# read them county-wide. The policy is the county's published rules (the cut-off …): every
# person may read it, a gateway not.
PLAN_READ_ROLES = ("hq", "depot_keeper", "department", "auditor")  # plans, explanations, forecasts
POLICY_READ_ROLES = tuple(r for r in ROLES if r not in ("admin", "gateway"))
REPORT_ROLES = ("hq", "auditor")  # the daily report reads the other services with the caller's token
DEFAULT_LINES_PAGE = 200
MAX_LINES_PAGE = 1000


@dataclass
class AllocationContext:
    engine: Engine
    catalogue: Catalogue
    clock: Clock
    tz: ZoneInfo
    default_policy: CountyPolicy = CountyPolicy()
    stock: StockSource | None = None

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, schema.tables, "allocation", self.clock.now)
