"""Market's aggregates in the database (rows in, domain out): each stored whole as JSON beside
the columns lists filter on. The only SQL of the service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.common.repository import JsonRepository, Page
from services.common.serde import from_jsonable
from services.market.adapters import schema as s

T = TypeVar("T")


class Docs(Generic[T]):
    """Aggregates of one type in a table with `id` and `data`; `key(obj)` is its id and
    `columns(obj)` the indexed values."""

    def __init__(self, table: Table, cls: Callable[[], type[T]], key: Callable[[T], str],
                 columns: Callable[[T], dict[str, Any]]):
        self.table, self._cls, self.key, self.columns = table, cls, key, columns

    @property
    def cls(self) -> type[T]:
        return self._cls()

    def get(self, conn: Connection, key: str, *, lock: bool = False) -> T | None:
        """`lock`: the row stays locked until the transaction ends (PostgreSQL; SQLite has one
        writer at a time anyway), so two concurrent writes of one aggregate take turns."""
        q = select(self.table.c.data).where(self.table.c.id == key)
        row = conn.execute(q.with_for_update() if lock else q).first()
        return None if row is None else from_jsonable(self.cls, row.data)

    def get_many(self, conn: Connection, keys: Sequence[str]) -> dict[str, T]:
        if not keys:
            return {}
        rows = conn.execute(select(self.table.c.id, self.table.c.data)
                            .where(self.table.c.id.in_(list(keys)))).all()
        return {r.id: from_jsonable(self.cls, r.data) for r in rows}

    def add(self, conn: Connection, obj: T, **extra: Any) -> None:
        conn.execute(insert(self.table).values(id=self.key(obj), data=obj, **self.columns(obj), **extra))

    def save(self, conn: Connection, obj: T, **extra: Any) -> None:
        conn.execute(update(self.table).where(self.table.c.id == self.key(obj))
                     .values(data=obj, **self.columns(obj), **extra))

    def put(self, conn: Connection, obj: T, **extra: Any) -> None:
        """Insert or replace."""
        if conn.execute(select(self.table.c.id).where(self.table.c.id == self.key(obj))).first():
            self.save(conn, obj, **extra)
        else:
            self.add(conn, obj, **extra)

    def where(self, conn: Connection, *conditions: Any, order: Sequence[Any] = (), lock: bool = False) -> list[T]:
        q = select(self.table.c.data).where(*conditions).order_by(*order, self.table.c.id)
        q = q.with_for_update() if lock else q
        return [from_jsonable(self.cls, r.data) for r in conn.execute(q)]



def _outlet():
    from services.market.domain.outlets import Outlet
    return Outlet


def _community():
    from services.market.domain.outlets import Community
    return Community


def _household_order():
    from services.market.domain.orders import HouseholdOrder
    return HouseholdOrder


def _community_order():
    from services.market.domain.aggregation import CommunityOrder
    return CommunityOrder


def _parcel():
    from services.market.domain.parcels import Parcel
    return Parcel


def _purchase_list():
    from services.market.domain.purchase import PurchaseList
    return PurchaseList


outlets = Docs(s.outlets, _outlet, lambda o: o.outlet_id,
               lambda o: {"kind": o.kind, "township": o.township, "active": o.active})
communities = Docs(s.communities, _community, lambda c: c.community_id,
                   lambda c: {"township": c.township})
household_orders = Docs(s.household_orders, _household_order, lambda o: o.order_id, lambda o: {
    "community_id": o.community_id, "outlet_id": o.outlet_id, "day": o.day, "status": o.status,
    "grid_worker": o.grid_worker, "payment_mode": o.payment_mode, "placed_at": o.placed_at})
community_orders = Docs(s.community_orders, _community_order, lambda c: c.community_order_id, lambda c: {
    "community_id": c.community_id, "outlet_id": c.outlet_id, "day": c.day, "status": c.status})
parcels = Docs(s.parcels, _parcel, lambda p: p.parcel_id, lambda p: {
    "household_order_id": p.household_order_id, "status": p.status})
purchase_lists = Docs(s.purchase_lists, _purchase_list, lambda p: p.list_id, lambda p: {
    "village_id": p.village_id, "supply_point_id": p.supply_point_id, "pickup_day": p.pickup_day,
    "status": p.status})


# ---- communities and assignments -------------------------------------------------------------
def community_version(conn: Connection, community_id: str) -> int | None:
    return conn.execute(select(s.communities.c.version)
                        .where(s.communities.c.id == community_id)).scalar_one_or_none()


def put_community(conn: Connection, community, version: int) -> None:
    communities.put(conn, community, version=version)


def assignments(conn: Connection, kind: str) -> dict[str, str]:
    """community_id → outlet_id HQ assigned for this kind."""
    t = s.assignments
    return dict(conn.execute(select(t.c.community_id, t.c.outlet_id).where(t.c.kind == kind)).all())


def assign(conn: Connection, community_id: str, kind: str, outlet_id: str) -> None:
    t = s.assignments
    conn.execute(delete(t).where(t.c.community_id == community_id, t.c.kind == kind))
    conn.execute(insert(t).values(community_id=community_id, kind=kind, outlet_id=outlet_id))


def all_outlets(conn: Connection, kind: str = "", township: str = "") -> list:
    t = s.outlets
    return outlets.where(conn, *([t.c.kind == kind] if kind else []),
                         *([t.c.township == township] if township else []))


def all_communities(conn: Connection, township: str = "") -> list:
    t = s.communities
    return communities.where(conn, *([t.c.township == township] if township else []))


# ---- sellable lists ------------------------------------------------------------------------
def _sellable():
    from services.market.domain.lists import SellableList
    return SellableList


def latest_version(conn: Connection, outlet_id: str, day: date) -> int:
    t = s.sellable_lists
    return conn.execute(select(func.coalesce(func.max(t.c.version), 0))
                        .where(t.c.outlet_id == outlet_id, t.c.day == day)).scalar_one()


def add_list(conn: Connection, sl, published_at: datetime) -> None:
    conn.execute(insert(s.sellable_lists).values(outlet_id=sl.outlet_id, day=sl.day, version=sl.version,
                                                 published_at=published_at, data=sl))


def get_list(conn: Connection, outlet_id: str, day: date, version: int = 0):
    """The given version, or the newest when 0; with the time it was published."""
    t = s.sellable_lists
    q = select(t.c.data, t.c.published_at).where(t.c.outlet_id == outlet_id, t.c.day == day)
    q = q.where(t.c.version == version) if version else q.order_by(t.c.version.desc()).limit(1)
    row = conn.execute(q).first()
    return None if row is None else (from_jsonable(_sellable(), row.data), row.published_at)


# ---- household orders ----------------------------------------------------------------------
def add_address(conn: Connection, order_id: str, community_id: str, address: str) -> None:
    conn.execute(insert(s.household_addresses).values(order_id=order_id, community_id=community_id,
                                                      address=address))


def addresses(conn: Connection, order_ids: Sequence[str]) -> dict[str, str]:
    t = s.household_addresses
    if not order_ids:
        return {}
    return dict(conn.execute(select(t.c.order_id, t.c.address).where(t.c.order_id.in_(list(order_ids)))).all())


def orders_of(conn: Connection, community_id: str, day: date, statuses: Sequence[str] = (),
              lock: bool = False) -> list:
    t = s.household_orders
    return household_orders.where(conn, t.c.community_id == community_id, t.c.day == day,
                                  *([t.c.status.in_(list(statuses))] if statuses else []),
                                  order=[t.c.placed_at], lock=lock)


def order_page(conn: Connection, *, community_id: str, day: date | None, status: str,
               page_size: int, page_token: str) -> Page:
    """A keyset page of household orders by placing time."""
    t = s.household_orders
    where = [t.c.community_id == community_id] if community_id else []
    if day is not None:
        where.append(t.c.day == day)
    if status:
        where.append(t.c.status == status)
    return JsonRepository(t, _household_order(), lambda o: {}).page(conn, where, page_size, page_token,
                                                                    order=[t.c.placed_at])


def orders_where(conn: Connection, *, day: date | None = None, community_id: str = "",
                 grid_worker: str = "", payment_mode: str = "") -> list:
    t = s.household_orders
    where = []
    if day is not None:
        where.append(t.c.day == day)
    if community_id:
        where.append(t.c.community_id == community_id)
    if grid_worker:
        where.append(t.c.grid_worker == grid_worker)
    if payment_mode:
        where.append(t.c.payment_mode == payment_mode)
    return household_orders.where(conn, *where, order=[t.c.placed_at])


def set_community_order(conn: Connection, order_ids: Sequence[str], community_order_id: str) -> None:
    t = s.household_orders
    conn.execute(update(t).where(t.c.id.in_(list(order_ids))).values(community_order_id=community_order_id))


def community_order_id_of(conn: Connection, order_id: str) -> str:
    t = s.household_orders
    return conn.execute(select(t.c.community_order_id).where(t.c.id == order_id)).scalar_one_or_none() or ""


# ---- community orders, parcels ---------------------------------------------------------------
def community_orders_of(conn: Connection, *, day: date | None = None, community_id: str = "") -> list:
    t = s.community_orders
    where = []
    if day is not None:
        where.append(t.c.day == day)
    if community_id:
        where.append(t.c.community_id == community_id)
    return community_orders.where(conn, *where)


def parcels_of(conn: Connection, community_order_id: str) -> list:
    return parcels.where(conn, s.parcels.c.community_order_id == community_order_id)


def parcels_for_orders(conn: Connection, order_ids: Sequence[str]) -> list:
    if not order_ids:
        return []
    return parcels.where(conn, s.parcels.c.household_order_id.in_(list(order_ids)))


def add_parcels(conn: Connection, community_order_id: str, items: Sequence) -> None:
    for p in items:
        parcels.add(conn, p, community_order_id=community_order_id)


# ---- payments, settlements -------------------------------------------------------------------
def _payment():
    from services.market.domain.payments import Payment
    return Payment


def add_payment(conn: Connection, payment, community_id: str) -> None:
    conn.execute(insert(s.payments).values(order_id=payment.order_id, community_id=community_id,
                                           grid_worker=payment.grid_worker, data=payment,
                                           recorded_at=payment.recorded_at))


def payments_where(conn: Connection, *, order_ids: Sequence[str] | None = None, community_id: str = "",
                   grid_worker: str = "") -> list:
    t = s.payments
    where = []
    if order_ids is not None:
        if not order_ids:
            return []
        where.append(t.c.order_id.in_(list(order_ids)))
    if community_id:
        where.append(t.c.community_id == community_id)
    if grid_worker:
        where.append(t.c.grid_worker == grid_worker)
    rows = conn.execute(select(t.c.data).where(*where).order_by(t.c.id))
    return [from_jsonable(_payment(), r.data) for r in rows]


def save_settlement(conn: Connection, community_order_id: str, day: date, data: Any, at: datetime) -> None:
    t = s.settlements
    conn.execute(delete(t).where(t.c.id == community_order_id))
    conn.execute(insert(t).values(id=community_order_id, day=day, data=data, settled_at=at))


def settled_count(conn: Connection, day: date) -> int:
    t = s.settlements
    return conn.execute(select(func.count()).select_from(t).where(t.c.day == day)).scalar_one()


def closing(conn: Connection):
    """(closed_at, the stored report) once the accounts are closed, else None."""
    row = conn.execute(select(s.accounts_closing.c.closed_at, s.accounts_closing.c.data)).first()
    return None if row is None else (row.closed_at, row.data)


def close(conn: Connection, at: datetime, report: Any) -> bool:
    """False when the accounts were closed meanwhile (a concurrent close)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(s.accounts_closing).values(id=1, closed_at=at, data=report))
    except IntegrityError:
        return False
    return True


# ---- purchase on behalf ------------------------------------------------------------------------
def purchase_lists_of(conn: Connection, village_id: str) -> list:
    t = s.purchase_lists
    return purchase_lists.where(conn, t.c.village_id == village_id, order=[t.c.pickup_day])


def purchase_lists_for(conn: Connection, supply_point_id: str) -> list:
    t = s.purchase_lists
    return purchase_lists.where(conn, t.c.supply_point_id == supply_point_id, order=[t.c.pickup_day])


def slots(conn: Connection, village_id: str) -> Any:
    row = conn.execute(select(s.purchase_slots.c.data).where(s.purchase_slots.c.id == village_id)).first()
    return None if row is None else row.data


def put_slots(conn: Connection, village_id: str, data: Any) -> None:
    t = s.purchase_slots
    conn.execute(delete(t).where(t.c.id == village_id))
    conn.execute(insert(t).values(id=village_id, data=data))
