"""The head revision each service writes next to its migrations (services/<service>/migrations/
head.py) is alembic's head: check_at_head trusts it so that no process imports alembic to start
(issue #16 item 5). Adding a migration without updating head.py fails here."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.common.config import ROOT
from services.common.db import make_engine
from services.common.migrate import SERVICES_DIR, SchemaBehind, check_at_head, head, heads, upgrade

MIGRATED = sorted(p.parent.parent.name for p in SERVICES_DIR.glob("*/migrations/env.py"))


@pytest.mark.parametrize("service", MIGRATED)
def test_the_written_head_is_alembics_head(service):
    assert head(service) is not None, f"services/{service}/migrations/head.py is missing"
    assert set(head(service)) == set(heads(service, "sqlite://"))


def test_a_process_checks_a_database_at_head_without_importing_alembic(tmp_path):
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    upgrade("intake", url)
    probe = ("import sys; from services.common.db import make_engine; "
             "from services.common.migrate import check_at_head; "
             f"check_at_head('intake', make_engine({url!r})); "
             "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_database_behind_is_refused_naming_both_revisions(tmp_path):
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    upgrade("intake", url, "0002")
    with pytest.raises(SchemaBehind, match=r"\['0002'\].*\['0003'\].*supplyctl migrate"):
        check_at_head("intake", make_engine(url))


def test_a_stale_written_head_is_named(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    upgrade("intake", url)
    monkeypatch.setattr("services.common.migrate.head", lambda service: ("0002",))
    with pytest.raises(SchemaBehind, match=r"head.py says HEAD = \['0002'\].*\['0003'\]"):
        check_at_head("intake", make_engine(url))


def test_an_empty_database_has_no_schema(tmp_path):
    with pytest.raises(SchemaBehind, match="no schema"):
        check_at_head("intake", make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
