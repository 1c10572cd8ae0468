"""Logistics use cases against a real SQLite file migrated to head (no servers needed)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from services.common.auth import Caller
from services.common.catalogue import load_catalogue
from services.common.clock import FixedClock
from services.common.db import make_engine
from services.common.idempotency import run_idempotent
from services.common.migrate import upgrade
from services.logistics.adapters import schema
from services.logistics.domain.policy import TripPolicy
from services.logistics.handlers import base, queries, receipts, sites

KEEPER = Caller("keeper-1", "depot_keeper")
HQ = Caller("hq-1", "hq")
NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)  # 09:00 in the county
TODAY = date(2026, 11, 28)
TOMORROW = TODAY + timedelta(days=1)
POLICY = TripPolicy(time_limit_s=1.0, fallback_time_limit_s=1.0, max_iterations=300, seed=3)


def make_ctx(tmp_path: Path, **kw) -> base.LogisticsContext:
    url = f"sqlite:///{tmp_path / 'logistics.db'}"
    upgrade("logistics", url)
    return base.LogisticsContext(engine=make_engine(url), catalogue=load_catalogue(),
                              clock=FixedClock(NOW), trip_policy=POLICY, **kw)


def run(ctx: base.LogisticsContext, fn, *args, **kw):
    """One use case in one committed unit of work."""
    with ctx.uow() as uow:
        result = fn(ctx, uow, *args, **kw)
        uow.commit()
        return result


def write(ctx: base.LogisticsContext, key: str, fn, *args, **kw) -> bytes:
    """Through run_idempotent, as the gRPC servicer does (the result is a repr)."""
    return run_idempotent(ctx.uow(), "test", key, key, lambda uow: repr(fn(ctx, uow, *args, **kw)).encode())


def setup_depot(ctx: base.LogisticsContext, depot: str = "D1", lat: float = 30.30, lon: float = 120.10) -> None:
    run(ctx, sites.register_depot, HQ, {"id": depot, "name": "城关仓", "lat": lat, "lon": lon})
    for zid, sclass, cap in (("AMB", "ambient", 100_000), ("CHL", "chilled", 20_000),
                             ("FLM", "flammable", 5_000), ("OXD", "oxidizer", 5_000)):
        run(ctx, sites.register_zone, HQ, {"id": f"{depot}-{zid}", "depot_id": depot,
                                       "storage_class": sclass, "capacity_l": cap})


def receive(ctx: base.LogisticsContext, item: str, qty: int, *, depot: str = "D1", zone: str = "",
            expiry: date | None = None, kind: str = "purchase", origin: str = "PO-1",
            lot_id: str = "") -> str:
    r = run(ctx, receipts.receive_stock, KEEPER, kind=kind, depot_id=depot, origin_ref=origin, lines=[
        receipts.ReceiptLineSpec(item, qty, "B1", (expiry or TODAY + timedelta(days=90)).isoformat(),
                          zone, lot_id)])
    return r["lot_ids"][0]


def balance(ctx: base.LogisticsContext, lot_id: str):
    with ctx.engine.connect() as conn:
        return queries.lot_row(conn, lot_id)


def events(ctx: base.LogisticsContext, routing_key: str) -> list[dict]:
    t = schema.tables["outbox"]
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(t.c.body).where(t.c.routing_key == routing_key).order_by(t.c.id))
        return [json.loads(b)["payload"] for (b,) in rows]


def requester(rid: str = "V1", lat: float = 30.32, lon: float = 120.12, households: int = 35,
              population: int = 100, version: int = 1) -> dict:
    return {"requester_id": rid, "kind": "village", "name": "河西村", "township": "河西镇",
            "location": {"lat": lat, "lon": lon},
            "drop_points": [{"id": "DP1", "name": "村委会", "location": {"lat": lat, "lon": lon},
                             "window_start": "08:00", "window_end": "17:00"}],
            "population": population, "households": households, "version": version}


def plan(plan_id: str, *lines: dict, day: date = TOMORROW) -> dict:
    return {"plan_id": plan_id, "delivery_day": day.isoformat(), "approved_by": "hq-1",
            "approved_at": "2026-11-28T08:00:00Z", "lines": list(lines)}


def plan_line(plid: str, item: str, qty: int, *, depot: str = "D1", lots=(), requester_id: str = "V1",
              drop_point: str = "DP1", demand: str = "D-1", tier: int = 3) -> dict:
    return {"plan_line_id": plid, "demand_id": demand, "demand_line_no": 1,
            "requester_id": requester_id, "drop_point_id": drop_point, "item_code": item,
            "quantity": qty, "depot_id": depot,
            "lots": [{"lot_id": lot, "quantity": q} for lot, q in lots], "tier": tier,
            "substitute_for": None, "reasons": [{"code": "FEFO"}]}


def vehicle(vid: str = "T1", depot: str = "D1", cold: bool = True) -> dict:
    return {"id": vid, "pass_number": f"通-{vid}", "driver": "司机甲", "clerk": "押运乙",
            "capacity_kg": 3000, "capacity_l": 20000, "refrigerated": cold, "depot_id": depot,
            "slots": [{"start": "07:00", "end": "18:00"}]}
