"""Spreadsheet import (表格导入) for village lists and demand lists sent over WeChat groups.

Pure: bytes in, data out. The parser never half-imports silently: every row with a problem
yields a `RowError` (spreadsheet row number, the column's header text as written in the file,
a bilingual reason) and is left out of `rows`; callers import only when `ParseResult.ok`.

Row numbers are the spreadsheet's own 1-based row numbers (CSV: record number, so a quoted
cell with a line break does not shift them). Row 0 means the whole file (unreadable, wrong
format, no data, too many errors).

A file over a size limit of `SpreadsheetPolicy` (unpacked size, rows, columns, cell length) is
not a row problem but a refusal: InvalidInput on "content", naming the limit. An XLSX is a zip:
its parts' unpacked sizes are checked before openpyxl opens it (openpyxl reads the shared
strings part whole), and zipfile never unpacks a part past the size it declares.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.common.catalogue import Catalogue
from services.common.cells import spreadsheet_cell, spreadsheet_text
from services.common.errors import InvalidInput

FORMATS = ("csv", "xlsx")
KINDS = ("requesters", "demands")

# Canonical English code -> accepted spellings (Chinese first; the code itself is always accepted).
REQUESTER_KINDS: dict[str, tuple[str, ...]] = {
    "village": ("村", "行政村", "自然村"),
    "community": ("社区", "居委会"),
    "hospital": ("医院", "卫生院"),
    "fever_clinic": ("发热门诊",),
    "isolation_site": ("隔离点", "集中隔离点", "隔离酒店"),
    "school": ("学校",),
    "nursing_home": ("敬老院", "养老院", "福利院"),
    "enterprise": ("企业", "公司"),
}
UNIT_KINDS = ("hospital", "fever_clinic", "isolation_site", "school", "nursing_home", "enterprise")
# Three zones (封控区/管控区/防范区); the older high/medium/low risk words map onto them.
RISK_LEVELS: dict[str, tuple[str, ...]] = {
    "sealed": ("封控区", "封控", "高风险", "高风险区", "high"),
    "controlled": ("管控区", "管控", "中风险", "中风险区", "medium"),
    "prevention": ("防范区", "防范", "低风险", "低风险区", "low"),
}
REQUESTER_SHEETS = ("村居", "requesters")
DEMAND_SHEETS = ("需求", "demands")

_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_ENTRY = b"PK\x01\x02"  # a central directory entry: one per part
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls
MiB = 1024 * 1024
QUOTE_CHARS = 40  # of a cell's text quoted in a reason or a warning


@dataclass(frozen=True)
class SpreadsheetPolicy:
    """Limits of the import; the rules are here, not in the parsing code. The size limits are
    operators' settings (services/intake/config.py); docs/security.md says why these values."""

    max_rows: int = 50_000  # data rows
    max_columns: int = 50  # up to a row's last filled cell
    max_cell_chars: int = 1_000
    max_parts: int = 1_000  # files inside an XLSX (a zip); Excel writes about 10
    max_part_bytes: int = 16 * MiB  # one part unpacked: 50,000 five-column rows are ~15 MB
    max_unpacked_bytes: int = 24 * MiB  # every part together
    max_ratio: int = 100  # unpacked : packed of a part over ratio_from_bytes; sheets are 5-15
    ratio_from_bytes: int = 1 * MiB
    max_errors: int = 1_000  # errors listed; past them checking stops
    max_int: int = 1_000_000
    progress_every: int = 500
    header_search_rows: int = 5  # title rows (e.g. a merged "XX镇物资需求表") before the header
    max_text_len: int = 200
    max_note_len: int = 500
    lat_range: tuple[float, float] = (-90.0, 90.0)
    lon_range: tuple[float, float] = (-180.0, 180.0)
    population_required_kinds: tuple[str, ...] = ("village", "community")
    headcount_required_kinds: tuple[str, ...] = UNIT_KINDS


DEFAULT_POLICY = SpreadsheetPolicy()


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str


