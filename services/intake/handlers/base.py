"""The intake context, who may read what, and the small helpers the use cases share."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from services.common.auth import Caller
from services.common.catalogue import Catalogue
from services.common.clock import Clock
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, NotFound
from services.intake import domain as d
from services.intake.adapters import repositories as repo
from services.intake.adapters import schema
from services.intake.domain import events as ev
from services.intake.spreadsheet.policy import DEFAULT_POLICY, SpreadsheetPolicy

DEMAND_ROLES = ("hq", "village", "unit", "unit_head", "grid_worker")
# Who reads what (docs/integration.md, access matrix). admin and hq read everything; village,
# grid_worker, unit and unit_head only what belongs to their own requester (their scope: lists
# are narrowed to it, another requester's record is PERMISSION_DENIED). department and auditor
# read county-wide records without personal data; gateway reads nothing here.
REQUESTER_READ_ROLES = ("hq", "village", "grid_worker", "unit", "unit_head", "depot_keeper",
                        "inspector", "department", "auditor")
DEMAND_READ_ROLES = ("hq", "village", "grid_worker", "unit", "unit_head", "department", "auditor")
SPECIAL_NEED_READ_ROLES = ("hq", "village", "grid_worker")  # names and phones, masked
REQUISITION_READ_ROLES = ("hq", "unit", "unit_head", "auditor")
DONATION_READ_ROLES = ("hq", "inspector", "depot_keeper", "auditor")
DONATION_SUMMARY_ROLES = (*DONATION_READ_ROLES, "department")


def domain_actor(actor: Caller) -> d.Actor:
    return d.Actor(id=actor.identity, role=actor.role, unit_id=actor.scope or None)


@dataclass
class IntakeContext:
    engine: Engine
    catalogue: Catalogue
    clock: Clock
    secret: bytes
    policy: d.DemandPolicy = d.DemandPolicy()
    donation_policy: d.DonationPolicy = d.DonationPolicy()
    spreadsheet_policy: SpreadsheetPolicy = DEFAULT_POLICY

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, schema.tables, "intake", self.clock.now)


def record(uow: UnitOfWork, event: ev.DomainEvent) -> None:
    uow.record_event(event.event_type, event.payload, schema_version=event.schema_version)


def known(requester_id: str, found: d.Requester | None, field: str = "requester_id") -> d.Requester:
    """`found`, the requester looked up for `requester_id`; the caller's error if there is none."""
    if not requester_id:
        raise InvalidInput(field, "required")
    if found is None:
        raise NotFound(f"{field}: no requester {requester_id!r} / 未登记的需求方")
    return found


def requester(uow: UnitOfWork, requester_id: str, field: str = "requester_id") -> d.Requester:
    found = repo.find_requester(uow.conn, requester_id) if requester_id else None
    return known(requester_id, found, field)


def choice(field: str, value: str, enum) -> str:
    try:
        return enum(value).value
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not one of {', '.join(e.value for e in enum)}") from None
