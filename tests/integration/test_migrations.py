"""Intake's alembic history against real databases (SQLite file and PostgreSQL): head builds the
schema the code's metadata describes, and processes refuse a database that is behind."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from services.common.db import make_engine
from services.common.migrate import (
    SchemaBehind,
    alembic_config,
    check_at_head,
    current,
    heads,
    upgrade,
)
from services.intake.adapters import schema


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path, pg_url_factory) -> str:
    if request.param == "postgresql":
        return pg_url_factory("migr")
    return f"sqlite:///{tmp_path / 'var' / 'intake.db'}"


def test_an_empty_database_is_behind(empty_url):
    engine = make_engine(empty_url)
    try:
        with pytest.raises(SchemaBehind, match="no schema"):
            check_at_head("intake", engine)
    finally:
        engine.dispose()


def test_head_from_empty_matches_the_model(empty_url):
    upgrade("intake", empty_url)
    engine = make_engine(empty_url)
    try:
        assert current(engine) == heads("intake", empty_url)
        check_at_head("intake", engine)  # does not raise
        assert set(inspect(engine).get_table_names()) >= set(schema.metadata.tables)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": True})
            diff = compare_metadata(ctx, schema.metadata)
        assert diff == []
        upgrade("intake", empty_url)  # at head already: nothing to do, still at head
        assert current(engine) == heads("intake", empty_url)
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(empty_url):
    upgrade("intake", empty_url)
    command.downgrade(alembic_config("intake", empty_url), "base")
    engine = make_engine(empty_url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        with pytest.raises(SchemaBehind):
            check_at_head("intake", engine)
        upgrade("intake", empty_url)
        check_at_head("intake", engine)
    finally:
        engine.dispose()