@dataclass(frozen=True)
class RequesterRow:
    """One village/community/unit. Vulnerable counts default to 0 when the cell is empty;
    population, households, headcount, beds and coordinates stay None when not given."""

    row: int
    id: str
    name: str
    kind: str
    township: str
    population: int | None = None
    households: int | None = None
    risk_level: str | None = None
    lat: float | None = None
    lon: float | None = None
    elderly_alone: int = 0
    disabled: int = 0
    chronic_patients: int = 0
    infants: int = 0
    pregnant: int = 0
    headcount: int | None = None
    beds: int | None = None
    drop_point: str | None = None
    drop_lat: float | None = None
    drop_lon: float | None = None


@dataclass(frozen=True)
class DemandRow:
    """One demand line. `requester_id` is not checked against the register here (no DB)."""

    row: int
    requester_id: str
    item_code: str
    quantity: int
    delivery_day: date | None = None
    note: str = ""


@dataclass(frozen=True)
class ParseResult:
    rows: list[RequesterRow | DemandRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows_total: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # row field -> header text in the file

    @property
    def ok(self) -> bool:
        return not self.errors


# ---------------------------------------------------------------------------------------------
# Column specifications


@dataclass(frozen=True)
class _Col:
    name: str
    zh: str
    aliases: tuple[str, ...]
    required: bool = False  # the column must be present
    mandatory: bool = False  # the cell must be filled

    @property
    def label(self) -> str:
        return f"{self.zh} / {self.name}"


_REQUESTER_COLS = (
    _Col("id", "编号", ("编号", "村居编号", "村居编码", "单位编号", "代码", "编码", "id", "code",
                       "requester_id"), required=True, mandatory=True),
    _Col("name", "名称", ("名称", "村居名称", "村名称", "社区名称", "单位名称", "村居", "name"),
         required=True, mandatory=True),
    _Col("kind", "类型", ("类型", "类别", "村居类型", "单位类型", "kind", "type"),
         required=True, mandatory=True),
    _Col("township", "乡镇", ("乡镇", "街道", "乡镇街道", "所属乡镇", "所属街道", "township", "town"),
         required=True, mandatory=True),
    _Col("population", "人口", ("人口", "常住人口", "人口数", "总人口", "population")),
    _Col("households", "户数", ("户数", "总户数", "households")),
    _Col("risk_level", "风险等级", ("风险等级", "风险区域", "风险", "risk_level", "risk")),
    _Col("lat", "纬度", ("纬度", "lat", "latitude")),
    _Col("lon", "经度", ("经度", "lon", "lng", "longitude")),
    _Col("elderly_alone", "独居老人", ("独居老人", "独居老人数", "elderly_alone")),
    _Col("disabled", "残疾人", ("残疾人", "残疾人数", "disabled")),
    _Col("chronic_patients", "慢性病患者", ("慢性病患者", "慢性病人", "慢性病患者数",
                                          "chronic_patients")),
    _Col("infants", "婴幼儿", ("婴幼儿", "婴幼儿数", "infants")),
    _Col("pregnant", "孕产妇", ("孕产妇", "孕产妇数", "pregnant")),
    _Col("headcount", "人数", ("人数", "在岗人数", "实有人数", "headcount")),
    _Col("beds", "床位", ("床位", "床位数", "beds")),
    _Col("drop_point", "物资存放点", ("物资存放点", "存放点", "drop_point")),
    _Col("drop_lat", "存放点纬度", ("存放点纬度", "drop_lat")),
    _Col("drop_lon", "存放点经度", ("存放点经度", "drop_lon", "drop_lng")),
)

_DEMAND_COLS = (
    _Col("requester_id", "村居编号", ("村居编号", "需求方编号", "单位编号", "村居编码", "requester_id",
                                    "requester"), required=True, mandatory=True),
    _Col("item_code", "物资编码", ("物资编码", "物资代码", "item_code")),
    _Col("item_name", "物资名称", ("物资名称", "物资", "品名", "item_name", "item")),
    _Col("quantity", "数量", ("数量", "需求数量", "申领数量", "quantity", "qty"),
         required=True, mandatory=True),
    _Col("delivery_day", "配送日期", ("配送日期", "日期", "送达日期", "需求日期", "delivery_day",
                                     "date")),
    _Col("note", "备注", ("备注", "说明", "note", "notes", "remark", "remarks")),
)

_COUNT_FIELDS = ("population", "households", "elderly_alone", "disabled", "chronic_patients",
                 "infants", "pregnant", "headcount", "beds")
_VULNERABLE_FIELDS = ("elderly_alone", "disabled", "chronic_patients", "infants", "pregnant")


def _header_key(text: str) -> str:
    """Case/space/width-insensitive key: '  Requester ID ' == 'requester_id', '＊数量' == '数量'."""
    s = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s_\-*/、]+", "", s)


