"""Reading the file into (row number, cells) pairs: CSV in UTF-8 or GB18030, or an XLSX's sheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from services.common.cells import spreadsheet_text
from services.intake.spreadsheet.archive_limits import cell_too_long, check_archive, refused
from services.intake.spreadsheet.columns import (
    DEMAND_SHEETS,
    REQUESTER_SHEETS,
    header_key,
    is_empty,
    quote,
)
from services.intake.spreadsheet.policy import SpreadsheetPolicy
from services.intake.spreadsheet.rows import FileError

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls


def _decode(content: bytes) -> str:
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return content.decode("utf-16")
        except UnicodeDecodeError:
            pass
    else:
        for enc in ("utf-8-sig", "gb18030"):
            try:
                text = content.decode(enc)
            except UnicodeDecodeError:
                continue
            if "\x00" not in text:
                return text
    raise FileError("无法识别文件编码(支持UTF-8、GBK/GB18030),文件可能已损坏 / "
                     "cannot decode the file (UTF-8 or GBK/GB18030 expected); it may be damaged")



def _csv_rows(content: bytes, policy: SpreadsheetPolicy) -> Iterable[tuple[int, list[Any]]]:
    text = _decode(content)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delimiter = max((",", "\t", ";"), key=first.count)
    n = 0
    try:
        for n, cells in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter),
                                  start=1):
            yield n, cells
    except csv.Error as e:
        if str(e).startswith("field larger than field limit"):  # csv's own cap, 131,072
            raise cell_too_long(n + 1, None, policy) from None
        raise FileError(f"CSV格式错误: {e} / malformed CSV: {e}") from None


def _xlsx_rows(content: bytes, kind: str, warnings: list[str], policy: SpreadsheetPolicy
               ) -> Iterable[tuple[int, list[Any]]]:
    import openpyxl  # local: only this path needs it

    check_archive(content, policy)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # untrusted file: any failure of the reader is a file-level error
        raise FileError("无法读取XLSX文件,文件可能已损坏 / cannot read the XLSX file; "
                         "it may be damaged") from None
    try:
        wanted = {header_key(s) for s in (REQUESTER_SHEETS if kind == "requesters"
                                           else DEMAND_SHEETS)}
        sheets = wb.worksheets
        if not sheets:
            raise FileError("XLSX文件没有工作表 / the XLSX file has no worksheet")
        ws = next((s for s in sheets if header_key(s.title) in wanted), None)
        if ws is None:
            ws = sheets[0]
            if len(sheets) > 1:
                warnings.append(
                    f"文件有{len(sheets)}个工作表,只读取了第一个'{quote(ws.title)}' / the workbook "
                    f"has {len(sheets)} sheets; only the first, '{quote(ws.title)}', was read")
        ws.reset_dimensions()  # stored dimensions are often wrong in files from other tools
        try:
            for n, cells in enumerate(ws.iter_rows(values_only=True), start=1):
                yield n, list(cells)
        except Exception:
            raise FileError("XLSX工作表内容无法读取 / cannot read the XLSX worksheet") from None
    finally:
        wb.close()


def read_rows(content: bytes, fmt: str, kind: str, warnings: list[str], policy: SpreadsheetPolicy
          ) -> Iterator[tuple[int, list[Any]]]:
    if content.startswith(_OLE_MAGIC):
        raise FileError("不支持旧版.xls文件,请另存为.xlsx或CSV / legacy .xls files are not "
                         "supported; save as .xlsx or CSV")
    is_zip = content.startswith(_ZIP_MAGIC)
    if fmt == "xlsx" and not is_zip:
        raise FileError("文件声明为XLSX,但内容不是XLSX / declared XLSX but the content is not "
                         "an XLSX file")
    if fmt == "csv" and is_zip:
        raise FileError("文件声明为CSV,但内容是XLSX(压缩包) / declared CSV but the content is "
                         "an XLSX (zip) file")
    yield from (_xlsx_rows(content, kind, warnings, policy) if is_zip
                else _csv_rows(content, policy))


def within_limits(n: int, cells: Sequence[Any], policy: SpreadsheetPolicy) -> list[Any]:
    """Row `n` up to its last filled cell, each text as it stood before we exported it (one
    neutralising apostrophe off); refused past the column or the cell-length limit."""
    last = len(cells)
    while last and is_empty(cells[last - 1]):
        last -= 1
    if last > policy.max_columns:
        raise refused(f"第{n}行有{last}列,超过列数上限{policy.max_columns}列",
                       f"row {n} has {last} columns, over the limit of {policy.max_columns} "
                       f"columns")
    out = []
    for i, value in enumerate(cells[:last]):
        if isinstance(value, str):
            if len(value) > policy.max_cell_chars:
                raise cell_too_long(n, i, policy)
            value = spreadsheet_text(value)
        out.append(value)
    return out
