"""The public disclosure lists (定期公开) as data: allocation's GetDailyReport serves them as one
self-contained HTML page (services/reports/disclosure.py: every cell and title html-escaped). The
console does not inject that HTML; it reads its headings, notes and tables back into plain
text here and renders them in its own escaped templates. Pure (no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass
class DisclosureTable:
    caption: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)  # per column: every cell is a number


@dataclass
class DisclosureSection:
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[DisclosureTable] = field(default_factory=list)


@dataclass
class Disclosure:
    title: str = ""
    intro: str = ""
    sections: list[DisclosureSection] = field(default_factory=list)
    footer: str = ""


class _Reader(HTMLParser):
    """h1, the intro p, then per list: h2, optional p notes, h3 captions, tables (p.none: an
    empty list). Text only; any other markup is ignored."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = Disclosure()
        self.text: list[str] | None = None
        self.tag = ""
        self.caption = ""
        self.table: DisclosureTable | None = None
        self.row: list[str] | None = None
        self.in_head = False
        self.empty = False  # inside <p class=none>: the list has no rows

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3", "p", "footer", "th", "td", "title", "style"):
            self.text, self.tag = [], tag
            self.empty = tag == "p" and ("class", "none") in attrs
        elif tag == "table":
            self.table = DisclosureTable(caption=self.caption)
            self.caption = ""
        elif tag == "thead":
            self.in_head = True
        elif tag == "tr" and self.table is not None:
            self.row = []

    def handle_data(self, data):
        if self.text is not None:
            self.text.append(data)

    def handle_endtag(self, tag):
        if tag == "thead":
            self.in_head = False
        elif tag == "tr" and self.table is not None and self.row is not None:
            if self.in_head:
                self.table.headers = self.row
            else:
                self.table.rows.append(self.row)
            self.row = None
        elif tag == "table" and self.table is not None:
            self._section().tables.append(self.table)
            self.table = None
        elif tag == self.tag and self.text is not None:
            text = " ".join("".join(self.text).split())
            self.text, self.tag = None, ""
            self._close(tag, text)

    def _section(self) -> DisclosureSection:
        if not self.out.sections:
            self.out.sections.append(DisclosureSection(""))
        return self.out.sections[-1]

    def _close(self, tag: str, text: str) -> None:
        if tag in ("th", "td") and self.row is not None:
            self.row.append(text)
        elif tag == "h1":
            self.out.title = text
        elif tag == "h2":
            self.out.sections.append(DisclosureSection(text))
        elif tag == "h3":
            self.caption = text
        elif tag == "p" and self.empty:
            self._section().tables.append(DisclosureTable(caption=self.caption))
            self.caption = ""
        elif tag == "p" and not self.out.sections:
            self.out.intro = text
        elif tag == "p":
            self._section().notes.append(text)
        elif tag == "footer":
            self.out.footer = text


def parse(html_text: str) -> Disclosure:
    reader = _Reader()
    reader.feed(html_text)
    reader.close()
    for section in reader.out.sections:
        for t in section.tables:
            t.numeric = [bool(t.rows) and all(re.fullmatch(r"-?\d+(\.\d+)?", r[i]) for r in t.rows if i < len(r))
                         for i in range(len(t.headers))]
    return reader.out


def without_day_column(d: Disclosure, day: str) -> Disclosure:
    """The lists without their "日期 Day" column where every row is of `day` (the page says it once)."""
    for section in d.sections:
        for t in section.tables:
            if t.headers and t.headers[0].startswith("日期") and all(r[:1] == [day] for r in t.rows):
                t.headers, t.numeric = t.headers[1:], t.numeric[1:]
                t.rows = [r[1:] for r in t.rows]
    return d


def header_in(text: str, lang: str) -> str:
    """A report header "日期 Day" in one language ("日期" or "Day"); as it is when not of that form."""
    zh, sep, en = text.partition(" ")
    if not sep or not CJK.search(zh) or CJK.search(en):
        return text
    return zh if lang == "zh_CN" else en


def title_in(text: str, lang: str) -> str:
    """A bilingual title "采购与调入 / Procurement …" in one language."""
    parts = re.split(r"\s*/\s+", text, maxsplit=1)
    if len(parts) < 2 or not CJK.search(parts[0]):
        return text
    return parts[0].strip() if lang == "zh_CN" else parts[1].strip()