def _strip_parens(key: str) -> str:
    """'数量(袋)' -> '数量', '乡镇(街道)' -> '乡镇'."""
    return re.sub(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】", "", key)


def _alias_index(cols: Sequence[_Col]) -> dict[str, _Col]:
    index: dict[str, _Col] = {}
    for col in cols:
        for a in (*col.aliases, col.name):
            index[_header_key(a)] = col
    return index


_INDEX = {"requesters": _alias_index(_REQUESTER_COLS), "demands": _alias_index(_DEMAND_COLS)}
_COLS = {"requesters": _REQUESTER_COLS, "demands": _DEMAND_COLS}


def _value_index(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for code, words in table.items():
        for w in (code, *words):
            out[_header_key(w)] = code
    return out


_KIND_INDEX = _value_index(REQUESTER_KINDS)
_RISK_INDEX = _value_index(RISK_LEVELS)


# ---------------------------------------------------------------------------------------------
# Cell parsing. `_Bad` carries a bilingual reason; it never leaves this module.


class _Bad(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _is_empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime | date):
        return v.isoformat()
    return str(v).strip()


def _quote(v: Any) -> str:
    """A cell's text as a reason quotes it: its first QUOTE_CHARS characters."""
    s = _text(v)
    return s if len(s) <= QUOTE_CHARS else s[:QUOTE_CHARS] + "…"


_INT_RE = re.compile(r"\+?(\d{1,3}(,\d{3})+|\d+)(\.0+)?")
_DEC_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def _int(v: Any, zh: str, en: str, *, positive: bool, limit: int) -> int:
    kind_zh, kind_en = ("正整数", "a positive integer") if positive else (
        "非负整数", "a non-negative integer")
    bad = _Bad(f"{zh}必须为{kind_zh} / {en} must be {kind_en}")
    if isinstance(v, bool):
        raise bad
    if isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise bad
        n = int(v)
    elif isinstance(v, int):
        n = v
    elif isinstance(v, str):
        s = unicodedata.normalize("NFKC", v).strip()
        if not _INT_RE.fullmatch(s):
            raise bad
        n = int(s.split(".")[0].replace(",", ""))
    else:
        raise bad
    if n < 0 or (positive and n == 0):
        raise bad
    if n > limit:
        raise _Bad(f"{zh}超过上限{limit} / {en} exceeds the limit {limit}")
    return n


def _float(v: Any, zh: str, en: str, lo: float, hi: float) -> float:
    bad = _Bad(f"{zh}必须为{lo:g}到{hi:g}之间的数字 / {en} must be a number from {lo:g} to {hi:g}")
    if isinstance(v, bool):
        raise bad
    if isinstance(v, int | float):
        x = float(v)
    elif isinstance(v, str):
        s = unicodedata.normalize("NFKC", v).strip()
        if not _DEC_RE.fullmatch(s):
            raise bad
        x = float(s)
    else:
        raise bad
    if not (math.isfinite(x) and lo <= x <= hi):
        raise bad
    return x


_DATE_RE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]0{1,2}:00(?::00)?)?"
)


