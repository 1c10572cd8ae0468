"""Alembic migrations, one history per service (services/<service>/migrations/).

`supplyctl migrate` (or `upgrade(service, url)`) brings a database to head; processes refuse to
start on a database that is behind (check_at_head), so an upgrade is always an explicit step.

check_at_head compares `alembic_version` with the HEAD written next to the service's migrations
(services/<service>/migrations/head.py, kept equal to alembic's head by
tests/unit/common/test_migration_heads.py): a process imports alembic (+ mako, pygments: ≈ 12 MiB
and 0.15 – 0.2 s each) only to explain a mismatch (bench/RESULTS.md, issue #16 item 5).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from services.common.db import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

SERVICES_DIR = Path(__file__).resolve().parents[1]


def alembic_config(service: str, url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    from alembic import command

    make_engine(url).dispose()  # creates the SQLite file's folder if needed
    command.upgrade(alembic_config(service, url), revision)


def heads(service: str, url: str) -> tuple[str, ...]:
    """The heads of the service's migration scripts, as alembic reads them (imports alembic)."""
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(alembic_config(service, url)).get_heads())


def current(engine: Engine) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return tuple(MigrationContext.configure(conn).get_current_heads())


class SchemaBehind(RuntimeError):
    pass


def head(service: str) -> tuple[str, ...] | None:
    """The head revision(s) written in services/<service>/migrations/head.py, None without one."""
    try:
        written = importlib.import_module(f"services.{service}.migrations.head").HEAD
    except ModuleNotFoundError:
        return None
    return (written,) if isinstance(written, str) else tuple(written)


def stamped(engine: Engine) -> tuple[str, ...]:
    """The revisions in the database's alembic_version table, by a plain SELECT (no alembic)."""
    with engine.connect() as conn:
        try:
            return tuple(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))
        except DBAPIError:  # no such table: no schema yet
            return ()


def check_at_head(service: str, engine: Engine) -> None:
    have = set(stamped(engine))
    written = head(service)
    if written is not None and set(written) == have:
        return
    want = set(heads(service, engine.url.render_as_string(hide_password=False)))  # imports alembic
    if want == have:  # the database is right; the written head is stale
        raise SchemaBehind(
            f"services/{service}/migrations/head.py says HEAD = {sorted(written or ())}, its migrations' "
            f"head is {sorted(want)}: update head.py / head.py 中的 HEAD 与迁移脚本不一致，请更新")
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
