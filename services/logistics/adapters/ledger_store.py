"""The ledger in the database: the serialized append, stored balances, reading lines back.

Appends are serialized by the single `ledger_head` row. A use case calls `lock_head` first
(PostgreSQL: SELECT … FOR UPDATE; SQLite: the transaction already holds the file's writer lock
since BEGIN IMMEDIATE), then reads the balances it needs, lets the domain post its lines, and
`append`s them with the new head in the same transaction. Two processes issuing from one lot
therefore take turns: the second reads the balance the first committed, so stock never goes
below zero and every line's prev_hash is the line before it (the chain never forks). The
ledger's primary key (seq) and the unique hash are a second guard: a fork could not commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import Connection

from services.common.db import is_postgres
from services.common.errors import InvalidInput
from services.logistics.adapters.schema import ledger, ledger_head, lot_balances, reserve_state
from services.logistics.domain.ledger import LedgerKind, LedgerLine, LotBalance
from services.logistics.domain.model import DocRef, LotStatus

HEAD_ID = 1


class LedgerHeadMoved(RuntimeError):
    """The head changed under a writer that believed it held the lock: nothing is committed."""


def lock_head(conn: Connection) -> tuple[int, str]:
    """Lock the ledger head for this transaction and return (last seq, last hash)."""
    q = select(ledger_head.c.seq, ledger_head.c.hash).where(ledger_head.c.id == HEAD_ID)
    if is_postgres(conn):
        q = q.with_for_update()
    row = conn.execute(q).first()
    if row is None:
        raise RuntimeError("ledger_head row missing: run `supplyctl migrate logistics`")
    return int(row.seq), row.hash


def read_head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(ledger_head.c.seq, ledger_head.c.hash)
                       .where(ledger_head.c.id == HEAD_ID)).first()
    return (int(row.seq), row.hash) if row is not None else (0, "0" * 64)


def unkeyed_through(conn: Connection) -> int:
    """The last seq written before the chain was keyed (migration 0002); 0 on a new county."""
    value = conn.execute(select(ledger_head.c.unkeyed_through)
                         .where(ledger_head.c.id == HEAD_ID)).scalar()
    return int(value or 0)


def balance_from_row(row) -> LotBalance:
    return LotBalance(
        lot_id=row.lot_id, item_code=row.item_code, depot_id=row.depot_id, zone_id=row.zone_id,
        expiry=row.expiry, on_hand=int(row.on_hand), reserved=int(row.reserved),
        quarantined=int(row.quarantined), written_off=row.status == LotStatus.WRITTEN_OFF.value,
        reserved_by_plan={k: int(v) for k, v in (row.reserved_by_plan or {}).items()},
    )


def load_balances(conn: Connection, *, lot_ids: Iterable[str] = (), depot_id: str | None = None,
                  zone_ids: Iterable[str] = (), depot_items: Iterable[tuple[str, str]] = (),
                  lock: bool = True) -> dict[str, LotBalance]:
    """Balances of the named lots, of a whole depot, of zones, or of (depot, item) pairs; locked
    FOR UPDATE on PostgreSQL (the head lock already serializes writers; this documents which
    rows a writer depends on)."""
    t = lot_balances
    conds = []
    lot_ids = list(dict.fromkeys(lot_ids))
    if lot_ids:
        conds.append(t.c.lot_id.in_(lot_ids))
    if depot_id is not None:
        conds.append(t.c.depot_id == depot_id)
    zone_ids = list(zone_ids)
    if zone_ids:
        conds.append(t.c.zone_id.in_(zone_ids))
    for depot, item in dict.fromkeys(depot_items):
        conds.append(and_(t.c.depot_id == depot, t.c.item_code == item))
    if not conds:
        return {}
    q = select(t).where(or_(*conds)).order_by(t.c.lot_id)
    if lock and is_postgres(conn):
        q = q.with_for_update()
    return {r.lot_id: balance_from_row(r) for r in conn.execute(q)}


def usable_balances(conn: Connection) -> list[LotBalance]:
    """Every lot not written off that holds stock (days of supply count these)."""
    t = lot_balances
    rows = conn.execute(select(t).where(t.c.status != LotStatus.WRITTEN_OFF.value, t.c.on_hand > 0))
    return [balance_from_row(r) for r in rows]


def available_lots_in_zone(conn: Connection, depot_id: str, zone_id: str) -> list[str]:
    """Ids of the zone's available lots that hold stock, in id order."""
    t = lot_balances
    return [r.lot_id for r in conn.execute(
        select(t.c.lot_id).where(t.c.depot_id == depot_id, t.c.zone_id == zone_id,
                                 t.c.status == LotStatus.AVAILABLE.value, t.c.on_hand > 0)
        .order_by(t.c.lot_id))]


def reserve_states(conn: Connection) -> dict[str, Any]:
    """The stored reserve state of each item group (below_floor, days), by group code."""
    return {r.group_code: r for r in conn.execute(select(reserve_state))}


def save_reserve_state(conn: Connection, group: str, *, new: bool, below_floor: bool,
                       days: float | None, at: datetime) -> None:
    values = {"below_floor": below_floor, "days": days, "updated_at": at}
    if new:
        conn.execute(insert(reserve_state).values(group_code=group, **values))
    else:
        conn.execute(update(reserve_state).where(reserve_state.c.group_code == group).values(**values))


