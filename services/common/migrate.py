"""Alembic migrations, one history per service (services/<service>/migrations/).

`supplyctl migrate` (or `upgrade(service, url)`) brings a database to head; processes refuse to
start on a database that is behind (check_at_head), so an upgrade is always an explicit step.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from services.common.db import make_engine

SERVICES_DIR = Path(__file__).resolve().parents[1]


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    make_engine(url).dispose()  # creates the SQLite file's folder if needed
    command.upgrade(alembic_config(service, url), revision)


def heads(service: str, url: str) -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config(service, url)).get_heads())


def current(engine: Engine) -> tuple[str, ...]:
    with engine.connect() as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())


class SchemaBehind(RuntimeError):
    pass


def check_at_head(service: str, engine: Engine) -> None:
    want = set(heads(service, engine.url.render_as_string(hide_password=False)))
    have = set(current(engine))
    if want != have:
        raise SchemaBehind(
            f"{service} database is at {sorted(have) or 'no schema'}, code needs {sorted(want)}: "
            f"run `supplyctl migrate` (make up-services does it) / 数据库版本落后，请先执行迁移")


def run_env(context, target_metadata) -> None:
    """Body of every service's migrations/env.py."""
    from sqlalchemy import pool

    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
        return
    from sqlalchemy import create_engine

    from services.common.serde import dumps

    engine = create_engine(url, poolclass=pool.NullPool,  # JSON as the services write it
                           json_serializer=dumps)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