def _day(v: Any) -> date:
    bad = _Bad("配送日期格式无效(应为2026-11-29) / delivery_day is not a valid date (e.g. 2026-11-29)")
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if not isinstance(v, str):
        raise bad
    m = _DATE_RE.fullmatch(unicodedata.normalize("NFKC", v).strip())
    if not m:
        raise bad
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise bad from None


def _choice(v: Any, index: dict[str, str], table: dict[str, tuple[str, ...]],
            zh: str, en: str) -> str:
    code = index.get(_header_key(_text(v)))
    if code is None:
        allowed_zh = ", ".join(f"{words[0]}" for words in table.values())
        allowed_en = ", ".join(table)
        raise _Bad(f"{zh}无效'{_quote(v)}',可选: {allowed_zh} / "
                   f"unknown {en} '{_quote(v)}', allowed: {allowed_en}")
    return code


def _str(v: Any, zh: str, en: str, limit: int) -> str:
    s = _text(v)
    if len(s) > limit:
        raise _Bad(f"{zh}超过{limit}个字符 / {en} is longer than {limit} characters")
    return s


# ---------------------------------------------------------------------------------------------
# Reading the file into (row number, cells) pairs


class _FileError(Exception):
    def __init__(self, reason: str, row: int = 0, column: str = ""):
        super().__init__(reason)
        self.error = RowError(row=row, column=column, reason=reason)


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
    raise _FileError("无法识别文件编码(支持UTF-8、GBK/GB18030),文件可能已损坏 / "
                     "cannot decode the file (UTF-8 or GBK/GB18030 expected); it may be damaged")


def _refused(zh: str, en: str) -> InvalidInput:
    """The file is over a limit: not a row problem, the whole request is refused."""
    return InvalidInput("content", f"{zh} / {en}")


def _mib(n: int) -> str:
    return f"{n / MiB:.1f}"


def _cell_too_long(n: int, column: int | None, policy: SpreadsheetPolicy) -> InvalidInput:
    limit = policy.max_cell_chars
    if column is None:
        return _refused(f"第{n}行有单元格超过{limit}个字符(单元格长度上限)",
                        f"a cell in row {n} is longer than {limit} characters (the limit per cell)")
    from openpyxl.utils import get_column_letter

    col = get_column_letter(column + 1)
    return _refused(f"第{n}行{col}列的单元格超过{limit}个字符(单元格长度上限)",
                    f"the cell at row {n}, column {col} is longer than {limit} characters (the "
                    f"limit per cell)")


def _too_many_rows(policy: SpreadsheetPolicy) -> InvalidInput:
    return _refused(f"数据行数超过上限{policy.max_rows}行,请拆分文件",
                    f"more than {policy.max_rows} data rows (the limit); split the file")


def check_archive(content: bytes, policy: SpreadsheetPolicy = DEFAULT_POLICY) -> None:
    """Refuse an XLSX whose parts would unpack past the policy's limits, before any is unpacked:
    every part's declared size (zipfile stops at it), their total and their compression ratio."""
    if content.count(_ZIP_ENTRY) > policy.max_parts:  # before zipfile lists them all
        raise _refused(f"XLSX文件的部件超过上限{policy.max_parts}个",
                       f"the XLSX file has more than {policy.max_parts} parts (the limit)")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            parts = archive.infolist()
    except Exception:  # untrusted file: any failure of the reader is a file-level error
        raise _FileError("无法读取XLSX文件,文件可能已损坏 / cannot read the XLSX file; "
                         "it may be damaged") from None
    total, limit = sum(p.file_size for p in parts), policy.max_unpacked_bytes
    if total > limit:
        raise _refused(f"文件解压后为{_mib(total)} MiB,超过解压后大小上限{limit / MiB:g} MiB",
                       f"the file unpacks to {_mib(total)} MiB, over the limit of "
                       f"{limit / MiB:g} MiB (unpacked size)")
    for part in parts:
        name = _quote(part.filename)
        if part.file_size > policy.max_part_bytes:
            limit = policy.max_part_bytes
            raise _refused(f"文件中的部件{name}解压后为{_mib(part.file_size)} MiB,超过单个部件上限"
                           f"{limit / MiB:g} MiB",
                           f"the part {name} unpacks to {_mib(part.file_size)} MiB, over the limit "
                           f"of {limit / MiB:g} MiB for one part")
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > policy.ratio_from_bytes and ratio > policy.max_ratio:
            raise _refused(f"文件中的部件{name}压缩比为{ratio:.0f}:1,超过压缩比上限{policy.max_ratio}:1,"
                           f"疑似压缩炸弹",
                           f"the part {name} is packed {ratio:.0f}:1, over the limit of "
                           f"{policy.max_ratio}:1 (compression ratio); it looks like a zip bomb")


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
            raise _cell_too_long(n + 1, None, policy) from None
        raise _FileError(f"CSV格式错误: {e} / malformed CSV: {e}") from None


