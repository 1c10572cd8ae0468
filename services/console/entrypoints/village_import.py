"""The WeChat spreadsheet import (CSV or XLSX of the village's demands, ImportSpreadsheet) and
its template."""

from __future__ import annotations

import csv
import io

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from supply.v1 import intake_pb2 as ipb

from services.common.cells import spreadsheet_cell
from services.console.adapters.services import ServiceError
from services.console.domain import village as dv
from services.console.entrypoints.village_forms import (
    VILLAGE,
    enum_name,
    explained,
    form_key,
    form_text,
    refusable,
)
from services.console.entrypoints.web import (
    Viewer,
    audit,
    console_of,
    gettext_of,
    lang_of,
    new_key,
    page,
    render,
)

MAX_IMPORT_BYTES = 10 * 1024 * 1024  # under web.py's 12 MB body limit (intake takes up to 16 MiB)


@page(*VILLAGE)
async def import_page(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    if request.method == "GET":
        return render(request, "village/import.html", key=new_key(), errors={}, report=None,
                      all_or_nothing=True, max_mb=MAX_IMPORT_BYTES // (1024 * 1024))
    form = request.state.form
    all_or_nothing = form_text(form, "mode") != "partial"
    upload = form.get("file")
    errors: dict[str, str] = {}
    content, filename = b"", ""
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["file"] = _("Choose a CSV or XLSX file")
    else:
        filename = upload.filename[:200]
        content = await upload.read(MAX_IMPORT_BYTES + 1)
        if len(content) > MAX_IMPORT_BYTES:
            errors["file"] = _("The file is larger than %(n)s MB: split it into smaller files",
                               n=MAX_IMPORT_BYTES // (1024 * 1024))
        elif not content:
            errors["file"] = _("The file is empty")
    report = None
    if not errors:
        fmt = (ipb.SPREADSHEET_FORMAT_XLSX if content[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx")
               else ipb.SPREADSHEET_FORMAT_CSV)
        req = ipb.ImportSpreadsheetRequest(idempotency_key=form_key(form), content=content, format=fmt,
                                           kind=ipb.IMPORT_KIND_DEMANDS, all_or_nothing=all_or_nothing)
        try:
            progress = await console_of(request).services.collect(viewer.person, "intake", "ImportSpreadsheet",
                                                                  req, timeout=120)
        except ServiceError as exc:
            await audit(request, viewer, "import_spreadsheet", filename, "refused",
                        f"{exc.code.name}: {exc.message}")
            if not refusable(exc):
                raise
            errors["file"] = explained(request, dv.refusal(exc.field, exc.rule, exc.message, [], lang_of(request)).text)
        else:
            done = next((m.report for m in reversed(progress) if m.HasField("report")), None)
            report = import_view(request, done, progress) if done is not None else None
            await audit(request, viewer, "import_spreadsheet", filename,
                        "ok" if done is not None and done.committed else "refused",
                        f"rows {done.rows_total if done else '?'}, accepted {done.rows_accepted if done else '?'}")
    return render(request, "village/import.html", status=422 if errors else 200, key=new_key(), errors=errors,
                  report=report, filename=filename, all_or_nothing=all_or_nothing,
                  max_mb=MAX_IMPORT_BYTES // (1024 * 1024))


def import_view(request: Request, r: ipb.ImportReport, progress: list) -> dict:
    _ = gettext_of(request)
    lang = lang_of(request)
    phase = {"parsing": _("reading the file"), "validating": _("checking rows"), "writing": _("writing"),
             "done": _("done")}
    return {"rows_total": r.rows_total, "rows_accepted": r.rows_accepted, "rows_rejected": r.rows_rejected,
            "committed": r.committed, "warnings": list(r.warnings), "ids": list(r.ids),
            "phases": list(dict.fromkeys(phase.get(p, p) for p in (
                enum_name(ipb.ImportPhase, m.phase, "IMPORT_PHASE_") for m in progress))),
            "errors": [{"row": e.row, "column": e.column, "reason": dv.in_language(e.reason, lang), "code": e.code}
                       for e in r.errors]}


@page(*VILLAGE)
async def import_template(request: Request, viewer: Viewer) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["村居编号", "物资编码", "数量", "配送日期", "备注"])
    w.writerow([spreadsheet_cell(viewer.scope), "RICE-10KG", "10", "", ""])
    return Response(("\ufeff" + buf.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="demands-{viewer.scope}.csv"'})
