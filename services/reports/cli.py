"""`python -m services.reports --day YYYY-MM-DD [--out var/reports/<day>/]`: the daily report and
the public disclosure lists of a county day, from the services' gRPC APIs.

`python -m services.reports make --day YYYY-MM-DD [--again]`: the same files under REPORTS_DIR,
made as the scheduler makes them (once a day; --again makes them anew) and announced by a
`daily_report_ready` event. `python -m services.reports scheduler`: the process that does it at
REPORTS_AT by itself.

Writes daily-report.md, daily-report.xlsx, disclosure-<list>.csv (procurement, allocation,
stock, donations; UTF-8 with BOM) and disclosure.html, and prints a summary. Exit status: 0
written; 1 a service other than monitoring did not answer or refused (nothing written); 2 bad
arguments or configuration. Token: --token, else SUPPLY_TOKEN, else the first admin token of
SUPPLY_AUTH_TOKENS (the dev token outside production).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.common.catalogue import load_catalogue
from services.common.config import ConfigError, load_settings
from services.reports import render
from services.reports.adapters.files import write_files  # noqa: F401 - also the demo's
from services.reports.collect import READ_SERVICES, CollectError, bearer, collect_day, connect
from services.reports.config import service_token
from services.reports.domain.facts import DayFacts


def summary_table(facts: DayFacts) -> Table:
    table = Table(title=f"日报 / Daily report {facts.day.isoformat()}")
    for col in ("优先级 Tier", "需求 Demands", "行 Lines", "申请 Asked", "分配 Allocated",
                "送达 Delivered", "满足率 Fill rate"):
        table.add_column(col, justify="left" if col.startswith("优先级") else "right")
    for f in facts.tier_fills():
        table.add_row(*map(str, render.fill_row(render.tier_label(f.tier), f)))
    table.add_row(*map(str, render.fill_row("合计 / Total", facts.total_fill())), style="bold")
    return table


def make(argv: list[str]) -> int:
    """`make --day D [--again]`: through the reports database (its marker and outbox)."""
    from services.reports import handlers
    from services.reports.adapters.county import GrpcCounty
    from services.reports.config import load_reports_config
    from services.reports.entrypoints.scheduler import build_context

    parser = argparse.ArgumentParser(prog="python -m services.reports make")
    parser.add_argument("--day", required=True, type=date.fromisoformat, help="county-local day YYYY-MM-DD")
    parser.add_argument("--again", action="store_true", help="make it again if it was made")
    args = parser.parse_args(argv)
    console = Console()
    try:
        settings = load_settings("reports")
        config = load_reports_config(settings)
    except ConfigError as exc:
        console.print(f"[red]configuration error / 配置错误: {exc}[/]")
        return 2
    county = GrpcCounty(settings, config.token, load_catalogue(settings.catalogue_path))
    try:
        made = handlers.make_report(build_context(settings, county), args.day, again=args.again)
    except CollectError as exc:
        console.print(f"[red]{exc} / 服务不可用或拒绝，未生成报告[/]")
        return 1
    finally:
        county.close()
    if made is None:
        console.print(f"{args.day}: already made; --again to make it anew / 当日报告已生成")
    else:
        console.print(f"written / 已生成 ({made.times_made}): {made.directory}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["make"]:
        return make(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m services.reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--day", required=True, help="county-local day YYYY-MM-DD")
    parser.add_argument("--out", type=Path, help="directory (default var/reports/<day>/)")
    parser.add_argument("--token", default=os.environ.get("SUPPLY_TOKEN", ""))
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    args = parser.parse_args(argv)
    console = Console()
    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        parser.error(f"--day must be YYYY-MM-DD, got {args.day!r}")
    try:
        settings = load_settings("tools")
    except ConfigError as exc:
        console.print(f"[red]configuration error / 配置错误: {exc}[/]")
        return 2
    out = args.out or settings.var_dir / "reports" / day.isoformat()
    targets = {s: settings.grpc_target(s) for s in READ_SERVICES}
    try:
        with connect(targets, settings.grpc_tls) as stubs:
            facts = collect_day(day, stubs, metadata=bearer(service_token(settings, args.token)),
                                tz=settings.timezone, catalogue=load_catalogue(settings.catalogue_path),
                                now=settings.clock().now(), timeout=args.timeout)
    except CollectError as exc:
        where = targets.get(exc.service, "")
        console.print(f"[red]{exc.service} ({where}) {exc.method}: {exc.code.name} {exc.details}"
                      f" / 服务不可用或拒绝，未生成报告[/]")
        return 1
    written = write_files(facts, out)
    console.print(summary_table(facts))
    info = Table(show_header=False)
    info.add_column()
    info.add_column()
    for k, v in render.summary_rows(facts):
        info.add_row(str(k), str(v))
    console.print(info)
    for note in facts.notes:
        console.print(f"[yellow]{note}[/]")
    console.print("written / 已生成: " + ", ".join(str(p) for p in written))
    return 0
