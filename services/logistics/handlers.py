"""Logistics use cases: load, call the domain, save, record events — in one unit of work.

Functions here take an open UnitOfWork and do not commit: the caller (the gRPC servicer through
run_idempotent, or the worker through consume) commits, so the idempotency key or the
processed-event record lands in the same transaction as the effect. Every ledger write goes
through `_open_ledger` (locks the ledger head first) and `_save_ledger` (lines, balances, head,
stock_changed events).

Routing a plan (PyVRP, seconds of CPU) is the one exception: it runs outside any transaction
(`route_plan`), between a short read and a short write, so the ledger lock is never held while
the solver works.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from services.common.auth import Caller
from services.common.catalogue import Catalogue, Item
from services.common.clock import Clock
from services.common.db import UnitOfWork, is_postgres, new_id
from services.common.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RuleRefused
from services.common.serde import from_jsonable, to_jsonable
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import schema
from services.logistics.domain import delivery as dlv
from services.logistics.domain.ledger import Ledger, LedgerKind, LedgerLine, LotBalance, Posting
from services.logistics.domain.model import (
    Depot,
    DocRef,
    DropPoint,
    LotStatus,
    TimeSlot,
    Vehicle,
    Zone,
    positive_int,
)
from services.logistics.domain.picking import (
    PickRequest,
    pick,
    quarantine_lot,
    release_lot,
    write_off_lot,
)
from services.logistics.domain.policy import (
    DeliveryPolicy,
    LedgerPolicy,
    PickPolicy,
    ReceiptPolicy,
    SupplyDaysPolicy,
    TripPolicy,
    local_date,
)
from services.logistics.domain.receipts import (
    RECEIPT_KINDS,
    Receipt,
    ReceiptLine,
    accept_receipt,
    refuse_repeated_lines,
    zone_occupancy,
)
from services.logistics.domain.supply_days import GroupSupply, days_of_supply
from services.logistics.domain.trips import PickLine, PickList, Trip, TripPlan, build_trips

log = logging.getLogger(__name__)

WRITE_ROLES = ("depot_keeper", "hq")
SETUP_ROLES = ("hq", "depot_keeper")
DELIVERY_ROLES = ("depot_keeper", "hq", "clerk", "village", "grid_worker")
AUDIT_ROLES = ("auditor", "hq", "depot_keeper")
# Who reads what (docs/integration.md, access matrix; admin reads everything). Stock figures
# carry no personal data: departments read them too. Lots and receipts are the depots' books.
# Trips and manifests name drivers, clerks and every stop: a village or grid worker sees only
# the trips that stop at its own requester, and only those stops. gateway reads nothing here.
STOCK_READ_ROLES = ("hq", "depot_keeper", "department", "auditor")  # stock, snapshot, days of supply
STORE_READ_ROLES = ("hq", "depot_keeper", "auditor")  # lots, receipts
TRIP_READ_ROLES = (*DELIVERY_ROLES, "auditor")  # trips, manifests
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class Actor(Caller):
    """Who is calling (from the caller's token)."""


SYSTEM = Actor("logistics", "admin")


@dataclass
class LogisticsContext:
    engine: Engine
    catalogue: Catalogue
    clock: Clock
    timezone: str = "Asia/Shanghai"
    ledger_policy: LedgerPolicy = field(default_factory=LedgerPolicy)
    ledger_key: bytes = b""  # SUPPLY_LEDGER_KEY (bootstrap.ledger_key)
    receipt_policy: ReceiptPolicy = field(default_factory=ReceiptPolicy)
    pick_policy: PickPolicy = field(default_factory=PickPolicy)
    supply_policy: SupplyDaysPolicy = field(default_factory=SupplyDaysPolicy)
    trip_policy: TripPolicy = field(default_factory=TripPolicy)
    delivery_policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    donation_depot: str = ""
    population: int | None = None  # None: sum of the registered villages' and communities'
    delivery_staff_per_drop_point: int = 0

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine, schema.tables, "logistics", self.clock.now)

    def today(self) -> date:
        return local_date(self.clock.now(), self.timezone)


# ---- small helpers ---------------------------------------------------------------------------

def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else _utc(at).isoformat().replace("+00:00", "Z")


