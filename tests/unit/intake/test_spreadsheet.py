"""Spreadsheet import: village lists and demand lists as WeChat groups send them."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from services.common.catalogue import load_catalogue
from services.common.errors import InvalidInput
from services.intake.spreadsheet import parse as parse_module
from services.intake.spreadsheet.archive_limits import check_archive
from services.intake.spreadsheet.parse import parse_spreadsheet
from services.intake.spreadsheet.policy import MiB, SpreadsheetPolicy
from services.intake.spreadsheet.read import within_limits
from services.intake.spreadsheet.rows import DemandRow, ParseResult, RequesterRow, RowError
from services.intake.spreadsheet.write import render_report, sample_spreadsheet, write_spreadsheet

CAT = load_catalogue()
SAMPLES = Path(__file__).resolve().parents[3] / "simulators" / "scenarios" / "samples"

REQ_HEADER_ZH = "编号,名称,类型,乡镇,常住人口,户数,风险等级,独居老人"
REQ_HEADER_EN = "ID, Name ,KIND,Township,population,households,Risk_Level,elderly alone"
DEM_HEADER_ZH = "村居编号,物资名称,数量,配送日期,备注"


def csv_bytes(*lines: str, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def parse(content: bytes, fmt: str = "csv", kind: str = "demands", **kw) -> ParseResult:
    return parse_spreadsheet(content, fmt, kind, CAT, **kw)


def xlsx_bytes(rows: list[list], title: str = "Sheet1", extra_sheets: tuple[str, ...] = ()) -> bytes:
    wb = openpyxl.Workbook()
    for name in extra_sheets:
        wb.create_sheet(name)
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def error_at(result: ParseResult, row: int, column: str) -> RowError:
    found = [e for e in result.errors if e.row == row and e.column == column]
    assert found, f"no error at row {row} column {column!r}; errors: {result.errors}"
    return found[0]


# --- encodings and headers ---------------------------------------------------------------


VILLAGE_LINES = (
    "CG-001,东门社区,社区,城关镇,\"4,820\",1630,封控区,37",
    "HX-101,河西村,村,河西镇,１２８０,455,低风险,",
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_village_list_in_every_encoding_wechat_sends(encoding):
    result = parse(csv_bytes(REQ_HEADER_ZH, *VILLAGE_LINES, encoding=encoding), kind="requesters")

    assert result.ok, result.errors
    assert result.rows_total == 2
    east, west = result.rows
    assert east == RequesterRow(row=2, id="CG-001", name="东门社区", kind="community",
                                township="城关镇", population=4820, households=1630,
                                risk_level="sealed", elderly_alone=37)
    assert (west.name, west.kind, west.population, west.risk_level, west.elderly_alone) == (
        "河西村", "village", 1280, "prevention", 0)


def test_english_headers_are_case_and_space_insensitive_and_match_chinese():
    zh = parse(csv_bytes(REQ_HEADER_ZH, *VILLAGE_LINES), kind="requesters")
    en = parse(csv_bytes(REQ_HEADER_EN, *VILLAGE_LINES), kind="requesters")
    assert en.ok, en.errors
    assert en.rows == zh.rows


def test_header_variants_with_units_and_fullwidth_parentheses():
    result = parse(csv_bytes("需求方编号,品名,申领数量（袋）,日期",
                             "CG-001,大米（10公斤袋）,3,2026年11月29日"))
    assert result.ok, result.errors
    assert result.rows == [DemandRow(row=2, requester_id="CG-001", item_code="RICE-10KG",
                                     quantity=3, delivery_day=date(2026, 11, 29))]


def test_demand_items_by_code_or_chinese_or_english_name_and_date_spellings():
    result = parse(csv_bytes(
        "村居编号,物资编码,物资名称,数量,配送日期,备注",
        "CG-001,RICE-10KG,,10,2026-11-29,",
        "CG-001,,食用油(5升桶),1200,2026/11/29,  夜间送达  ",
        "CG-001,,N95 respirator,\"1,200\",2026年11月30日,",
        "CG-001,mask-surgical-50,,５,2026-1-2,",
        "CG-002,POTATO-KG,土豆,7,,",
    ))
    assert result.ok, result.errors
    got = [(r.item_code, r.quantity, r.delivery_day, r.note) for r in result.rows]
    assert got == [
        ("RICE-10KG", 10, date(2026, 11, 29), ""),
        ("OIL-5L", 1200, date(2026, 11, 29), "夜间送达"),
        ("MASK-N95", 1200, date(2026, 11, 30), ""),
        ("MASK-SURGICAL-50", 5, date(2026, 1, 2), ""),
        ("POTATO-KG", 7, None, ""),
    ]


def test_unknown_columns_are_ignored_with_a_warning():
    result = parse(csv_bytes(DEM_HEADER_ZH + ",联系人", "CG-001,土豆,3,2026-11-29,,张三"))
    assert result.ok
    assert len(result.rows) == 1
    assert any("联系人" in w for w in result.warnings)


def test_empty_rows_are_skipped_silently_and_row_numbers_stay_the_files():
    result = parse(csv_bytes(DEM_HEADER_ZH, ",,,,", "CG-001,土豆,3,2026-11-29,", "", " , ,,,",
                             "CG-001,洋葱,0,2026-11-29,"))
    assert result.rows_total == 2
    assert [r.row for r in result.rows] == [3]
    assert [(e.row, e.column) for e in result.errors] == [(6, "数量")]
    assert result.warnings == []


def test_title_row_above_the_header_is_skipped_with_a_warning():
    result = parse(csv_bytes("城关镇物资需求表(11月29日),,,,", DEM_HEADER_ZH,
                             "CG-001,土豆,3,2026-11-29,", "CG-001,土豆,x,2026-11-30,"))
    assert [r.row for r in result.rows] == [3]
    error_at(result, 4, "数量")
    assert any("title" in w for w in result.warnings)


def test_tab_separated_text_as_excel_unicode_text_export():
    content = "\ufeff村居编号\t物资名称\t数量\r\nCG-001\t土豆\t3\r\n".encode("utf-16-le")
    result = parse(b"\xff\xfe" + content[2:])
    assert result.ok, result.errors
    assert result.rows[0].quantity == 3


# --- bad rows ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "reason_part"),
    [
        ("12.5", "数量必须为正整数 / quantity must be a positive integer"),
        ("-3", "数量必须为正整数"),
        ("0", "quantity must be a positive integer"),
        ("1000001", "exceeds the limit 1000000"),
        ("12袋", "positive integer"),
        ("1,2", "positive integer"),
        ("1e3", "positive integer"),
    ],
)
def test_bad_quantity_is_an_error_naming_row_and_column(cell, reason_part):
    result = parse(csv_bytes(DEM_HEADER_ZH, "CG-001,土豆,3,2026-11-29,",
                             f"CG-001,洋葱,\"{cell}\",2026-11-29,"))
    assert not result.ok
    assert reason_part in error_at(result, 3, "数量").reason
    assert [r.row for r in result.rows] == [2]  # good rows stay parsed for the report
    assert len(result.errors) == 1


def test_quantity_at_the_limit_and_integral_decimal_text_are_accepted():
    result = parse(csv_bytes(DEM_HEADER_ZH, "CG-001,土豆,1000000,,", "CG-001,洋葱,12.0,,"))
    assert result.ok, result.errors
    assert [r.quantity for r in result.rows] == [1_000_000, 12]


@pytest.mark.parametrize(
    ("line", "column", "reason_part"),
    [
        ("CG-001,榴莲,3,2026-11-29,", "物资名称", "unknown item '榴莲'"),
        ("CG-001,土豆,3,2026-13-01,", "配送日期", "not a valid date"),
        ("CG-001,土豆,3,明天,", "配送日期", "not a valid date"),
        ("CG-001,土豆,3,2026-02-30,", "配送日期", "not a valid date"),
        (",土豆,3,2026-11-29,", "村居编号", "requester_id is required"),
        ("CG-001,,3,2026-11-29,", "物资名称", "item is required"),
        ("CG-001,土豆,,2026-11-29,", "数量", "quantity is required"),
    ],
)
def test_each_bad_demand_cell_names_row_and_column(line, column, reason_part):
    result = parse(csv_bytes(DEM_HEADER_ZH, line))
    assert reason_part in error_at(result, 2, column).reason
    assert result.rows == []


def test_item_code_and_name_that_disagree_is_an_error():
    result = parse(csv_bytes("村居编号,物资编码,物资名称,数量", "CG-001,RICE-10KG,土豆,3"))
    assert "does not match" in error_at(result, 2, "物资名称").reason


def test_duplicate_demand_line_is_reported_on_the_second_row():
    result = parse(csv_bytes(DEM_HEADER_ZH, "CG-001,土豆,3,2026-11-29,",
                             "CG-001,POTATO-KG,4,2026/11/29,", "CG-001,土豆,4,2026-11-30,"))
    assert "first at row 2" in error_at(result, 3, "数量").reason
    assert [r.row for r in result.rows] == [2, 4]


@pytest.mark.parametrize(
    ("cells", "column", "reason_part"),
    [
        ({"类型": "菜市场"}, "类型", "allowed: village, community, hospital"),
        ({"风险等级": "极高"}, "风险等级", "allowed: sealed, controlled, prevention"),
        ({"常住人口": "-5"}, "常住人口", "population must be a non-negative integer"),
        ({"常住人口": ""}, "常住人口", "population is required for a village"),
        ({"户数": "5000"}, "户数", "exceeds population"),
        ({"独居老人": "3.5"}, "独居老人", "non-negative integer"),
        ({"纬度": "120.1"}, "纬度", "lat must be a number from -90 to 90"),
        ({"经度": ""}, "经度", "must be given together"),
        ({"名称": "  "}, "名称", "name is required"),
        ({"乡镇": ""}, "乡镇", "township is required"),
    ],
)
def test_each_bad_requester_cell_names_row_and_column(cells, column, reason_part):
    header = ["编号", "名称", "类型", "乡镇", "常住人口", "户数", "风险等级", "独居老人", "纬度",
              "经度"]
    good = dict(zip(header, ["HX-101", "河西村", "村", "河西镇", "1280", "455", "防范区", "3",
                             "30.31", "120.09"], strict=True))
    bad = good | cells | {"编号": "HX-102"}
    result = parse(csv_bytes(",".join(header), ",".join(good.values()), ",".join(bad.values())),
                   kind="requesters")
    assert reason_part in error_at(result, 3, column).reason
    assert [r.id for r in result.rows] == ["HX-101"]


def test_units_need_headcount_and_duplicate_ids_are_reported():
    result = parse(csv_bytes("编号,名称,类型,乡镇,在岗人数,床位",
                             "U-1,县医院发热门诊,发热门诊,城关镇,64,20",
                             "U-2,敬老院,养老院,河西镇,,85",
                             "U-1,隔离酒店,隔离点,城关镇,30,120"), kind="requesters")
    assert result.rows == [RequesterRow(row=2, id="U-1", name="县医院发热门诊", kind="fever_clinic",
                                        township="城关镇", headcount=64, beds=20)]
    assert "headcount is required" in error_at(result, 3, "在岗人数").reason
    assert "duplicate id (first at row 2)" in error_at(result, 4, "编号").reason


def test_drop_point_coordinates_need_a_name():
    result = parse(csv_bytes("编号,名称,类型,乡镇,人口,物资存放点,存放点纬度,存放点经度",
                             "HX-1,河西村,村,河西镇,100,村委会,30.1,120.2",
                             "HX-2,李家村,村,河西镇,100,,30.1,120.2"), kind="requesters")
    assert result.rows[0].drop_point == "村委会"
    assert (result.rows[0].drop_lat, result.rows[0].drop_lon) == (30.1, 120.2)
    assert "without a drop point name" in error_at(result, 3, "物资存放点").reason


def test_errors_are_bilingual():
    result = parse(csv_bytes(DEM_HEADER_ZH, "CG-001,土豆,0,2026-11-29,"))
    reason = result.errors[0].reason
    assert " / " in reason
    zh, en = reason.split(" / ", 1)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh) and en.isascii()


# --- file-level problems -----------------------------------------------------------------


def test_missing_required_column_is_a_file_error_and_no_rows_are_parsed():
    result = parse(csv_bytes("村居编号,物资名称,配送日期", "CG-001,土豆,2026-11-29"))
    assert not result.ok
    assert result.rows == []
    [err] = result.errors
    assert err.row == 1 and err.column == "数量 / quantity"
    assert "missing required column" in err.reason and "数量" in err.reason


def test_missing_item_column_names_both_choices():
    result = parse(csv_bytes("村居编号,数量", "CG-001,3"))
    [err] = result.errors
    assert err.column == "物资编码或物资名称 / item_code or item_name"


def test_duplicate_header_column_is_a_file_error():
    result = parse(csv_bytes("村居编号,物资名称,数量,需求数量", "CG-001,土豆,3,4"))
    assert result.rows == []
    assert "duplicate column" in error_at(result, 1, "需求数量").reason


def test_garbage_bytes_are_a_file_error_not_an_exception():
    garbage = bytes(range(256)) * 8
    result = parse(garbage)
    assert not result.ok and result.rows == []
    assert result.errors[0].row in (0, 1)
    assert parse(b"").errors[0].reason.endswith("the file is empty")


def test_xlsx_declared_but_csv_content_and_the_reverse():
    as_xlsx = parse(csv_bytes(DEM_HEADER_ZH, "CG-001,土豆,3,,"), fmt="xlsx")
    assert "declared XLSX but the content is not an XLSX file" in as_xlsx.errors[0].reason
    assert as_xlsx.rows == []
    as_csv = parse(xlsx_bytes([["村居编号", "物资名称", "数量"], ["CG-001", "土豆", 3]]), fmt="csv")
    assert "declared CSV but the content is an XLSX" in as_csv.errors[0].reason


def test_damaged_xlsx_and_legacy_xls_are_file_errors():
    assert "cannot read the XLSX file" in parse(b"PK\x03\x04" + b"\x00" * 100, fmt="xlsx"
                                                ).errors[0].reason
    assert ".xls files are not supported" in parse(b"\xd0\xcf\x11\xe0" + b"\x00" * 100
                                                   ).errors[0].reason


def test_header_only_is_an_error():
    result = parse(csv_bytes(DEM_HEADER_ZH))
    assert [e.reason for e in result.errors] == ["没有数据行 / the file has no data rows"]


def test_bad_arguments_raise():
    with pytest.raises(InvalidInput):
        parse(b"a", fmt="ods")
    with pytest.raises(InvalidInput):
        parse(b"a", kind="donations")


def test_more_rows_than_max_rows_is_refused_naming_the_limit():
    lines = [f"CG-{i:03d},土豆,3,," for i in range(11)]
    assert parse(csv_bytes(DEM_HEADER_ZH, *lines), policy=SpreadsheetPolicy(max_rows=11)).ok
    with pytest.raises(InvalidInput) as info:
        parse(csv_bytes(DEM_HEADER_ZH, *lines), policy=SpreadsheetPolicy(max_rows=10))
    assert info.value.field == "content"
    assert "数据行数超过上限10行" in info.value.message and "more than 10 data rows" in info.value.message


def test_max_rows_stops_reading_a_huge_file_early(monkeypatch):
    lines = [f"CG-{i},土豆,3,," for i in range(5_000)]
    read: list[int] = []
    real = within_limits
    monkeypatch.setattr(parse_module, "within_limits",
                        lambda n, cells, policy: read.append(n) or real(n, cells, policy))
    with pytest.raises(InvalidInput, match="more than 100 data rows"):
        parse(csv_bytes(DEM_HEADER_ZH, *lines), policy=SpreadsheetPolicy(max_rows=100))
    assert len(read) < 200


def test_progress_is_reported_every_500_rows_and_at_the_end():
    lines = [f"CG-{i},土豆,3,," for i in range(1_234)]
    calls: list[tuple[int, int]] = []
    result = parse(csv_bytes(DEM_HEADER_ZH, *lines), progress=lambda d, t: calls.append((d, t)))
    assert result.ok
    assert calls == [(500, 1234), (1000, 1234), (1234, 1234)]

    calls.clear()
    parse(csv_bytes(DEM_HEADER_ZH, *lines[:1000]), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(500, 1000), (1000, 1000)]


# --- XLSX ------------------------------------------------------------------------------------


def test_xlsx_with_date_cells_and_numeric_cells():
    content = xlsx_bytes([
        ["村居编号", "物资名称", "数量", "配送日期"],
        ["CG-001", "土豆", 12.0, datetime(2026, 11, 29)],
        ["CG-001", "洋葱", 12.5, datetime(2026, 11, 29)],
        [101.0, "大米(10公斤袋)", 7, "2026/11/30"],
        [None, None, None, None],
        ["CG-001", "鸡蛋(30枚盒)", True, date(2026, 11, 29)],
    ])
    result = parse(content, fmt="xlsx")
    assert result.rows == [
        DemandRow(row=2, requester_id="CG-001", item_code="POTATO-KG", quantity=12,
                  delivery_day=date(2026, 11, 29)),
        DemandRow(row=4, requester_id="101", item_code="RICE-10KG", quantity=7,
                  delivery_day=date(2026, 11, 30)),
    ]
    assert "quantity must be a positive integer" in error_at(result, 3, "数量").reason
    error_at(result, 6, "数量")
    assert result.rows_total == 4


def test_xlsx_date_cell_is_read_as_a_date_by_openpyxl():
    """Guards the test above: the cell really is a date cell, not text."""
    content = xlsx_bytes([["配送日期"], [datetime(2026, 11, 29)]])
    ws = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    assert isinstance(list(ws.iter_rows(values_only=True))[1][0], datetime)


def test_xlsx_picks_the_named_sheet_else_the_first_with_a_warning():
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["本表由网格员填写"])
    ws = wb.create_sheet("需求")
    ws.append(["村居编号", "物资名称", "数量"])
    ws.append(["CG-001", "土豆", 3])
    out = io.BytesIO()
    wb.save(out)
    named = parse(out.getvalue(), fmt="xlsx")
    assert named.ok and named.warnings == []
    assert named.rows[0].quantity == 3

    first = parse(xlsx_bytes([["村居编号", "物资名称", "数量"], ["CG-001", "土豆", 3]],
                             extra_sheets=("Sheet2",)), fmt="xlsx")
    assert first.ok
    assert any("only the first" in w for w in first.warnings)


def test_xlsx_english_headers_for_requesters():
    content = xlsx_bytes([
        ["id", "Name", "Kind", "Township", "Population", "Risk Level", "Lat", "Lon"],
        ["HX-101", "Hexi", "village", "Hexi", 1280, "medium", 30.31, 120.09],
    ])
    result = parse(content, fmt="xlsx", kind="requesters")
    assert result.ok, result.errors
    row = result.rows[0]
    assert (row.kind, row.population, row.risk_level, row.lat, row.lon) == (
        "village", 1280, "controlled", 30.31, 120.09)


def test_fmt_is_case_insensitive_and_may_carry_the_dot():
    content = xlsx_bytes([["村居编号", "物资名称", "数量"], ["CG-001", "土豆", 3]])
    assert parse(content, fmt=".XLSX").ok


# --- report and samples --------------------------------------------------------------------


def test_render_report_lists_every_error_with_row_and_column():
    result = parse(csv_bytes(DEM_HEADER_ZH + ",联系人", "CG-001,土豆,0,2026-11-29,,",
                             "CG-001,榴莲,3,2026-11-29,,"))
    text = render_report(result)
    assert "import check failed" in text and "upload the whole file again" in text
    lines = text.splitlines()
    assert any(ln.startswith("2 ") and "数量" in ln and "positive integer" in ln for ln in lines)
    assert any(ln.startswith("3 ") and "物资名称" in ln and "榴莲" in ln for ln in lines)
    assert "联系人" in text  # warnings too

    assert "import check passed: 1 rows" in render_report(
        parse(csv_bytes(DEM_HEADER_ZH, "CG-001,土豆,3,,")))


def test_render_report_caps_long_lists():
    lines = [f"CG-{i},土豆,0,," for i in range(80)]
    text = render_report(parse(csv_bytes(DEM_HEADER_ZH, *lines)), max_errors=10)
    assert "70 more errors" in text
    assert len(text.splitlines()) < 20


@pytest.mark.parametrize(
    ("name", "fmt", "kind", "count"),
    [
        ("requesters.csv", "csv", "requesters", 6),
        ("requesters.xlsx", "xlsx", "requesters", 6),
        ("demands_gbk.csv", "csv", "demands", 11),
        ("demands.xlsx", "xlsx", "demands", 11),
    ],
)
def test_sample_files_parse_cleanly_and_match_the_generator(name, fmt, kind, count):
    content = (SAMPLES / name).read_bytes()
    assert len(content) < 20_000
    result = parse(content, fmt=fmt, kind=kind)
    assert result.ok, render_report(result)
    assert len(result.rows) == count and result.warnings == []
    encoding = "gb18030" if "gbk" in name else "utf-8-sig"
    generated = parse(sample_spreadsheet(kind, fmt, encoding=encoding), fmt=fmt, kind=kind)
    assert generated.rows == result.rows


def test_xlsx_row_numbers_survive_blank_rows_between_data():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["村居编号", "物资名称", "数量"])
    ws["A4"], ws["B4"], ws["C4"] = "CG-1", "土豆", 0
    ws["A6"], ws["B6"], ws["C6"] = "CG-2", "洋葱", 2
    out = io.BytesIO()
    wb.save(out)
    result = parse(out.getvalue(), fmt="xlsx")
    assert [r.row for r in result.rows] == [6]
    error_at(result, 4, "数量")


# --- size limits (issue #14, finding 1): refused as a whole, naming the limit -------------------


def zipped(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return out.getvalue()


def refused(call) -> str:
    with pytest.raises(InvalidInput) as info:
        call()
    assert info.value.field == "content"
    zh, en = info.value.message.split(" / ", 1)
    assert zh and en
    return info.value.message


def test_archive_over_a_limit_is_refused_before_it_is_unpacked():
    small = SpreadsheetPolicy(max_parts=3, max_part_bytes=2 * MiB, max_unpacked_bytes=3 * MiB,
                              max_ratio=10, ratio_from_bytes=100_000)
    random = os.urandom(1_500_000)  # does not compress: ratio 1
    check_archive(zipped({"a": random, "b": b"x" * 50_000}), small)
    assert "more than 3 parts" in refused(
        lambda: check_archive(zipped({str(i): b"x" for i in range(4)}), small))
    assert "over the limit of 3 MiB (unpacked size)" in refused(
        lambda: check_archive(zipped({"a": random, "b": random, "c": random}), small))
    assert "the part big unpacks to 2.5 MiB, over the limit of 2 MiB for one part" in refused(
        lambda: check_archive(zipped({"big": os.urandom(int(2.5 * MiB))}), small))
    assert "over the limit of 10:1 (compression ratio)" in refused(
        lambda: check_archive(zipped({"zeros": bytes(200_000)}), small))


def test_xlsx_over_the_unpacked_limit_is_refused_through_parse():
    content = xlsx_bytes([["村居编号", "物资名称", "数量"], ["CG-001", "土豆", 3]])
    message = refused(lambda: parse(content, fmt="xlsx", policy=SpreadsheetPolicy(
        max_unpacked_bytes=1024)))
    assert "超过解压后大小上限" in message and "(unpacked size)" in message
    assert parse(content, fmt="xlsx").ok


def test_a_row_with_too_many_columns_is_refused_but_empty_trailing_cells_do_not_count():
    policy = SpreadsheetPolicy(max_columns=5)
    assert parse(xlsx_bytes([["村居编号", "物资名称", "数量"], ["CG-001", "土豆", 3, None, None, None,
                                                      None, "  "]]), fmt="xlsx", policy=policy).ok
    message = refused(lambda: parse(xlsx_bytes([["村居编号", "物资名称", "数量"],
                                                ["CG-001", "土豆", 3, None, None, "x"]]),
                                    fmt="xlsx", policy=policy))
    assert "row 2 has 6 columns, over the limit of 5 columns" in message


def test_a_too_long_cell_is_refused_naming_row_column_and_limit_without_quoting_it():
    policy = SpreadsheetPolicy(max_cell_chars=50)
    note = "很长" * 30
    message = refused(lambda: parse(csv_bytes(DEM_HEADER_ZH, f"CG-001,土豆,3,,{note}"), policy=policy))
    assert "the cell at row 2, column E is longer than 50 characters" in message
    assert note[:20] not in message
    huge = "x" * 200_000  # past csv's own field limit: the same refusal
    assert "longer than 1000 characters" in refused(
        lambda: parse(csv_bytes(DEM_HEADER_ZH, f"CG-001,土豆,3,,{huge}")))


def test_errors_stop_at_the_limit_and_quote_only_a_prefix_of_the_cell():
    name = "未知物资" * 100
    lines = [f"CG-{i:03d},{name},3,," for i in range(10)]
    result = parse(csv_bytes(DEM_HEADER_ZH, *lines), policy=SpreadsheetPolicy(max_errors=4))
    assert not result.ok and result.rows == [] and result.rows_total == 10
    assert [e.row for e in result.errors] == [2, 3, 4, 5, 0]
    assert "more than 4 errors: rows after row 6 were not checked" in result.errors[-1].reason
    assert all(len(e.reason) < 300 for e in result.errors), result.errors[0].reason


# --- what we write, we read back ---------------------------------------------------------------


USER_TEXT = ('=HYPERLINK("http://evil.example/","x")', "-呕吐", "+1+1", "@SUM(A1)", "'=已有撇号",
             "'普通撇号", "-5")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_sheet_we_write_has_no_live_formula_and_imports_as_the_text_that_went_out(fmt):
    table = [("村居编号", "物资名称", "数量", "配送日期", "备注")] + [
        (f"CG-{i:03d}", "土豆", 3, date(2026, 11, 29), note) for i, note in enumerate(USER_TEXT)]
    content = write_spreadsheet(table, "demands", fmt)
    if fmt == "xlsx":
        ws = openpyxl.load_workbook(io.BytesIO(content)).active
        notes = [c.value for c in ws["E"][1:]]
        assert all(c.data_type == "s" for c in ws["E"][1:])
    else:
        notes = [r[4] for r in list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))[1:]]
    assert notes == ["'" + USER_TEXT[0], "'-呕吐", "'+1+1", "'@SUM(A1)", "''=已有撇号", "''普通撇号",
                     "-5"]
    result = parse(content, fmt=fmt)
    assert result.ok, result.errors
    assert [r.note for r in result.rows] == list(USER_TEXT)


def test_only_the_apostrophe_we_add_is_taken_off_on_import():
    lines = ["CG-001,土豆,3,,'普通撇号", "CG-002,土豆,3,,'-5", "CG-003,土豆,3,,'=1+1",
             "CG-004,土豆,3,,''=1+1"]
    result = parse(csv_bytes(DEM_HEADER_ZH, *lines))
    assert [r.note for r in result.rows] == ["'普通撇号", "'-5", "=1+1", "'=1+1"]


def test_the_limits_are_settings_and_a_bad_one_names_its_variable():
    from services.common.config import ConfigError, load_settings
    from services.intake.config import spreadsheet_policy

    policy = spreadsheet_policy(load_settings("intake", {"INTAKE_IMPORT_MAX_PART_MIB": "8",
                                                         "INTAKE_IMPORT_MAX_ROWS": "20000"}))
    assert (policy.max_part_bytes, policy.max_rows) == (8 * MiB, 20_000)
    assert spreadsheet_policy(load_settings("intake", {})) == SpreadsheetPolicy()
    with pytest.raises(ConfigError, match="INTAKE_IMPORT_MAX_CELL_CHARS"):
        spreadsheet_policy(load_settings("intake", {"INTAKE_IMPORT_MAX_CELL_CHARS": "lots"}))
