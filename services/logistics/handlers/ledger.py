"""The ledger unit of work (lock the head, post, save lines, balances and stock_changed) and
the reserve-floor check every stock change runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy.engine import Connection

from services.common.db import UnitOfWork
from services.common.errors import NotFound
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters.sites_store import villages_population
from services.logistics.domain.ledger import Ledger, LedgerKind, LedgerLine, LotBalance
from services.logistics.domain.model import (
    LotStatus,
)
from services.logistics.domain.supply_days import GroupSupply, days_of_supply
from services.logistics.handlers.base import LogisticsContext, utc


@dataclass
class OpenLedger:
    ledger: Ledger
    start: tuple[int, str]


def open_ledger(ctx: LogisticsContext, uow: UnitOfWork, **load) -> OpenLedger:
    """Lock the ledger head, then read the balances the use case needs (after the lock, so
    they are what the last writer committed)."""
    start = store.lock_head(uow.conn)
    balances = store.load_balances(uow.conn, **load) if load else {}
    return OpenLedger(Ledger(balances=balances, head_seq=start[0], head_hash=start[1],
                             policy=ctx.ledger_policy, keep_lines=True, key=ctx.ledger_key), start)


def load_more(uow: UnitOfWork, ol: OpenLedger, **load) -> None:
    store.merge_balances(ol.ledger.balances, store.load_balances(uow.conn, **load))


def save_ledger(ctx: LogisticsContext, uow: UnitOfWork, ol: OpenLedger) -> list[LedgerLine]:
    """Persist the lines posted since open_ledger and record one stock_changed per line."""
    lines = list(ol.ledger.lines)
    if not lines:
        return []
    store.append(uow.conn, lines, ol.ledger.balances, ol.start, utc(ctx.clock.now()))
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


def lot_balance(ol: OpenLedger, lot_id: str, f: str = "lot_id") -> LotBalance:
    bal = ol.ledger.balances.get(lot_id)
    if bal is None:
        raise NotFound(f"{f}: no lot {lot_id!r} / 未知批次")
    return bal


def county_population(ctx: LogisticsContext, conn: Connection) -> int:
    if ctx.population is not None:
        return ctx.population
    return villages_population(conn)


def supply_days(ctx: LogisticsContext, conn: Connection, *, day: date | None = None,
                depot_ids: Iterable[str] | None = None, population: int | None = None
                ) -> tuple[int, date, list[GroupSupply]]:
    balances = store.usable_balances(conn)
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
    state = store.reserve_states(uow.conn)
    went_below = []
    now = utc(ctx.clock.now())
    for g in groups:
        if g.reserve_days is None:
            continue
        before = state.get(g.group)
        if before is not None and before.below_floor == g.below_floor:
            continue
        store.save_reserve_state(uow.conn, g.group, new=before is None,
                                 below_floor=g.below_floor, days=g.days, at=now)
        if g.below_floor:
            went_below.append(g.group)
            uow.record_event("reserve_below_floor", {
                "group": g.group, "name_zh": g.name_zh, "name_en": g.name_en,
                "days_of_supply": round(g.days, 2) if g.days is not None else None,
                "floor_days": g.reserve_days, "usable_quantity": round(g.usable, 3),
                "daily_consumption": round(g.daily, 3), "measure": ctx.supply_policy.measure,
                "population": pop})
    return went_below

