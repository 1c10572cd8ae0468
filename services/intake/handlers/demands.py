"""Demands: submission (one, or many gathered by the group commit), cancelling, reading and
listing, and what logistics' and allocation's events do to them (delivery results, unplanned
demands rolled to the next open day)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork, new_id
from services.common.errors import InvalidInput, NotFound
from services.common.idempotency import run_idempotent_many
from services.common.repository import Page
from services.intake import domain as d
from services.intake.adapters import repositories as repo
from services.intake.domain import events as ev
from services.intake.handlers.base import (
    DEMAND_READ_ROLES,
    DEMAND_ROLES,
    IntakeContext,
    choice,
    known,
    record,
    requester,
)
from services.intake.handlers.policy import demand_policy


def _new_demand(ctx: IntakeContext, policy: d.DemandPolicy, requester: d.Requester,
                lines: Sequence[Any], delivery_day: date | str | None,
                origin: d.DemandOrigin = d.DemandOrigin.DIRECT) -> d.Demand:
    return d.submit_demand(demand_id=new_id("D"), requester=requester, lines=lines,
                           catalogue=ctx.catalogue, policy=policy, at=ctx.clock.now(),
                           delivery_day=delivery_day or None, origin=origin)


def submit_demand(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, requester_id: str,
                  lines: Sequence[Any], delivery_day: date | str | None,
                  origin: d.DemandOrigin = d.DemandOrigin.DIRECT,
                  requester_cache: dict[str, d.Requester] | None = None) -> d.Demand:
    actor.require_for(requester_id, *DEMAND_ROLES)
    found = (requester_cache or {}).get(requester_id) or requester(uow, requester_id)
    demand = _new_demand(ctx, demand_policy(ctx, uow), found, lines, delivery_day, origin)
    repo.demands.add(uow.conn, demand)
    record(uow, ev.demand_registered(demand, found))
    return demand


@dataclass(frozen=True)
class DemandSubmission:
    """One demand of submit_demands, with the idempotency key it was sent under."""

    actor: Caller
    scope: str
    idempotency_key: str
    fingerprint: str
    requester_id: str
    lines: Sequence[Any]
    delivery_day: str | None = None


def submit_demands(ctx: IntakeContext, uow: UnitOfWork, submissions: Sequence[DemandSubmission],
                   answer: Callable[[d.Demand, d.DemandPolicy], bytes]) -> list[bytes | Exception]:
    """submit_demand for many demands at once (concurrent single submissions gathered by the
    group commit, or a batch): one requester query, one insert per table. Each gets its own
    result: the stored answer (answer(demand), or the first answer given under its key) or
    its own error; one refused demand does not hold up the others."""
    requesters = repo.find_requesters(uow.conn, {s.requester_id for s in submissions})
    policy = demand_policy(ctx, uow)

    def prepare(i: int) -> tuple[bytes, tuple[d.Demand, d.Requester]]:
        s = submissions[i]
        s.actor.require_for(s.requester_id, *DEMAND_ROLES)
        found = known(s.requester_id, requesters.get(s.requester_id))
        demand = _new_demand(ctx, policy, found, s.lines, s.delivery_day)
        return answer(demand, policy), (demand, found)

    def write(placed: list[tuple[d.Demand, d.Requester]]) -> None:
        repo.demands.add_many(uow.conn, [demand for demand, _ in placed])
        uow.record_events([(e.event_type, e.payload, e.schema_version)
                           for e in (ev.demand_registered(dm, r) for dm, r in placed)])

    return run_idempotent_many(
        uow, [(s.scope, s.idempotency_key, s.fingerprint) for s in submissions], prepare, write)


def cancel_demand(ctx: IntakeContext, uow: UnitOfWork, actor: Caller, demand_id: str,
                  reason: str) -> d.Demand:
    demand = get_demand(uow, demand_id)
    actor.require_for(demand.requester_id, *DEMAND_ROLES)
    cancelled = d.cancel_demand(demand, ctx.clock.now(), reason)
    repo.demands.save(uow.conn, cancelled)
    record(uow, ev.demand_cancelled(cancelled))
    return cancelled


def get_demand(uow: UnitOfWork, demand_id: str) -> d.Demand:
    if not demand_id:
        raise InvalidInput("demand_id", "required")
    demand = repo.demands.get(uow.conn, demand_id)
    if demand is None:
        raise NotFound(f"demand_id: no demand {demand_id!r}")
    return demand


def read_demand(uow: UnitOfWork, actor: Caller, demand_id: str) -> d.Demand:
    """get_demand for a caller allowed to see it (the role first, so NOT_FOUND tells nothing)."""
    actor.require(*DEMAND_READ_ROLES)
    demand = get_demand(uow, demand_id)
    actor.require_for(demand.requester_id, *DEMAND_READ_ROLES)
    return demand


def list_demands(uow: UnitOfWork, actor: Caller, *, requester_id: str = "",
                 delivery_day: date | None = None, status: str = "", tier: int = 0,
                 flagged: bool | None = None, page_size: int = 0, page_token: str = ""
                 ) -> Page[d.Demand]:
    """Ordered by delivery day, most urgent tier, submission time. A scoped caller's list is
    narrowed to its own requester (asking for another is PERMISSION_DENIED)."""
    requester_id = actor.require_for(requester_id, *DEMAND_READ_ROLES)
    if status:
        status = choice("status", status, d.DemandStatus)
    if tier and tier not in range(1, 6):
        raise InvalidInput("tier", "must be 1..5")
    return repo.demand_page(uow.conn, requester_id=requester_id, delivery_day=delivery_day,
                            status=status, tier=tier, flagged=flagged, page_size=page_size,
                            page_token=page_token)


def summarize_demands(uow: UnitOfWork, actor: Caller, delivery_day: date) -> dict[str, Any]:
    """The day's demands counted by top tier, township and status, and the flagged ones. Scope as
    list_demands."""
    requester_id = actor.require_for("", *DEMAND_READ_ROLES)
    return repo.demand_summary(uow.conn, delivery_day, requester_id)


def apply_delivery_results(ctx: IntakeContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> None:
    """`delivery_confirmed` from logistics: add what each stop delivered to its demands, and close
    the demands logistics says are complete (every plan line of theirs confirmed); the shortfall
    of a closed demand is carried to a new demand. A payload without `demands_completed` (one
    stop serving whole demands) completes every demand it names."""
    results: dict[str, dict[str, int]] = {}
    for i, line in enumerate(payload.get("lines") or ()):
        demand_id = line.get("demand_id")
        if not demand_id:
            raise InvalidInput(f"payload.lines[{i}].demand_id", "required")
        if "received" not in line or "item_code" not in line:
            raise InvalidInput(f"payload.lines[{i}]", "item_code and received are required")
        item, received = line["item_code"], int(line["received"])
        if line.get("substitute_for"):  # a standard package delivered in place of a short item
            item, received = line["substitute_for"], received * _units_per_package(ctx, line)
        per_item = results.setdefault(demand_id, {})
        per_item[item] = per_item.get(item, 0) + received
    completed = set(payload["demands_completed"]) if "demands_completed" in payload else set(results)
    policy = demand_policy(ctx, uow)
    for demand_id in sorted(set(results) | completed):
        demand = get_demand(uow, demand_id)
        if demand.status is not d.DemandStatus.OPEN:
            continue  # closed by an earlier event
        if demand_id in results:
            demand = d.record_delivery(demand, results[demand_id])
        if demand_id not in completed:
            repo.demands.save(uow.conn, demand)
            continue
        outcome = d.apply_delivery_results(demand, d.delivered_so_far(demand), at=ctx.clock.now(),
                                           policy=policy, carry_over_id=new_id("D"))
        _close(uow, outcome)


def _close(uow: UnitOfWork, outcome: d.DeliveryOutcome) -> None:
    """Save a closed demand and its carry-over (the shortfall, as a new demand), with their events."""
    repo.demands.save(uow.conn, outcome.demand)
    record(uow, ev.demand_closed(outcome.demand))
    if outcome.carry_over is not None:
        repo.demands.add(uow.conn, outcome.carry_over)
        record(uow, ev.demand_registered(outcome.carry_over,
                                         requester(uow, outcome.carry_over.requester_id)))


def _units_per_package(ctx: IntakeContext, line: Mapping[str, Any]) -> int:
    """How many units of the short item one package covers (its recipe in the catalogue)."""
    package = ctx.catalogue.item(line["item_code"])
    for comp in package.components:
        if comp.item_code == line["substitute_for"]:
            return comp.quantity
    raise InvalidInput("payload.lines.substitute_for",
                       f"{line['item_code']} does not contain {line['substitute_for']}")


def roll_unplanned_demands(ctx: IntakeContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> int:
    """`plan_approved` from allocation: the day's open demands that got nothing in the approved
    plan will see no delivery; they are rolled to the next open day now (a new demand carries
    them), so that no demand is left open and forgotten."""
    if "delivery_day" not in payload or "lines" not in payload:
        raise InvalidInput("payload", "delivery_day and lines are required")
    day = date.fromisoformat(payload["delivery_day"])
    planned = {ln.get("demand_id") for ln in payload["lines"] if int(ln.get("quantity", 0)) > 0}
    rolled, policy = 0, demand_policy(ctx, uow)
    for demand_id in repo.open_demand_ids(uow.conn, on=day):
        if demand_id in planned:
            continue
        demand = get_demand(uow, demand_id)
        outcome = d.apply_delivery_results(demand, {}, at=ctx.clock.now(), policy=policy,
                                           carry_over_id=new_id("D"))
        _close(uow, outcome)
        rolled += 1
    return rolled