def _check_id(value: Any, f: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(f, "required: letters, digits, '-', '_', '.' (at most 64)")
    return value


def _text(value: Any, f: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f, "required")
    if len(value) > limit:
        raise InvalidInput(f, f"at most {limit} characters")
    return value.strip()


def parse_day(value: Any, f: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(f, f"must be a day YYYY-MM-DD, got {value!r}") from None


def parse_hhmm(value: Any, f: str, default: time) -> time:
    if value in (None, ""):
        return default
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", str(value).strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise InvalidInput(f, f"must be HH:MM (24-hour), got {value!r}")
    return time(int(m.group(1)), int(m.group(2)))


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M")


def _item(ctx: LogisticsContext, code: str, f: str) -> Item:
    item = ctx.catalogue.items.get(code) if isinstance(code, str) else None
    if item is None:
        raise InvalidInput(f, f"unknown item code {code!r} (catalogue {ctx.catalogue.version})")
    return item


def stop_key(requester_id: str, drop_point_id: str) -> str:
    """Drop point ids are unique only within their requester: trips key stops by both."""
    return f"{requester_id}/{drop_point_id}"


def split_stop_key(key: str, requester_id: str) -> str:
    return key[len(requester_id) + 1:] if key.startswith(requester_id + "/") else key


# ---- the ledger unit of work -----------------------------------------------------------------

@dataclass
class OpenLedger:
    ledger: Ledger
    start: tuple[int, str]


def _open_ledger(ctx: LogisticsContext, uow: UnitOfWork, **load) -> OpenLedger:
    """Lock the ledger head, then read the balances the use case needs (after the lock, so
    they are what the last writer committed)."""
    start = store.lock_head(uow.conn)
    balances = store.load_balances(uow.conn, **load) if load else {}
    return OpenLedger(Ledger(balances=balances, head_seq=start[0], head_hash=start[1],
                             policy=ctx.ledger_policy, keep_lines=True, key=ctx.ledger_key), start)


def _load_more(uow: UnitOfWork, ol: OpenLedger, **load) -> None:
    store.merge_balances(ol.ledger.balances, store.load_balances(uow.conn, **load))


def _save_ledger(ctx: LogisticsContext, uow: UnitOfWork, ol: OpenLedger) -> list[LedgerLine]:
    """Persist the lines posted since _open_ledger and record one stock_changed per line."""
    lines = list(ol.ledger.lines)
    if not lines:
        return []
    store.append(uow.conn, lines, ol.ledger.balances, ol.start, _utc(ctx.clock.now()))
    # figures after each line: walk back from the final balances
    running: dict[str, list[int]] = {}
    after: list[tuple[int, int, int]] = []
    for ln in reversed(lines):
        b = ol.ledger.balances[ln.lot_id]
        cur = running.setdefault(ln.lot_id, [b.on_hand, b.reserved, b.quarantined])
        after.append((cur[0], cur[1], cur[2]))
        cur[0] -= ln.on_hand_delta
        cur[1] -= ln.reserved_delta
        cur[2] -= ln.quarantined_delta
    after.reverse()
    for ln, (oh, r, q) in zip(lines, after, strict=True):
        status = (LotStatus.WRITTEN_OFF if ln.kind is LedgerKind.WRITE_OFF and oh == 0
                  else LotStatus.QUARANTINED if q > 0 else LotStatus.AVAILABLE)
        uow.record_event("stock_changed", {
            "lot_id": ln.lot_id, "item_code": ln.item_code, "depot_id": ln.depot_id,
            "zone_id": ln.zone_id, "kind": str(ln.kind), "delta": ln.quantity, "on_hand": oh,
            "reserved": r, "quarantined": q, "available": oh - r - q, "status": status.value,
            "ledger_seq": ln.seq, "doc_type": ln.doc.doc_type, "doc_id": ln.doc.doc_id,
            "plan_line_id": ln.plan_line_id,
        })
    if any(ln.on_hand_delta or ln.quarantined_delta for ln in lines):
        check_reserves(ctx, uow)
    ol.ledger.lines.clear()
    ol.start = (ol.ledger.head_seq, ol.ledger.head_hash)
    return lines


# ---- depots, zones, vehicles -----------------------------------------------------------------

def _depot_row(uow: UnitOfWork, depot_id: str, f: str = "depot_id"):
    if not depot_id:
        raise InvalidInput(f, "required")
    row = uow.conn.execute(select(schema.depots).where(schema.depots.c.id == depot_id)).first()
    if row is None:
        raise NotFound(f"{f}: no depot {depot_id!r} / 未登记的仓库")
    return row


def depot_from_row(row) -> Depot:
    return Depot(row.id, row.name, row.lat, row.lon, parse_hhmm(row.loading_open, "", time(6)),
                 parse_hhmm(row.loading_close, "", time(16)))


def register_depot(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, spec: Mapping[str, Any]):
    actor.require(*SETUP_ROLES)
    depot_id = _check_id(spec.get("id"), "depot.id")
    name = _text(spec.get("name"), "depot.name")
    try:
        lat, lon = float(spec["lat"]), float(spec["lon"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("depot.location", "required (lat, lon)") from None
    if lat == 0.0 and lon == 0.0:
        raise InvalidInput("depot.location", "required (lat, lon)")
    depot = Depot(depot_id, name, lat, lon,
                  parse_hhmm(spec.get("loading_open"), "depot.loading_hours.start", time(6)),
                  parse_hhmm(spec.get("loading_close"), "depot.loading_hours.end", time(16)))
    existing = uow.conn.execute(select(schema.depots).where(schema.depots.c.id == depot_id)).first()
    if existing is not None:
        if depot_from_row(existing) != depot:
            raise Conflict(f"depot {depot_id!r} is already registered with other details")
        return existing
    uow.conn.execute(insert(schema.depots).values(
        id=depot.id, name=depot.name, lat=depot.lat, lon=depot.lon,
        loading_open=_hhmm(depot.loading_open), loading_close=_hhmm(depot.loading_close),
        registered_at=_utc(ctx.clock.now()), registered_by=actor.identity))
    return uow.conn.execute(select(schema.depots).where(schema.depots.c.id == depot_id)).first()


def zones_of(conn: Connection, depot_id: str | None = None) -> dict[str, Zone]:
    q = select(schema.zones).order_by(schema.zones.c.id)
    if depot_id is not None:
        q = q.where(schema.zones.c.depot_id == depot_id)
    return {r.id: Zone(r.id, r.depot_id, r.storage_class, int(r.capacity_l)) for r in conn.execute(q)}


def depots_with_zones(conn: Connection) -> list[tuple[Any, list[Any], dict[str, Zone]]]:
    """Each depot's row, its zone rows and its zones, by id."""
    depots = conn.execute(select(schema.depots).order_by(schema.depots.c.id)).all()
    zone_rows = conn.execute(select(schema.zones).order_by(schema.zones.c.id)).all()
    zones = zones_of(conn)
    return [(d, [z for z in zone_rows if z.depot_id == d.id], zones) for d in depots]

def register_zone(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, spec: Mapping[str, Any]):
    actor.require(*SETUP_ROLES)
    zone_id = _check_id(spec.get("id"), "zone.id")
    depot_id = spec.get("depot_id") or ""
    _depot_row(uow, depot_id, "zone.depot_id")
    sclass = spec.get("storage_class") or ""
    if sclass not in ctx.catalogue.storage_classes:
        raise InvalidInput("zone.storage_class",
                           f"must be one of {', '.join(ctx.catalogue.storage_classes)}, got {sclass!r}")
    capacity = spec.get("capacity_l")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0:
        raise InvalidInput("zone.capacity_l", f"must be an integer > 0 (litres), got {capacity!r}")
    name = (spec.get("name") or "").strip() or zone_id
    zone = Zone(zone_id, depot_id, sclass, capacity)
    t = schema.zones
    existing = uow.conn.execute(select(t).where(t.c.id == zone_id)).first()
    if existing is not None:
        if (Zone(existing.id, existing.depot_id, existing.storage_class, int(existing.capacity_l)) != zone
                or existing.name != name):
            raise Conflict(f"zone {zone_id!r} is already registered with other details")
        return existing
    uow.conn.execute(insert(t).values(id=zone_id, depot_id=depot_id, name=name, storage_class=sclass,
                                      capacity_l=capacity, registered_at=_utc(ctx.clock.now()),
                                      registered_by=actor.identity))
    uow.record_event("zone_registered", {"depot_id": depot_id, "zone_id": zone_id,
                                         "storage_class": sclass, "capacity_l": capacity,
                                         "name": name})
    return uow.conn.execute(select(t).where(t.c.id == zone_id)).first()


def zone_used_l(ctx: LogisticsContext, conn: Connection, zone: Zone) -> float:
    bal = store.load_balances(conn, zone_ids=[zone.id], lock=False)
    return zone_occupancy(zone, bal.values(), ctx.catalogue).used_l


def register_vehicle(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor,
                     spec: Mapping[str, Any]) -> Vehicle:
    actor.require(*SETUP_ROLES)
    vid = _check_id(spec.get("id"), "vehicle.id")
    depot_id = spec.get("depot_id") or ""
    _depot_row(uow, depot_id, "vehicle.depot_id")
    slots = []
    for i, s in enumerate(spec.get("slots") or ()):
        slots.append(TimeSlot(parse_hhmm(s.get("start"), f"vehicle.slots[{i}].start", time(0)),
                              parse_hhmm(s.get("end"), f"vehicle.slots[{i}].end", time(0))))
    try:
        vehicle = Vehicle(
            id=vid, pass_number=str(spec.get("pass_number") or ""),
            capacity_kg=spec.get("capacity_kg"), capacity_l=spec.get("capacity_l"),
            refrigerated=bool(spec.get("refrigerated")), depot_id=depot_id,
            driver=str(spec.get("driver") or ""), clerk=str(spec.get("clerk") or ""),
            slots=tuple(slots))
    except ValueError as exc:  # TimeSlot end <= start
        raise InvalidInput("vehicle.slots", str(exc)) from None
    t = schema.vehicles
    row = {"depot_id": depot_id, "data": vehicle_json(vehicle), "updated_at": _utc(ctx.clock.now())}
    if uow.conn.execute(select(t.c.id).where(t.c.id == vid)).first() is None:
        uow.conn.execute(insert(t).values(id=vid, **row))
    else:
        uow.conn.execute(update(t).where(t.c.id == vid).values(**row))
    return vehicle


def vehicle_json(v: Vehicle) -> dict:
    return {**{f.name: getattr(v, f.name) for f in dataclasses.fields(v) if f.name != "slots"},
            "slots": [[_hhmm(s.start), _hhmm(s.end)] for s in v.slots]}


def vehicle_from_json(data: Mapping[str, Any]) -> Vehicle:
    slots = tuple(TimeSlot(parse_hhmm(a, "", time(0)), parse_hhmm(b, "", time(0)))
                  for a, b in data.get("slots", ()))
    return Vehicle(**{**{k: v for k, v in data.items() if k != "slots"}, "slots": slots})


def _vehicles(conn: Connection) -> list[Vehicle]:
    return [vehicle_from_json(r.data) for r in
            conn.execute(select(schema.vehicles.c.data).order_by(schema.vehicles.c.id))]


# ---- receipts --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceiptLineSpec:
    item_code: str
    quantity: Any
    lot_number: str
    expiry: Any
    zone_id: str = ""
    lot_id: str = ""


def _fit_zone(ctx: LogisticsContext, item: Item, zones: Mapping[str, Zone],
              balances: Mapping[str, LotBalance], pending: Sequence[tuple[str, Item, int]],
              quantity: int = 0) -> str | None:
    """The zone to put `item` away in: its storage class, no segregation conflict with what the
    zone holds (or with lines of the same receipt), room for it; exact class first, then the
    zone with most free litres."""
    policy = ctx.receipt_policy
    best = None
    for zone in zones.values():
        if not policy.accepts(zone.storage_class, item.storage_class):
            continue
        occ = zone_occupancy(zone, balances.values(), ctx.catalogue)
        used, hazards = occ.used_l, set(occ.hazards)
        for zid, it, q in pending:
            if zid == zone.id:
                used += q * it.volume_l
                if it.hazard:
                    hazards.add(it.hazard)
        if any(policy.incompatible(item.hazard, h) for h in hazards):
            continue
        free = zone.capacity_l - used
        if quantity * item.volume_l > free:
            continue
        key = (zone.storage_class != item.storage_class, -free, zone.id)
        if best is None or key < best[0]:
            best = (key, zone.id, free)
    return None if best is None else best[1]


def _no_zone(item: Item, depot_id: str) -> RuleRefused:
    return RuleRefused("NO_FITTING_ZONE",
                       f"仓库 {depot_id} 没有可存放{item.name_zh}({item.storage_class})的库区(类别、隔离或容量) / "
                       f"depot {depot_id} has no zone for {item.name_en} (storage class "
                       f"{item.storage_class}, segregation, capacity)")


def receive_stock(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, *, kind: str,
                  depot_id: str, origin_ref: str, lines: Sequence[ReceiptLineSpec],
                  receipt_id: str | None = None, check_role: bool = True) -> dict[str, Any]:
    """Verify, register and put away a receipt (验收、核实、登记、入库): lots, ledger lines,
    stock_received and stock_changed events. Refused whole with the rule that refused it."""
    if check_role:
        actor.require(*WRITE_ROLES)
    if kind not in RECEIPT_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(RECEIPT_KINDS)}")
    _depot_row(uow, depot_id)
    if not lines:
        raise InvalidInput("lines", "a receipt has at least one line")
    if len(origin_ref) > 200:
        raise InvalidInput("origin_ref", "at most 200 characters")
    refuse_repeated_lines([(ln.item_code, ln.lot_number) for ln in lines])  # before put-away
    ol = _open_ledger(ctx, uow, depot_id=depot_id,
                      lot_ids=[ln.lot_id for ln in lines if ln.lot_id])
    zones = zones_of(uow.conn)
    depot_zones = {k: z for k, z in zones.items() if z.depot_id == depot_id}
    now = ctx.clock.now()
    receipt_id = receipt_id or new_id("RC")
    domain_lines = []
    pending: list[tuple[str, Item, int]] = []
    for i, ln in enumerate(lines):
        item = _item(ctx, ln.item_code, f"lines[{i}].item_code")
        qty = positive_int(ln.quantity, f"lines[{i}].quantity")
        expiry = parse_day(ln.expiry, f"lines[{i}].expiry")
        zone_id = ln.zone_id
        if not zone_id:
            zone_id = _fit_zone(ctx, item, depot_zones, ol.ledger.balances, pending, qty)
            if zone_id is None:
                raise _no_zone(item, depot_id)
        pending.append((zone_id, item, qty))
        if ln.lot_id:
            _check_id(ln.lot_id, f"lines[{i}].lot_id")
        domain_lines.append(ReceiptLine(item.code, qty, ln.lot_number, expiry, zone_id,
                                        ln.lot_id or None))
    origin_type = {"donation": "inspection", "transfer": "transfer"}.get(kind)
    origin = DocRef(origin_type, origin_ref) if origin_type and origin_ref.strip() else None
    receipt = Receipt(receipt_id, kind, depot_id, now, actor.identity, tuple(domain_lines), origin)
    accepted = accept_receipt(receipt, catalogue=ctx.catalogue, zones=zones,
                              balances=ol.ledger.balances, policy=ctx.receipt_policy)
    ol.ledger.post_all(accepted.postings)
    uow.conn.execute(insert(schema.lots), [{
        "lot_id": lot.lot_id, "item_code": lot.item_code, "depot_id": lot.depot_id,
        "zone_id": lot.zone_id, "lot_number": lot.lot_number, "expiry": lot.expiry,
        "receipt_id": receipt_id, "source_kind": kind, "source_ref": origin_ref,
        "received_at": _utc(now)} for lot in accepted.lots])
    uow.conn.execute(insert(schema.receipts).values(
        id=receipt_id, kind=kind, depot_id=depot_id, status="accepted", rule_code=None,
        message=None, origin_ref=origin_ref, received_by=actor.identity, received_at=_utc(now),
        data={"lots": [lot.lot_id for lot in accepted.lots]}))
    for lot, ln in zip(accepted.lots, domain_lines, strict=True):
        uow.record_event("stock_received", {
            "receipt_id": receipt_id, "lot_id": lot.lot_id, "item_code": lot.item_code,
            "quantity": ln.quantity, "depot_id": depot_id, "zone_id": lot.zone_id,
            "storage_class": zones[lot.zone_id].storage_class, "expiry": lot.expiry.isoformat(),
            "lot_number": lot.lot_number, "source_kind": kind, "source_ref": origin_ref,
            "received_at": _iso(now)})
    _save_ledger(ctx, uow, ol)
    return {"receipt_id": receipt_id, "kind": kind, "depot_id": depot_id, "origin_ref": origin_ref,
            "status": "accepted", "received_by": actor.identity, "received_at": now,
            "lot_ids": [lot.lot_id for lot in accepted.lots]}


def receive_donation(ctx: LogisticsContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> list[dict]:
    """`donation_inspected` from intake: every accepted line becomes a donation receipt in the
    configured depot (SUPPLY_DONATION_DEPOT), else the first depot (by id) with a zone that
    fits the item's storage class and segregation and has room. A line no depot can take is
    recorded as a refused receipt with its rule (and logged); it does not block the others."""
    donation_id = payload.get("donation_id")
    if not donation_id:
        raise InvalidInput("payload.donation_id", "required")
    out = []
    for i, line in enumerate(payload.get("lines") or ()):
        if line.get("decision") != "accept":
            continue
        line_no = line.get("line_no", i)
        receipt_id = f"RC-{donation_id}-{line_no}"
        if uow.conn.execute(select(schema.receipts.c.id)
                            .where(schema.receipts.c.id == receipt_id)).first() is not None:
            continue
        actor = Actor(str(line.get("inspector") or "donation-inspection"), "depot_keeper")
        spec = ReceiptLineSpec(item_code=line.get("item_code"), quantity=line.get("quantity"),
                               lot_number=str(line.get("lot") or ""), expiry=line.get("expiry"))
        origin = f"{donation_id}#{line_no}"
        depot_id = ""
        savepoint = uow.conn.begin_nested()
        try:
            item = _item(ctx, spec.item_code, f"payload.lines[{i}].item_code")
            depot_id = _donation_depot(ctx, uow, item, spec.quantity)
            result = receive_stock(ctx, uow, actor, kind="donation", depot_id=depot_id,
                                   origin_ref=origin, lines=[spec], receipt_id=receipt_id,
                                   check_role=False)
            savepoint.commit()
            out.append(result)
        except (RuleRefused, NotFound, InvalidInput, Conflict) as exc:
            savepoint.rollback()
            rule = getattr(exc, "rule", type(exc).__name__)
            log.warning("donation line refused at put-away",
                        extra={"donation_id": donation_id, "line_no": line_no, "rule": rule,
                               "error": exc.message})
            uow.conn.execute(insert(schema.receipts).values(
                id=receipt_id, kind="donation", depot_id=depot_id or "", status="refused",
                rule_code=rule, message=exc.message, origin_ref=origin,
                received_by=actor.identity, received_at=_utc(ctx.clock.now()),
                data={"line": dict(line), "donation_id": donation_id}))
            out.append({"receipt_id": receipt_id, "status": "refused", "rule_code": rule})
    return out


def _donation_depot(ctx: LogisticsContext, uow: UnitOfWork, item: Item, quantity: Any) -> str:
    depots = [r.id for r in uow.conn.execute(select(schema.depots.c.id).order_by(schema.depots.c.id))]
    if ctx.donation_depot in depots:
        depots.remove(ctx.donation_depot)
        depots.insert(0, ctx.donation_depot)
    store.lock_head(uow.conn)
    for depot_id in depots:
        zones = zones_of(uow.conn, depot_id)
        balances = store.load_balances(uow.conn, depot_id=depot_id)
        qty = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 0
        if _fit_zone(ctx, item, zones, balances, (), qty) is not None:
            return depot_id
    raise _no_zone(item, ctx.donation_depot or "(any)")


# ---- issues, quarantine, release, write-off ----------------------------------------------------

def _plan_line(uow: UnitOfWork, plan_line_id: str):
    return uow.conn.execute(select(schema.plan_lines)
                            .where(schema.plan_lines.c.id == plan_line_id)).first()


def _lot_balance(ol: OpenLedger, lot_id: str, f: str = "lot_id") -> LotBalance:
    bal = ol.ledger.balances.get(lot_id)
    if bal is None:
        raise NotFound(f"{f}: no lot {lot_id!r} / 未知批次")
    return bal


def issue_stock(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, *, lot_id: str,
                quantity: Any, plan_line_id: str, reason: str = "") -> tuple[LotBalance, list[LedgerLine]]:
    """Issue from a lot against an approved plan line (不得擅自分配): from the plan line's
    reservation on the lot first, then from available stock."""
    actor.require(*WRITE_ROLES)
    q = positive_int(quantity, "quantity")
    if not lot_id:
        raise InvalidInput("lot_id", "required")
    if not plan_line_id:
        raise InvalidInput("plan_line_id", "required: every issue cites an approved plan line")
    ol = _open_ledger(ctx, uow, lot_ids=[lot_id])
    bal = _lot_balance(ol, lot_id)
    pl = _plan_line(uow, plan_line_id) or _part_for_lot(uow, plan_line_id, bal)
    if pl is None:
        raise RuleRefused("PLAN_LINE_NOT_APPROVED",
                          f"计划行 {plan_line_id} 未经批准,不得出库 / plan line {plan_line_id!r} is not "
                          f"part of an approved plan (不得挤占、挪用和擅自分配)")
    plan_line_id = pl.id  # `<line>/<k>` when asked by GetPlan's `<line>`
    if pl.item_code != bal.item_code or pl.depot_id != bal.depot_id:
        raise RuleRefused("LOT_MISMATCH",
                          f"批次 {lot_id} 是 {bal.depot_id} 的 {bal.item_code},计划行要求 {pl.depot_id} 的 {pl.item_code} / "
                          f"lot {lot_id!r} holds {bal.item_code} in {bal.depot_id}; the plan line "
                          f"wants {pl.item_code} from {pl.depot_id}")
    if int(pl.issued) + q > int(pl.quantity):
        raise RuleRefused("EXCEEDS_PLAN_LINE",
                          f"计划行 {plan_line_id} 批准 {pl.quantity},已出库 {pl.issued} / plan line "
                          f"{plan_line_id!r} approves {pl.quantity}, {pl.issued} already issued, asked {q}")
    now = ctx.clock.now()
    doc = DocRef("plan_line", plan_line_id)
    note = reason.strip() or "自提出库 / collected at the depot"
    reserved = bal.reserved_by_plan.get(plan_line_id, 0)
    postings = []
    if reserved < q:
        postings.append(Posting(LedgerKind.RESERVATION, lot_id, q - reserved, actor.identity, now,
                                f"出库前预留 / reserved to issue: {note}", doc,
                                plan_line_id=plan_line_id))
    postings.append(Posting(LedgerKind.ISSUE, lot_id, -q, actor.identity, now, note, doc,
                            plan_line_id=plan_line_id))
    ol.ledger.post_all(postings, approved_plan_lines={plan_line_id})
    uow.conn.execute(update(schema.plan_lines).where(schema.plan_lines.c.id == plan_line_id)
                     .values(issued=schema.plan_lines.c.issued + q))
    _consume_picks(uow, plan_line_id, lot_id, min(reserved, q))
    lines = _save_ledger(ctx, uow, ol)
    return ol.ledger.balances[lot_id], lines


def _part_for_lot(uow: UnitOfWork, plan_line_id: str, bal: LotBalance):
    """GetPlan's line id `<line>` names the part `<line>/<k>` of it that holds the lot's depot
    and item (plan_approved splits a line into one part per depot and item). None when the
    line has no parts here; INVALID_ARGUMENT naming the parts when none or several fit."""
    t = schema.plan_lines
    parts = uow.conn.execute(select(t).where(t.c.id.startswith(plan_line_id + "/", autoescape=True))
                             .order_by(t.c.id)).all()
    if not parts:
        return None
    fits = [p for p in parts if (p.depot_id, p.item_code) == (bal.depot_id, bal.item_code)]
    if len(fits) == 1:
        return fits[0]
    listed = ", ".join(f"{p.id} ({p.item_code} @ {p.depot_id})" for p in parts)
    raise InvalidInput("plan_line_id",
                       f"计划行 {plan_line_id} 分为 {listed},请指明批次 {bal.lot_id}({bal.item_code} @ "
                       f"{bal.depot_id})对应的一项 / plan line {plan_line_id!r} is split into "
                       f"{listed}: name the part for lot {bal.lot_id!r} ({bal.item_code} @ {bal.depot_id})")


def _consume_picks(uow: UnitOfWork, plan_line_id: str, lot_id: str, q: int) -> None:
    t = schema.picks
    for row in uow.conn.execute(select(t).where(t.c.plan_line_id == plan_line_id,
                                                t.c.lot_id == lot_id).order_by(t.c.id)).all():
        if q <= 0:
            return
        take = min(q, int(row.quantity))
        if take == row.quantity:
            uow.conn.execute(delete(t).where(t.c.id == row.id))
        else:
            uow.conn.execute(update(t).where(t.c.id == row.id).values(quantity=row.quantity - take))
        q -= take


@dataclass
class Repick:
    plan_line_id: str
    released: int
    repicked: int
    unmet: int
    lots: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Transitioned:
    lot: LotBalance
    lines: list[LedgerLine]
    repicks: list[Repick] = field(default_factory=list)


def quarantine_lots(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, lot_ids: Sequence[str],
                    *, doc: DocRef, reason: str, alert_id: str | None = None,
                    must_exist: bool = True) -> list[Transitioned]:
    """Quarantine lots (a spoilage alert, an inspection). Their reservations are released and
    the plan lines re-picked first-expiry-first-out from other lots of the same depot and item;
    what cannot be re-picked is reported unmet on the plan and taken off the trips: a
    quarantined lot is never shipped."""
    ol = _open_ledger(ctx, uow, lot_ids=lot_ids)
    now = ctx.clock.now()
    out = []
    for lot_id in lot_ids:
        bal = ol.ledger.balances.get(lot_id)
        if bal is None:
            if must_exist:
                raise NotFound(f"lot_id: no lot {lot_id!r} / 未知批次")
            log.warning("alert names an unknown lot", extra={"lot_id": lot_id, "alert_id": alert_id})
            continue
        if bal.written_off:
            if must_exist:
                raise RuleRefused("LOT_WRITTEN_OFF", f"批次 {lot_id} 已报损 / lot {lot_id!r} is written off")
            continue
        tr = quarantine_lot(bal, doc=doc, actor=actor.identity, at=now, reason=reason)
        if not tr.postings:
            out.append(Transitioned(bal, []))
            continue
        start = len(ol.ledger.lines)
        ol.ledger.post_all(tr.postings)
        repicks = [_repick(ctx, uow, ol, plan_line_id, q, lot_id, actor, now)
                   for plan_line_id, q in tr.released]
        uow.record_event("lot_quarantined", {
            "lot_id": lot_id, "item_code": bal.item_code, "zone_id": bal.zone_id,
            "depot_id": bal.depot_id, "alert_id": alert_id, "quantity": bal.quarantined,
            "reason": reason, "by": actor.identity, "doc_type": doc.doc_type, "doc_id": doc.doc_id,
            "released_reservations": [{"plan_line_id": r.plan_line_id, "quantity": r.released,
                                       "repicked": r.repicked, "unmet": r.unmet} for r in repicks]})
        out.append(Transitioned(bal, list(ol.ledger.lines[start:]), repicks))
    _save_ledger(ctx, uow, ol)
    return out


def _repick(ctx: LogisticsContext, uow: UnitOfWork, ol: OpenLedger, plan_line_id: str, q: int,
            bad_lot: str, actor: Actor, now: datetime) -> Repick:
    pl = _plan_line(uow, plan_line_id)
    if pl is None:  # reserved by an issue whose plan line we do not hold: nothing to re-pick
        return Repick(plan_line_id, q, 0, q)
    _load_more(uow, ol, depot_items=[(pl.depot_id, pl.item_code)])
    p = pick(PickRequest(plan_line_id, pl.depot_id, pl.item_code, q, pl.delivery_day),
             ol.ledger.balances, actor=actor.identity, at=now, policy=ctx.pick_policy,
             allow_partial=True)
    ol.ledger.post_all(p.postings)
    new_lots = [(x.lot_id, x.quantity) for x in p.picked]
    t = schema.picks
    old = uow.conn.execute(select(t).where(t.c.plan_line_id == plan_line_id, t.c.lot_id == bad_lot)).all()
    uow.conn.execute(delete(t).where(t.c.plan_line_id == plan_line_id, t.c.lot_id == bad_lot))
    if old:
        o = old[0]
        for lot_id, qty in new_lots:
            uow.conn.execute(insert(t).values(plan_id=o.plan_id, plan_line_id=plan_line_id,
                                              depot_id=o.depot_id, requester_id=o.requester_id,
                                              drop_point_id=o.drop_point_id, item_code=o.item_code,
                                              lot_id=lot_id, quantity=qty))
    _swap_on_trips(ctx, uow, pl.plan_id, plan_line_id, bad_lot, new_lots)
    if p.short:
        _add_unmet(uow, pl.plan_id, {
            "plan_line_id": plan_line_id, "demand_id": pl.demand_id, "item_code": pl.item_code,
            "depot_id": pl.depot_id, "quantity": p.short, "code": "LOT_QUARANTINED_NO_STOCK",
            "zh": f"批次 {bad_lot} 被隔离,同仓无其他可用批次", "en": f"lot {bad_lot} was quarantined and the "
                  f"depot has no other usable lot for the rest"})
    return Repick(plan_line_id, q, q - p.short, p.short, new_lots)


def _swap_on_trips(ctx: LogisticsContext, uow: UnitOfWork, plan_id: str, plan_line_id: str,
                   bad_lot: str, new_lots: list[tuple[str, int]]) -> None:
    """Replace a quarantined lot on the manifests of undelivered stops with the re-picked lots
    (a shortfall is left off: the stop gets less, never the quarantined goods)."""
    t = schema.trips
    for row in uow.conn.execute(select(t).where(t.c.plan_id == plan_id, t.c.status == "scheduled")).all():
        data = dict(row.data)
        trip = from_jsonable(Trip, data["trip"])
        delivered = data.get("delivered", {})
        changed = False
        stops = []
        for s in trip.stops:
            if s.drop_point_id in delivered or not any(
                    ln.plan_line_id == plan_line_id and ln.lot_id == bad_lot for ln in s.lines):
                stops.append(s)
                continue
            lines = []
            for ln in s.lines:
                if ln.plan_line_id == plan_line_id and ln.lot_id == bad_lot:
                    left = ln.quantity
                    for lot_id, qty in new_lots:
                        if left <= 0:
                            break
                        take = min(left, qty)
                        lines.append(dataclasses.replace(ln, lot_id=lot_id, quantity=take))
                        left -= take
                else:
                    lines.append(ln)
            stops.append(dataclasses.replace(s, lines=tuple(lines)))
            changed = True
        if changed:
            trip = dataclasses.replace(trip, stops=tuple(stops))
            data["trip"] = to_jsonable(trip)
            uow.conn.execute(update(t).where(t.c.id == row.id).values(data=data))


def _add_unmet(uow: UnitOfWork, plan_id: str, entry: dict) -> None:
    t = schema.plans
    row = uow.conn.execute(select(t.c.data).where(t.c.id == plan_id)).first()
    if row is None:
        return
    data = dict(row.data)
    data["unmet"] = [*data.get("unmet", []), entry]
    uow.conn.execute(update(t).where(t.c.id == plan_id).values(data=data))


def apply_alert(ctx: LogisticsContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> list[Transitioned]:
    """`alert_raised` from monitoring: when `spoilage` is true, quarantine the listed lots, or
    every available lot of the alert's depot and zone when the list is empty, citing the
    alert as the document. Other alerts change nothing here."""
    if payload.get("spoilage") is not True:
        return []
    alert_id = payload.get("alert_id")
    if not alert_id:
        raise InvalidInput("payload.alert_id", "required")
    lot_ids = [x for x in (payload.get("lot_ids") or ()) if isinstance(x, str) and x]
    if not lot_ids:
        depot, zone = payload.get("depot"), payload.get("zone")
        if not depot or not zone:
            raise InvalidInput("payload.zone", "a spoilage alert names lot_ids or a depot and zone")
        store.lock_head(uow.conn)
        t = schema.lot_balances
        lot_ids = [r.lot_id for r in uow.conn.execute(
            select(t.c.lot_id).where(t.c.depot_id == depot, t.c.zone_id == zone,
                                     t.c.status == LotStatus.AVAILABLE.value, t.c.on_hand > 0)
            .order_by(t.c.lot_id))]
    title = " / ".join(x for x in (payload.get("title_zh"), payload.get("title_en")) if x)
    reason = f"告警隔离 / quarantined by alert {payload.get('rule_code') or ''}: {title or alert_id}".strip()
    return quarantine_lots(ctx, uow, Actor(f"monitoring:{payload.get('rule_code') or 'alert'}", "admin"),
                           lot_ids, doc=DocRef("alert", str(alert_id)), reason=reason[:500],
                           alert_id=str(alert_id), must_exist=False)


def quarantine_by_person(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, *, lot_id: str,
                         inspection_ref: str, reason: str) -> Transitioned:
    actor.require(*WRITE_ROLES)
    _text(inspection_ref, "inspection_ref")
    _text(reason, "reason", 500)
    if not lot_id:
        raise InvalidInput("lot_id", "required")
    return quarantine_lots(ctx, uow, actor, [lot_id], doc=DocRef("inspection", inspection_ref.strip()),
                           reason=reason.strip())[0]


def release(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, *, lot_id: str,
            inspection_ref: str, reason: str) -> Transitioned:
    """A person releases a quarantined lot after inspection (放行)."""
    actor.require(*WRITE_ROLES)
    _text(inspection_ref, "inspection_ref")
    _text(reason, "reason", 500)
    if not lot_id:
        raise InvalidInput("lot_id", "required")
    ol = _open_ledger(ctx, uow, lot_ids=[lot_id])
    bal = _lot_balance(ol, lot_id)
    tr = release_lot(bal, doc=DocRef("inspection", inspection_ref.strip()), actor=actor.identity,
                     at=ctx.clock.now(), reason=reason.strip())
    ol.ledger.post_all(tr.postings)
    _lot_event(uow, "released", bal, reason, actor, inspection_ref)
    return Transitioned(bal, _save_ledger(ctx, uow, ol))


def write_off(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, *, lot_id: str, quantity: int,
              doc_type: str, doc_id: str, reason: str) -> Transitioned:
    """Write off (报损) quarantined stock, or available stock of a lot not in quarantine."""
    actor.require(*WRITE_ROLES)
    if doc_type not in ("inspection", "alert", "stocktake"):
        raise InvalidInput("doc_type", "must be inspection, alert or stocktake")
    _text(doc_id, "doc_id")
    _text(reason, "reason", 500)
    if not lot_id:
        raise InvalidInput("lot_id", "required")
    if quantity < 0:
        raise InvalidInput("quantity", "must be >= 0 (0 = all)")
    ol = _open_ledger(ctx, uow, lot_ids=[lot_id])
    bal = _lot_balance(ol, lot_id)
    tr = write_off_lot(bal, doc=DocRef(doc_type, doc_id.strip()), actor=actor.identity,
                       at=ctx.clock.now(), reason=reason.strip(), quantity=quantity or None)
    ol.ledger.post_all(tr.postings)
    _lot_event(uow, "written_off", bal, reason, actor, doc_id)
    return Transitioned(bal, _save_ledger(ctx, uow, ol))


def _lot_event(uow: UnitOfWork, outcome: str, bal: LotBalance, reason: str, actor: Actor,
               doc_id: str) -> None:
    uow.record_event("lot_released", {
        "lot_id": bal.lot_id, "item_code": bal.item_code, "zone_id": bal.zone_id,
        "depot_id": bal.depot_id, "alert_id": None, "reason": reason.strip(), "by": actor.identity,
        "outcome": outcome, "doc_id": doc_id.strip(), "status": bal.status.value,
        "on_hand": bal.on_hand, "quarantined": bal.quarantined})


# ---- requesters and drop points (from intake) --------------------------------------------------

def apply_requester(ctx: LogisticsContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> bool:
    """requester_registered / requester_updated: keep the drop points (物资存放点) and the
    households and population. An older version than ours changes nothing."""
    rid = payload.get("requester_id")
    if not rid:
        raise InvalidInput("payload.requester_id", "required")
    version = int(payload.get("version") or 1)
    t = schema.requesters
    have = uow.conn.execute(select(t.c.version).where(t.c.id == rid)).first()
    if have is not None and have.version >= version:
        return False
    loc = payload.get("location") or {}
    households = payload.get("households")
    row = {"kind": str(payload.get("kind") or ""), "population": payload.get("population"),
           "households": households, "lat": float(loc.get("lat") or 0.0),
           "lon": float(loc.get("lon") or 0.0), "version": version,
           "updated_at": _utc(ctx.clock.now())}
    if have is None:
        uow.conn.execute(insert(t).values(id=rid, **row))
    else:
        uow.conn.execute(update(t).where(t.c.id == rid).values(**row))
    dp = schema.drop_points
    uow.conn.execute(delete(dp).where(dp.c.requester_id == rid))
    points = payload.get("drop_points") or []
    share = -(-int(households or 0) // max(1, len(points))) if points else 0
    for p in points:
        ploc = p.get("location") or loc
        uow.conn.execute(insert(dp).values(
            requester_id=rid, drop_point_id=str(p.get("id") or ""), name=str(p.get("name") or ""),
            lat=float(ploc.get("lat") or 0.0), lon=float(ploc.get("lon") or 0.0),
            window_open=p.get("window_start") or "08:00", window_close=p.get("window_end") or "18:00",
            households=share))
    return True


# ---- the approved plan: reserve, pick, route -------------------------------------------------

def apply_plan_approved(ctx: LogisticsContext, uow: UnitOfWork, payload: Mapping[str, Any]) -> str | None:
    """`plan_approved` from allocation: reserve the lots each line names (or first-expiry-
    first-out when it names only depot and item). A named lot that cannot serve (quarantined,
    written off, expiring before the delivery day, short) is replaced FEFO from other lots of
    the depot; what is still missing is reported unmet. Trips are built afterwards by
    `route_plan`, outside this transaction. Returns the plan id, or None if already held."""
    plan_id = payload.get("plan_id")
    if not plan_id or not isinstance(plan_id, str):
        raise InvalidInput("payload.plan_id", "required")
    day = parse_day(payload.get("delivery_day"), "payload.delivery_day")
    if uow.conn.execute(select(schema.plans.c.id).where(schema.plans.c.id == plan_id)).first():
        return None
    raw_lines = list(payload.get("lines") or ())
    ol = _open_ledger(ctx, uow)
    now = ctx.clock.now()
    actor = f"plan:{payload.get('approved_by') or 'hq'}"
    unmet: list[dict] = []
    line_rows: list[dict] = []
    pick_rows: list[dict] = []
    known = {r.id for r in uow.conn.execute(select(schema.plan_lines.c.id).where(
        schema.plan_lines.c.id.in_([str(ln.get("plan_line_id")) for ln in raw_lines])))}
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
                 _item=item_code, _depot=depot_id, _qty=qty) -> None:
            unmet.append({"plan_line_id": _plid, "demand_id": _ln.get("demand_id"),
                          "item_code": _item, "depot_id": _depot,
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
        _load_more(uow, ol, depot_items=[(depot_id, item_code)], lot_ids=[n for n, _ in named])
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
    uow.conn.execute(insert(schema.plans).values(
        id=plan_id, delivery_day=day, status="picked", approved_by=str(payload.get("approved_by") or ""),
        approved_at=_parse_instant(payload.get("approved_at")), received_at=_utc(now),
        data={"unmet": unmet, "lines": len(raw_lines)}))
    if line_rows:
        uow.conn.execute(insert(schema.plan_lines), line_rows)
    if pick_rows:
        uow.conn.execute(insert(schema.picks), pick_rows)
    _save_ledger(ctx, uow, ol)
    return plan_id


def serve_ranks(lines: Sequence[Mapping[str, Any]]) -> list[int]:
    """Each line's place in HQ's order: its priority_rank (its tier's place in the plan's
    policy). An event from before priority_rank (a line without it) falls back to the tier."""
    ranks = [ln.get("priority_rank") for ln in lines]
    if all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in ranks):
        return ranks
    return [int(ln.get("tier") or 5) for ln in lines]


def _parse_instant(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return _utc(at) if at.tzinfo else at.replace(tzinfo=UTC)


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
    plan = conn.execute(select(schema.plans).where(schema.plans.c.id == plan_id)).first()
    if plan is None or plan.status != "picked":
        return None
    t = schema.picks
    picks = conn.execute(select(t).where(t.c.plan_id == plan_id).order_by(t.c.id)).all()
    requester_ids = sorted({p.requester_id for p in picks})
    req_rows = {r.id: r for r in conn.execute(select(schema.requesters)
                                              .where(schema.requesters.c.id.in_(requester_ids)))}
    dp_rows: dict[str, list] = {}
    for r in conn.execute(select(schema.drop_points).where(schema.drop_points.c.requester_id.in_(requester_ids))
                          .order_by(schema.drop_points.c.drop_point_id)):
        dp_rows.setdefault(r.requester_id, []).append(r)
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
    depots = [depot_from_row(r) for r in conn.execute(select(schema.depots).order_by(schema.depots.c.id))]
    taken = _slots_taken(conn, plan.delivery_day, plan_id)
    vehicles = []
    for v in _vehicles(conn):
        slots = v.slots or (TimeSlot(*ctx.trip_policy.default_slot),)
        free = tuple(s for s in slots if (v.id, _hhmm(s.start)) not in taken)
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
    taken = set()
    t = schema.trips
    for row in conn.execute(select(t.c.data).where(t.c.delivery_day == day, t.c.plan_id != plan_id)):
        trip = row.data["trip"]
        taken.add((trip["vehicle_id"], row.data.get("slot_start", "")))
    return taken


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
            q = select(schema.plans).where(schema.plans.c.id == plan_id)
            if is_postgres(uow.conn):
                q = q.with_for_update()
            plan = uow.conn.execute(q).first()
            if plan is None or plan.status != "picked":
                return False
            t = schema.picks
            now_picks = [tuple(p) for p in uow.conn.execute(
                select(t).where(t.c.plan_id == plan_id).order_by(t.c.id)).all()]
            if now_picks != inp.picks_seen:
                continue
            _write_dispatch(ctx, uow, plan, inp, trip_plan)
            uow.commit()
            return True
    log.warning("plan picks kept changing while routing; will retry", extra={"plan_id": plan_id})
    return False


def _write_dispatch(ctx: LogisticsContext, uow: UnitOfWork, plan, inp: RoutingInput,
                    tp: TripPlan) -> None:
    demand_of = {r.id: r.demand_id for r in uow.conn.execute(
        select(schema.plan_lines.c.id, schema.plan_lines.c.demand_id)
        .where(schema.plan_lines.c.plan_id == plan.id))}
    now = _utc(ctx.clock.now())
    trips_payload = []
    for trip in tp.trips:
        trip = dataclasses.replace(trip, trip_id=f"{plan.id}/{trip.trip_id}")
        slot_start = _hhmm(trip.slot[0].astimezone(ZoneInfo(ctx.timezone)).time())
        uow.conn.execute(insert(schema.trips).values(
            id=trip.trip_id, plan_id=plan.id, delivery_day=trip.delivery_day, depot_id=trip.depot_id,
            vehicle_id=trip.vehicle_id, status="scheduled", created_at=now,
            data={"trip": to_jsonable(trip), "slot_start": slot_start, "delivered": {}}))
        trips_payload.append({
            "trip_id": trip.trip_id, "depot_id": trip.depot_id, "vehicle_id": trip.vehicle_id,
            "pass_no": trip.pass_number, "driver": trip.driver, "clerk": trip.clerk,
            "refrigerated": trip.refrigerated, "slot_start": _iso(trip.slot[0]),
            "slot_end": _iso(trip.slot[1]), "depart_at": _iso(trip.depart_at),
            "return_at": _iso(trip.return_at), "distance_m": trip.distance_m,
            "stops": [{
                "drop_point_id": split_stop_key(s.drop_point_id, s.requester_id),
                "requester_id": s.requester_id, "eta": _iso(s.arrive_at),
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
    uow.conn.execute(update(schema.plans).where(schema.plans.c.id == plan.id)
                     .values(status="dispatched", data=data))
    uow.record_event("dispatch_scheduled", {
        "plan_id": plan.id, "delivery_day": plan.delivery_day.isoformat(), "trips": trips_payload,
        "unmet": unmet, "staffing": staffing, "total_distance_m": tp.total_distance_m})
    if staffing["short"]:
        log.warning("delivery staffing short", extra={"plan_id": plan.id, "short": staffing["short"],
                                                     "required": staffing["required"]})


def pending_plans(ctx: LogisticsContext) -> list[str]:
    with ctx.uow() as uow:
        return [r.id for r in uow.conn.execute(select(schema.plans.c.id)
                                               .where(schema.plans.c.status == "picked")
                                               .order_by(schema.plans.c.received_at))]


# ---- proof of delivery ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceivedSpec:
    plan_line_id: str
    lot_id: str
    received: int
    discrepancies: tuple[tuple[str, int, str], ...] = ()


def delivery_id_of(trip_id: str, key: str) -> str:
    return "DLV-" + hashlib.sha256(f"{trip_id}|{key}".encode()).hexdigest()[:16]


def confirm_delivery(ctx: LogisticsContext, uow: UnitOfWork, actor: Actor, *, trip_id: str,
                     requester_id: str, drop_point_id: str, receiver: str, received_at: datetime | None,
                     proof_ref: str, lines: Sequence[ReceivedSpec]) -> dict[str, Any]:
    """Proof of delivery at one stop (签收): issue what was received, return refused goods,
    write off damaged and missing goods, publish delivery_confirmed with per-line results and
    demand ids. One confirmation per stop: the same content again returns the recorded result;
    different content is a Conflict."""
    actor.require_for(requester_id, *DELIVERY_ROLES)  # a village confirms at its own drop points
    if not trip_id:
        raise InvalidInput("trip_id", "required")
    if not requester_id:
        raise InvalidInput("requester_id", "required")
    if received_at is None:
        raise InvalidInput("received_at", "required")
    ol = _open_ledger(ctx, uow)
    t = schema.trips
    row = uow.conn.execute(select(t).where(t.c.id == trip_id)).first()
    if row is None:
        raise NotFound(f"trip_id: no trip {trip_id!r}")
    data = dict(row.data)
    trip = from_jsonable(Trip, data["trip"])
    key = stop_key(requester_id, drop_point_id)
    if not any(s.drop_point_id == key for s in trip.stops):
        raise NotFound(f"drop_point_id: trip {trip_id!r} has no stop at {requester_id}/{drop_point_id!r}")
    delivery_id = delivery_id_of(trip_id, key)
    d = schema.deliveries
    prior_row = uow.conn.execute(select(d).where(d.c.id == delivery_id)).first()
    prior = from_jsonable(dlv.DeliveryResult, prior_row.data["result"]) if prior_row else None
    c = dlv.DeliveryConfirmation(
        delivery_id=delivery_id, trip_id=trip_id, drop_point_id=key, receiver=receiver or "",
        received_at=received_at, proof_ref=proof_ref or "",
        lines=tuple(dlv.ReceivedLine(ln.plan_line_id, ln.lot_id, ln.received,
                                     tuple(dlv.Discrepancy(r, q, n) for r, q, n in ln.discrepancies))
                    for ln in lines))
    outcome = dlv.confirm_delivery(c, trip, prior=prior, policy=ctx.delivery_policy)
    result = outcome.result
    if not outcome.new:
        return prior_row.data["view"]
    plan_lines = {r.id: r for r in uow.conn.execute(select(schema.plan_lines).where(
        schema.plan_lines.c.id.in_([ln.plan_line_id for ln in result.lines])))}
    _load_more(uow, ol, lot_ids=[p.lot_id for p in result.postings])
    ol.ledger.post_all(result.postings, approved_plan_lines=set(plan_lines))
    for ln in result.lines:
        if ln.received:
            uow.conn.execute(update(schema.plan_lines).where(schema.plan_lines.c.id == ln.plan_line_id)
                             .values(issued=schema.plan_lines.c.issued + ln.received))
    notes = {(ln.plan_line_id, ln.lot_id): "; ".join(n for _, _, n in ln.discrepancies if n)
             for ln in lines}
    view_lines = []
    for ln in result.lines:
        pl = plan_lines.get(ln.plan_line_id)
        kinds = [k for k, q in (("short", ln.short), ("damaged", ln.damaged), ("refused", ln.refused)) if q]
        view_lines.append({
            "plan_line_id": ln.plan_line_id, "demand_id": pl.demand_id if pl else None,
            "demand_line_no": pl.demand_line_no if pl else None, "item_code": ln.item_code,
            "substitute_for": (pl.data.get("line") or {}).get("substitute_for") if pl else None,
            "lot_id": ln.lot_id, "shipped": ln.shipped, "received": ln.received,
            "short": ln.short, "damaged": ln.damaged, "refused": ln.refused, "status": ln.status,
            "discrepancy": kinds[0] if len(kinds) == 1 else (",".join(kinds) or None),
            "reason": notes.get((ln.plan_line_id, ln.lot_id)) or (", ".join(kinds) or None)})
    view = {"delivery_id": delivery_id, "trip_id": trip_id, "drop_point_id": drop_point_id,
            "requester_id": requester_id, "receiver": result.receiver,
            "received_at": _iso(result.received_at), "proof_ref": result.proof_ref,
            "lines": view_lines,
            "demands_completed": _demands_completed(uow, result.lines, plan_lines)}
    uow.conn.execute(insert(d).values(id=delivery_id, trip_id=trip_id, requester_id=requester_id,
                                      drop_point_id=drop_point_id, fingerprint=result.fingerprint,
                                      received_at=_utc(result.received_at),
                                      data={"result": to_jsonable(result), "view": view}))
    data["delivered"] = {**data.get("delivered", {}), key: delivery_id}
    status = "completed" if all(s.drop_point_id in data["delivered"] for s in trip.stops) else "scheduled"
    uow.conn.execute(update(t).where(t.c.id == trip_id).values(data=data, status=status))
    uow.record_event("delivery_confirmed", view)
    _save_ledger(ctx, uow, ol)
    return view


def _demands_completed(uow: UnitOfWork, lines, plan_lines: dict) -> list[str]:
    """Record what this stop confirmed per plan line; a demand is complete once every plan line
    of it has had its whole quantity confirmed at some stop (a line may ride on several trips)."""
    pl = schema.plan_lines
    touched: set[str] = set()
    for ln in lines:
        row = plan_lines.get(ln.plan_line_id)
        if row is None:
            continue
        data = dict(row.data)
        data["confirmed_shipped"] = int(data.get("confirmed_shipped", 0)) + ln.shipped
        uow.conn.execute(update(pl).where(pl.c.id == row.id).values(data=data))
        if row.demand_id:
            touched.add(row.demand_id)
    done = []
    for demand_id in sorted(touched):
        rows = uow.conn.execute(select(pl.c.quantity, pl.c.data).where(pl.c.demand_id == demand_id)).all()
        if all(int(r.data.get("confirmed_shipped", 0)) >= r.quantity for r in rows):
            done.append(demand_id)
    return done


# ---- reserves (RULES.md §4) ------------------------------------------------------------------------

def county_population(ctx: LogisticsContext, conn: Connection) -> int:
    if ctx.population is not None:
        return ctx.population
    t = schema.requesters
    total = conn.execute(select(func.coalesce(func.sum(t.c.population), 0))
                         .where(t.c.kind.in_(("village", "community")))).scalar_one()
    return int(total or 0)


def supply_days(ctx: LogisticsContext, conn: Connection, *, day: date | None = None,
                depot_ids: Iterable[str] | None = None, population: int | None = None
                ) -> tuple[int, date, list[GroupSupply]]:
    t = schema.lot_balances
    rows = conn.execute(select(t).where(t.c.status != LotStatus.WRITTEN_OFF.value, t.c.on_hand > 0))
    balances = [store.balance_from_row(r) for r in rows]
    pop = population if population else county_population(ctx, conn)
    day = day or ctx.today()
    groups = days_of_supply(balances, ctx.catalogue, population=pop, day=day,
                            policy=ctx.supply_policy, depot_ids=depot_ids)
    return pop, day, groups


def check_reserves(ctx: LogisticsContext, uow: UnitOfWork) -> list[str]:
    """Compare every group's days of supply with its reserve floor; publish
    `reserve_below_floor` when a group goes below (on the change, not on every write). Runs
    under the ledger lock, so two writers never decide the same change twice."""
    store.lock_head(uow.conn)
    pop, _, groups = supply_days(ctx, uow.conn)
    if pop <= 0:
        return []
    t = schema.reserve_state
    state = {r.group_code: r for r in uow.conn.execute(select(t))}
    went_below = []
    now = _utc(ctx.clock.now())
    for g in groups:
        if g.reserve_days is None:
            continue
        before = state.get(g.group)
        if before is not None and before.below_floor == g.below_floor:
            continue
        values = {"below_floor": g.below_floor, "days": g.days, "updated_at": now}
        if before is None:
            uow.conn.execute(insert(t).values(group_code=g.group, **values))
        else:
            uow.conn.execute(update(t).where(t.c.group_code == g.group).values(**values))
        if g.below_floor:
            went_below.append(g.group)
            uow.record_event("reserve_below_floor", {
                "group": g.group, "name_zh": g.name_zh, "name_en": g.name_en,
                "days_of_supply": round(g.days, 2) if g.days is not None else None,
                "floor_days": g.reserve_days, "usable_quantity": round(g.usable, 3),
                "daily_consumption": round(g.daily, 3), "measure": ctx.supply_policy.measure,
                "population": pop})
    return went_below


# ---- queries ----------------------------------------------------------------------------------

SNAPSHOT_EXPIRED = "EXPIRED"  # StockSnapshot.excluded_lots[].reason


def snapshot(ctx: LogisticsContext, conn: Connection, delivery_day: date,
             item_codes: Sequence[str]) -> tuple[int, list, list, list]:
    """The ledger head, the depots, the lots allocation may plan with and the lots with stock
    it may not because they expire before the delivery day (reported, not silently dropped)."""
    seq, _ = store.read_head(conn)
    depots = conn.execute(select(schema.depots).order_by(schema.depots.c.id)).all()
    t = schema.lot_balances
    available = t.c.on_hand - t.c.reserved - t.c.quarantined
    q = (select(t.c.lot_id, t.c.depot_id, t.c.zone_id, t.c.item_code, t.c.expiry,
                available.label("available"))
         .where(t.c.status == LotStatus.AVAILABLE.value, available > 0)
         .order_by(t.c.item_code, t.c.expiry, t.c.lot_id))
    if item_codes:
        q = q.where(t.c.item_code.in_(list(item_codes)))
    usable = conn.execute(q.where(t.c.expiry >= delivery_day)).all()
    expired = conn.execute(q.where(t.c.expiry < delivery_day)).all()
    return seq, depots, usable, expired


def lot_query(*, depot_id: str = "", zone_id: str = "", item_code: str = "", lot_id: str = "",
              status: str = "", include_empty: bool = False):
    b, lt = schema.lot_balances, schema.lots
    q = select(b, lt.c.lot_number, lt.c.receipt_id, lt.c.source_kind, lt.c.received_at).join(
        lt, lt.c.lot_id == b.c.lot_id)
    for col, value in ((b.c.depot_id, depot_id), (b.c.zone_id, zone_id), (b.c.item_code, item_code),
                       (b.c.lot_id, lot_id), (b.c.status, status)):
        if value:
            q = q.where(col == value)
    if not include_empty and not lot_id:
        q = q.where(b.c.on_hand > 0)
    return q


def _encode_token(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode()


def _decode_token(token: str) -> str | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("page.page_token", "not a token returned by a previous page") from None


def list_lots(conn: Connection, *, page_size: int = 0, page_token: str = "", **filters):
    if page_size < 0 or page_size > 500:
        raise InvalidInput("page.page_size", "must be 0 … 500")
    size = page_size or 100
    after = _decode_token(page_token)
    q = lot_query(**filters)
    b = schema.lot_balances
    if after is not None:
        q = q.where(b.c.lot_id > after)
    rows = conn.execute(q.order_by(b.c.lot_id).limit(size + 1)).all()
    token = _encode_token(rows[size - 1].lot_id) if len(rows) > size else ""
    total = conn.execute(select(func.count()).select_from(lot_query(**filters).subquery())).scalar_one()
    return rows[:size], token, int(total)


def lot_row(conn: Connection, lot_id: str):
    row = conn.execute(lot_query(lot_id=lot_id, include_empty=True)).first()
    if row is None:
        raise NotFound(f"lot_id: no lot {lot_id!r}")
    return row


def stock_summary(ctx: LogisticsContext, conn: Connection, *, depot_id: str = "", zone_id: str = "",
                  item_code: str = "") -> tuple[int, list[dict]]:
    seq, _ = store.read_head(conn)
    today = ctx.today()
    out: dict[tuple[str, str, str], dict] = {}
    for r in conn.execute(lot_query(depot_id=depot_id, zone_id=zone_id, item_code=item_code)
                          .order_by(schema.lot_balances.c.lot_id)):
        k = (r.depot_id, r.zone_id, r.item_code)
        s = out.setdefault(k, {"depot_id": k[0], "zone_id": k[1], "item_code": k[2], "on_hand": 0,
                               "reserved": 0, "quarantined": 0, "available": 0, "expired": 0,
                               "lots": 0})
        s["on_hand"] += r.on_hand
        s["reserved"] += r.reserved
        s["quarantined"] += r.quarantined
        s["lots"] += 1
        if r.expiry < today:
            s["expired"] += r.on_hand
        elif r.status == LotStatus.AVAILABLE.value:
            s["available"] += r.on_hand - r.reserved - r.quarantined
    return seq, [out[k] for k in sorted(out)]


def list_receipts(conn: Connection, *, depot_id: str = "", status: str = "", page_size: int = 0,
                  page_token: str = ""):
    if page_size < 0 or page_size > 500:
        raise InvalidInput("page.page_size", "must be 0 … 500")
    size = page_size or 100
    t = schema.receipts
    q = select(t)
    if depot_id:
        q = q.where(t.c.depot_id == depot_id)
    if status:
        if status not in ("accepted", "refused"):
            raise InvalidInput("status", "accepted or refused")
        q = q.where(t.c.status == status)
    after = _decode_token(page_token)
    if after is not None:
        q = q.where(t.c.id > after)
    rows = conn.execute(q.order_by(t.c.id).limit(size + 1)).all()
    token = _encode_token(rows[size - 1].id) if len(rows) > size else ""
    return rows[:size], token


def receipt_row(conn: Connection, receipt_id: str):
    row = conn.execute(select(schema.receipts).where(schema.receipts.c.id == receipt_id)).first()
    if row is None:
        raise NotFound(f"receipt_id: no receipt {receipt_id!r}")
    return row


def receipt_lots(conn: Connection, receipt_id: str):
    return conn.execute(lot_query(include_empty=True).where(schema.lots.c.receipt_id == receipt_id)
                        .order_by(schema.lot_balances.c.lot_id)).all()


def list_trips(conn: Connection, *, delivery_day: date | None = None, plan_id: str = "",
               depot_id: str = "", vehicle_id: str = ""):
    t = schema.trips
    q = select(t)
    for col, value in ((t.c.delivery_day, delivery_day), (t.c.plan_id, plan_id),
                       (t.c.depot_id, depot_id), (t.c.vehicle_id, vehicle_id)):
        if value:
            q = q.where(col == value)
    trips = conn.execute(q.order_by(t.c.delivery_day, t.c.depot_id, t.c.id)).all()
    p = schema.plans
    pq = select(p)
    if plan_id:
        pq = pq.where(p.c.id == plan_id)
    if delivery_day:
        pq = pq.where(p.c.delivery_day == delivery_day)
    plans = conn.execute(pq.order_by(p.c.delivery_day, p.c.id)).all() if (plan_id or delivery_day) else []
    return trips, plans


def trip_row(conn: Connection, trip_id: str):
    if not trip_id:
        raise InvalidInput("trip_id", "required")
    row = conn.execute(select(schema.trips).where(schema.trips.c.id == trip_id)).first()
    if row is None:
        raise NotFound(f"trip_id: no trip {trip_id!r}")
    return row


def _stops_at(row, requester_id: str):
    """The trip row with only its stops at `requester_id`; None when it has none."""
    trip = row.data["trip"]
    stops = [s for s in trip["stops"] if s["requester_id"] == requester_id]
    if not stops:
        return None
    return SimpleNamespace(**{**row._asdict(), "data": {**row.data, "trip": {**trip, "stops": stops}}})


def trips_seen_by(conn: Connection, actor: Actor, **filters):
    """list_trips as `actor` may see them: a village or grid worker gets only the trips that
    stop at its requester, with those stops only, and no dispatch summaries."""
    own = actor.require_for("", *TRIP_READ_ROLES)
    trips, plans = list_trips(conn, **filters)
    if not own:
        return trips, plans
    return [r for r in (_stops_at(t, own) for t in trips) if r is not None], []


def manifest_seen_by(conn: Connection, actor: Actor, trip_id: str):
    """trip_row as `actor` may see it (see trips_seen_by); another village's trip is
    PERMISSION_DENIED."""
    own = actor.require_for("", *TRIP_READ_ROLES)
    row = trip_row(conn, trip_id)
    if not own:
        return row
    mine = _stops_at(row, own)
    if mine is None:
        raise PermissionDenied(f"trip {trip_id} does not stop at {own} / 该车次不经过本村居")
    return mine


def demand_ids(conn: Connection, plan_line_ids: Iterable[str]) -> dict[str, str | None]:
    ids = list(set(plan_line_ids))
    if not ids:
        return {}
    t = schema.plan_lines
    return {r.id: r.demand_id for r in conn.execute(select(t.c.id, t.c.demand_id).where(t.c.id.in_(ids)))}
