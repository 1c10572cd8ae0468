"""The market context, who may do what, and the small helpers the use cases share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, tzinfo

from sqlalchemy.engine import Engine

from services.common.auth import Caller
from services.common.catalogue import Catalogue
from services.common.clock import Clock
from services.common.days import parse_day
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, NotFound, PermissionDenied
from services.market.adapters import repositories as repo
from services.market.adapters import schema
from services.market.domain.outlets import Community, Outlet
from services.market.domain.policy import DEFAULT_POLICY, MarketPolicy

# docs/market.md, Roles. admin may do anything (Caller.require).
HQ = ("hq",)
OUTLET_ROLES = ("hq", "supermarket")                  # scope: the outlet id
COMMUNITY_ROLES = ("hq", "grid_worker", "village")    # scope: the community id
LIST_READ_ROLES = ("hq", "supermarket", "grid_worker", "village", "department", "market_supervisor",
                   "auditor")
ORDER_READ_ROLES = ("hq", "supermarket", "grid_worker", "village", "auditor")
SETTLE_ROLES = ("hq", "clerk", "grid_worker", "village")
REPORT_ROLES = ("hq", "auditor")
SUMMARY_ROLES = ("hq", "department", "auditor", "market_supervisor")
PURCHASE_ROLES = ("hq", "village", "grid_worker")
COLLECTION_ROLES = ("hq", "clerk")
COMMUNITY_SCOPED = ("grid_worker", "village")


@dataclass
class MarketContext:
    engine: Engine
    catalogue: Catalogue
    clock: Clock
    tz: tzinfo
    household_key: bytes
    policy: MarketPolicy = DEFAULT_POLICY
    payments: object = field(default=None)  # a domain.payments.PaymentPort

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, schema.tables, "market", self.clock.now)

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()


def record(uow: UnitOfWork, event) -> None:
    """A domain event: (event_type, payload) or an object with event_type and payload."""
    if isinstance(event, tuple):
        uow.record_event(event[0], event[1])
    else:
        uow.record_event(event.event_type, event.payload, schema_version=getattr(event, "schema_version", 1))


def day(value: str, field_name: str = "day") -> date:
    if not value:
        raise InvalidInput(field_name, "required, YYYY-MM-DD / 必填")
    return parse_day(value, field_name)


def required(value: str, field_name: str) -> str:
    if not value or not value.strip():
        raise InvalidInput(field_name, "required / 必填")
    return value.strip()


def outlet(uow: UnitOfWork, outlet_id: str, field_name: str = "outlet_id", *, lock: bool = False) -> Outlet:
    found = repo.outlets.get(uow.conn, required(outlet_id, field_name), lock=lock)
    if found is None:
        raise NotFound(f"{field_name}: no outlet {outlet_id!r} / 未登记的超市或保供点")
    return found


def community(uow: UnitOfWork, community_id: str, field_name: str = "community_id") -> Community:
    found = repo.communities.get(uow.conn, required(community_id, field_name))
    if found is None:
        raise NotFound(f"{field_name}: no community {community_id!r} (registered in intake?) "
                       f"/ 未登记的村或社区")
    return found


def for_community(actor: Caller, community_id: str, *roles: str) -> None:
    """The role check; a grid worker or village acts only for its own community, a supermarket
    only through the outlet-scoped calls (for_outlet)."""
    actor.require(*roles)
    if actor.role in COMMUNITY_SCOPED and actor.scope != community_id:
        raise PermissionDenied(f"{actor.identity} acts for {actor.scope or 'no community'}, not "
                               f"{community_id} / 只能办理本村居的事项")


def for_outlet(actor: Caller, outlet_id: str, *roles: str) -> None:
    """The role check; a supermarket acts only for its own outlet."""
    actor.require(*roles)
    if actor.role == "supermarket" and actor.scope != outlet_id:
        raise PermissionDenied(f"{actor.identity} acts for {actor.scope or 'no outlet'}, not "
                               f"{outlet_id} / 只能办理本超市(保供点)的事项")


def for_community_or_outlet(actor: Caller, community_id: str, outlet_id: str, *roles: str) -> None:
    """Things of a community served by an outlet (its community orders, parcels): the
    community's grid worker or the outlet's supermarket."""
    actor.require(*roles)
    if actor.role == "supermarket":
        for_outlet(actor, outlet_id, *roles)
    else:
        for_community(actor, community_id, *roles)
