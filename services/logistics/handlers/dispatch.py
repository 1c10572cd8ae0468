"""The approved plan: reserve and pick its lines in HQ's order, then route it into trips."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from services.common.days import instant_or, parse_day
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, NotFound, RuleRefused
from services.common.serde import to_jsonable
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import plans_store
from services.logistics.adapters.sites_store import (
    depot_from_row,
    depot_rows,
    drop_points_by_requester,
    requesters_by_id,
    vehicles_of,
)
from services.logistics.domain.model import (
    Depot,
    DropPoint,
    TimeSlot,
    Vehicle,
    split_stop_key,
    stop_key,
)
from services.logistics.domain.picking import (
    PickRequest,
    pick,
    serve_ranks,
)
from services.logistics.domain.trip_building import build_trips
from services.logistics.domain.trips import PickLine, PickList, TripPlan
from services.logistics.handlers.base import (
    LogisticsContext,
    hhmm,
    iso,
    parse_hhmm,
    utc,
)
from services.logistics.handlers.ledger import load_more, open_ledger, save_ledger

log = logging.getLogger(__name__)


def apply_plan_approved(ctx: LogisticsContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> str | None:
    """`plan_approved` from allocation: reserve the lots each line names (or first-expiry-
    first-out when it names only depot and item). A named lot that cannot serve (quarantined,
    written off, expiring before the delivery day, short) is replaced FEFO from other lots of
    the depot; what is still missing is reported unmet. Trips are built afterwards by
    `route_plan`, outside this transaction. Returns the plan id, or None if already held."""
    plan_id = payload.get("plan_id")
    if not plan_id or not isinstance(plan_id, str):
        raise InvalidInput("payload.plan_id", "required")
    day = parse_day(payload.get("delivery_day"), "payload.delivery_day", required=True)
    if plans_store.plan_exists(uow.conn, plan_id):
        return None
    raw_lines = list(payload.get("lines") or ())
    ol = open_ledger(ctx, uow)
    now = ctx.clock.now()
    actor = f"plan:{payload.get('approved_by') or 'hq'}"
    unmet: list[dict] = []
    line_rows: list[dict] = []
    pick_rows: list[dict] = []
    known = plans_store.held_plan_lines(uow.conn, [str(ln.get("plan_line_id")) for ln in raw_lines])
    rank = serve_ranks(raw_lines)
    order = sorted(range(len(raw_lines)), key=lambda i: (rank[i], str(raw_lines[i].get("plan_line_id"))))
    for i in order:
        ln = raw_lines[i]
        f = f"payload.lines[{i}]"
        plid = str(ln.get("plan_line_id") or "")
        item_code = str(ln.get("item_code") or "")
        depot_id = str(ln.get("depot_id") or "")
        qty = ln.get("quantity")

        def miss(code: str, zh: str, en: str, q: int | None = None, _ln=ln, _plid=plid,
                 catalogue_item=item_code, _depot=depot_id, _qty=qty) -> None:
            unmet.append({"plan_line_id": _plid, "demand_id": _ln.get("demand_id"),
                          "item_code": catalogue_item, "depot_id": _depot,
                          "quantity": int(q if q is not None else (_qty or 0)), "code": code,
                          "zh": zh, "en": en})

        if not plid or plid in known:
            miss("BAD_PLAN_LINE", "计划行编号缺失或重复", f"{f}.plan_line_id missing or already held")
            continue
        known.add(plid)
        if item_code not in ctx.catalogue.items or not isinstance(qty, int) or qty <= 0 or not depot_id:
            miss("BAD_PLAN_LINE", "计划行物资、数量或仓库无效", f"{f}: item, quantity or depot invalid")
            continue
        named = tuple((str(x.get("lot_id")), int(x.get("quantity") or 0)) for x in (ln.get("lots") or ()))
        load_more(uow, ol, depot_items=[(depot_id, item_code)], lot_ids=[n for n, _ in named])
        request = PickRequest(plid, depot_id, item_code, qty, day, named)
        note: dict | None = None
        try:
            p = pick(request, ol.ledger.balances, actor=actor, at=now, policy=ctx.pick_policy,
                     allow_partial=not named)
        except (RuleRefused, NotFound, InvalidInput) as exc:
            note = {"code": "REPICKED_FEFO", "refused": getattr(exc, "rule", type(exc).__name__),
                    "message": exc.message}
            p = pick(dataclasses.replace(request, lots=()), ol.ledger.balances, actor=actor, at=now,
                     policy=ctx.pick_policy, allow_partial=True)
        ol.ledger.post_all(p.postings)
        requester_id = str(ln.get("requester_id") or "")
        drop_point_id = str(ln.get("drop_point_id") or "")
        for x in p.picked:
            pick_rows.append({"plan_id": plan_id, "plan_line_id": plid, "depot_id": depot_id,
                              "requester_id": requester_id, "drop_point_id": drop_point_id,
                              "item_code": item_code, "lot_id": x.lot_id, "quantity": x.quantity})
        if p.short:
            miss("INSUFFICIENT_STOCK", f"{depot_id} 的 {item_code} 可用库存不足,缺 {p.short}",
                 f"depot {depot_id} lacks {p.short} of {item_code} usable on {day}", p.short)
        line_rows.append({
            "id": plid, "plan_id": plan_id, "delivery_day": day, "demand_id": ln.get("demand_id"),
            "demand_line_no": ln.get("demand_line_no"), "requester_id": requester_id,
            "drop_point_id": drop_point_id, "item_code": item_code, "quantity": qty,
            "depot_id": depot_id, "tier": int(ln.get("tier") or 5), "issued": 0,
            "data": {"line": dict(ln), "picked": [[x.lot_id, x.quantity] for x in p.picked],
                     "short": p.short, "repick": note}})
    plans_store.add_plan(uow.conn, plan_id=plan_id, delivery_day=day,
                         approved_by=str(payload.get("approved_by") or ""),
                         approved_at=instant_or(payload.get("approved_at"), None),
                         received_at=utc(now), data={"unmet": unmet, "lines": len(raw_lines)},
                         line_rows=line_rows, pick_rows=pick_rows)
    save_ledger(ctx, uow, ol)
    return plan_id


@dataclass
class RoutingInput:
    plan_id: str
    delivery_day: date
    pick_lists: list[PickList]
    depots: list[Depot]
    vehicles: list[Vehicle]
    drop_points: list[DropPoint]
    unknown_stops: list[dict]
    picks_seen: list[tuple]


def _routing_input(ctx: LogisticsContext, conn: Connection, plan_id: str) -> RoutingInput | None:
    plan = plans_store.plan_row(conn, plan_id)
    if plan is None or plan.status != "picked":
        return None
    picks = plans_store.plan_picks(conn, plan_id)
    requester_ids = sorted({p.requester_id for p in picks})
    req_rows = requesters_by_id(conn, requester_ids)
    dp_rows = drop_points_by_requester(conn, requester_ids)
    drop_points: dict[str, DropPoint] = {}
    unknown: list[dict] = []
    lists: dict[tuple[str, str], list[PickLine]] = {}
    for p in picks:
        key = _resolve_stop(p.requester_id, p.drop_point_id, req_rows, dp_rows, drop_points)
        if key is None:
            unknown.append({"plan_line_id": p.plan_line_id, "item_code": p.item_code,
                            "depot_id": p.depot_id, "quantity": int(p.quantity),
                            "requester_id": p.requester_id, "drop_point_id": p.drop_point_id})
            continue
        lists.setdefault((p.depot_id, key), []).append(
            PickLine(p.plan_line_id, p.item_code, p.lot_id, int(p.quantity)))
    depots = [depot_from_row(r) for r in depot_rows(conn)]
    taken = _slots_taken(conn, plan.delivery_day, plan_id)
    vehicles = []
    for v in vehicles_of(conn):
        slots = v.slots or (TimeSlot(*ctx.trip_policy.default_slot),)
        free = tuple(s for s in slots if (v.id, hhmm(s.start)) not in taken)
        if free:
            vehicles.append(dataclasses.replace(v, slots=free))
    return RoutingInput(plan_id, plan.delivery_day,
                        [PickList(d, k, tuple(lines)) for (d, k), lines in sorted(lists.items())],
                        depots, vehicles, list(drop_points.values()), unknown,
                        [tuple(p) for p in picks])


def _resolve_stop(requester_id: str, drop_point_id: str, req_rows, dp_rows,
                  out: dict[str, DropPoint]) -> str | None:
    """The stop for a plan line: its drop point; empty drop point: the requester's first one,
    else the requester's own address. None when logistics does not know the requester."""
    points = dp_rows.get(requester_id, [])
    row = None
    if drop_point_id:
        row = next((r for r in points if r.drop_point_id == drop_point_id), None)
        if row is None:
            return None
    elif points:
        row = points[0]
    key = stop_key(requester_id, row.drop_point_id if row is not None else "")
    if key in out:
        return key
    if row is not None:
        out[key] = DropPoint(key, requester_id, row.lat, row.lon,
                             parse_hhmm(row.window_open, "", time(8)),
                             parse_hhmm(row.window_close, "", time(18)), int(row.households))
        return key
    req = req_rows.get(requester_id)
    if req is None or (req.lat == 0.0 and req.lon == 0.0):
        return None
    out[key] = DropPoint(key, requester_id, req.lat, req.lon, households=int(req.households or 0))
    return key


