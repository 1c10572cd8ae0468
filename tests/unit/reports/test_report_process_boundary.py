"""The report has its own process (issue #15): allocation forwards GetDailyReport to it and
carries none of its code."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_allocation_does_not_import_the_reports_package():
    offenders = []
    for path in (ROOT / "services" / "allocation").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names
                          if n == "services.reports" or n.startswith("services.reports.")]
    assert offenders == []
