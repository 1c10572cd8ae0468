"""Approved plans' lines, trips and deliveries in the database (rows in, rows out)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from services.logistics.adapters.schema import deliveries, plan_lines, trips


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
