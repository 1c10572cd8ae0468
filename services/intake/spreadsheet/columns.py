"""The columns a list may have (their accepted headers), the words accepted for a requester's
kind and risk level, and the parsing of one cell. `BadCell` carries a bilingual reason; it never
leaves the spreadsheet package."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

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

QUOTE_CHARS = 40  # of a cell's text quoted in a reason or a warning


@dataclass(frozen=True)
class Column:
    name: str
    zh: str
    aliases: tuple[str, ...]
    required: bool = False  # the column must be present
    mandatory: bool = False  # the cell must be filled

    @property
    def label(self) -> str:
        return f"{self.zh} / {self.name}"


REQUESTER_COLUMNS = (
    Column("id", "编号", ("编号", "村居编号", "村居编码", "单位编号", "代码", "编码", "id", "code",
                       "requester_id"), required=True, mandatory=True),
    Column("name", "名称", ("名称", "村居名称", "村名称", "社区名称", "单位名称", "村居", "name"),
         required=True, mandatory=True),
    Column("kind", "类型", ("类型", "类别", "村居类型", "单位类型", "kind", "type"),
         required=True, mandatory=True),
    Column("township", "乡镇", ("乡镇", "街道", "乡镇街道", "所属乡镇", "所属街道", "township", "town"),
         required=True, mandatory=True),
    Column("population", "人口", ("人口", "常住人口", "人口数", "总人口", "population")),
    Column("households", "户数", ("户数", "总户数", "households")),
    Column("risk_level", "风险等级", ("风险等级", "风险区域", "风险", "risk_level", "risk")),
    Column("lat", "纬度", ("纬度", "lat", "latitude")),
    Column("lon", "经度", ("经度", "lon", "lng", "longitude")),
    Column("elderly_alone", "独居老人", ("独居老人", "独居老人数", "elderly_alone")),
    Column("disabled", "残疾人", ("残疾人", "残疾人数", "disabled")),
    Column("chronic_patients", "慢性病患者", ("慢性病患者", "慢性病人", "慢性病患者数",
                                          "chronic_patients")),
    Column("infants", "婴幼儿", ("婴幼儿", "婴幼儿数", "infants")),
    Column("pregnant", "孕产妇", ("孕产妇", "孕产妇数", "pregnant")),
    Column("headcount", "人数", ("人数", "在岗人数", "实有人数", "headcount")),
    Column("beds", "床位", ("床位", "床位数", "beds")),
    Column("drop_point", "物资存放点", ("物资存放点", "存放点", "drop_point")),
    Column("drop_lat", "存放点纬度", ("存放点纬度", "drop_lat")),
    Column("drop_lon", "存放点经度", ("存放点经度", "drop_lon", "drop_lng")),
)

DEMAND_COLUMNS = (
    Column("requester_id", "村居编号", ("村居编号", "需求方编号", "单位编号", "村居编码", "requester_id",
                                    "requester"), required=True, mandatory=True),
    Column("item_code", "物资编码", ("物资编码", "物资代码", "item_code")),
    Column("item_name", "物资名称", ("物资名称", "物资", "品名", "item_name", "item")),
    Column("quantity", "数量", ("数量", "需求数量", "申领数量", "quantity", "qty"),
         required=True, mandatory=True),
    Column("delivery_day", "配送日期", ("配送日期", "日期", "送达日期", "需求日期", "delivery_day",
                                     "date")),
    Column("note", "备注", ("备注", "说明", "note", "notes", "remark", "remarks")),
)

COUNT_FIELDS = ("population", "households", "elderly_alone", "disabled", "chronic_patients",
                 "infants", "pregnant", "headcount", "beds")
VULNERABLE_FIELDS = ("elderly_alone", "disabled", "chronic_patients", "infants", "pregnant")


def header_key(text: str) -> str:
    """Case/space/width-insensitive key: '  Requester ID ' == 'requester_id', '＊数量' == '数量'."""
    s = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s_\-*/、]+", "", s)


def strip_parens(key: str) -> str:
    """'数量(袋)' -> '数量', '乡镇(街道)' -> '乡镇'."""
    return re.sub(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】", "", key)


def _alias_index(cols: Sequence[Column]) -> dict[str, Column]:
    index: dict[str, Column] = {}
    for col in cols:
        for a in (*col.aliases, col.name):
            index[header_key(a)] = col
    return index


COLUMN_INDEX = {"requesters": _alias_index(REQUESTER_COLUMNS), "demands": _alias_index(DEMAND_COLUMNS)}
COLUMNS = {"requesters": REQUESTER_COLUMNS, "demands": DEMAND_COLUMNS}


def _value_index(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for code, words in table.items():
        for w in (code, *words):
            out[header_key(w)] = code
    return out


KIND_INDEX = _value_index(REQUESTER_KINDS)
RISK_INDEX = _value_index(RISK_LEVELS)



class BadCell(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def is_empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def as_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime | date):
        return v.isoformat()
    return str(v).strip()


def quote(v: Any) -> str:
    """A cell's text as a reason quotes it: its first QUOTE_CHARS characters."""
    s = as_text(v)
    return s if len(s) <= QUOTE_CHARS else s[:QUOTE_CHARS] + "…"


_INT_RE = re.compile(r"\+?(\d{1,3}(,\d{3})+|\d+)(\.0+)?")
_DEC_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def read_int(v: Any, zh: str, en: str, *, positive: bool, limit: int) -> int:
    kind_zh, kind_en = ("正整数", "a positive integer") if positive else (
        "非负整数", "a non-negative integer")
    bad = BadCell(f"{zh}必须为{kind_zh} / {en} must be {kind_en}")
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
        raise BadCell(f"{zh}超过上限{limit} / {en} exceeds the limit {limit}")
    return n


def read_float(v: Any, zh: str, en: str, lo: float, hi: float) -> float:
    bad = BadCell(f"{zh}必须为{lo:g}到{hi:g}之间的数字 / {en} must be a number from {lo:g} to {hi:g}")
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


def read_day(v: Any) -> date:
    bad = BadCell("配送日期格式无效(应为2026-11-29) / delivery_day is not a valid date (e.g. 2026-11-29)")
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


def read_choice(v: Any, index: dict[str, str], table: dict[str, tuple[str, ...]],
            zh: str, en: str) -> str:
    code = index.get(header_key(as_text(v)))
    if code is None:
        allowed_zh = ", ".join(f"{words[0]}" for words in table.values())
        allowed_en = ", ".join(table)
        raise BadCell(f"{zh}无效'{quote(v)}',可选: {allowed_zh} / "
                   f"unknown {en} '{quote(v)}', allowed: {allowed_en}")
    return code


def read_text(v: Any, zh: str, en: str, limit: int) -> str:
    s = as_text(v)
    if len(s) > limit:
        raise BadCell(f"{zh}超过{limit}个字符 / {en} is longer than {limit} characters")
    return s