def _slots_taken(conn: Connection, day: date, plan_id: str) -> set[tuple[str, str]]:
    """Vehicle slots already used on the day by other plans' trips."""
    return {(data["trip"]["vehicle_id"], data.get("slot_start", ""))
            for data in plans_store.other_plans_trip_data(conn, day, plan_id)}


def route_plan(ctx: LogisticsContext, plan_id: str, *, solve=build_trips, attempts: int = 3) -> bool:
    """Build the trips of a picked plan (PyVRP, SUPPLY_ROUTING_SECONDS) outside any transaction,
    then write them and `dispatch_scheduled` in a short one. If the picks changed meanwhile (a
    lot was quarantined and re-picked) the routing is done again. Returns True if this call
    dispatched the plan. `solve` lets the worker run the solver off its event loop."""
    for _ in range(attempts):
        with ctx.uow() as uow:
            inp = _routing_input(ctx, uow.conn, plan_id)
        if inp is None:
            return False
        staff = {dp.id: ctx.delivery_staff_per_drop_point for dp in inp.drop_points}
        trip_plan = solve(inp.pick_lists, depots=inp.depots, vehicles=inp.vehicles,
                          drop_points=inp.drop_points, catalogue=ctx.catalogue,
                          delivery_day=inp.delivery_day, policy=ctx.trip_policy,
                          delivery_staff=staff)
        with ctx.uow() as uow:
            store.lock_head(uow.conn)
            plan = plans_store.plan_row(uow.conn, plan_id, lock=True)
            if plan is None or plan.status != "picked":
                return False
            now_picks = [tuple(p) for p in plans_store.plan_picks(uow.conn, plan_id)]
            if now_picks != inp.picks_seen:
                continue
            _write_dispatch(ctx, uow, plan, inp, trip_plan)
            uow.commit()
            return True
    log.warning("plan picks kept changing while routing; will retry", extra={"plan_id": plan_id})
    return False


