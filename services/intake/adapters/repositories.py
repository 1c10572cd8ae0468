"""Intake's aggregates in the database: one JsonRepository per aggregate, the requester lookups of
the demand path, and the queries behind the lists and the day's summary (rows in, domain out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.engine import Connection

from services.common.repository import JsonRepository, Page
from services.common.serde import from_jsonable
from services.intake import domain as d
from services.intake.adapters import schema


def tier_mask(demand: d.Demand) -> int:
    """Bit n set when some line has tier n (ListDemands' tier filter: any line of that tier)."""
    return sum({1 << int(ln.tier) for ln in demand.lines})


requesters = JsonRepository(schema.requesters, d.Requester, lambda r: {
    "kind": r.kind.value, "township": r.township,
    "risk_level": r.risk_level.value if r.risk_level else None, "version": r.version,
    "updated_at": r.updated_at or r.registered_at})
demands = JsonRepository(schema.demands, d.Demand, lambda x: {
    "requester_id": x.requester_id, "delivery_day": x.delivery_day, "status": x.status.value,
    "top_tier": int(x.top_tier), "flagged": x.flagged, "origin": x.origin.value,
    "submitted_at": x.submitted_at, "tier_mask": tier_mask(x)})
special_needs = JsonRepository(schema.special_needs, d.SpecialNeed, lambda n: {
    "requester_id": n.requester_id, "pseudonym": n.beneficiary.pseudonym,
    "category": n.category.value, "registered_at": n.registered_at})
requisitions = JsonRepository(schema.requisitions, d.Requisition, lambda r: {
    "unit_id": r.unit_id, "status": r.status.value, "updated_at": r.approvals[-1].at})
donations = JsonRepository(schema.donations, d.Donation, lambda x: {
    "status": x.status.value, "updated_at": x.received_at})  # received_day: county day, by the handler


# ---- requesters, parsed once per version (the hot path of every demand) --------------------
_requester_versions = select(schema.requesters.c.id, schema.requesters.c.version,
                             schema.requesters.c.data)
_requester_by_id = _requester_versions.where(schema.requesters.c.id == bindparam("key"))
_requesters_in = _requester_versions.where(schema.requesters.c.id.in_(bindparam("ids", expanding=True)))
_versions_in = select(schema.requesters.c.id, schema.requesters.c.version).where(
    schema.requesters.c.id.in_(bindparam("ids", expanding=True)))
_requester_cache: dict[tuple[str, int], d.Requester] = {}


def _parsed(row) -> d.Requester:
    key = (row.id, row.version)
    found = _requester_cache.get(key)
    if found is None:
        if len(_requester_cache) > 100_000:
            _requester_cache.clear()
        found = _requester_cache[key] = from_jsonable(d.Requester, row.data)
    return found


def find_requester(conn: Connection, requester_id: str) -> d.Requester | None:
    row = conn.execute(_requester_by_id, {"key": requester_id}).first()
    return None if row is None else _parsed(row)


def find_requesters(conn: Connection, requester_ids: set[str]) -> dict[str, d.Requester]:
    """The requesters that exist among these ids: their versions in one query, and the stored
    documents only of those not parsed at that version yet."""
    ids = sorted(i for i in requester_ids if i)
    if not ids:
        return {}
    versions = conn.execute(_versions_in, {"ids": ids}).all()
    found = {r.id: _requester_cache.get((r.id, r.version)) for r in versions}
    missing = [i for i, r in found.items() if r is None]
    if missing:
        found.update({r.id: _parsed(r) for r in conn.execute(_requesters_in, {"ids": missing})})
    return {i: r for i, r in found.items() if r is not None}


def requester_page(conn: Connection, *, requester_id: str, township: str, kind: str,
                   risk_level: str, page_size: int, page_token: str) -> Page[d.Requester]:
    t = schema.requesters
    where = []
    if requester_id:
        where.append(t.c.id == requester_id)
    if township:
        where.append(t.c.township == township)
    if kind:
        where.append(t.c.kind == kind)
    if risk_level:
        where.append(t.c.risk_level == risk_level)
    return requesters.page(conn, where, page_size, page_token)


# ---- demands ------------------------------------------------------------------------------
def open_demand_ids(conn: Connection, *, on: date | None = None, since: date | None = None
                    ) -> list[str]:
    """The open demands to be delivered on the day `on`, or on `since` and later."""
    t = schema.demands
    where = [t.c.status == d.DemandStatus.OPEN.value]
    if on is not None:
        where.append(t.c.delivery_day == on)
    if since is not None:
        where.append(t.c.delivery_day >= since)
    return list(conn.execute(select(t.c.id).where(*where)).scalars().all())


def demand_page(conn: Connection, *, requester_id: str, delivery_day: date | None, status: str,
                tier: int, flagged: bool | None, page_size: int, page_token: str) -> Page[d.Demand]:
    """Ordered by delivery day, most urgent tier, submission time; `tier`: some line of it."""
    t = schema.demands
    where = []
    if requester_id:
        where.append(t.c.requester_id == requester_id)
    if delivery_day:
        where.append(t.c.delivery_day == delivery_day)
    if status:
        where.append(t.c.status == status)
    if tier:
        where.append(t.c.tier_mask.op("&")(1 << tier) != 0)
    if flagged is not None:
        where.append(t.c.flagged.is_(flagged))
    return demands.page(conn, where, page_size, page_token,
                        order=(t.c.delivery_day, t.c.top_tier, t.c.submitted_at))


def demand_summary(conn: Connection, delivery_day: date, requester_id: str) -> dict[str, Any]:
    """The day's demands counted by top tier, township and status, and the flagged ones, from the
    indexed columns (no demand document is read)."""
    t, r = schema.demands, schema.requesters
    joined = t.join(r, r.c.id == t.c.requester_id, isouter=True)
    where = [t.c.delivery_day == delivery_day]
    if requester_id:
        where.append(t.c.requester_id == requester_id)
    township = func.coalesce(r.c.township, "")
    counts = conn.execute(
        select(t.c.top_tier, township.label("township"), t.c.status, func.count().label("demands"),
               func.sum(case((t.c.flagged, 1), else_=0)).label("flagged"))
        .select_from(joined).where(*where).group_by(t.c.top_tier, township, t.c.status)
        .order_by(t.c.top_tier, township, t.c.status)).all()
    flagged = conn.execute(
        select(t.c.id, t.c.requester_id, township.label("township"), t.c.top_tier)
        .select_from(joined).where(*where, t.c.flagged.is_(True))
        .order_by(t.c.top_tier, t.c.submitted_at).limit(200)).all()
    return {"counts": [row._asdict() for row in counts], "flagged": [row._asdict() for row in flagged],
            "demands": sum(row.demands for row in counts)}


# ---- special needs, requisitions, donations -----------------------------------------------
def all_special_needs(conn: Connection) -> list[d.SpecialNeed]:
    ids = conn.execute(select(schema.special_needs.c.id)).scalars().all()
    return list(special_needs.get_many(conn, list(ids)).values())


def special_need_page(conn: Connection, *, requester_id: str, category: str, pseudonym: str,
                      page_size: int, page_token: str) -> Page[d.SpecialNeed]:
    t = schema.special_needs
    where = []
    if pseudonym:
        where.append(t.c.pseudonym == pseudonym)
    if requester_id:
        where.append(t.c.requester_id == requester_id)
    if category:
        where.append(t.c.category == category)
    return special_needs.page(conn, where, page_size, page_token)


def requisition_page(conn: Connection, *, unit_id: str, statuses: Sequence[str], page_size: int,
                     page_token: str) -> Page[d.Requisition]:
    """Ordered by the last step (filing or approval), the one waiting longest first."""
    t = schema.requisitions
    where = []
    if unit_id:
        where.append(t.c.unit_id == unit_id)
    if statuses:
        where.append(t.c.status.in_(list(statuses)))
    return requisitions.page(conn, where, page_size, page_token, order=(t.c.updated_at,))


def donation_page(conn: Connection, *, statuses: Sequence[str], received_day: date | None,
                  page_size: int, page_token: str) -> Page[d.Donation]:
    """Ordered by arrival, oldest first (the inspection queue: registered, partly inspected)."""
    t = schema.donations
    where = []
    if statuses:
        where.append(t.c.status.in_(list(statuses)))
    if received_day:
        where.append(t.c.received_day == received_day)
    return donations.page(conn, where, page_size, page_token,
                          order=(t.c.received_day, t.c.updated_at))


def donations_received(conn: Connection, first: date, last: date) -> list[d.Donation]:
    """The donations received from the day `first` to the day `last`, both included."""
    t = schema.donations
    ids = conn.execute(select(t.c.id).where(t.c.received_day >= first,
                                            t.c.received_day <= last)).scalars().all()
    return list(donations.get_many(conn, list(ids)).values())
