"""`supplyctl import FILE --kind requesters|demands`: send a spreadsheet to intake and show the
server's progress and its per-row report."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from supply.v1 import intake_pb2 as pb
from supply.v1 import intake_pb2_grpc as rpc

from services.common.config import DEV_TOKEN, load_settings
from services.common.grpc_client import open_channel
from services.intake.domain import ImportPolicy

PHASES = {pb.IMPORT_PHASE_PARSING: "解析 parsing", pb.IMPORT_PHASE_VALIDATING: "校验 validating",
          pb.IMPORT_PHASE_WRITING: "写入 writing", pb.IMPORT_PHASE_DONE: "完成 done"}


def import_file(stub: rpc.IntakeServiceStub, content: bytes, fmt: str, kind: str,
                all_or_nothing: bool, token: str, console: Console | None = None,
                idempotency_key: str | None = None) -> pb.ImportReport:
    request = pb.ImportSpreadsheetRequest(
        idempotency_key=idempotency_key or f"import-{uuid.uuid4()}", content=content,
        format=pb.SPREADSHEET_FORMAT_XLSX if fmt == "xlsx" else pb.SPREADSHEET_FORMAT_CSV,
        kind=pb.IMPORT_KIND_REQUESTERS if kind == "requesters" else pb.IMPORT_KIND_DEMANDS,
        all_or_nothing=all_or_nothing)
    report = pb.ImportReport()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=console, transient=True, disable=console is None) as progress:
        task = progress.add_task("上传 uploading", total=None)
        for message in stub.ImportSpreadsheet(request, metadata=[("authorization", f"Bearer {token}")],
                                              timeout=600):
            progress.update(task, description=PHASES.get(message.phase, "…"),
                            completed=message.rows_done, total=message.rows_total or None)
            if message.HasField("report"):
                report = message.report
    return report


def render_report(report: pb.ImportReport, console: Console) -> None:
    verdict = "[green]已导入 committed[/]" if report.committed else "[red]未导入 NOT committed[/]"
    console.print(f"{verdict}: {report.rows_accepted} of {report.rows_total} rows accepted, "
                  f"{report.rows_rejected} rejected")
    if report.errors:
        table = Table(title="错误行 rows with errors")
        for col in ("row 行", "column 列", "reason 原因"):
            table.add_column(col)
        for e in report.errors:
            table.add_row(str(e.row), e.column, e.reason)
        console.print(table)
    for w in report.warnings:
        console.print(f"[yellow]warning / 提示: {w}[/]")


def run_import(path: Path, kind: str, all_or_nothing: bool, token: str, console: Console) -> int:
    if not path.is_file():
        console.print(f"[red]no such file: {path}[/]")
        return 2
    limit = ImportPolicy().max_bytes
    if path.stat().st_size > limit:  # intake refuses it: not read into memory to be sent
        console.print(f"[red]文件超过{limit // (1024 * 1024)} MiB,请拆分 / the file is larger than "
                      f"{limit // (1024 * 1024)} MiB (the limit); split it[/]")
        return 2
    fmt = "xlsx" if path.suffix.lower() in (".xlsx", ".xlsm") else "csv"
    settings = load_settings("intake")
    with open_channel(settings.grpc_target("intake"), settings.grpc_tls) as channel:
        try:
            report = import_file(rpc.IntakeServiceStub(channel), path.read_bytes(), fmt, kind,
                                 all_or_nothing, token or DEV_TOKEN, console)
        except grpc.RpcError as exc:
            console.print(f"[red]{exc.code().name}: {exc.details()}[/]")
            return 1
    render_report(report, console)
    return 0 if report.committed and not report.errors else 1