def merge_balances(into: dict[str, LotBalance], loaded: dict[str, LotBalance]) -> None:
    """Add newly loaded balances without replacing the objects a ledger already holds."""
    for lot_id, bal in loaded.items():
        into.setdefault(lot_id, bal)


def append(conn: Connection, lines: list[LedgerLine], balances: dict[str, LotBalance],
           start: tuple[int, str], now: datetime) -> None:
    """Insert the new lines, write the touched lots' balances, move the head — one transaction.

    start: the head the lines were chained onto (from lock_head)."""
    if not lines:
        return
    if lines[0].seq != start[0] + 1 or lines[0].prev_hash != start[1]:
        raise LedgerHeadMoved(f"lines start at {lines[0].seq}, head is {start[0]}")
    conn.execute(insert(ledger), [_line_row(ln) for ln in lines])
    last_seq: dict[str, int] = {}
    opened: set[str] = set()
    for ln in lines:
        last_seq[ln.lot_id] = ln.seq
        if ln.kind in (LedgerKind.RECEIPT, LedgerKind.TRANSFER_IN):
            opened.add(ln.lot_id)
    for lot_id, seq in last_seq.items():
        b = balances[lot_id]
        values = {"on_hand": b.on_hand, "reserved": b.reserved, "quarantined": b.quarantined,
                  "status": b.status.value, "reserved_by_plan": dict(b.reserved_by_plan),
                  "last_seq": seq, "updated_at": now}
        if lot_id in opened:
            conn.execute(insert(lot_balances).values(
                lot_id=lot_id, item_code=b.item_code, depot_id=b.depot_id, zone_id=b.zone_id,
                expiry=b.expiry, **values))
        else:
            conn.execute(update(lot_balances).where(lot_balances.c.lot_id == lot_id).values(**values))
    head = lines[-1]
    moved = conn.execute(update(ledger_head)
                         .where(ledger_head.c.id == HEAD_ID, ledger_head.c.seq == start[0])
                         .values(seq=head.seq, hash=head.hash))
    if moved.rowcount != 1:
        raise LedgerHeadMoved(f"ledger head is no longer {start[0]}")


def _line_row(ln: LedgerLine) -> dict:
    return {
        "seq": ln.seq, "kind": str(ln.kind), "lot_id": ln.lot_id, "item_code": ln.item_code,
        "depot_id": ln.depot_id, "zone_id": ln.zone_id, "quantity": ln.quantity,
        "on_hand_delta": ln.on_hand_delta, "reserved_delta": ln.reserved_delta,
        "quarantined_delta": ln.quarantined_delta, "actor": ln.actor,
        "at": ln.at.astimezone(UTC), "reason": ln.reason, "doc_type": ln.doc.doc_type,
        "doc_id": ln.doc.doc_id, "plan_line_id": ln.plan_line_id, "expiry": ln.expiry,
        "prev_hash": ln.prev_hash, "hash": ln.hash, "scheme": ln.scheme,
    }


def _doc(doc_type: str, doc_id: str) -> DocRef:
    """A stored document reference; an invalid (tampered) one is kept as it is so that the
    audit can still hash the line and report it instead of failing to read it."""
    try:
        return DocRef(doc_type, doc_id)
    except InvalidInput:
        doc = object.__new__(DocRef)
        object.__setattr__(doc, "doc_type", doc_type)
        object.__setattr__(doc, "doc_id", doc_id)
        return doc


def _kind(raw: str):
    try:
        return LedgerKind(raw)
    except ValueError:
        return raw  # a tampered kind still hashes (and fails verification)


def line_from_row(row) -> LedgerLine:
    at = row.at if row.at.tzinfo is not None else row.at.replace(tzinfo=UTC)  # SQLite: naive UTC
    return LedgerLine(
        seq=int(row.seq), kind=_kind(row.kind), lot_id=row.lot_id, item_code=row.item_code,
        depot_id=row.depot_id, zone_id=row.zone_id, quantity=int(row.quantity),
        on_hand_delta=int(row.on_hand_delta), reserved_delta=int(row.reserved_delta),
        quarantined_delta=int(row.quarantined_delta), actor=row.actor, at=at,
        reason=row.reason, doc=_doc(row.doc_type, row.doc_id), plan_line_id=row.plan_line_id,
        expiry=row.expiry, prev_hash=row.prev_hash, hash=row.hash, scheme=row.scheme,
    )


def iter_lines(conn: Connection, *, from_seq: int = 1, to_seq: int | None = None,
               batch: int = 5000) -> Iterator[LedgerLine]:
    """Ledger lines in seq order, read in keyset pages (memory stays flat for any ledger)."""
    after = from_seq - 1
    while True:
        q = select(ledger).where(ledger.c.seq > after)
        if to_seq:
            q = q.where(ledger.c.seq <= to_seq)
        rows = conn.execute(q.order_by(ledger.c.seq).limit(batch)).all()
        if not rows:
            return
        for r in rows:
            yield line_from_row(r)
        after = int(rows[-1].seq)
        if len(rows) < batch:
            return


def lines_of(conn: Connection, seqs: Iterable[int]) -> list[LedgerLine]:
    seqs = list(seqs)
    if not seqs:
        return []
    rows = conn.execute(select(ledger).where(ledger.c.seq.in_(seqs)).order_by(ledger.c.seq)).all()
    return [line_from_row(r) for r in rows]