def _xlsx_rows(content: bytes, kind: str, warnings: list[str], policy: SpreadsheetPolicy
               ) -> Iterable[tuple[int, list[Any]]]:
    import openpyxl  # local: only this path needs it

    check_archive(content, policy)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # untrusted file: any failure of the reader is a file-level error
        raise _FileError("无法读取XLSX文件,文件可能已损坏 / cannot read the XLSX file; "
                         "it may be damaged") from None
    try:
        wanted = {_header_key(s) for s in (REQUESTER_SHEETS if kind == "requesters"
                                           else DEMAND_SHEETS)}
        sheets = wb.worksheets
        if not sheets:
            raise _FileError("XLSX文件没有工作表 / the XLSX file has no worksheet")
        ws = next((s for s in sheets if _header_key(s.title) in wanted), None)
        if ws is None:
            ws = sheets[0]
            if len(sheets) > 1:
                warnings.append(
                    f"文件有{len(sheets)}个工作表,只读取了第一个'{_quote(ws.title)}' / the workbook "
                    f"has {len(sheets)} sheets; only the first, '{_quote(ws.title)}', was read")
        ws.reset_dimensions()  # stored dimensions are often wrong in files from other tools
        try:
            for n, cells in enumerate(ws.iter_rows(values_only=True), start=1):
                yield n, list(cells)
        except Exception:
            raise _FileError("XLSX工作表内容无法读取 / cannot read the XLSX worksheet") from None
    finally:
        wb.close()


def _read(content: bytes, fmt: str, kind: str, warnings: list[str], policy: SpreadsheetPolicy
          ) -> Iterator[tuple[int, list[Any]]]:
    if content.startswith(_OLE_MAGIC):
        raise _FileError("不支持旧版.xls文件,请另存为.xlsx或CSV / legacy .xls files are not "
                         "supported; save as .xlsx or CSV")
    is_zip = content.startswith(_ZIP_MAGIC)
    if fmt == "xlsx" and not is_zip:
        raise _FileError("文件声明为XLSX,但内容不是XLSX / declared XLSX but the content is not "
                         "an XLSX file")
    if fmt == "csv" and is_zip:
        raise _FileError("文件声明为CSV,但内容是XLSX(压缩包) / declared CSV but the content is "
                         "an XLSX (zip) file")
    yield from (_xlsx_rows(content, kind, warnings, policy) if is_zip
                else _csv_rows(content, policy))


def _within_limits(n: int, cells: Sequence[Any], policy: SpreadsheetPolicy) -> list[Any]:
    """Row `n` up to its last filled cell, each text as it stood before we exported it (one
    neutralising apostrophe off); refused past the column or the cell-length limit."""
    last = len(cells)
    while last and _is_empty(cells[last - 1]):
        last -= 1
    if last > policy.max_columns:
        raise _refused(f"第{n}行有{last}列,超过列数上限{policy.max_columns}列",
                       f"row {n} has {last} columns, over the limit of {policy.max_columns} "
                       f"columns")
    out = []
    for i, value in enumerate(cells[:last]):
        if isinstance(value, str):
            if len(value) > policy.max_cell_chars:
                raise _cell_too_long(n, i, policy)
            value = spreadsheet_text(value)
        out.append(value)
    return out


