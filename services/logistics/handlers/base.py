"""The logistics context, who may call what, and the small parsers the use cases share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy.engine import Engine

from services.common.catalogue import Catalogue, Item
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput
from services.logistics.adapters import schema
from services.logistics.domain.policy import (
    DeliveryPolicy,
    LedgerPolicy,
    PickPolicy,
    ReceiptPolicy,
    SupplyDaysPolicy,
    TripPolicy,
    local_date,
)

WRITE_ROLES = ("depot_keeper", "hq")


SETUP_ROLES = ("hq", "depot_keeper")


DELIVERY_ROLES = ("depot_keeper", "hq", "clerk", "village", "grid_worker")


AUDIT_ROLES = ("auditor", "hq", "depot_keeper")


STOCK_READ_ROLES = ("hq", "depot_keeper", "department", "auditor")  # stock, snapshot, days of supply


STORE_READ_ROLES = ("hq", "depot_keeper", "auditor")  # lots, receipts


TRIP_READ_ROLES = (*DELIVERY_ROLES, "auditor")  # trips, manifests


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass
class LogisticsContext:
    engine: Engine
    catalogue: Catalogue
    clock: Clock
    timezone: str = "Asia/Shanghai"
    ledger_policy: LedgerPolicy = field(default_factory=LedgerPolicy)
    ledger_key: bytes = b""  # SUPPLY_LEDGER_KEY (config.ledger_key)
    receipt_policy: ReceiptPolicy = field(default_factory=ReceiptPolicy)
    pick_policy: PickPolicy = field(default_factory=PickPolicy)
    supply_policy: SupplyDaysPolicy = field(default_factory=SupplyDaysPolicy)
    trip_policy: TripPolicy = field(default_factory=TripPolicy)
    delivery_policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    donation_depot: str = ""
    population: int | None = None  # None: sum of the registered villages' and communities'
    delivery_staff_per_drop_point: int = 0

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, schema.tables, "logistics", self.clock.now)

    def today(self) -> date:
        return local_date(self.clock.now(), self.timezone)


def utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def iso(at: datetime | None) -> str | None:
    return None if at is None else utc(at).isoformat().replace("+00:00", "Z")


def check_id(value: Any, f: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(f, "required: letters, digits, '-', '_', '.' (at most 64)")
    return value


def required_text(value: Any, f: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f, "required")
    if len(value) > limit:
        raise InvalidInput(f, f"at most {limit} characters")
    return value.strip()


def parse_hhmm(value: Any, f: str, default: time) -> time:
    if value in (None, ""):
        return default
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise InvalidInput(f, f"must be HH:MM (24-hour), got {value!r}")
    return time(int(m.group(1)), int(m.group(2)))


def hhmm(t: time) -> str:
    return t.strftime("%H:%M")


def catalogue_item(ctx: LogisticsContext, code: str, f: str) -> Item:
    item = ctx.catalogue.items.get(code) if isinstance(code, str) else None
    if item is None:
        raise InvalidInput(f, f"unknown item code {code!r} (catalogue {ctx.catalogue.version})")
    return item

