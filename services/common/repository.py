"""A repository for aggregates stored whole as JSON beside a few indexed columns."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from services.common.errors import InvalidInput
from services.common.serde import from_jsonable, to_jsonable

T = TypeVar("T")


def encode_page_token(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode()


def decode_page_token(token: str) -> str | None:
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("page.page_token", "not a token returned by a previous page") from None


class JsonRepository(Generic[T]):
    """Loads and saves one aggregate type. `columns(obj)` gives the indexed columns' values."""

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

    def add(self, conn: Connection, obj: T) -> None:
        conn.execute(self._insert, {"id": obj.id, "data": to_jsonable(obj), **self.columns(obj)})

    def add_many(self, conn: Connection, objs: Sequence[T]) -> None:
        if objs:
            conn.execute(insert(self.table), [
                {"id": o.id, "data": to_jsonable(o), **self.columns(o)} for o in objs])

    def save(self, conn: Connection, obj: T) -> None:
        conn.execute(update(self.table).where(self.table.c.id == obj.id)
                     .values(data=to_jsonable(obj), **self.columns(obj)))

    def page(self, conn: Connection, where: Sequence[Any], page_size: int, page_token: str,
             max_page: int = 500) -> tuple[list[T], str]:
        """Keyset paging by id: returns (items, next_page_token or '')."""
        if page_size < 0:
            raise InvalidInput("page.page_size", "must be >= 0")
        size = min(page_size or 100, max_page)
        after = decode_page_token(page_token)
        q = select(self.table.c.id, self.table.c.data).where(*where)
        if after is not None:
            q = q.where(self.table.c.id > after)
        rows = conn.execute(q.order_by(self.table.c.id).limit(size + 1)).all()
        items = [from_jsonable(self.cls, r.data) for r in rows[:size]]
        token = encode_page_token(rows[size - 1].id) if len(rows) > size else ""
        return items, token
