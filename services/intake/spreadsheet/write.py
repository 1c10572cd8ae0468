"""Writing for people: the bilingual report of a parse, the sample lists
(simulators/scenarios/samples/ is generated from these), and rows back into a file this package
reads."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from services.common.cells import spreadsheet_cell
from services.intake.spreadsheet.columns import DEMAND_SHEETS, REQUESTER_SHEETS
from services.intake.spreadsheet.rows import ParseResult


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))


def render_report(result: ParseResult, *, max_errors: int = 50) -> str:
    """Plain bilingual text: a summary line, a table of errors (row, column, reason), warnings."""
    lines: list[str] = []
    if result.ok:
        lines.append(f"导入检查通过: {len(result.rows)}行 / import check passed: "
                     f"{len(result.rows)} rows")
    else:
        lines.append(f"导入检查未通过: 共{result.rows_total}行, {len(result.errors)}个错误, "
                     f"请修正后重新上传整个文件 / import check failed: {result.rows_total} rows, "
                     f"{len(result.errors)} errors; fix them and upload the whole file again")
        shown = result.errors[:max_errors]
        table = [("行 row", "列 column", "原因 reason")] + [
            (str(e.row) if e.row else "文件 file", e.column or "-", e.reason) for e in shown]
        w0 = max(_width(r[0]) for r in table)
        w1 = max(_width(r[1]) for r in table)
        for i, (a, b, c) in enumerate(table):
            lines.append(f"{_pad(a, w0)} | {_pad(b, w1)} | {c}".rstrip())
            if i == 0:
                lines.append(f"{'-' * w0}-+-{'-' * w1}-+-{'-' * 12}")
        if len(result.errors) > len(shown):
            rest = len(result.errors) - len(shown)
            lines.append(f"……另有{rest}个错误 / … {rest} more errors")
    if result.warnings:
        lines.append("警告 / warnings:")
        lines.extend(f"- {w}" for w in result.warnings)
    return "\n".join(lines)



_SAMPLE_REQUESTERS = (
    ("编号", "名称", "类型", "乡镇", "常住人口", "户数", "风险等级", "纬度", "经度", "独居老人",
     "残疾人", "慢性病患者", "婴幼儿", "孕产妇", "在岗人数", "床位", "物资存放点", "存放点纬度",
     "存放点经度"),
    ("CG-001", "城关镇东门社区", "社区", "城关镇", "4,820", 1630, "封控区", 30.2741, 120.1551, 37,
     12, 410, 96, 21, "", "", "东门社区服务中心", 30.2745, 120.1560),
    ("CG-002", "城关镇西街社区", "社区", "城关镇", 3650, 1204, "管控区", 30.2702, 120.1488, 25, 9,
     302, 71, 14, "", "", "西街菜场门口", 30.2699, 120.1480),
    ("HX-101", "河西村", "村", "河西镇", 1280, 455, "防范区", 30.3120, 120.0905, 18, 6, 120, 22, 4,
     "", "", "河西村委会", 30.3118, 120.0911),
    ("HX-102", "李家村", "村", "河西镇", 960, 338, "防范区", 30.3321, 120.0712, 22, 4, 95, 15, 3,
     "", "", "", "", ""),
    ("U-FC-01", "县人民医院发热门诊", "发热门诊", "城关镇", "", "", "", 30.2688, 120.1602, "", "",
     "", "", "", 64, 20, "", "", ""),
    ("U-NH-01", "河西镇敬老院", "敬老院", "河西镇", "", "", "防范区", 30.3155, 120.0870, "", "", "",
     "", "", 18, 85, "", "", ""),
)

_SAMPLE_DEMANDS = (
    ("村居编号", "物资名称", "数量", "配送日期", "备注"),
    ("CG-001", "大米(10公斤袋)", 480, date(2026, 11, 29), ""),
    ("CG-001", "食用油(5升桶)", 160, date(2026, 11, 29), ""),
    ("CG-001", "婴儿配方奶粉(1段)", 12, date(2026, 11, 29), "个人需求,品牌见附表"),
    ("CG-002", "标准化蔬菜包", 300, date(2026, 11, 29), ""),
    ("CG-002", "降压药(30片盒)", 45, date(2026, 11, 29), "慢病定期"),
    ("HX-101", "大米(10公斤袋)", 90, date(2026, 11, 30), ""),
    ("HX-101", "鸡蛋(30枚盒)", 60, date(2026, 11, 30), ""),
    ("HX-102", "土豆", "1,200", date(2026, 11, 30), ""),
    ("U-FC-01", "医用防护服", 200, date(2026, 11, 29), "急用"),
    ("U-FC-01", "N95口罩", 1000, date(2026, 11, 29), "急用"),
    ("U-NH-01", "成人纸尿裤(10片)", 40, date(2026, 11, 30), ""),
)


def sample_spreadsheet(kind: str, fmt: str, *, encoding: str = "utf-8-sig") -> bytes:
    """A small valid village list or demand list, as Excel on Chinese Windows would save it."""
    table = _SAMPLE_REQUESTERS if kind == "requesters" else _SAMPLE_DEMANDS
    return write_spreadsheet(table, kind, fmt, encoding=encoding)


def write_spreadsheet(table: Iterable[Sequence[Any]], kind: str, fmt: str, *,
                      encoding: str = "utf-8-sig") -> bytes:
    """Rows (the header first) as a file this module reads back: every text through
    `spreadsheet_cell`, so none is a live formula when a person opens the file."""
    if fmt == "csv":
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\r\n")
        for r in table:
            writer.writerow([v.strftime("%Y/%m/%d") if isinstance(v, date) else spreadsheet_cell(v)
                             for v in r])
        return buf.getvalue().encode(encoding)
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = REQUESTER_SHEETS[0] if kind == "requesters" else DEMAND_SHEETS[0]
    for r in table:
        ws.append([None if v == "" else spreadsheet_cell(v) for v in r])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
