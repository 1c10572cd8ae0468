"""DayFacts → the daily report (Markdown, XLSX) and the public disclosure lists (CSV, HTML).

Pure: no I/O, no clock. The report's sections are built once as tables (sections.py,
`daily_sections`) and written here as Markdown (long tables cut at `md_limit` rows, the
workbook has them all) or as one worksheet per table. The disclosure (定期公开, RULES §11) is
built in disclosure.py; `render` is the one entry point for GetDailyReport.
"""

from __future__ import annotations

import io

from services.common.cells import markdown_text, spreadsheet_cell
from services.reports.disclosure import disclosure_csvs, disclosure_html
from services.reports.domain.facts import DayFacts
from services.reports.sections import (
    Table,
    daily_sections,
    fill_row,
    local_time,
    scrub,
    summary_rows,
    tier_label,
)

__all__ = ["FORMATS", "XLSX_TYPE", "disclosure_csvs", "disclosure_html", "fill_row", "markdown",
           "render", "scrub", "summary_rows", "tier_label", "xlsx"]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"markdown": ("text/markdown; charset=utf-8", "daily-report-{day}.md"),
           "xlsx": (XLSX_TYPE, "daily-report-{day}.xlsx"),
           "disclosure_html": ("text/html; charset=utf-8", "disclosure-{day}.html")}


# ---- Markdown -------------------------------------------------------------------------------------
def _md_cell(value) -> str:
    return markdown_text(value)


def _md_table(t: Table) -> list[str]:
    out = [f"### {t.title}", ""]
    if not t.rows:
        return out + ["无 / none", ""]
    rows = t.rows if t.md_limit is None else t.rows[:t.md_limit]
    out.append("| " + " | ".join(_md_cell(h) for h in t.headers) + " |")
    out.append("|" + "---|" * len(t.headers))
    out.extend("| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows)
    if len(rows) < len(t.rows):
        out.append(f"\n… 另有 {len(t.rows) - len(rows)} 行见 XLSX / {len(t.rows) - len(rows)} more "
                   f"rows in the XLSX workbook.")
    return out + [""]


def markdown(facts: DayFacts) -> str:
    out = [f"# 疫情保供物资日报 / Daily supply report — {facts.day.isoformat()}", "",
           "报送县指挥部，纪委备案 / To the county HQ, filed with the discipline commission.  ",
           f"生成时间 / Generated: {local_time(facts.generated_at, facts.timezone)} ({facts.timezone})",
           "", "## 摘要 / Summary", "", "| 项目 Item | 数值 Value |", "|---|---|"]
    out.extend(f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in summary_rows(facts))
    out.append("")
    for s in daily_sections(facts):
        out += [f"## {s.heading}", ""]
        for line in s.text:
            out += [markdown_text(line), ""]
        for t in s.tables:
            out += _md_table(t)
    if facts.notes:
        out += ["## 说明 / Notes", ""] + [f"- {markdown_text(n)}" for n in facts.notes] + [""]
    return "\n".join(out)


# ---- XLSX -----------------------------------------------------------------------------------------
def xlsx(facts: DayFacts) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    bold = Font(bold=True)

    def sheet(title: str, headers: list[str], rows: list[list]):
        ws = wb.create_sheet(title[:31])
        ws.append([spreadsheet_cell(h) for h in headers])
        for c in ws[1]:
            c.font = bold
        for row in rows:
            ws.append([spreadsheet_cell(v) for v in row])
        ws.freeze_panes = "A2"
        for i, h in enumerate(headers, start=1):
            width = max([len(str(h))] + [len(str(r[i - 1])) for r in rows[:200]]) + 2
            ws.column_dimensions[ws.cell(1, i).column_letter].width = min(max(width, 8), 60)

    wb.remove(wb.active)
    notes = [[f"说明 Note {i}", n] for i, n in enumerate(facts.notes, start=1)]
    sections = daily_sections(facts)
    texts = [[s.heading, line] for s in sections for line in s.text]
    sheet("摘要 Summary", ["项目 Item", "数值 Value"], summary_rows(facts) + texts + notes)
    for s in sections:
        for t in s.tables:
            sheet(t.sheet, t.headers, t.rows)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---- one entry point for the RPC ------------------------------------------------------------------
def render(facts: DayFacts, fmt: str) -> tuple[bytes, str, str]:
    """(content, content_type, file name) for fmt markdown | xlsx | disclosure_html."""
    content_type, name = FORMATS[fmt]
    if fmt == "markdown":
        content = markdown(facts).encode("utf-8")
    elif fmt == "xlsx":
        content = xlsx(facts)
    else:
        content = disclosure_html(facts).encode("utf-8")
    return content, content_type, name.format(day=facts.day.isoformat())
