"""Donations (捐赠): registering one, inspecting its lines, reading, listing, the day's summary."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork, new_id
from services.common.errors import InvalidInput, NotFound
from services.common.repository import Page
from services.intake import domain as d
from services.intake.adapters import repositories as repo
from services.intake.domain import events as ev
from services.intake.handlers.base import (
    DONATION_READ_ROLES,
    DONATION_SUMMARY_ROLES,
    IntakeContext,
    choice,
    record,
    requester,
)


def register_donation(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, donor: Any,
                      lines: Sequence[Any], target_requester_id: str, target_use: str,
                      note: str, received_at: datetime | None = None) -> d.Donation:
    actor.require("hq", "depot_keeper", "inspector")
    if target_requester_id:
        requester(uow, target_requester_id, "target_requester_id")
    now = ctx.clock.now()
    if received_at is not None and received_at > now:
        raise InvalidInput("received_at", "is in the future")
    donation = d.register_donation(
        donation_id=new_id("DN"), donor=donor, lines=lines, catalogue=ctx.catalogue,
        received_at=received_at or now, registered_by=actor.identity,
        target_requester_id=target_requester_id or None, target_use=target_use, note=note,
        policy=ctx.donation_policy)
    repo.donations.add(uow.conn, donation,
                       received_day=ctx.donation_policy.local_day(donation.received_at))
    record(uow, ev.donation_registered(donation))
    return donation


def get_donation(uow: UnitOfWork, donation_id: str) -> d.Donation:
    donation = repo.donations.get(uow.conn, donation_id) if donation_id else None
    if donation is None:
        raise NotFound(f"donation_id: no donation {donation_id!r}")
    return donation


def read_donation(uow: UnitOfWork, actor: Caller, donation_id: str) -> d.Donation:
    actor.require(*DONATION_READ_ROLES)
    return get_donation(uow, donation_id)


def list_donations(uow: UnitOfWork, actor: Caller, *, statuses: Sequence[str] = (),
                   received_day: date | None = None, page_size: int = 0, page_token: str = ""
                   ) -> Page[d.Donation]:
    """Ordered by arrival, oldest first (the inspection queue: registered, partly inspected)."""
    actor.require(*DONATION_READ_ROLES)
    wanted = [choice(f"statuses[{i}]", s, d.DonationStatus) for i, s in enumerate(statuses)]
    return repo.donation_page(uow.conn, statuses=wanted, received_day=received_day,
                              page_size=page_size, page_token=page_token)


def inspect_donation_line(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, *, donation_id: str,
                          line_no: int, decision: Any, reason: str, medical_grade: bool | None,
                          redirect_to: str) -> d.Donation:
    actor.require("hq", "inspector")
    donation = d.inspect_line(get_donation(uow, donation_id), line_no, decision=decision,
                              reason=reason, inspector=actor.identity, at=ctx.clock.now(),
                              catalogue=ctx.catalogue, medical_grade=medical_grade,
                              redirect_to=redirect_to, policy=ctx.donation_policy)
    repo.donations.save(uow.conn, donation)
    record(uow, ev.donation_inspected(donation, [line_no]))
    return donation


def donation_summary(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, day: date
                     ) -> d.DonationDaySummary:
    actor.require(*DONATION_SUMMARY_ROLES)
    # a donation received on an earlier day may be inspected today: scan a window of days
    found = repo.donations_received(uow.conn, day.fromordinal(day.toordinal() - 31), day)
    return d.daily_summary(found, day, ctx.donation_policy)
