"""insert_many writes exactly what SQLAlchemy's own insert writes — dates, aware datetimes,
JSON, booleans, bytes, NULLs — on SQLite and on PostgreSQL, and falls back to SQLAlchemy when a
missing column has a Python-side default."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
    select,
)

from services.common.db import Json, UTCDateTime, insert_many, make_engine

metadata = MetaData()
things = Table(
    "things", metadata,
    Column("id", String(20), primary_key=True),
    Column("day", Date, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("data", Json, nullable=False),
    Column("flag", Boolean, nullable=False),
    Column("blob", LargeBinary, nullable=True),
    Column("count", Integer, nullable=True),
)
with_default = Table(
    "with_default", metadata,
    Column("id", String(20), primary_key=True),
    Column("attempts", Integer, nullable=False, default=7),
)


def rows(prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", "day": date(2026, 11, 29) + timedelta(days=i),
             "at": datetime(2026, 11, 29, 3, 0, i, 1234, tzinfo=UTC),  # the platform stores UTC
             "data": {"名": "东风村", "n": i, "lines": [{"q": i}], "none": None},
             "flag": i % 2 == 0, "blob": bytes([i, 0, 255]) if i else None,
             "count": None if i == 1 else i} for i in range(3)]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path, pg_url_factory):
    url = (f"sqlite:///{tmp_path / 'things.db'}" if request.param == "sqlite"
           else pg_url_factory("insert_many"))
    engine = make_engine(url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_rows_read_back_as_sqlalchemy_wrote_them(engine):
    with engine.begin() as conn:
        conn.execute(insert(things), rows("core-"))
        insert_many(conn, things, rows("fast-"))
        insert_many(conn, things, [])
    with engine.connect() as conn:
        stored = {r.id: r._asdict() for r in conn.execute(select(things))}
    assert len(stored) == 6
    for i in range(3):
        core, fast = stored[f"core-{i}"], stored[f"fast-{i}"]
        assert {**fast, "id": None} == {**core, "id": None}
        assert fast["data"] == rows("x")[i]["data"]
        assert fast["at"].replace(tzinfo=fast["at"].tzinfo or UTC) == rows("x")[i]["at"]


def test_a_missing_column_with_a_python_default_gets_its_default(engine):
    with engine.begin() as conn:
        insert_many(conn, with_default, [{"id": "a"}, {"id": "b"}])
        insert_many(conn, with_default, [{"id": "c", "attempts": 1}])
    with engine.connect() as conn:
        assert dict(conn.execute(select(with_default.c.id, with_default.c.attempts)).all()) == {
            "a": 7, "b": 7, "c": 1}


def test_an_instant_repeated_across_rows_is_stored_right_in_each(engine):
    """A date or time column is converted once per run of the same value (the transaction's now
    in every row): rows that repeat, alternate and change it each keep their own."""
    now, other = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC)
    ats = [now, now, other, now, other, other]
    days = [date(2026, 12, 7), date(2026, 12, 7), date(2026, 12, 1), date(2026, 12, 7), date(2026, 12, 1),
            date(2026, 12, 7)]
    batch = [{**rows("x")[0], "id": f"r{i}", "at": at, "day": day}
             for i, (at, day) in enumerate(zip(ats, days, strict=True))]
    with engine.begin() as conn:
        insert_many(conn, things, batch)
    with engine.connect() as conn:
        stored = {r.id: (r.at.replace(tzinfo=r.at.tzinfo or UTC), r.day)
                  for r in conn.execute(select(things.c.id, things.c.at, things.c.day))}
    assert stored == {f"r{i}": (at, day) for i, (at, day) in enumerate(zip(ats, days, strict=True))}
