"""The console's alembic history on PostgreSQL (its production database; SQLite is covered by the
unit tests of the store): head builds the schema the code's metadata describes, goes down and up
again, and the account store works on it with aware times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from services.common.clock import FixedClock
from services.common.db import make_engine
from services.common.errors import Conflict
from services.common.migrate import SchemaBehind, alembic_config, check_at_head, upgrade
from services.console.adapters import schema
from services.console.adapters.store import AccountStore, AuditLine

T0 = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)


@pytest.fixture
def pg_url(pg_url_factory) -> str:
    return pg_url_factory("console")


def test_head_on_postgresql_matches_the_model_and_goes_down_and_up_again(pg_url):
    engine = make_engine(pg_url)
    try:
        with pytest.raises(SchemaBehind, match="no schema"):
            check_at_head("console", engine)
        upgrade("console", pg_url)
        check_at_head("console", engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            assert compare_metadata(ctx, schema.metadata) == []
        command.downgrade(alembic_config("console", pg_url), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade("console", pg_url)
        assert set(inspect(engine).get_table_names()) >= set(schema.metadata.tables)
    finally:
        engine.dispose()


def test_the_account_store_on_postgresql(pg_url):
    upgrade("console", pg_url)
    engine = make_engine(pg_url)
    clock = FixedClock(T0)
    store = AccountStore(engine, clock.now)
    try:
        store.add_user("zhang", "hq", "", "correct-horse-9", "张三")
        with pytest.raises(Conflict):
            store.add_user("zhang", "hq", "", "correct-horse-9")
        user, reason = store.authenticate("zhang", "correct-horse-9")
        assert reason == "" and user.username == "zhang"
        sid, _ = store.open_session("zhang")
        clock.advance(minutes=10)
        assert store.session(sid).created_at == T0
        clock.advance(hours=1)
        assert store.session(sid) is None  # idle
        line = AuditLine(at=T0 + timedelta(microseconds=7), username="zhang", role="hq",
                         action="approve_plan", target="plan-1", outcome="ok", detail="批准",
                         correlation_id="console-1")
        store.record(line)
        got = store.audit_lines()
        assert got == [line] and got[0].at.utcoffset() == timedelta(0)
    finally:
        engine.dispose()
