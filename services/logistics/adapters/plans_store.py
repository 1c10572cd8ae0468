"""Approved plans' lines, trips and deliveries in the database (rows in, rows out)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from services.common.db import is_postgres
from services.logistics.adapters.schema import deliveries, picks, plan_lines, plans, trips


def plan_exists(conn: Connection, plan_id: str) -> bool:
    return conn.execute(select(plans.c.id).where(plans.c.id == plan_id)).first() is not None


def plan_row(conn: Connection, plan_id: str, *, lock: bool = False):
    """The plan's row; lock: FOR UPDATE on PostgreSQL (SQLite's writer lock already holds)."""
    q = select(plans).where(plans.c.id == plan_id)
    if lock and is_postgres(conn):
        q = q.with_for_update()
    return conn.execute(q).first()


def add_plan(conn: Connection, *, plan_id: str, delivery_day: date, approved_by: str,
             approved_at: datetime | None, received_at: datetime, data: dict[str, Any],
             line_rows: list[dict], pick_rows: list[dict]) -> None:
    """A picked plan with its lines and picks."""
    conn.execute(insert(plans).values(
        id=plan_id, delivery_day=delivery_day, status="picked", approved_by=approved_by,
        approved_at=approved_at, received_at=received_at, data=data))
    if line_rows:
        conn.execute(insert(plan_lines), line_rows)
    if pick_rows:
        conn.execute(insert(picks), pick_rows)


def set_plan_dispatched(conn: Connection, plan_id: str, data: dict[str, Any]) -> None:
    conn.execute(update(plans).where(plans.c.id == plan_id).values(status="dispatched", data=data))


def picked_plans(conn: Connection) -> list[str]:
    """Ids of the plans picked and not yet routed, oldest first."""
    return [r.id for r in conn.execute(select(plans.c.id).where(plans.c.status == "picked")
                                       .order_by(plans.c.received_at))]


def plan_picks(conn: Connection, plan_id: str) -> list:
    return conn.execute(select(picks).where(picks.c.plan_id == plan_id).order_by(picks.c.id)).all()


def held_plan_lines(conn: Connection, plan_line_ids: Iterable[str]) -> set[str]:
    """Which of these plan line ids are already held."""
    return {r.id for r in conn.execute(select(plan_lines.c.id).where(
        plan_lines.c.id.in_(list(plan_line_ids))))}


def demand_of_plan_lines(conn: Connection, plan_id: str) -> dict[str, str | None]:
    """Plan line id → its demand id, for every line of the plan."""
    return {r.id: r.demand_id for r in conn.execute(
        select(plan_lines.c.id, plan_lines.c.demand_id).where(plan_lines.c.plan_id == plan_id))}


def add_trip(conn: Connection, *, trip_id: str, plan_id: str, delivery_day: date, depot_id: str,
             vehicle_id: str, created_at: datetime, data: dict[str, Any]) -> None:
    conn.execute(insert(trips).values(
        id=trip_id, plan_id=plan_id, delivery_day=delivery_day, depot_id=depot_id,
        vehicle_id=vehicle_id, status="scheduled", created_at=created_at, data=data))


def other_plans_trip_data(conn: Connection, delivery_day: date, plan_id: str) -> list[dict]:
    """The stored data of the day's trips of every other plan."""
    return [row.data for row in conn.execute(
        select(trips.c.data).where(trips.c.delivery_day == delivery_day, trips.c.plan_id != plan_id))]


def plan_line_row(conn: Connection, plan_line_id: str):
    return conn.execute(select(plan_lines).where(plan_lines.c.id == plan_line_id)).first()


def plan_line_parts(conn: Connection, plan_line_id: str) -> list:
    """The parts `<line>/<k>` of a plan line (plan_approved splits a line per depot and item)."""
    return conn.execute(select(plan_lines)
                        .where(plan_lines.c.id.startswith(plan_line_id + "/", autoescape=True))
                        .order_by(plan_lines.c.id)).all()


def plan_lines_by_id(conn: Connection, plan_line_ids: Iterable[str]) -> dict[str, Any]:
    return {r.id: r for r in conn.execute(select(plan_lines).where(
        plan_lines.c.id.in_(list(plan_line_ids))))}


