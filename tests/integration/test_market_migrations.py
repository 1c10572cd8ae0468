"""Market's alembic history against real databases (SQLite file and PostgreSQL): head builds the
schema the code's metadata describes, down to base and up again."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from services.common.db import make_engine
from services.common.migrate import SchemaBehind, alembic_config, check_at_head, upgrade
from services.market.adapters import schema


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path, pg_url_factory) -> str:
    if request.param == "postgresql":
        return pg_url_factory("market_migr")
    return f"sqlite:///{tmp_path / 'var' / 'market.db'}"


def test_head_from_empty_matches_the_model_and_goes_down_and_up_again(empty_url):
    engine = make_engine(empty_url)
    try:
        with pytest.raises(SchemaBehind, match="no schema"):
            check_at_head("market", engine)
        upgrade("market", empty_url)
        check_at_head("market", engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            assert compare_metadata(ctx, schema.metadata) == []
        command.downgrade(alembic_config("market", empty_url), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade("market", empty_url)
        check_at_head("market", engine)
    finally:
        engine.dispose()
