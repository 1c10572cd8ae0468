"""Community orders (社区汇总订单): the grid worker closes the community's day, the outlet answers
line by line (备货反馈) and packs per household (分装), with labels and packing lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from services.common.auth import Caller
from services.common.db import UnitOfWork, new_id
from services.common.errors import InvalidInput, NotFound, RuleRefused
from services.market.adapters import repositories as repo
from services.market.domain import events as ev
from services.market.domain.aggregation import (
    CommunityOrder,
    aggregate,
    allocate,
    apply_confirmation,
)
from services.market.domain.orders import HouseholdOrder
from services.market.domain.parcels import PackingList, Parcel, pack, packing_lists
from services.market.handlers.base import (
    COMMUNITY_ROLES,
    ORDER_READ_ROLES,
    OUTLET_ROLES,
    MarketContext,
    community,
    day,
    for_community,
    for_community_or_outlet,
    for_outlet,
    outlet,
    record,
    required,
)


def community_order(uow: UnitOfWork, community_order_id: str,
                    field_name: str = "community_order_id", *, lock: bool = False) -> CommunityOrder:
    found = repo.community_orders.get(uow.conn, required(community_order_id, field_name), lock=lock)
    if found is None:
        raise NotFound(f"{field_name}: no community order {community_order_id!r} / 没有该社区汇总订单")
    return found


def _orders(uow: UnitOfWork, co: CommunityOrder) -> list[HouseholdOrder]:
    found = repo.household_orders.get_many(uow.conn, list(co.household_order_ids))
    return [found[i] for i in co.household_order_ids if i in found]


def aggregate_day(uow: UnitOfWork, actor: Caller, community_id: str, day_text: str,
                  drop_point_id: str) -> list[CommunityOrder]:
    """One community order per outlet with placed orders of the community's day."""
    for_community(actor, community_id, *COMMUNITY_ROLES)
    c = community(uow, community_id)
    d = day(day_text)
    if not drop_point_id:
        if not c.drop_points:
            raise InvalidInput("drop_point_id", f"{c.community_id} has no drop point in intake / 社区未登记物资存放点")
        drop_point_id = c.drop_points[0].drop_point_id
    elif c.drop_point(drop_point_id) is None:
        raise InvalidInput("drop_point_id", f"{drop_point_id!r} is not a drop point of {c.community_id} "
                                            f"/ 不是本社区的物资存放点")
    by_outlet: dict[str, list[HouseholdOrder]] = {}
    for o in repo.orders_of(uow.conn, c.community_id, d, ["placed"], lock=True):
        by_outlet.setdefault(o.outlet_id, []).append(o)
    if not by_outlet:
        aggregate(new_id("CO"), [], drop_point_id)  # the domain's refusal: nothing to aggregate
    made = []
    for outlet_id in sorted(by_outlet):
        co = aggregate(new_id("CO"), by_outlet[outlet_id], drop_point_id)
        repo.community_orders.add(uow.conn, co)
        for o in by_outlet[outlet_id]:
            repo.household_orders.save(uow.conn, o.with_status("sent"),
                                       community_order_id=co.community_order_id)
        record(uow, ev.community_order_sent(co))
        made.append(co)
    return made


def list_community_orders(uow: UnitOfWork, actor: Caller, *, outlet_id: str, community_id: str,
                          day_text: str) -> list[CommunityOrder]:
    """An outlet's or a community's community orders (a day, or every day); a supermarket sees
    its own outlet's only, a grid worker its own community's only."""
    if actor.role == "supermarket":
        outlet_id = outlet_id or actor.scope
        for_outlet(actor, outlet_id, *ORDER_READ_ROLES)
    else:
        if actor.role in ("grid_worker", "village"):
            community_id = community_id or actor.scope
        if community_id or actor.role in ("grid_worker", "village"):
            for_community(actor, community_id, *ORDER_READ_ROLES)
        else:
            actor.require(*ORDER_READ_ROLES)
    found = repo.community_orders_of(uow.conn, day=day(day_text) if day_text else None, community_id=community_id)
    return sorted((co for co in found if not outlet_id or co.outlet_id == outlet_id),
                  key=lambda co: (co.day, co.community_id, co.community_order_id))


