"""Issue #14, finding 1: a hostile spreadsheet through intake's public ImportSpreadsheet call of a
real API process. A 0.1 MB XLSX with one 100 MB shared string, a huge or over-compressed zip
member, too many rows or columns, a too-long cell: each refused with INVALID_ARGUMENT naming the
limit and its value, the API's memory flat, the answer small, and the service still serving."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator

import grpc
import openpyxl
import pytest
from supply.v1 import intake_pb2 as pb

from services.intake.spreadsheet.write import sample_spreadsheet
from tests.support.intake import Intake, key, make_env, migrate, start_api

MiB = 1024 * 1024
# the documented defaults (docs/security.md, "Spreadsheet limits")
MAX_UNPACKED_MIB, MAX_PART_MIB, MAX_RATIO = 24, 16, 100
MAX_ROWS, MAX_COLUMNS, MAX_CELL_CHARS, MAX_ERRORS = 50_000, 50, 1_000, 1_000


@pytest.fixture(scope="module")
def intake(tmp_path_factory, amqp_url):
    tmp = tmp_path_factory.mktemp("intake-sheet-limits")
    env = make_env(tmp / "var", amqp_url)
    migrate(env)
    proc = start_api(env, tmp)
    client = Intake(env)
    client.proc = proc
    yield client
    client.close()
    assert proc.stop() == 0, proc.log()[-3000:]


# ---- building files ----------------------------------------------------------------------
def workbook(rows: list[list]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "需求"
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


Part = bytes | Callable[[], Iterator[bytes]]


def rezip(xlsx: bytes, parts: dict[str, Part]) -> bytes:
    """`xlsx` with some parts replaced or added; a callable part is written chunk by chunk, so
    a 100 MB part never sits in the test's memory."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            if info.filename not in parts:
                dst.writestr(info.filename, src.read(info.filename))
        for name, part in parts.items():
            with dst.open(name, "w", force_zip64=True) as f:
                for chunk in ([part] if isinstance(part, bytes) else part()):
                    f.write(chunk)
    return out.getvalue()


def zeros(n: int) -> Callable[[], Iterator[bytes]]:
    return lambda: (b"\0" * min(MiB, n - i) for i in range(0, n, MiB))


SHARED_STRINGS = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def spreadsheet_bomb(string_mb: int = 100) -> bytes:
    """A valid demand list (as Excel writes it: cells refer to xl/sharedStrings.xml) whose one
    item-name cell is a shared string of `string_mb` MB."""
    base = workbook([["村居编号", "物资名称", "数量"], ["CG-001", "BOMB", 3]])
    with zipfile.ZipFile(io.BytesIO(base)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        types = z.read("[Content_Types].xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
    strings: list[str] = []

    def shared(m: re.Match) -> str:
        strings.append(m[2])
        return f'{m[1]} t="s"><v>{len(strings) - 1}</v></c>'

    sheet = re.sub(r'(<c r="[A-Z]+\d+") t="inlineStr"><is><t>([^<]*)</t></is></c>', shared, sheet)
    types = types.replace("</Types>", f'<Override PartName="/xl/sharedStrings.xml" '
                                      f'ContentType="{SHARED_STRINGS}" /></Types>')
    rels = rels.replace("</Relationships>", '<Relationship Id="rIdSST" Target="sharedStrings.xml" '
                        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
                        'sharedStrings" /></Relationships>')

    def shared_strings() -> Iterator[bytes]:
        yield (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns='
               f'"http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{len(strings)}" '
               f'uniqueCount="{len(strings)}">').encode()
        for s in strings:
            if s == "BOMB":
                yield b"<si><t>"
                for _ in range(string_mb):
                    yield b"a" * 1_000_000
                yield b"</t></si>"
            else:
                yield f"<si><t>{s}</t></si>".encode()
        yield b"</sst>"

    return rezip(base, {"xl/worksheets/sheet1.xml": sheet.encode(), "[Content_Types].xml": types.encode(),
                        "xl/_rels/workbook.xml.rels": rels.encode(), "xl/sharedStrings.xml": shared_strings})


# ---- calling the API ---------------------------------------------------------------------
def import_(intake: Intake, content: bytes, fmt=pb.SPREADSHEET_FORMAT_XLSX,
            kind=pb.IMPORT_KIND_DEMANDS) -> list[pb.ImportProgress]:
    return list(intake.ImportSpreadsheet(pb.ImportSpreadsheetRequest(
        idempotency_key=key(), content=content, format=fmt, kind=kind, all_or_nothing=True),
        timeout=120))


def refusal(intake: Intake, content: bytes, fmt=pb.SPREADSHEET_FORMAT_XLSX) -> str:
    with pytest.raises(grpc.RpcError) as info:
        import_(intake, content, fmt)
    err = info.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details()[:500])
    details = err.details()
    assert details.startswith("content:"), details[:500]
    assert len(details) < 1_000, len(details)
    assert re.search(r"[\u4e00-\u9fff]", details) and " / " in details, details  # 中文 / English
    return details


def memory_kb(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in f) if k in ("VmRSS", "VmHWM")}


