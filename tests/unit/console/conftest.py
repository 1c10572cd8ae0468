"""Fixtures of the console's unit tests: a console database at head (made once, copied per test)
and argon2id with small costs (the library's defaults take most of a second per hash on a busy
machine, and these tests hash dozens of times)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from services.common.migrate import upgrade
from services.console.adapters import store as store_module


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    monkeypatch.setattr(store_module, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="session")
def migrated_console_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("console") / "console.db"
    upgrade("console", f"sqlite:///{path}")
    return path


@pytest.fixture
def console_db_url(tmp_path, migrated_console_db) -> str:
    """sqlite:/// URL of this test's own console database, at head."""
    path = tmp_path / "console.db"
    shutil.copy(migrated_console_db, path)
    return f"sqlite:///{path}"
