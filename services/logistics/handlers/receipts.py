"""Receipts (验收入库): purchases, transfers, upper-level allocations and donations put away."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.auth import Caller
from services.common.catalogue import Item
from services.common.days import parse_day
from services.common.db import UnitOfWork, new_id
from services.common.errors import Conflict, InvalidInput, NotFound, RuleRefused
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import receipts_store
from services.logistics.adapters.sites_store import depot_ids, zones_of
from services.logistics.domain.model import (
    DocRef,
    positive_int,
)
from services.logistics.domain.receipts import (
    RECEIPT_KINDS,
    Receipt,
    ReceiptLine,
    accept_receipt,
    fit_zone,
    no_fitting_zone,
    refuse_repeated_lines,
)
from services.logistics.handlers.base import (
    WRITE_ROLES,
    LogisticsContext,
    catalogue_item,
    check_id,
    iso,
    utc,
)
from services.logistics.handlers.ledger import open_ledger, save_ledger
from services.logistics.handlers.sites import depot_row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceiptLineSpec:
    item_code: str
    quantity: Any
    lot_number: str
    expiry: Any
    zone_id: str = ""
    lot_id: str = ""


def receive_stock(ctx: LogisticsContext, uow: UnitOfWork, actor: Caller, *, kind: str,
                  depot_id: str, origin_ref: str, lines: Sequence[ReceiptLineSpec],
                  receipt_id: str | None = None, check_role: bool = True) -> dict[str, Any]:
    """Verify, register and put away a receipt (验收、核实、登记、入库): lots, ledger lines,
    stock_received and stock_changed events. Refused whole with the rule that refused it."""
    if check_role:
        actor.require(*WRITE_ROLES)
    if kind not in RECEIPT_KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(RECEIPT_KINDS)}")
    depot_row(uow, depot_id)
    if not lines:
        raise InvalidInput("lines", "a receipt has at least one line")
    if len(origin_ref) > 200:
        raise InvalidInput("origin_ref", "at most 200 characters")
    refuse_repeated_lines([(ln.item_code, ln.lot_number) for ln in lines])  # before put-away
    ol = open_ledger(ctx, uow, depot_id=depot_id,
                      lot_ids=[ln.lot_id for ln in lines if ln.lot_id])
    zones = zones_of(uow.conn)
    depot_zones = {k: z for k, z in zones.items() if z.depot_id == depot_id}
    now = ctx.clock.now()
    receipt_id = receipt_id or new_id("RC")
    domain_lines = []
    pending: list[tuple[str, Item, int]] = []
    for i, ln in enumerate(lines):
        item = catalogue_item(ctx, ln.item_code, f"lines[{i}].item_code")
        qty = positive_int(ln.quantity, f"lines[{i}].quantity")
        expiry = parse_day(ln.expiry, f"lines[{i}].expiry", required=True)
        zone_id = ln.zone_id
        if not zone_id:
            zone_id = fit_zone(item, qty, depot_zones, ol.ledger.balances, pending,
                               catalogue=ctx.catalogue, policy=ctx.receipt_policy)
            if zone_id is None:
                raise no_fitting_zone(item, depot_id)
        pending.append((zone_id, item, qty))
        if ln.lot_id:
            check_id(ln.lot_id, f"lines[{i}].lot_id")
        domain_lines.append(ReceiptLine(item.code, qty, ln.lot_number, expiry, zone_id,
                                        ln.lot_id or None))
    origin_type = {"donation": "inspection", "transfer": "transfer"}.get(kind)
    origin = DocRef(origin_type, origin_ref) if origin_type and origin_ref.strip() else None
    receipt = Receipt(receipt_id, kind, depot_id, now, actor.identity, tuple(domain_lines), origin)
    accepted = accept_receipt(receipt, catalogue=ctx.catalogue, zones=zones,
                              balances=ol.ledger.balances, policy=ctx.receipt_policy)
    ol.ledger.post_all(accepted.postings)
    receipts_store.add_lots(uow.conn, accepted.lots, receipt_id=receipt_id, kind=kind,
                            origin_ref=origin_ref, at=utc(now))
    receipts_store.add_receipt(uow.conn, receipt_id=receipt_id, kind=kind, depot_id=depot_id,
                               status="accepted", origin_ref=origin_ref,
                               received_by=actor.identity, received_at=utc(now),
                               data={"lots": [lot.lot_id for lot in accepted.lots]})
    for lot, ln in zip(accepted.lots, domain_lines, strict=True):
        uow.record_event("stock_received", {
            "receipt_id": receipt_id, "lot_id": lot.lot_id, "item_code": lot.item_code,
            "quantity": ln.quantity, "depot_id": depot_id, "zone_id": lot.zone_id,
            "storage_class": zones[lot.zone_id].storage_class, "expiry": lot.expiry.isoformat(),
            "lot_number": lot.lot_number, "source_kind": kind, "source_ref": origin_ref,
            "received_at": iso(now)})
    save_ledger(ctx, uow, ol)
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
        if receipts_store.receipt_exists(uow.conn, receipt_id):
            continue
        actor = Caller(str(line.get("inspector") or "donation-inspection"), "depot_keeper")
        spec = ReceiptLineSpec(item_code=line.get("item_code"), quantity=line.get("quantity"),
                               lot_number=str(line.get("lot") or ""), expiry=line.get("expiry"))
        origin = f"{donation_id}#{line_no}"
        depot_id = ""
        savepoint = uow.conn.begin_nested()
        try:
            item = catalogue_item(ctx, spec.item_code, f"payload.lines[{i}].item_code")
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
            receipts_store.add_receipt(
                uow.conn, receipt_id=receipt_id, kind="donation", depot_id=depot_id or "",
                status="refused", rule_code=rule, message=exc.message, origin_ref=origin,
                received_by=actor.identity, received_at=utc(ctx.clock.now()),
                data={"line": dict(line), "donation_id": donation_id})
            out.append({"receipt_id": receipt_id, "status": "refused", "rule_code": rule})
    return out


def _donation_depot(ctx: LogisticsContext, uow: UnitOfWork, item: Item, quantity: Any) -> str:
    depots = depot_ids(uow.conn)
    if ctx.donation_depot in depots:
        depots.remove(ctx.donation_depot)
        depots.insert(0, ctx.donation_depot)
    store.lock_head(uow.conn)
    for depot_id in depots:
        zones = zones_of(uow.conn, depot_id)
        balances = store.load_balances(uow.conn, depot_id=depot_id)
        qty = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 0
        if fit_zone(item, qty, zones, balances, (), catalogue=ctx.catalogue,
                    policy=ctx.receipt_policy) is not None:
            return depot_id
    raise no_fitting_zone(item, ctx.donation_depot or "(any)")