def add_issued(conn: Connection, plan_line_id: str, quantity: int) -> None:
    conn.execute(update(plan_lines).where(plan_lines.c.id == plan_line_id)
                 .values(issued=plan_lines.c.issued + quantity))


def set_plan_line_data(conn: Connection, plan_line_id: str, data: dict[str, Any]) -> None:
    conn.execute(update(plan_lines).where(plan_lines.c.id == plan_line_id).values(data=data))


def demand_plan_lines(conn: Connection, demand_id: str) -> list:
    """(quantity, data) of every plan line of a demand."""
    return conn.execute(select(plan_lines.c.quantity, plan_lines.c.data)
                        .where(plan_lines.c.demand_id == demand_id)).all()


def trip_row(conn: Connection, trip_id: str):
    return conn.execute(select(trips).where(trips.c.id == trip_id)).first()


def save_trip_state(conn: Connection, trip_id: str, data: dict[str, Any], status: str) -> None:
    conn.execute(update(trips).where(trips.c.id == trip_id).values(data=data, status=status))


def delivery_row(conn: Connection, delivery_id: str):
    return conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()


def add_delivery(conn: Connection, *, delivery_id: str, trip_id: str, requester_id: str,
                 drop_point_id: str, fingerprint: str, received_at: datetime,
                 data: dict[str, Any]) -> None:
    conn.execute(insert(deliveries).values(
        id=delivery_id, trip_id=trip_id, requester_id=requester_id, drop_point_id=drop_point_id,
        fingerprint=fingerprint, received_at=received_at, data=data))


def consume_picks(conn: Connection, plan_line_id: str, lot_id: str, q: int) -> None:
    """Take `q` off the picks of a plan line on a lot, oldest pick first (a pick used up goes)."""
    for row in conn.execute(select(picks).where(picks.c.plan_line_id == plan_line_id,
                                                picks.c.lot_id == lot_id).order_by(picks.c.id)).all():
        if q <= 0:
            return
        take = min(q, int(row.quantity))
        if take == row.quantity:
            conn.execute(delete(picks).where(picks.c.id == row.id))
        else:
            conn.execute(update(picks).where(picks.c.id == row.id).values(quantity=row.quantity - take))
        q -= take


def replace_picks(conn: Connection, plan_line_id: str, bad_lot: str,
                  new_lots: list[tuple[str, int]]) -> None:
    """The plan line's picks on `bad_lot` become picks of (lot, quantity) in `new_lots`, for the
    same plan, depot, requester and drop point."""
    old = conn.execute(select(picks).where(picks.c.plan_line_id == plan_line_id,
                                           picks.c.lot_id == bad_lot)).all()
    conn.execute(delete(picks).where(picks.c.plan_line_id == plan_line_id, picks.c.lot_id == bad_lot))
    if old:
        o = old[0]
        for lot_id, qty in new_lots:
            conn.execute(insert(picks).values(plan_id=o.plan_id, plan_line_id=plan_line_id,
                                              depot_id=o.depot_id, requester_id=o.requester_id,
                                              drop_point_id=o.drop_point_id, item_code=o.item_code,
                                              lot_id=lot_id, quantity=qty))


def scheduled_trips(conn: Connection, plan_id: str) -> list:
    return conn.execute(select(trips).where(trips.c.plan_id == plan_id,
                                            trips.c.status == "scheduled")).all()


def set_trip_data(conn: Connection, trip_id: str, data: dict[str, Any]) -> None:
    conn.execute(update(trips).where(trips.c.id == trip_id).values(data=data))


def add_unmet(conn: Connection, plan_id: str, entry: dict) -> None:
    """Append an unmet entry to a plan's stored data (nothing when the plan is not held here)."""
    row = conn.execute(select(plans.c.data).where(plans.c.id == plan_id)).first()
    if row is None:
        return
    data = dict(row.data)
    data["unmet"] = [*data.get("unmet", []), entry]
    conn.execute(update(plans).where(plans.c.id == plan_id).values(data=data))
