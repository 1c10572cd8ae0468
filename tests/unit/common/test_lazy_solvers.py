"""numpy, ortools, pyvrp and highspy are imported where a plan or a route is computed, not when
an allocation or logistics process starts (issue #16 item 5: ≈ 20 MiB per process at rest)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SOLVERS = ("numpy", "ortools", "pyvrp", "highspy")
ENTRY_MODULES = [f"services.{s}.entrypoints.{e}" for s in ("allocation", "logistics")
                 for e in ("grpc_api", "worker")]


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {SOLVERS!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], check=True,
                         capture_output=True, text=True, timeout=60)
    return out.stdout.split()


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_a_process_at_rest_holds_no_solver(module):
    assert _loaded_after(f"import {module}") == []


def test_the_first_plan_brings_numpy_and_ortools():
    assert _loaded_after("from services.allocation.domain import allocate") == ["numpy", "ortools"]