def assert_still_imports(intake: Intake) -> None:
    report = import_(intake, sample_spreadsheet("requesters", "xlsx"),
                     kind=pb.IMPORT_KIND_REQUESTERS)[-1].report
    assert report.committed and report.rows_accepted == 6 and not report.errors, report


# ---- the tests ---------------------------------------------------------------------------
def test_the_spreadsheet_bomb_is_refused_naming_the_limit_and_memory_stays_flat(intake):
    bomb = spreadsheet_bomb(100)
    assert len(bomb) < 200_000  # what the attacker sends: about 0.1 MB
    assert_still_imports(intake)  # warm: openpyxl loaded, pools filled
    before = memory_kb(intake.proc.proc.pid)

    details = refusal(intake, bomb)

    assert f"{MAX_UNPACKED_MIB} MiB" in details, details
    after = memory_kb(intake.proc.proc.pid)
    assert after["VmHWM"] - before["VmHWM"] < 100 * 1024, (before, after)
    assert after["VmRSS"] - before["VmRSS"] < 100 * 1024, (before, after)
    assert_still_imports(intake)


def test_one_huge_member_is_refused_naming_the_part_limit(intake):
    content = rezip(workbook([["村居编号", "物资名称", "数量"], ["CG-001", "土豆", 3]]),
                    {"xl/media/image1.bin": zeros((MAX_PART_MIB + 4) * MiB)})
    details = refusal(intake, content)
    assert f"{MAX_PART_MIB} MiB" in details and "xl/media/image1.bin" in details, details


def test_a_zip_bomb_ratio_is_refused_naming_the_ratio_limit(intake):
    content = rezip(workbook([["村居编号", "物资名称", "数量"], ["CG-001", "土豆", 3]]),
                    {"xl/media/image1.bin": zeros(4 * MiB)})
    details = refusal(intake, content)
    assert f"{MAX_RATIO}:1" in details, details


def test_too_many_rows_is_refused_naming_the_row_limit(intake):
    lines = ["村居编号,物资名称,数量"] + [f"CG-{i},土豆,3" for i in range(MAX_ROWS + 1)]
    details = refusal(intake, "\n".join(lines).encode(), fmt=pb.SPREADSHEET_FORMAT_CSV)
    assert f"{MAX_ROWS}" in details, details


def test_too_many_columns_is_refused_naming_the_column_limit(intake):
    wide = ["CG-001", "土豆", 3] + [None] * (MAX_COLUMNS + 5) + ["x"]
    details = refusal(intake, workbook([["村居编号", "物资名称", "数量"], wide]))
    assert f"{MAX_COLUMNS}" in details, details


def test_a_too_long_cell_is_refused_naming_the_cell_limit(intake):
    long_note = "很长的备注" * 1_000  # 5,000 characters
    content = workbook([["村居编号", "物资名称", "数量", "备注"], ["CG-001", "土豆", 3, long_note]])
    details = refusal(intake, content)
    assert f"{MAX_CELL_CHARS}" in details and long_note[:100] not in details, details


def test_the_answer_stays_small_however_many_rows_are_bad(intake):
    name = "X" * 900  # under the cell limit, but quoted in every row's error today
    lines = ["村居编号,物资名称,数量"] + [f"CG-{i},{name},3" for i in range(5_000)]
    messages = import_(intake, "\n".join(lines).encode(), fmt=pb.SPREADSHEET_FORMAT_CSV)
    report = messages[-1].report
    assert not report.committed
    assert report.ByteSize() < 512 * 1024, report.ByteSize()
    assert len(report.errors) <= MAX_ERRORS + 1, len(report.errors)
    assert all(name[:100] not in e.reason for e in report.errors)
    [whole_file] = [e for e in report.errors if e.row == 0]  # listed first
    assert f"more than {MAX_ERRORS} errors" in whole_file.reason, whole_file
    assert_still_imports(intake)
