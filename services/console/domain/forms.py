"""Forms of the depot keeper's, the inspector's and the units' pages, as plain data: repeated
line fields read back row by row, a service's field path ("lines[2].quantity") turned into the
id of the input the person typed it in, a rule refusal placed on the line it is about, and the
half of a bilingual service message ("中文 / English") for the page's language. Pure functions."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

LINE_FIELD = re.compile(r"^lines\[(\d+)\]\.?(.*)$")


def half(text: str, lang: str) -> str:
    """The Chinese or the English half of "中文 / English" (the whole text when not bilingual)."""
    if " / " not in text:
        return text
    zh, en = text.split(" / ", 1)
    return zh if lang == "zh_CN" else en


def rule_text(message: str, lang: str) -> str:
    """A FAILED_PRECONDITION message without its "[RULE] " prefix, in the page's language."""
    return half(re.sub(r"^\[[A-Z_]+\]\s*", "", message), lang)


def field_text(message: str, lang: str) -> str:
    """An INVALID_ARGUMENT message without its "field: " prefix."""
    return half(message.split(": ", 1)[-1], lang)


def whole_number(raw: str, *, lo: int = 1, hi: int = 10_000_000) -> int | None:
    """An integer lo … hi typed by a person (spaces and thousands separators allowed), else None."""
    text = re.sub(r"[\s,，]", "", raw or "")
    if not re.fullmatch(r"\d{1,12}", text):
        return None
    value = int(text)
    return value if lo <= value <= hi else None


@dataclass
class Lines:
    """Repeated fields of a form (item_code[], quantity[] …) as rows. `rows` keeps every row as
    typed (blank ones too, for showing the form again); `sent` maps the position of a line in
    the request to its row, so that "lines[1].quantity" lands on the row the person used."""

    names: tuple[str, ...]
    rows: list[dict[str, str]]
    sent: list[int] = field(default_factory=list)

    @classmethod
    def read(cls, form, names: Sequence[str], min_rows: int = 1) -> Lines:
        columns = [[str(v).strip() for v in form.getlist(n)] for n in names]
        count = max([min_rows, *(len(c) for c in columns)])
        rows = [{n: (col[i] if i < len(col) else "") for n, col in zip(names, columns, strict=True)}
                for i in range(count)]
        return cls(tuple(names), rows)

    @classmethod
    def blank(cls, names: Sequence[str], count: int) -> Lines:
        return cls(tuple(names), [dict.fromkeys(names, "") for _ in range(count)])

    def filled(self) -> list[tuple[int, dict[str, str]]]:
        """(row, values) of the rows with anything typed in them; remembers their order."""
        out = [(i, r) for i, r in enumerate(self.rows) if any(r.values())]
        self.sent = [i for i, _ in out]
        return out

    def input_id(self, service_field: str, rename: Mapping[str, str] | None = None) -> str | None:
        """The id of the input a service's field path names ("lines[1].quantity" → "line-3-quantity"
        when request line 1 came from row 3); None when the path is not about a line."""
        m = LINE_FIELD.match(service_field)
        if not m or int(m.group(1)) >= len(self.sent):
            return None
        name = m.group(2).split(".")[0].split("[")[0]
        name = (rename or {}).get(name, name)
        if name not in self.names:
            name = self.names[0]
        return f"line-{self.sent[int(m.group(1))]}-{name}"


def line_named_by(message: str, rows: Sequence[tuple[int, Mapping[str, str]]],
                  names: Mapping[str, tuple[str, str]]) -> int | None:
    """The row a rule refusal of a receipt is about. The service names the zone, the lot number or
    the item (by its Chinese and English names) in the message but not the line, and refuses the
    first line that breaks a rule: so the first row whose zone, lot or item the message names."""
    best, score = None, 0
    for i, r in rows:
        s = 0
        if r.get("zone_id") and re.search(rf"(?<![\w-]){re.escape(r['zone_id'])}(?![\w-])", message):
            s += 2
        if r.get("lot_number") and r["lot_number"] in message:
            s += 2
        zh, en = names.get(r.get("item_code", ""), ("", ""))
        if (zh and zh in message) or (en and en in message) or (r.get("item_code") and r["item_code"] in message):
            s += 1
        if s > score:
            best, score = i, s
    return best


def signature_ref(*parts: object) -> str:
    """proof_ref of a proof of delivery signed in the console: "signature:" + sha256 of the
    confirmation as recorded (trip, stop, receiver, time, quantities)."""
    body = json.dumps([str(p) if not isinstance(p, (list, tuple, dict, int)) else p for p in parts],
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "signature:" + hashlib.sha256(body.encode()).hexdigest()
