"""Plans (tables plans, plan_lines, depots): each version's header (its state), details and
lines, and the depots the latest stock snapshot named."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.allocation import plans as pv
from services.allocation.adapters import schema
from services.allocation.adapters.stock import DepotInfo
from services.allocation.domain.plan_state import PlanHeader
from services.common.repository import decode_page_token, encode_page_token
from services.common.serde import from_jsonable, to_jsonable

_header_by_id = select(schema.plans.c.header).where(schema.plans.c.id == bindparam("pid"))


def header(conn: Connection, plan_id: str, *, lock: bool = False) -> PlanHeader | None:
    q = _header_by_id.with_for_update() if lock else _header_by_id
    row = conn.execute(q, {"pid": plan_id}).first()
    return None if row is None else from_jsonable(PlanHeader, row.header)


def day_headers(conn: Connection, day: date, *, lock: bool = False) -> list[PlanHeader]:
    """The day's versions, oldest first."""
    t = schema.plans
    q = select(t.c.header).where(t.c.delivery_day == day).order_by(t.c.version)
    if lock:
        q = q.with_for_update()
    return [from_jsonable(PlanHeader, r.header) for r in conn.execute(q)]


def day_versions(conn: Connection, day: date) -> list[tuple[PlanHeader, pv.PlanDetails]]:
    t = schema.plans
    rows = conn.execute(select(t.c.header, t.c.data).where(t.c.delivery_day == day)
                        .order_by(t.c.version))
    return [(from_jsonable(PlanHeader, r.header), from_jsonable(pv.PlanDetails, r.data))
            for r in rows]


def save_header(conn: Connection, h: PlanHeader) -> None:
    t = schema.plans
    conn.execute(update(t).where(t.c.id == h.plan_id).values(
        status=h.status.value, late=h.late, header=to_jsonable(h)))


def details(conn: Connection, plan_id: str) -> pv.PlanDetails | None:
    t = schema.plans
    row = conn.execute(select(t.c.data).where(t.c.id == plan_id)).first()
    return None if row is None else from_jsonable(pv.PlanDetails, row.data)


def add_plan(conn: Connection, h: PlanHeader, d: pv.PlanDetails, created_at: datetime) -> bool:
    """Store a new version; False (and nothing written) when the day's version is taken."""
    try:
        with conn.begin_nested():
            conn.execute(insert(schema.plans).values(
                id=h.plan_id, delivery_day=h.delivery_day, version=h.version,
                status=h.status.value, late=False, created_at=created_at,
                header=to_jsonable(h), data=to_jsonable(d)))
    except IntegrityError:
        return False
    return True


def add_lines(conn: Connection, plan_id: str, stored: Sequence[pv.StoredLine]) -> None:
    if stored:
        conn.execute(insert(schema.plan_lines), [{
            "id": s.plan_line_id, "plan_id": plan_id, "seq": s.seq,
            "demand_id": s.line.demand_id, "line_no": s.line.line_no,
            "requester_id": s.line.requester_id, "item_code": s.line.item_code,
            "tier": s.line.tier, "allocated": s.line.allocated, "unmet": s.line.unmet,
            "data": to_jsonable(s)} for s in stored])


def lines_page(conn: Connection, plan_id: str, size: int, page_token: str,
               requester_id: str = "") -> tuple[tuple[pv.StoredLine, ...], str]:
    """`size` lines after the token's (one requester's, or all), and the next page's token."""
    t = schema.plan_lines
    after = decode_page_token(page_token, [t.c.seq], "lines_page.page_token")
    where = [t.c.plan_id == plan_id, t.c.seq > (after[0] if after else 0)]
    if requester_id:
        where.append(t.c.requester_id == requester_id)
    rows = conn.execute(select(t.c.seq, t.c.data).where(*where).order_by(t.c.seq)
                        .limit(size + 1)).all()
    lines = tuple(from_jsonable(pv.StoredLine, r.data) for r in rows[:size])
    return lines, (encode_page_token([rows[size - 1].seq]) if len(rows) > size else "")


def all_lines(conn: Connection, plan_id: str) -> list[pv.StoredLine]:
    t = schema.plan_lines
    rows = conn.execute(select(t.c.data).where(t.c.plan_id == plan_id).order_by(t.c.seq))
    return [from_jsonable(pv.StoredLine, r.data) for r in rows]


def line(conn: Connection, *, plan_line_id: str = "", plan_id: str = "", demand_id: str = "",
         line_no: int = 0) -> pv.StoredLine | None:
    """A line by its id, or by its plan and demand line."""
    t = schema.plan_lines
    where = ([t.c.id == plan_line_id] if plan_line_id else
             [t.c.plan_id == plan_id, t.c.demand_id == demand_id, t.c.line_no == line_no])
    row = conn.execute(select(t.c.data).where(*where)).first()
    return None if row is None else from_jsonable(pv.StoredLine, row.data)


def remember_depots(conn: Connection, depots: Sequence[DepotInfo], now: datetime) -> None:
    """Allocation's view of depots: the latest snapshot's depots (logistics owns them)."""
    t = schema.depots
    for x in depots:
        values = {"name": x.name, "lat": x.lat, "lon": x.lon, "seen_at": now}
        if conn.execute(update(t).where(t.c.id == x.id).values(**values)).rowcount == 0:
            conn.execute(insert(t).values(id=x.id, **values))
