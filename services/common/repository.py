"""A repository for aggregates stored whole as JSON beside a few indexed columns."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Table, bindparam, func, insert, select, tuple_, update
from sqlalchemy.engine import Connection

from services.common.db import insert_many
from services.common.errors import InvalidInput
from services.common.serde import from_jsonable

T = TypeVar("T")


def encode_page_token(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values), default=str).encode()).decode()


def decode_page_token(token: str, columns: Sequence[Column], field: str = "page.page_token"
                      ) -> list[Any] | None:
    """The keyset values of the last row of the previous page, typed like their columns; None
    for the first page. `field` names the token in the request when it is not one of ours."""
    if not token:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(raw, list) or len(raw) != len(columns):
            raise ValueError
        return [None if v is None else _typed(c, v) for c, v in zip(columns, raw, strict=True)]
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput(field, "not a token returned by a previous page") from None


def _typed(column: Column, value: Any) -> Any:
    kind = column.type.python_type
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is date:
        return date.fromisoformat(value)
    return kind(value)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str
    total: int


DEFAULT_PAGE = 50
MAX_PAGE = 500


class JsonRepository(Generic[T]):
    """Loads and saves one aggregate type. `columns(obj)` gives the indexed columns' values.

    The aggregate goes into its JSON column as it is: the engine's JSON encoder (serde.dumps,
    set by make_engine) writes a dataclass as to_jsonable would."""

    def __init__(self, table: Table, cls: type[T], columns: Callable[[T], dict[str, Any]]):
        self.table = table
        self.cls = cls
        self.columns = columns
        self._insert = insert(table)
        self._get = select(table.c.data).where(table.c.id == bindparam("key"))

    def get(self, conn: Connection, key: str) -> T | None:
        row = conn.execute(self._get, {"key": key}).first()
        return None if row is None else from_jsonable(self.cls, row.data)

    def get_many(self, conn: Connection, keys: Sequence[str]) -> dict[str, T]:
        rows = conn.execute(select(self.table.c.id, self.table.c.data)
                            .where(self.table.c.id.in_(list(keys)))).all()
        return {r.id: from_jsonable(self.cls, r.data) for r in rows}

    def add(self, conn: Connection, obj: T, **columns: Any) -> None:
        """Insert; `columns` overrides indexed values the aggregate alone cannot give."""
        conn.execute(self._insert, {"id": obj.id, "data": obj, **self.columns(obj),
                                    **columns})

    def add_many(self, conn: Connection, objs: Sequence[T]) -> None:
        insert_many(conn, self.table, [{"id": o.id, "data": o, **self.columns(o)} for o in objs])

    def save(self, conn: Connection, obj: T, **columns: Any) -> None:
        conn.execute(update(self.table).where(self.table.c.id == obj.id)
                     .values(data=obj, **self.columns(obj), **columns))

    def page(self, conn: Connection, where: Sequence[Any], page_size: int, page_token: str,
             order: Sequence[Column] = ()) -> Page[T]:
        """Keyset paging over `order` columns then id; `total` counts every matching row."""
        if not 0 <= page_size <= MAX_PAGE:
            raise InvalidInput("page.page_size", f"must be 0 … {MAX_PAGE} (0: {DEFAULT_PAGE}), got {page_size}")
        size = page_size or DEFAULT_PAGE
        keys = [*order, self.table.c.id]
        after = decode_page_token(page_token, keys)
        q = select(self.table.c.data, *keys).where(*where)
        if after is not None:
            q = q.where(tuple_(*keys) > tuple_(*after))
        rows = conn.execute(q.order_by(*keys).limit(size + 1)).all()
        total = conn.execute(select(func.count()).select_from(self.table).where(*where)).scalar_one()
        items = [from_jsonable(self.cls, r.data) for r in rows[:size]]
        token = encode_page_token(rows[size - 1][1:]) if len(rows) > size else ""
        return Page(items, token, total)
