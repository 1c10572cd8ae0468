"""Registering, updating, reading and listing requesters (villages, communities, units)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import Conflict
from services.common.repository import Page
from services.intake import domain as d
from services.intake.adapters import repositories as repo
from services.intake.domain import events as ev
from services.intake.handlers.base import (
    REQUESTER_READ_ROLES,
    IntakeContext,
    choice,
    record,
    requester,
)


def register_requester(ctx: IntakeContext, uow: UnitOfWork, actor: Caller,
                       data: Mapping[str, Any]) -> d.Requester:
    actor.require("hq")
    r = d.register_requester(data, ctx.clock.now())
    if repo.requesters.get(uow.conn, r.id) is not None:
        raise Conflict(f"requester {r.id!r} is already registered; use UpdateRequester")
    repo.requesters.add(uow.conn, r)
    record(uow, ev.requester_registered(r))
    return r


def update_requester(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, requester_id: str,
                     changes: Mapping[str, Any], expected_version: int | None) -> d.Requester:
    actor.require("hq")
    current = requester(uow, requester_id, "requester_id")
    updated = d.update_requester(current, changes, ctx.clock.now(), expected_version)
    changed = d.changed_fields(current, updated)
    if changed:
        repo.requesters.save(uow.conn, updated)
        record(uow, ev.requester_updated(updated, changed))
    return updated


def read_requester(uow: UnitOfWork, actor: Caller, requester_id: str) -> d.Requester:
    actor.require_for(requester_id, *REQUESTER_READ_ROLES)
    return requester(uow, requester_id, "requester_id")


def list_requesters(uow: UnitOfWork, actor: Caller, *, township: str = "", kind: str = "",
                    risk_level: str = "", page_size: int = 0, page_token: str = ""
                    ) -> Page[d.Requester]:
    """A scoped caller's list holds its own requester only."""
    own = actor.require_for("", *REQUESTER_READ_ROLES)
    return repo.requester_page(
        uow.conn, requester_id=own, township=township,
        kind=choice("kind", kind, d.RequesterKind) if kind else "",
        risk_level=choice("risk_level", risk_level, d.RiskLevel) if risk_level else "",
        page_size=page_size, page_token=page_token)