# ---------------------------------------------------------------------------------------------
# Header


@dataclass(frozen=True)
class _Header:
    row: int
    columns: dict[str, tuple[int, str]]  # field name -> (cell index, header text in the file)


def _map_header(n: int, cells: Sequence[Any], kind: str) -> tuple[_Header, list[str], list[RowError]]:
    index = _INDEX[kind]
    columns: dict[str, tuple[int, str]] = {}
    unknown: list[str] = []
    errors: list[RowError] = []
    for i, cell in enumerate(cells):
        if _is_empty(cell):
            continue
        text = _quote(cell)
        key = _header_key(_text(cell))
        col = index.get(key) or index.get(_strip_parens(key))
        if col is None:
            unknown.append(text)
        elif col.name in columns:
            errors.append(RowError(n, text, f"列重复(与'{columns[col.name][1]}'相同) / duplicate "
                                            f"column (same as '{columns[col.name][1]}')"))
        else:
            columns[col.name] = (i, text)
    return _Header(n, columns), unknown, errors


def _missing(header: _Header, kind: str) -> list[_Col]:
    cols = _COLS[kind]
    out = [c for c in cols if c.required and c.name not in header.columns]
    if kind == "demands" and not {"item_code", "item_name"} & header.columns.keys():
        out.append(next(c for c in cols if c.name == "item_code"))
    return out


def _find_header(rows: list[tuple[int, list[Any]]], kind: str, policy: SpreadsheetPolicy
                 ) -> tuple[int, _Header, list[str]]:
    """The header is the first non-empty row unless it lacks required columns and a later row
    among the first few has them all (a title row above the header)."""
    first: tuple[_Header, list[str], list[RowError]] | None = None
    for pos, (n, cells) in enumerate(rows[: policy.header_search_rows]):
        header, unknown, dup = _map_header(n, cells, kind)
        if first is None:
            first = (header, unknown, dup)
        if not _missing(header, kind):
            if dup:
                raise _HeaderErrors(dup)
            return pos, header, unknown
    if first is None:
        raise _FileError("文件为空 / the file is empty")
    header, _, dup = first
    errors = list(dup)
    for col in _missing(header, kind):
        accepted = ", ".join(col.aliases)
        if kind == "demands" and col.name == "item_code":
            label = "物资编码或物资名称 / item_code or item_name"
            by_name = next(c for c in _COLS[kind] if c.name == "item_name")
            accepted = ", ".join((*col.aliases, *by_name.aliases))
        else:
            label = col.label
        errors.append(RowError(header.row, label, f"缺少必需列(可用列名: {accepted}) / "
                                                   f"missing required column (accepted: {accepted})"))
    raise _HeaderErrors(errors)


class _HeaderErrors(Exception):
    def __init__(self, errors: list[RowError]):
        super().__init__(errors)
        self.errors = errors


# ---------------------------------------------------------------------------------------------
# Rows