def _write_dispatch(ctx: LogisticsContext, uow: UnitOfWork, plan, inp: RoutingInput,
                    tp: TripPlan) -> None:
    demand_of = plans_store.demand_of_plan_lines(uow.conn, plan.id)
    now = utc(ctx.clock.now())
    trips_payload = []
    for trip in tp.trips:
        trip = dataclasses.replace(trip, trip_id=f"{plan.id}/{trip.trip_id}")
        slot_start = hhmm(trip.slot[0].astimezone(ZoneInfo(ctx.timezone)).time())
        plans_store.add_trip(uow.conn, trip_id=trip.trip_id, plan_id=plan.id,
                             delivery_day=trip.delivery_day, depot_id=trip.depot_id,
                             vehicle_id=trip.vehicle_id, created_at=now,
                             data={"trip": to_jsonable(trip), "slot_start": slot_start,
                                   "delivered": {}})
        trips_payload.append({
            "trip_id": trip.trip_id, "depot_id": trip.depot_id, "vehicle_id": trip.vehicle_id,
            "pass_no": trip.pass_number, "driver": trip.driver, "clerk": trip.clerk,
            "refrigerated": trip.refrigerated, "slot_start": iso(trip.slot[0]),
            "slot_end": iso(trip.slot[1]), "depart_at": iso(trip.depart_at),
            "return_at": iso(trip.return_at), "distance_m": trip.distance_m,
            "stops": [{
                "drop_point_id": split_stop_key(s.drop_point_id, s.requester_id),
                "requester_id": s.requester_id, "eta": iso(s.arrive_at),
                "lines": [{"plan_line_id": ml.plan_line_id, "demand_id": demand_of.get(ml.plan_line_id),
                           "item_code": ml.item_code, "lot_id": ml.lot_id, "quantity": ml.quantity}
                          for ml in s.lines]} for s in trip.stops]})
    unmet = list(dict(plan.data).get("unmet", []))
    for u in tp.unserved:
        for ml in u.lines:
            unmet.append({"plan_line_id": ml.plan_line_id, "demand_id": demand_of.get(ml.plan_line_id),
                          "item_code": ml.item_code, "depot_id": u.depot_id, "quantity": ml.quantity,
                          "lot_id": ml.lot_id, "code": u.reason_code,
                          "zh": u.reason.split(" / ")[0], "en": u.reason.split(" / ")[-1]})
    for u in inp.unknown_stops:
        unmet.append({**u, "demand_id": demand_of.get(u["plan_line_id"]), "code": "DROP_POINT_UNKNOWN",
                      "zh": "物流服务未收到该需求方或存放点信息", "en": "logistics holds no such requester or "
                      "drop point (requester events from intake)"})
    staffing = {
        "required": tp.staffing.required, "available": tp.staffing.available,
        "short": tp.staffing.short,
        "lines": [{"requester_id": s.requester_id,
                   "drop_point_id": split_stop_key(s.drop_point_id, s.requester_id),
                   "households": s.households, "required": s.required, "available": s.available}
                  for s in tp.staffing.lines]}
    data = {**dict(plan.data), "unmet": unmet, "staffing": staffing,
            "total_distance_m": tp.total_distance_m,
            "solver": {"phase": tp.solver.phase, "runtime_s": round(tp.solver.runtime_s, 3),
                       "iterations": tp.solver.iterations, "feasible": tp.solver.feasible}}
    plans_store.set_plan_dispatched(uow.conn, plan.id, data)
    uow.record_event("dispatch_scheduled", {
        "plan_id": plan.id, "delivery_day": plan.delivery_day.isoformat(), "trips": trips_payload,
        "unmet": unmet, "staffing": staffing, "total_distance_m": tp.total_distance_m})
    if staffing["short"]:
        log.warning("delivery staffing short", extra={"plan_id": plan.id, "short": staffing["short"],
                                                     "required": staffing["required"]})


def pending_plans(ctx: LogisticsContext) -> list[str]:
    with ctx.uow() as uow:
        return plans_store.picked_plans(uow.conn)

