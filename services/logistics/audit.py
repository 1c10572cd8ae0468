"""Audit of the ledger (台账, 纪委备案): reconciliation and export.

`reconcile(engine)` reads the whole ledger in seq order and the stored balances in one
consistent read (REPEATABLE READ on PostgreSQL), verifies the hash chain against the stored
head, recomputes every lot's balance from the lines and compares. `write_csv` / `write_xlsx`
export lines with their hashes; `at_us` (microseconds since the Unix epoch, UTC) is the exact
instant that was hashed, so an auditor can recompute every hash from the file alone
(services.logistics.domain.ledger.canonical).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from services.common.db import is_postgres
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import schema
from services.logistics.domain.ledger import (
    GENESIS_HASH,
    ChainBreak,
    LedgerLine,
    Mismatch,
    line_hash,
)
from services.logistics.domain.ledger import (
    reconcile as reconcile_lines,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COLUMNS = ("seq", "at_utc", "at_us", "kind", "lot_id", "item_code", "depot_id", "zone_id",
           "quantity", "on_hand_delta", "reserved_delta", "quarantined_delta", "actor", "reason",
           "doc_type", "doc_id", "plan_line_id", "expiry", "prev_hash", "hash")


@dataclass(frozen=True)
class ReconcileReport:
    lines_checked: int
    lots_checked: int
    head_seq: int
    head_hash: str
    chain_breaks: tuple[ChainBreak, ...]
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        return not self.chain_breaks and not self.mismatches


@contextmanager
def consistent_read(engine: Engine) -> Iterator[Connection]:
    """One read transaction in which the ledger, the head and the balances agree."""
    with engine.connect() as conn:
        if is_postgres(conn):
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


class _Counting:
    def __init__(self, lines: Iterable[LedgerLine]):
        self.lines = lines
        self.n = 0

    def __iter__(self):
        for ln in self.lines:
            self.n += 1
            yield ln


def _verify(lines: Iterable[LedgerLine], head: tuple[int, str], sink: list[ChainBreak]) -> Iterator[LedgerLine]:
    """verify_chain, streaming: yields the lines on to the balance sums while checking them."""
    prev_hash, prev_seq, pos = GENESIS_HASH, 0, -1
    for pos, ln in enumerate(lines):
        if ln.seq != prev_seq + 1:
            what = "gap" if ln.seq > prev_seq + 1 else "out of order"
            sink.append(ChainBreak(ln.seq, pos, "seq", f"{what}: expected {prev_seq + 1}, got {ln.seq}"))
        if ln.prev_hash != prev_hash:
            sink.append(ChainBreak(ln.seq, pos, "prev_hash", "does not point at the line before it"))
        try:
            good = line_hash(ln) == ln.hash
        except Exception as exc:  # noqa: BLE001 - a tampered value that cannot even be hashed
            good = False
            sink.append(ChainBreak(ln.seq, pos, "hash", f"cannot be hashed: {exc}"))
        else:
            if not good:
                sink.append(ChainBreak(ln.seq, pos, "hash", "content does not match its hash"))
        prev_hash, prev_seq = ln.hash, ln.seq
        yield ln
    if (prev_seq, prev_hash) != tuple(head):
        sink.append(ChainBreak(prev_seq, pos, "head",
                               f"last line is {prev_seq}, the store's head is {head[0]}"))


def reconcile(engine: Engine) -> ReconcileReport:
    with consistent_read(engine) as conn:
        head = store.read_head(conn)
        stored = {r.lot_id: store.balance_from_row(r)
                  for r in conn.execute(select(schema.lot_balances))}
        breaks: list[ChainBreak] = []
        counted = _Counting(_verify(store.iter_lines(conn), head, breaks))
        mismatches = reconcile_lines(counted, stored)
    return ReconcileReport(counted.n, len(stored), head[0], head[1], tuple(breaks),
                           tuple(mismatches))


def _row(ln: LedgerLine) -> list:
    at = ln.at.astimezone(UTC)
    return [ln.seq, at.isoformat().replace("+00:00", "Z"), (at - _EPOCH) // timedelta(microseconds=1),
            str(ln.kind), ln.lot_id, ln.item_code, ln.depot_id, ln.zone_id, ln.quantity,
            ln.on_hand_delta, ln.reserved_delta, ln.quarantined_delta, ln.actor, ln.reason,
            ln.doc.doc_type, ln.doc.doc_id, ln.plan_line_id or "",
            ln.expiry.isoformat() if ln.expiry else "", ln.prev_hash, ln.hash]


def write_csv(lines: Iterable[LedgerLine], out: BinaryIO) -> int:
    """UTF-8 with BOM (so that Excel opens the Chinese text right), one row per line."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    w = csv.writer(text)
    w.writerow(COLUMNS)
    n = 0
    for ln in lines:
        w.writerow(_row(ln))
        n += 1
    text.flush()
    text.detach()
    return n


def write_xlsx(lines: Iterable[LedgerLine], out: BinaryIO) -> int:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("台账 ledger")
    ws.append(list(COLUMNS))
    n = 0
    for ln in lines:
        ws.append(_row(ln))
        n += 1
    wb.save(out)
    return n


def export(engine: Engine, out: BinaryIO, fmt: str, *, from_seq: int = 1, to_seq: int | None = None) -> int:
    writer = {"csv": write_csv, "xlsx": write_xlsx}[fmt]
    with consistent_read(engine) as conn:
        return writer(store.iter_lines(conn, from_seq=from_seq or 1, to_seq=to_seq or None), out)