class _RowParser:
    def __init__(self, kind: str, header: _Header, catalogue: Catalogue,
                 policy: SpreadsheetPolicy):
        self.kind = kind
        self.header = header
        self.policy = policy
        self.cols = {c.name: c for c in _COLS[kind]}
        self.seen: dict[Any, int] = {}
        self.items: dict[str, str] = {}
        for item in catalogue.items.values():
            for key in (item.code, item.name_zh, item.name_en):
                self.items[_item_key(key)] = item.code

    def parse(self, n: int, cells: Sequence[Any]) -> tuple[RequesterRow | DemandRow | None,
                                                          list[RowError]]:
        values: dict[str, Any] = {}
        errors: list[RowError] = []
        failed: set[str] = set()

        def fail(name: str, reason: str) -> None:
            text = self.header.columns[name][1] if name in self.header.columns \
                else self.cols[name].label
            errors.append(RowError(n, text, reason))
            failed.add(name)

        for name, (i, _) in self.header.columns.items():
            raw = cells[i] if i < len(cells) else None
            col = self.cols[name]
            if _is_empty(raw):
                if col.mandatory:
                    fail(name, f"{col.zh}不能为空 / {col.name} is required")
                continue
            try:
                values[name] = self._cell(name, raw)
            except _Bad as e:
                fail(name, e.reason)
        check = self._requester if self.kind == "requesters" else self._demand
        row = check(n, values, failed, fail)
        return (row if not errors else None), errors

    def _cell(self, name: str, raw: Any) -> Any:
        p, col = self.policy, self.cols[name]
        if name in _COUNT_FIELDS:
            return _int(raw, col.zh, col.name, positive=False, limit=p.max_int)
        if name == "quantity":
            return _int(raw, col.zh, col.name, positive=True, limit=p.max_int)
        if name in ("lat", "drop_lat"):
            return _float(raw, col.zh, col.name, *p.lat_range)
        if name in ("lon", "drop_lon"):
            return _float(raw, col.zh, col.name, *p.lon_range)
        if name == "kind":
            return _choice(raw, _KIND_INDEX, REQUESTER_KINDS, col.zh, col.name)
        if name == "risk_level":
            return _choice(raw, _RISK_INDEX, RISK_LEVELS, col.zh, col.name)
        if name == "delivery_day":
            return _day(raw)
        if name in ("item_code", "item_name"):
            code = self.items.get(_item_key(_text(raw)))
            if code is None:
                raise _Bad(f"物资不在目录中'{_quote(raw)}' / unknown item '{_quote(raw)}' "
                           f"(not in the catalogue)")
            return code
        if name in ("id", "requester_id"):
            return unicodedata.normalize("NFKC", _str(raw, col.zh, col.name, p.max_text_len))
        limit = p.max_note_len if name == "note" else p.max_text_len
        return _str(raw, col.zh, col.name, limit)

    def _requester(self, n: int, values: dict[str, Any], failed: set[str], fail
                   ) -> RequesterRow | None:
        p = self.policy
        for a, b in (("lat", "lon"), ("drop_lat", "drop_lon")):
            if (a in values) != (b in values) and not {a, b} & failed:
                missing = b if a in values else a
                fail(missing, f"{self.cols[a].zh}和{self.cols[b].zh}须同时填写 / "
                              f"{a} and {b} must be given together")
        if "drop_lat" in values and "drop_point" not in values:
            fail("drop_point", "填写了存放点坐标但缺少存放点名称 / drop point coordinates given "
                               "without a drop point name")
        kind = values.get("kind")
        if kind in p.population_required_kinds and not {"population"} & (values.keys() | failed):
            fail("population", "村/社区必须填写人口 / population is required for a village or "
                               "community")
        if kind in p.headcount_required_kinds and not {"headcount"} & (values.keys() | failed):
            fail("headcount", "单位必须填写在岗人数 / headcount is required for a unit")
        pop = values.get("population")
        if pop is not None:
            for name in ("households", *_VULNERABLE_FIELDS):
                if values.get(name, 0) > pop:
                    col = self.cols[name]
                    fail(name, f"{col.zh}({values[name]})大于人口({pop}) / {col.name} "
                               f"({values[name]}) exceeds population ({pop})")
        rid = values.get("id")
        if rid is not None:
            if rid in self.seen:
                fail("id", f"编号重复(首次出现在第{self.seen[rid]}行) / duplicate id (first at "
                           f"row {self.seen[rid]})")
            else:
                self.seen[rid] = n
        if failed:
            return None
        return RequesterRow(row=n, **values)

    def _demand(self, n: int, values: dict[str, Any], failed: set[str], fail
                ) -> DemandRow | None:
        code, by_name = values.pop("item_code", None), values.pop("item_name", None)
        if code and by_name and code != by_name:
            fail("item_name", f"物资名称与物资编码不一致({by_name} ≠ {code}) / item_name does not "
                              f"match item_code ({by_name} ≠ {code})")
        item = code or by_name
        if item is None and not {"item_code", "item_name"} & failed:
            fail("item_code" if "item_code" in self.header.columns else "item_name",
                 "物资不能为空 / item is required")
        key = (values.get("requester_id"), item, values.get("delivery_day"))
        if key[0] is not None and item is not None:
            if key in self.seen:
                fail("quantity", f"同一需求方、物资、日期重复(首次出现在第{self.seen[key]}行) / "
                                 f"duplicate line for the same requester, item and day (first at "
                                 f"row {self.seen[key]})")
            else:
                self.seen[key] = n
        if failed:
            return None
        return DemandRow(row=n, item_code=item, **values)


