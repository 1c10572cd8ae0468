"""Ledger audit from a terminal (台账核对): reconcile and export against the logistics database.

    python -m services.logistics.reconcile                 reconcile, rich table, exit 1 on any problem
    python -m services.logistics.reconcile --export FILE   also write the ledger (.csv or .xlsx)

supplyctl wires the same functions: `run_reconcile(console)` and `run_export(path, console)`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.common.config import load_settings
from services.common.db import make_engine
from services.logistics.audit import ReconcileReport, export, reconcile


def _engine(database_url: str | None):
    url = database_url or load_settings("logistics").database_url
    return make_engine(url, pool_size=2)


def show_report(report: ReconcileReport, console: Console) -> None:
    summary = Table(title="台账核对 ledger reconciliation", show_header=False)
    summary.add_row("lines checked / 核对行数", str(report.lines_checked))
    summary.add_row("lots checked / 批次数", str(report.lots_checked))
    summary.add_row("head / 链头", f"{report.head_seq} {report.head_hash[:16]}…")
    summary.add_row("result / 结果", "[green]OK 一致[/]" if report.ok else "[red]MISMATCH 不一致[/]")
    console.print(summary)
    if report.chain_breaks:
        t = Table(title="hash chain breaks / 哈希链断裂")
        for col in ("seq", "problem", "detail"):
            t.add_column(col)
        for b in report.chain_breaks:
            t.add_row(str(b.seq), b.problem, b.detail)
        console.print(t)
    if report.mismatches:
        t = Table(title="balance mismatches / 余额不符")
        for col in ("lot", "field", "from ledger", "stored"):
            t.add_column(col)
        for m in report.mismatches:
            t.add_row(m.lot_id, m.field, str(m.from_lines), str(m.stored))
        console.print(t)


def run_reconcile(console: Console | None = None, database_url: str | None = None) -> int:
    """Reconcile the ledger; print the report; 0 when everything agrees, 1 otherwise."""
    console = console or Console()
    engine = _engine(database_url)
    try:
        report = reconcile(engine)
    finally:
        engine.dispose()
    show_report(report, console)
    return 0 if report.ok else 1


def run_export(path: Path, console: Console | None = None, database_url: str | None = None,
               fmt: str | None = None) -> int:
    """Write the ledger to `path` (.csv or .xlsx by its suffix unless fmt is given)."""
    console = console or Console()
    fmt = fmt or ("xlsx" if path.suffix.lower() == ".xlsx" else "csv")
    engine = _engine(database_url)
    try:
        with path.open("wb") as out:
            n = export(engine, out, fmt)
    finally:
        engine.dispose()
    console.print(f"[green]✓[/] {n} ledger lines written to {path} / 台账已导出")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.logistics.reconcile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", type=Path, metavar="FILE", help="also export the ledger (.csv/.xlsx)")
    p.add_argument("--database-url", default=None, help="default: LOGISTICS_DATABASE_URL / DATABASE_URL")
    args = p.parse_args(argv)
    console = Console()
    code = run_reconcile(console, args.database_url)
    if args.export:
        run_export(args.export, console, args.database_url)
    return code
