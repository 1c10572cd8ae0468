"""Audit of the ledger (台账, 纪委备案): reconciliation and export.

`reconcile(engine, key)` reads the whole ledger in seq order and the stored balances in one
consistent read (REPEATABLE READ on PostgreSQL), verifies the keyed hash chain against the stored
head (and against anchors: a seq and hash printed in an earlier daily report), recomputes every
lot's balance from the lines and compares. `write_csv` / `write_xlsx` export lines with their
hashes; `at_us` (microseconds since the Unix epoch, UTC) is the exact instant that was hashed, so
whoever holds the county key can recompute every hash from the file alone
(services.logistics.domain.ledger.canonical; `verify_export`). Text cells are neutralised for
spreadsheets (services.common.cells) and read back to the original text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from types import SimpleNamespace
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from services.common.cells import spreadsheet_cell, spreadsheet_text
from services.common.db import is_postgres
from services.common.errors import InvalidInput
from services.logistics.adapters import ledger_store as store
from services.logistics.adapters import schema
from services.logistics.domain.ledger import UNKEYED, LedgerLine
from services.logistics.domain.ledger_audit import Anchor, ChainBreak, Mismatch, check_chain
from services.logistics.domain.ledger_audit import reconcile as reconcile_lines

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COLUMNS = ("seq", "at_utc", "at_us", "kind", "lot_id", "item_code", "depot_id", "zone_id",
           "quantity", "on_hand_delta", "reserved_delta", "quarantined_delta", "actor", "reason",
           "doc_type", "doc_id", "plan_line_id", "expiry", "prev_hash", "hash", "scheme")


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


def reconcile(engine: Engine, key: bytes, anchors: Iterable[Anchor] = ()) -> ReconcileReport:
    with consistent_read(engine) as conn:
        head = store.read_head(conn)
        stored = {r.lot_id: store.balance_from_row(r)
                  for r in conn.execute(select(schema.lot_balances))}
        breaks: list[ChainBreak] = []
        counted = _Counting(check_chain(store.iter_lines(conn), breaks, key=key, expected_head=head,
                                        unkeyed_through=store.unkeyed_through(conn),
                                        anchors=anchors))
        mismatches = reconcile_lines(counted, stored)
    return ReconcileReport(counted.n, len(stored), head[0], head[1], tuple(breaks),
                           tuple(mismatches))


def _row(ln: LedgerLine) -> list:
    at = ln.at.astimezone(UTC)
    return [spreadsheet_cell(v) for v in (
        ln.seq, at.isoformat().replace("+00:00", "Z"), (at - _EPOCH) // timedelta(microseconds=1),
        str(ln.kind), ln.lot_id, ln.item_code, ln.depot_id, ln.zone_id, ln.quantity,
        ln.on_hand_delta, ln.reserved_delta, ln.quarantined_delta, ln.actor, ln.reason,
        ln.doc.doc_type, ln.doc.doc_id, ln.plan_line_id or "",
        ln.expiry.isoformat() if ln.expiry else "", ln.prev_hash, ln.hash, ln.scheme)]


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


# ---- reading an export back -----------------------------------------------------------------

def _line_of(cells: dict) -> LedgerLine:
    """A ledger line from an exported row, every text cell read back to the text that was
    hashed (an export made before the chain was keyed has no scheme column: sha256)."""
    text = {k: "" if v is None else str(spreadsheet_text(v)) for k, v in cells.items()}
    try:
        return store.line_from_row(SimpleNamespace(**{
            **text, "seq": int(text["seq"]), "quantity": int(text["quantity"]),
            "on_hand_delta": int(text["on_hand_delta"]), "reserved_delta": int(text["reserved_delta"]),
            "quarantined_delta": int(text["quarantined_delta"]),
            "at": _EPOCH + timedelta(microseconds=int(text["at_us"])),
            "plan_line_id": text["plan_line_id"] or None,
            "expiry": date.fromisoformat(text["expiry"]) if text["expiry"] else None,
            "scheme": text.get("scheme") or UNKEYED}))
    except (KeyError, ValueError) as exc:
        raise InvalidInput("file", f"row {text.get('seq', '?')}: not a ledger export row ({exc}) "
                                   f"/ 不是台账导出文件的行") from None


def read_export(data: BinaryIO, fmt: str) -> Iterator[LedgerLine]:
    """The lines of a file written by write_csv / write_xlsx, in file order."""
    if fmt == "csv":
        rows: Iterator = csv.reader(io.TextIOWrapper(data, encoding="utf-8-sig", newline=""))
    else:
        from openpyxl import load_workbook

        rows = load_workbook(data, read_only=True).worksheets[0].iter_rows(values_only=True)
    header = [str(h) for h in next(rows, ())]
    if header[:2] != list(COLUMNS[:2]):
        raise InvalidInput("file", "not a ledger export: the first row is not its header "
                                   "/ 不是台账导出文件")
    for row in rows:
        if any(v not in (None, "") for v in row):
            yield _line_of(dict(zip(header, row, strict=False)))


def verify_export(data: BinaryIO, fmt: str, key: bytes,
                  anchors: Iterable[Anchor] = ()) -> tuple[int, list[ChainBreak]]:
    """(lines read, chain breaks) of an exported run of lines, from the file alone. The run may
    start anywhere (ExportLedger from_seq): its first line's prev_hash is taken as given."""
    lines = read_export(data, fmt)
    first = next(lines, None)
    if first is None:
        return 0, []
    breaks: list[ChainBreak] = []
    counted = _Counting(check_chain(chain([first], lines), breaks, key=key, unkeyed_through=None,
                                    start_hash=first.prev_hash, start_seq=first.seq - 1,
                                    anchors=anchors))
    for _ in counted:
        pass
    return counted.n, breaks
