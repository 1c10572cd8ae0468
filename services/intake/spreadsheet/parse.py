"""Header and rows: `parse_spreadsheet`, a requester list or a demand list into checked rows."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput
from services.intake.spreadsheet.archive_limits import too_many_rows
from services.intake.spreadsheet.columns import (
    COLUMN_INDEX,
    COLUMNS,
    COUNT_FIELDS,
    FORMATS,
    KIND_INDEX,
    KINDS,
    REQUESTER_KINDS,
    RISK_INDEX,
    RISK_LEVELS,
    VULNERABLE_FIELDS,
    BadCell,
    Column,
    as_text,
    header_key,
    is_empty,
    quote,
    read_choice,
    read_day,
    read_float,
    read_int,
    read_text,
    strip_parens,
)
from services.intake.spreadsheet.policy import DEFAULT_POLICY, SpreadsheetPolicy
from services.intake.spreadsheet.read import read_rows, within_limits
from services.intake.spreadsheet.rows import (
    DemandRow,
    FileError,
    ParseResult,
    RequesterRow,
    RowError,
)


@dataclass(frozen=True)
class _Header:
    row: int
    columns: dict[str, tuple[int, str]]  # field name -> (cell index, header text in the file)


def _map_header(n: int, cells: Sequence[Any], kind: str) -> tuple[_Header, list[str], list[RowError]]:
    index = COLUMN_INDEX[kind]
    columns: dict[str, tuple[int, str]] = {}
    unknown: list[str] = []
    errors: list[RowError] = []
    for i, cell in enumerate(cells):
        if is_empty(cell):
            continue
        text = quote(cell)
        key = header_key(as_text(cell))
        col = index.get(key) or index.get(strip_parens(key))
        if col is None:
            unknown.append(text)
        elif col.name in columns:
            errors.append(RowError(n, text, f"列重复(与'{columns[col.name][1]}'相同) / duplicate "
                                            f"column (same as '{columns[col.name][1]}')"))
        else:
            columns[col.name] = (i, text)
    return _Header(n, columns), unknown, errors


def _missing(header: _Header, kind: str) -> list[Column]:
    cols = COLUMNS[kind]
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
        raise FileError("文件为空 / the file is empty")
    header, _, dup = first
    errors = list(dup)
    for col in _missing(header, kind):
        accepted = ", ".join(col.aliases)
        if kind == "demands" and col.name == "item_code":
            label = "物资编码或物资名称 / item_code or item_name"
            by_name = next(c for c in COLUMNS[kind] if c.name == "item_name")
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
        self.cols = {c.name: c for c in COLUMNS[kind]}
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
            if is_empty(raw):
                if col.mandatory:
                    fail(name, f"{col.zh}不能为空 / {col.name} is required")
                continue
            try:
                values[name] = self._cell(name, raw)
            except BadCell as e:
                fail(name, e.reason)
        check = self._requester if self.kind == "requesters" else self._demand
        row = check(n, values, failed, fail)
        return (row if not errors else None), errors

    def _cell(self, name: str, raw: Any) -> Any:
        p, col = self.policy, self.cols[name]
        if name in COUNT_FIELDS:
            return read_int(raw, col.zh, col.name, positive=False, limit=p.max_int)
        if name == "quantity":
            return read_int(raw, col.zh, col.name, positive=True, limit=p.max_int)
        if name in ("lat", "drop_lat"):
            return read_float(raw, col.zh, col.name, *p.lat_range)
        if name in ("lon", "drop_lon"):
            return read_float(raw, col.zh, col.name, *p.lon_range)
        if name == "kind":
            return read_choice(raw, KIND_INDEX, REQUESTER_KINDS, col.zh, col.name)
        if name == "risk_level":
            return read_choice(raw, RISK_INDEX, RISK_LEVELS, col.zh, col.name)
        if name == "delivery_day":
            return read_day(raw)
        if name in ("item_code", "item_name"):
            code = self.items.get(_item_key(as_text(raw)))
            if code is None:
                raise BadCell(f"物资不在目录中'{quote(raw)}' / unknown item '{quote(raw)}' "
                           f"(not in the catalogue)")
            return code
        if name in ("id", "requester_id"):
            return unicodedata.normalize("NFKC", read_text(raw, col.zh, col.name, p.max_text_len))
        limit = p.max_note_len if name == "note" else p.max_text_len
        return read_text(raw, col.zh, col.name, limit)

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
            for name in ("households", *VULNERABLE_FIELDS):
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
    reader = read_rows(content, fmt, kind, warnings, policy)
    try:
        for n, cells in reader:
            cells = within_limits(n, cells, policy)
            if not cells:
                continue
            rows.append((n, cells))
            if len(rows) > policy.max_rows + policy.header_search_rows:
                raise too_many_rows(policy)
        pos, header, unknown = _find_header(rows, kind, policy)
    except FileError as e:
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
        raise too_many_rows(policy)
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
