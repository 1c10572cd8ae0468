"""Household orders (居民订单): entered by the grid worker for a household, priced at the current
list version of the supermarket serving the community; the address is kept here only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork, new_id
from services.common.errors import InvalidInput, NotFound, RuleRefused
from services.common.repository import Page
from services.market.adapters import repositories as repo
from services.market.domain import events as ev
from services.market.domain.orders import (
    ORDER_STATUSES,
    HouseholdOrder,
    household_reference,
    place_order,
)
from services.market.handlers import outlets as outlets_h
from services.market.handlers.base import (
    COMMUNITY_ROLES,
    ORDER_READ_ROLES,
    MarketContext,
    community,
    day,
    for_community,
    for_community_or_outlet,
    record,
    required,
)

ORDER_STATE = "market_order_state"


def household_order(uow: UnitOfWork, order_id: str, field_name: str = "order_id", *,
                    lock: bool = False) -> HouseholdOrder:
    found = repo.household_orders.get(uow.conn, required(order_id, field_name), lock=lock)
    if found is None:
        raise NotFound(f"{field_name}: no household order {order_id!r} / 没有该居民订单")
    return found


def place(ctx: MarketContext, uow: UnitOfWork, actor: Caller, *, community_id: str, day_text: str,
          address: str, payment_mode: str, raw_lines: Sequence[Mapping[str, Any]],
          expected_amount_fen: int) -> HouseholdOrder:
    for_community(actor, community_id, *COMMUNITY_ROLES)
    c = community(uow, community_id)
    d = day(day_text)
    address = required(address, "address")
    o = outlets_h.serving(uow, c, "supermarket")
    if o is None:
        raise RuleRefused("market_no_outlet", f"no active supermarket serves {c.community_id} "
                                              f"/ 社区 {c.community_id} 没有可服务的定点超市")
    found = repo.get_list(uow.conn, o.outlet_id, d)
    if found is None:
        raise RuleRefused("market_no_list", f"{o.outlet_id} has published no list for {d} "
                                            f"/ {o.outlet_id} 尚未发布 {d} 的可售清单")
    order = place_order(
        order_id=new_id("HO"), community=c, outlet=o, day=d,
        household_ref=household_reference(ctx.household_key, c.community_id, address),
        grid_worker=actor.identity, payment_mode=payment_mode, raw_lines=raw_lines,
        expected_amount_fen=expected_amount_fen, sellable_list=found[0], catalogue=ctx.catalogue,
        policy=ctx.policy, now=ctx.clock.now(), tz=ctx.tz)
    repo.household_orders.add(uow.conn, order)
    repo.add_address(uow.conn, order.order_id, c.community_id, address)
    record(uow, ev.household_order_placed(order))
    return order


def cancel(uow: UnitOfWork, actor: Caller, order_id: str, reason: str) -> HouseholdOrder:
    order = household_order(uow, order_id, lock=True)
    for_community(actor, order.community_id, *COMMUNITY_ROLES)
    if order.status != "placed":
        raise RuleRefused(ORDER_STATE, f"order {order.order_id} is {order.status}; only a placed order "
                                       f"can be cancelled / 订单已汇总或已处理，不能取消")
    cancelled = order.with_status("cancelled")
    repo.household_orders.save(uow.conn, cancelled)
    return cancelled


def paid_by_order(uow: UnitOfWork, order_ids: list[str]) -> dict[str, int]:
    """What each order has been paid so far (online or collected), in fen."""
    paid: dict[str, int] = dict.fromkeys(order_ids, 0)
    for p in repo.payments_where(uow.conn, order_ids=order_ids):
        paid[p.order_id] += p.amount_fen
    return paid


def list_orders(uow: UnitOfWork, actor: Caller, *, community_id: str, day_text: str, status: str,
                page_size: int, page_token: str) -> Page[HouseholdOrder]:
    if actor.role in ("grid_worker", "village"):
        community_id = community_id or actor.scope
    if actor.role == "supermarket":
        c = community(uow, community_id)
        o = outlets_h.serving(uow, c, "supermarket")
        for_community_or_outlet(actor, community_id, o.outlet_id if o else "", *ORDER_READ_ROLES)
    else:
        for_community(actor, community_id, *ORDER_READ_ROLES)
    if status and status not in ORDER_STATUSES:
        raise InvalidInput("status", f"one of {', '.join(ORDER_STATUSES)}")
    return repo.order_page(uow.conn, community_id=community_id, day=day(day_text) if day_text else None,
                           status=status, page_size=page_size, page_token=page_token)
