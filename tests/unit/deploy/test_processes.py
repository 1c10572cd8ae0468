"""Each service declares its processes in its package (PROCESSES); the launcher and supplyctl read
that declaration, not a table of their own (issue #15)."""

from __future__ import annotations

import importlib

import pytest

from services import cli
from services.launcher import main

LAUNCHED = ("intake", "allocation", "logistics", "monitoring", "market", "reports", "notify")


@pytest.mark.parametrize("service", LAUNCHED)
def test_the_launcher_offers_what_the_package_declares(service, monkeypatch):
    package = importlib.import_module(f"services.{service}")
    monkeypatch.setattr(package, "PROCESSES", ("only-this",))
    with pytest.raises(SystemExit) as exc:
        main(service, ["--no-such-process--"])
    assert exc.value.code == f"usage: python -m services.{service} only-this"


def test_supplyctl_knows_the_declared_processes():
    for service, kinds in cli.PROCESSES.items():
        assert kinds == importlib.import_module(f"services.{service}").PROCESSES
    assert cli.PROCESSES["monitoring"] == ("api", "worker", "relay", "ingest")
