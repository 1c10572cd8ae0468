"""Ledger audit from a terminal (台账核对): reconcile and export against the logistics database.

    python -m services.logistics.reconcile                 reconcile, rich table, exit 1 on any problem
    python -m services.logistics.reconcile --anchor SEQ:HASH
                                  also check the line at SEQ still has HASH (the chain head printed
                                  in a daily report: catches a rewrite even by a key holder)
    python -m services.logistics.reconcile --export FILE   also write the ledger (.csv or .xlsx)
    python -m services.logistics.reconcile --verify-export FILE [--anchor SEQ:HASH]
                                  verify an exported file's chain alone (no database)

The chain is keyed: SUPPLY_LEDGER_KEY must be the key the service signs with.

supplyctl wires the same functions: `run_reconcile(console)` and `run_export(path, console)`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.common.config import ConfigError, load_settings
from services.common.db import make_engine
from services.common.errors import InvalidInput
from services.logistics.audit import ReconcileReport, export, reconcile, verify_export
from services.logistics.config import ledger_key
from services.logistics.domain.ledger_audit import Anchor, ChainBreak


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
    show_breaks(report.chain_breaks, console)
    if report.mismatches:
        t = Table(title="balance mismatches / 余额不符")
        for col in ("lot", "field", "from ledger", "stored"):
            t.add_column(col)
        for m in report.mismatches:
            t.add_row(m.lot_id, m.field, str(m.from_lines), str(m.stored))
        console.print(t)


def show_breaks(breaks: tuple[ChainBreak, ...] | list[ChainBreak], console: Console) -> None:
    if breaks:
        t = Table(title="hash chain breaks / 哈希链断裂")
        for col in ("seq", "problem", "detail"):
            t.add_column(col)
        for b in breaks:
            t.add_row(str(b.seq), b.problem, b.detail)
        console.print(t)


def run_reconcile(console: Console | None = None, database_url: str | None = None,
                  anchors: tuple[Anchor, ...] = ()) -> int:
    """Reconcile the ledger; print the report; 0 when everything agrees, 1 otherwise."""
    console = console or Console()
    key = ledger_key(load_settings("logistics"))
    engine = _engine(database_url)
    try:
        report = reconcile(engine, key, anchors)
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


def run_verify_export(path: Path, console: Console | None = None,
                      anchors: tuple[Anchor, ...] = ()) -> int:
    """Verify the chain of an exported file (.csv or .xlsx by its suffix); 0 when it holds."""
    console = console or Console()
    fmt = "xlsx" if path.suffix.lower() == ".xlsx" else "csv"
    try:
        with path.open("rb") as data:
            n, breaks = verify_export(data, fmt, ledger_key(load_settings("logistics")), anchors)
    except (InvalidInput, OSError) as exc:
        console.print(f"[red]✗[/] {path}: {exc}")
        return 1
    show_breaks(breaks, console)
    if breaks or not n:
        console.print(f"[red]✗[/] {path}: {n} lines, {len(breaks)} chain breaks / 哈希链不完整")
        return 1
    console.print(f"[green]✓[/] {path}: {n} lines, the chain holds / 哈希链完整")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m services.logistics.reconcile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", type=Path, metavar="FILE", help="also export the ledger (.csv/.xlsx)")
    p.add_argument("--anchor", action="append", default=[], metavar="SEQ:HASH",
                   help="a chain head printed in a daily report (may be given more than once)")
    p.add_argument("--verify-export", type=Path, metavar="FILE",
                   help="verify an exported ledger file (.csv/.xlsx) instead of the database")
    p.add_argument("--database-url", default=None, help="default: LOGISTICS_DATABASE_URL / DATABASE_URL")
    args = p.parse_args(argv)
    try:
        anchors = tuple(Anchor.parse(a) for a in args.anchor)
    except InvalidInput as exc:
        p.error(f"--{exc}")
    console = Console()
    try:
        if args.verify_export:
            return run_verify_export(args.verify_export, console, anchors)
        code = run_reconcile(console, args.database_url, anchors)
    except ConfigError as exc:
        p.error(str(exc))
    if args.export:
        run_export(args.export, console, args.database_url)
    return code
