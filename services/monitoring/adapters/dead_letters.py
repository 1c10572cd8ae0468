"""The ingest's dead letters (table ingest_rejects): stored in the ingest's transaction, read
newest first by ListIngestDeadLetters and `supplyctl dead-letters monitoring --ingest`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from services.common.errors import InvalidInput
from services.common.repository import (
    DEFAULT_PAGE,
    MAX_PAGE,
    Page,
    decode_page_token,
    encode_page_token,
)
from services.monitoring.adapters import schema
from services.monitoring.domain.readings import Rejected


@dataclass(frozen=True)
class DeadLetter:
    id: int
    received_at: datetime
    depot: str | None
    client_id: str
    topic: str
    code: str
    reason: str
    reason_zh: str
    raw: str
    entry_index: int | None


@dataclass(frozen=True)
class DeadLetterFilter:
    depot: str = ""
    codes: tuple[str, ...] = ()
    received_after: datetime | None = None
    received_before: datetime | None = None


def store(conn: Connection, rejects: Sequence[tuple[str, Rejected]], now: datetime,
          client_id: str, max_rows: int) -> None:
    """One row per refused message or entry, with its reason; beyond `max_rows` per group (a
    gateway replaying days of old data, a broken firmware) one summary row counts the rest by
    code, so that a flood of bad data cannot flood the database (the process counters and the
    stats log still count every one)."""
    rows = [{"received_at": now, "client_id": client_id, "topic": topic[:400], "code": r.code,
             "reason": r.reason, "reason_zh": r.reason_zh, "raw": r.raw, "entry_index": r.index,
             "depot": r.depot}
            for topic, r in rejects[:max_rows]]
    rest = rejects[max_rows:]
    if rest:
        by_code: dict[str, int] = defaultdict(int)
        for _, r in rest:
            by_code[r.code] += 1
        summary = ", ".join(f"{code} × {n}" for code, n in sorted(by_code.items()))
        depots = {r.depot for _, r in rest}
        rows.append({"received_at": now, "client_id": client_id, "topic": "(summary)",
                     "code": "truncated", "reason": f"{len(rest)} more rejected in this batch group, "
                                                   f"not stored one by one: {summary}",
                     "reason_zh": f"本批另有 {len(rest)} 条被拒数据未逐条保存: {summary}",
                     "raw": rest[0][1].raw, "entry_index": None,
                     "depot": depots.pop() if len(depots) == 1 else None})
    conn.execute(schema.ingest_rejects.insert(), rows)


def page(conn: Connection, f: DeadLetterFilter, page_size: int, page_token: str) -> Page[DeadLetter]:
    """Newest first (by id); keyset paging; also the total matching."""
    if not 0 <= page_size <= MAX_PAGE:
        raise InvalidInput("page.page_size", f"must be 0 … {MAX_PAGE} (0: {DEFAULT_PAGE}), got {page_size}")
    size = page_size or DEFAULT_PAGE
    t = schema.ingest_rejects
    where = []
    if f.depot:
        where.append(t.c.depot == f.depot)
    if f.codes:
        where.append(t.c.code.in_(f.codes))
    if f.received_after is not None:
        where.append(t.c.received_at >= f.received_after)
    if f.received_before is not None:
        where.append(t.c.received_at < f.received_before)
    total = conn.execute(select(func.count()).select_from(t).where(*where)).scalar_one()
    q = select(t).where(*where)
    after = decode_page_token(page_token, [t.c.id])
    if after is not None:
        q = q.where(t.c.id < after[0])
    rows = conn.execute(q.order_by(t.c.id.desc()).limit(size + 1)).all()
    items = [DeadLetter(r.id, r.received_at, r.depot, r.client_id, r.topic, r.code, r.reason,
                        r.reason_zh, r.raw, r.entry_index) for r in rows[:size]]
    token = encode_page_token([rows[size - 1].id]) if len(rows) > size else ""
    return Page(items, token, total)
