"""Sellable lists (可售物品清单): an outlet publishes a new version for a day; prices go to
monitoring's price watch (sellable_list_published)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, NotFound
from services.market.adapters import repositories as repo
from services.market.domain import events as ev
from services.market.domain.lists import SellableList, validate_list_lines
from services.market.handlers import outlets as outlets_h
from services.market.handlers.base import (
    LIST_READ_ROLES,
    OUTLET_ROLES,
    MarketContext,
    community,
    day,
    for_community,
    for_outlet,
    outlet,
    record,
)


def publish_list(ctx: MarketContext, uow: UnitOfWork, actor: Caller, outlet_id: str, day_text: str,
                 raw_lines: Sequence[Mapping[str, Any]]) -> tuple[SellableList, Any]:
    for_outlet(actor, outlet_id, *OUTLET_ROLES)
    d = day(day_text)
    lines = validate_list_lines(raw_lines, ctx.catalogue, ctx.policy)
    o = outlet(uow, outlet_id, lock=True)  # one publish of an outlet at a time: versions 1, 2, 3 …
    sl = SellableList(o.outlet_id, d, repo.latest_version(uow.conn, o.outlet_id, d) + 1, lines)
    now = ctx.clock.now()
    repo.add_list(uow.conn, sl, now)
    record(uow, ev.sellable_list_published(sl))
    return sl, now


def current_list(uow: UnitOfWork, outlet_id: str, d) -> SellableList:
    found = repo.get_list(uow.conn, outlet_id, d)
    if found is None:
        raise NotFound(f"no sellable list of {outlet_id} for {d} / {outlet_id} 尚未发布 {d} 的可售清单")
    return found[0]


def get_list(uow: UnitOfWork, actor: Caller, *, outlet_id: str, community_id: str, day_text: str,
             version: int) -> tuple[SellableList, Any]:
    d = day(day_text)
    if not outlet_id:
        if not community_id:
            raise InvalidInput("outlet_id", "name the outlet or the community / 须指定超市或社区")
        for_community(actor, community_id, *LIST_READ_ROLES)
        o = outlets_h.serving(uow, community(uow, community_id), "supermarket")
        if o is None:
            raise NotFound(f"no supermarket serves {community_id} / 该社区没有对接的定点超市")
        outlet_id = o.outlet_id
    else:
        for_outlet(actor, outlet_id, *LIST_READ_ROLES)
    found = repo.get_list(uow.conn, outlet_id, d, version)
    if found is None:
        raise NotFound(f"no sellable list of {outlet_id} for {d}{f' version {version}' if version else ''} "
                       f"/ 没有该可售清单")
    return found