def _item_key(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s)).strip().casefold()


# ---------------------------------------------------------------------------------------------
# Entry point


def parse_spreadsheet(
    content: bytes,
    fmt: str,
    kind: str,
    catalogue: Catalogue,
    *,
    progress: Callable[[int, int], None] | None = None,
    policy: SpreadsheetPolicy = DEFAULT_POLICY,
) -> ParseResult:
    """Parse a requester list or a demand list. Problems in the file are returned in
    `ParseResult.errors` (at most `policy.max_errors`, then checking stops and no row is
    returned); a file over a size limit and a bad `fmt`/`kind` argument raise InvalidInput.

    `progress(done, total)` is called every `policy.progress_every` data rows and once at the
    end; it is not called when the file fails before its rows are read (format, header, size).
    """
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InvalidInput("fmt", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if kind not in KINDS:
        raise InvalidInput("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    warnings: list[str] = []
    # Non-empty rows only, refused as soon as there are more than the header and the limit.
    rows: list[tuple[int, list[Any]]] = []
    reader = _read(content, fmt, kind, warnings, policy)
    try:
        for n, cells in reader:
            cells = _within_limits(n, cells, policy)
            if not cells:
                continue
            rows.append((n, cells))
            if len(rows) > policy.max_rows + policy.header_search_rows:
                raise _too_many_rows(policy)
        pos, header, unknown = _find_header(rows, kind, policy)
    except _FileError as e:
        return ParseResult(errors=[e.error], warnings=warnings)
    except _HeaderErrors as e:
        return ParseResult(errors=e.errors, warnings=warnings)
    finally:
        reader.close()  # closes the workbook when we stopped early
    if pos:
        warnings.append(f"跳过表头前的{pos}行标题 / skipped {pos} title row(s) above the header "
                        f"(header is row {header.row})")
    warnings.extend(f"忽略未知列'{t}' / ignored unknown column '{t}'" for t in unknown)
    data = rows[pos + 1:]
    total = len(data)
    if total > policy.max_rows:
        raise _too_many_rows(policy)
    if total == 0:
        return ParseResult(errors=[RowError(0, "", "没有数据行 / the file has no data rows")],
                           warnings=warnings)
    parser = _RowParser(kind, header, catalogue, policy)
    out: list[RequesterRow | DemandRow] = []
    errors: list[RowError] = []
    columns = {name: text for name, (_, text) in header.columns.items()}
    for done, (n, cells) in enumerate(data, start=1):
        row, row_errors = parser.parse(n, cells)
        errors.extend(row_errors)
        if len(errors) > policy.max_errors:
            limit = policy.max_errors
            errors[limit:] = [RowError(0, "", f"错误超过{limit}个,第{n}行之后未再检查,没有导入任何行;"
                                              f"请修正后重新上传整个文件 / more than {limit} errors: "
                                              f"rows after row {n} were not checked and no row "
                                              f"was imported; fix the file and upload it again")]
            return ParseResult(errors=errors, warnings=warnings, rows_total=total,
                               columns=columns)
        if row is not None:
            out.append(row)
        if progress is not None and done % policy.progress_every == 0 and done != total:
            progress(done, total)
    if progress is not None:
        progress(total, total)
    return ParseResult(rows=out, errors=errors, warnings=warnings, rows_total=total,
                       columns=columns)


# ---------------------------------------------------------------------------------------------
# Report


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


# ---------------------------------------------------------------------------------------------
# Sample lists (simulators/scenarios/samples/ is generated from these)

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
