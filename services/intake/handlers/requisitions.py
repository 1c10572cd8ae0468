"""Unit requisitions (单位申领): filed by a unit, approved by its head and then by hq (which makes
the demand), or rejected."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork, new_id
from services.common.errors import InvalidInput, NotFound
from services.common.repository import Page
from services.intake import domain as d
from services.intake.adapters import repositories as repo
from services.intake.domain import events as ev
from services.intake.handlers.base import (
    REQUISITION_READ_ROLES,
    IntakeContext,
    choice,
    domain_actor,
    record,
    requester,
)
from services.intake.handlers.policy import demand_policy


def file_requisition(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, unit_id: str,
                     lines: Sequence[Any], purpose: str, headcount_basis: Any,
                     delivery_day: date | str | None) -> d.Requisition:
    unit = requester(uow, unit_id, "unit_id")
    req = d.file_requisition(requisition_id=new_id("RQ"), unit=unit, lines=lines, purpose=purpose,
                             headcount_basis=headcount_basis, actor=domain_actor(actor),
                             catalogue=ctx.catalogue, policy=demand_policy(ctx, uow), at=ctx.clock.now(),
                             delivery_day=delivery_day or None)
    repo.requisitions.add(uow.conn, req)
    record(uow, ev.requisition_submitted(req, unit))
    return req


def get_requisition(uow: UnitOfWork, requisition_id: str) -> d.Requisition:
    req = repo.requisitions.get(uow.conn, requisition_id) if requisition_id else None
    if req is None:
        raise NotFound(f"requisition_id: no requisition {requisition_id!r}")
    return req


def read_requisition(uow: UnitOfWork, actor: Caller, requisition_id: str) -> d.Requisition:
    """A unit's staff and head see their own unit's requisitions; hq and auditors every one."""
    actor.require(*REQUISITION_READ_ROLES)
    req = get_requisition(uow, requisition_id)
    actor.require_for(req.unit_id, *REQUISITION_READ_ROLES)
    return req


def list_requisitions(uow: UnitOfWork, actor: Caller, *, unit_id: str = "",
                      statuses: Sequence[str] = (), page_size: int = 0, page_token: str = ""
                      ) -> Page[d.Requisition]:
    """Ordered by the last step (filing or approval), the one waiting longest first. A unit's
    staff and head see their own unit's only (asking for another is PERMISSION_DENIED)."""
    unit_id = actor.require_for(unit_id, *REQUISITION_READ_ROLES)
    wanted = [choice(f"statuses[{i}]", s, d.RequisitionStatus) for i, s in enumerate(statuses)]
    return repo.requisition_page(uow.conn, unit_id=unit_id, statuses=wanted, page_size=page_size,
                                 page_token=page_token)


def approve_requisition(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, requisition_id: str,
                        step: str, reason: str) -> tuple[d.Requisition, d.Demand | None]:
    req = get_requisition(uow, requisition_id)
    now = ctx.clock.now()
    if step == "head":
        req = d.approve_head(req, domain_actor(actor), now, reason)
        repo.requisitions.save(uow.conn, req)
        return req, None
    if step != "hq":
        raise InvalidInput("step", "must be 'head' (一把手审核) or 'hq' (指挥部审批)")
    unit = requester(uow, req.unit_id, "unit_id")
    req, demand = d.approve_hq(req, domain_actor(actor), now, unit=unit, demand_id=new_id("D"),
                               policy=demand_policy(ctx, uow), reason=reason)
    repo.requisitions.save(uow.conn, req)
    repo.demands.add(uow.conn, demand)
    record(uow, ev.requisition_approved(req, demand))
    record(uow, ev.demand_registered(demand, unit))
    return req, demand


def reject_requisition(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, requisition_id: str,
                       reason: str) -> d.Requisition:
    req = d.reject_requisition(get_requisition(uow, requisition_id), domain_actor(actor),
                               ctx.clock.now(), reason)
    repo.requisitions.save(uow.conn, req)
    record(uow, ev.requisition_rejected(req))
    return req
