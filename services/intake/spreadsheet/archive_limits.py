"""Refusals of a file over a size limit: not a row problem, the whole request is refused (an
XLSX's parts are checked before any is unpacked)."""

from __future__ import annotations

import io
import zipfile

from services.common.errors import InvalidInput
from services.intake.spreadsheet.columns import quote
from services.intake.spreadsheet.policy import DEFAULT_POLICY, MiB, SpreadsheetPolicy
from services.intake.spreadsheet.rows import FileError

_ZIP_ENTRY = b"PK\x01\x02"  # a central directory entry: one per part


def refused(zh: str, en: str) -> InvalidInput:
    """The file is over a limit: not a row problem, the whole request is refused."""
    return InvalidInput("content", f"{zh} / {en}")


def _mib(n: int) -> str:
    return f"{n / MiB:.1f}"


def cell_too_long(n: int, column: int | None, policy: SpreadsheetPolicy) -> InvalidInput:
    limit = policy.max_cell_chars
    if column is None:
        return refused(f"第{n}行有单元格超过{limit}个字符(单元格长度上限)",
                        f"a cell in row {n} is longer than {limit} characters (the limit per cell)")
    from openpyxl.utils import get_column_letter

    col = get_column_letter(column + 1)
    return refused(f"第{n}行{col}列的单元格超过{limit}个字符(单元格长度上限)",
                    f"the cell at row {n}, column {col} is longer than {limit} characters (the "
                    f"limit per cell)")


def too_many_rows(policy: SpreadsheetPolicy) -> InvalidInput:
    return refused(f"数据行数超过上限{policy.max_rows}行,请拆分文件",
                    f"more than {policy.max_rows} data rows (the limit); split the file")


def check_archive(content: bytes, policy: SpreadsheetPolicy = DEFAULT_POLICY) -> None:
    """Refuse an XLSX whose parts would unpack past the policy's limits, before any is unpacked:
    every part's declared size (zipfile stops at it), their total and their compression ratio."""
    if content.count(_ZIP_ENTRY) > policy.max_parts:  # before zipfile lists them all
        raise refused(f"XLSX文件的部件超过上限{policy.max_parts}个",
                       f"the XLSX file has more than {policy.max_parts} parts (the limit)")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            parts = archive.infolist()
    except Exception:  # untrusted file: any failure of the reader is a file-level error
        raise FileError("无法读取XLSX文件,文件可能已损坏 / cannot read the XLSX file; "
                         "it may be damaged") from None
    total, limit = sum(p.file_size for p in parts), policy.max_unpacked_bytes
    if total > limit:
        raise refused(f"文件解压后为{_mib(total)} MiB,超过解压后大小上限{limit / MiB:g} MiB",
                       f"the file unpacks to {_mib(total)} MiB, over the limit of "
                       f"{limit / MiB:g} MiB (unpacked size)")
    for part in parts:
        name = quote(part.filename)
        if part.file_size > policy.max_part_bytes:
            limit = policy.max_part_bytes
            raise refused(f"文件中的部件{name}解压后为{_mib(part.file_size)} MiB,超过单个部件上限"
                           f"{limit / MiB:g} MiB",
                           f"the part {name} unpacks to {_mib(part.file_size)} MiB, over the limit "
                           f"of {limit / MiB:g} MiB for one part")
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > policy.ratio_from_bytes and ratio > policy.max_ratio:
            raise refused(f"文件中的部件{name}压缩比为{ratio:.0f}:1,超过压缩比上限{policy.max_ratio}:1,"
                           f"疑似压缩炸弹",
                           f"the part {name} is packed {ratio:.0f}:1, over the limit of "
                           f"{policy.max_ratio}:1 (compression ratio); it looks like a zip bomb")