def confirm(uow: UnitOfWork, actor: Caller, community_order_id: str,
            answers: Sequence[tuple[str, str, int]]) -> tuple[CommunityOrder, list[HouseholdOrder]]:
    """answers: (item_code, answer, quantity) per line; quantity only for partial."""
    co = community_order(uow, community_order_id, lock=True)
    for_outlet(actor, co.outlet_id, *OUTLET_ROLES)
    given: dict[str, tuple[str, int | None]] = {}
    for i, (code, answer, quantity) in enumerate(answers):
        if code in given:
            raise InvalidInput(f"answers[{i}].item_code", f"{code} is answered twice / 重复答复")
        given[code] = (answer, quantity if answer == "partial" else None)
    orders = _orders(uow, co)
    done, changed = apply_confirmation(co, orders, given)
    for o in allocate(done, orders):
        repo.household_orders.save(uow.conn, o)
    repo.community_orders.save(uow.conn, done)
    record(uow, ev.community_order_confirmed(done, changed))
    return done, changed


def pack_order(uow: UnitOfWork, actor: Caller, community_order_id: str) -> tuple[CommunityOrder, list[Parcel]]:
    co = community_order(uow, community_order_id, lock=True)
    for_outlet(actor, co.outlet_id, *OUTLET_ROLES)
    orders = _orders(uow, co)
    parcels = pack(co, orders)
    packed = replace(co, status="packed")
    repo.add_parcels(uow.conn, co.community_order_id, parcels)
    with_parcel = {p.household_order_id for p in parcels}
    for o in orders:
        if o.order_id in with_parcel:
            repo.household_orders.save(uow.conn, o.with_status("packed"))
    repo.community_orders.save(uow.conn, packed)
    record(uow, ev.parcels_packed(packed, parcels))
    return packed, parcels


def _packed(uow: UnitOfWork, actor: Caller, community_order_id: str) -> tuple[CommunityOrder, list[Parcel]]:
    co = community_order(uow, community_order_id)
    for_community_or_outlet(actor, co.community_id, co.outlet_id, *ORDER_READ_ROLES)
    parcels = repo.parcels_of(uow.conn, co.community_order_id)
    if not parcels:
        raise RuleRefused("market_order_state", f"community order {co.community_order_id} is {co.status}; "
                                                f"labels come once it is packed / 汇总订单尚未打包")
    return co, parcels


def labels(ctx: MarketContext, uow: UnitOfWork, actor: Caller, community_order_id: str) -> bytes:
    """The labels' HTML: addresses are printed here and nowhere else (not for the auditor)."""
    from services.market.adapters import labels as html

    actor.require(*OUTLET_ROLES)
    co, parcels = _packed(uow, actor, community_order_id)
    c = community(uow, co.community_id)
    addresses = repo.addresses(uow.conn, [p.household_order_id for p in parcels])
    return html.render_labels_html(parcels, outlet=outlet(uow, co.outlet_id), community=c,
                                   drop_points=c.drop_points, addresses=addresses,
                                   catalogue=ctx.catalogue).encode()


def packing(ctx: MarketContext, uow: UnitOfWork, actor: Caller, community_order_id: str
            ) -> tuple[list[PackingList], bytes]:
    from services.market.adapters import labels as html

    co, parcels = _packed(uow, actor, community_order_id)
    c = community(uow, co.community_id)
    page = html.render_packing_list_html(parcels, outlet=outlet(uow, co.outlet_id), community=c,
                                         drop_points=c.drop_points, catalogue=ctx.catalogue)
    return packing_lists(parcels), page.encode()
