"""The county policy (cut-off, tier order, reserves …): read, set by HQ, announced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.allocation import plans as pv
from services.allocation.adapters import policy_store as store
from services.allocation.domain.county_policy import CountyPolicy, apply_changes
from services.allocation.handlers.base import POLICY_ROLES, AllocationContext
from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import RuleRefused
from services.common.serde import from_jsonable, to_jsonable


def current_policy(ctx: AllocationContext, uow: UnitOfWork) -> CountyPolicy:
    data = store.newest(uow.conn)
    return ctx.default_policy if data is None else from_jsonable(CountyPolicy, data)


def policy_versions(ctx: AllocationContext, uow: UnitOfWork) -> list[CountyPolicy]:
    return [from_jsonable(CountyPolicy, data) for data in store.every_version(uow.conn)]


def set_policy(ctx: AllocationContext, uow: UnitOfWork, actor: Caller, changes: Mapping[str, Any],
               expected_version: int | None) -> CountyPolicy:
    actor.require(*POLICY_ROLES)
    current = current_policy(ctx, uow)
    if expected_version is not None and expected_version != current.version:
        raise RuleRefused("VERSION_MISMATCH", f"policy is at version {current.version}, not "
                                              f"{expected_version}; read it again / 策略已被修改")
    new = apply_changes(current, changes, ctx.catalogue, by=actor.identity, at=ctx.clock.now())
    if new is current:
        return current
    if not store.add_version(uow.conn, new.version, to_jsonable(new), actor.identity,
                             new.updated_at):
        raise RuleRefused("VERSION_MISMATCH", f"policy version {new.version} was written "
                                              f"concurrently; read it again")
    uow.record_event(pv.POLICY_CHANGED, pv.policy_changed(new, str(ctx.tz)))
    return new


def announce_policy(ctx: AllocationContext) -> CountyPolicy:
    """At the worker's start: publish the current policy (policy_changed), so that intake knows
    the cut-off before HQ first sets one and after a restore; the first time, version 0 (the
    configured seed) is stored, so that it cannot change under the same version number.
    Publishing a version twice is harmless: consumers apply a version once (docs/adr/0008)."""
    with ctx.uow() as uow:
        current = current_policy(ctx, uow)
        if current is ctx.default_policy and not store.add_version(
                uow.conn, current.version, to_jsonable(current), "config", ctx.clock.now()):
            current = current_policy(ctx, uow)  # another worker stored it first
        uow.record_event(pv.POLICY_CHANGED, pv.policy_changed(current, str(ctx.tz)))
        uow.commit()
    return current
