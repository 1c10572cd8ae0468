"""`python -m services.reports --day YYYY-MM-DD [--out var/reports/<day>/]`: the daily report and
the public disclosure lists of a county day, from the services' gRPC APIs.

Writes daily-report.md, daily-report.xlsx, disclosure-<list>.csv (procurement, allocation,
stock, donations; UTF-8 with BOM) and disclosure.html, and prints a summary. Exit status: 0
written; 1 a service other than monitoring did not answer or refused (nothing written); 2 bad
arguments or configuration. Token: --token, else SUPPLY_TOKEN, else the first admin token of
SUPPLY_AUTH_TOKENS (the dev token outside production).
"""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.common.catalogue import load_catalogue
from services.common.config import DEV_TOKEN, SERVICES, ConfigError, Settings, load_settings
from services.reports import render
from services.reports.collect import CollectError, DayFacts, bearer, collect_day, connect


def _token(settings: Settings, given: str) -> str:
    if given:
        return given
    for tok, (_, role, _) in settings.auth_tokens.items():
        if role == "admin":
            return tok
    return DEV_TOKEN


def write_files(facts: DayFacts, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in (("daily-report.md", render.markdown(facts).encode("utf-8")),
                       ("daily-report.xlsx", render.xlsx(facts)),
                       ("disclosure.html", render.disclosure_html(facts).encode("utf-8"))):
        (out / name).write_bytes(data)
        written.append(out / name)
    for name, text in render.disclosure_csvs(facts).items():
        (out / name).write_text(text, encoding="utf-8-sig", newline="")
        written.append(out / name)
    return written


def summary_table(facts: DayFacts) -> Table:
    table = Table(title=f"日报 / Daily report {facts.day.isoformat()}")
    for col in ("优先级 Tier", "需求 Demands", "行 Lines", "申请 Asked", "分配 Allocated",
                "送达 Delivered", "满足率 Fill rate"):
        table.add_column(col, justify="left" if col.startswith("优先级") else "right")
    for f in facts.tier_fills():
        table.add_row(*map(str, render.fill_row(render.tier_label(f.tier), f)))
    table.add_row(*map(str, render.fill_row("合计 / Total", facts.total_fill())), style="bold")
    return table


def main(argv: list[str] | None = None) -> int:
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
    targets = {s: settings.grpc_target(s) for s in SERVICES}
    try:
        with connect(targets, settings.grpc_tls) as stubs:
            facts = collect_day(day, stubs, metadata=bearer(_token(settings, args.token)),
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
