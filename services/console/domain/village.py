"""What the village and grid worker pages need, from plain data: the demand form's lines and
where each service error belongs on it, and where each of the village's demands stands.
Pure functions (the page handlers fetch and render, these shape)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

MAX_FORM_LINES = 200  # SubmitDemand takes 1 … 200 lines
KEY = re.compile(r"^[A-Za-z0-9_-]{8,200}$")
# "[NON_ESSENTIAL] lines[1].item_code: 白酒…不予受理 / baijiu … not handled"
RULE_MESSAGE = re.compile(r"^\[(?P<rule>[A-Z_]+)\]\s*(?:(?P<field>[A-Za-z_][\w.\[\]]*):\s*)?(?P<text>.*)$", re.S)
LINE_PARTS = {"quantity": "quantity", "note": "note"}  # other parts of a demand line: its item
SERVICE_FIELD = re.compile(r"^(?P<list>lines)\[(?P<i>\d+)\](?:\.(?P<rest>[\w.\[\]]+))?$")


@dataclass(frozen=True)
class FormLine:
    """One line of a form as the person typed it (all text)."""

    item: str = ""
    quantity: str = ""
    note: str = ""

    @property
    def blank(self) -> bool:
        return not (self.item.strip() or self.quantity.strip() or self.note.strip())


def form_lines(form: Mapping[str, str], prefix: str = "lines") -> list[FormLine]:
    """The lines of a posted form (`lines-<i>-item`, `-quantity`, `-note`), in index order; the
    indexes need not be contiguous (a line removed in the browser leaves a gap)."""
    found: set[int] = set()
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d{{1,3}})-(item|quantity|note)$")
    for key in form:
        m = pattern.match(key)
        if m and int(m.group(1)) < MAX_FORM_LINES:
            found.add(int(m.group(1)))
    return [FormLine(str(form.get(f"{prefix}-{i}-item", ""))[:100],
                     str(form.get(f"{prefix}-{i}-quantity", ""))[:20],
                     str(form.get(f"{prefix}-{i}-note", ""))[:300]) for i in sorted(found)]


@dataclass(frozen=True)
class CatalogueEntry:
    code: str
    name_zh: str
    name_en: str
    unit: str
    group: str = ""
    group_zh: str = ""
    group_en: str = ""
    essential: bool = True
    special_need: bool = False
    package: bool = False

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh_CN" else self.name_en


def item_code(typed: str, catalogue: Mapping[str, CatalogueEntry]) -> str:
    """The catalogue code a person meant: the code itself (any case), a name in either language,
    or "CODE — name" as the picker writes it; else what was typed (intake names it unknown)."""
    text = typed.strip()
    head = re.split(r"\s+[—-]\s+", text, maxsplit=1)[0].strip()
    for candidate in (text, head):
        if candidate.upper() in catalogue:
            return candidate.upper()
    folded = text.casefold()
    for entry in catalogue.values():
        if folded in (entry.name_zh.casefold(), entry.name_en.casefold()):
            return entry.code
    return text


@dataclass
class DemandDraft:
    """The request lines built from a form, the form line each comes from, and the errors the
    console found itself (before asking intake). `errors` maps form field ids to problem codes:
    "required", "whole_number"."""

    lines: list[tuple[str, int, str]] = field(default_factory=list)
    origin: list[int] = field(default_factory=list)  # request line i comes from form line origin[i]
    errors: dict[str, str] = field(default_factory=dict)


def demand_draft(lines: list[FormLine], catalogue: Mapping[str, CatalogueEntry],
                 prefix: str = "lines") -> DemandDraft:
    """Blank lines are left out; a line with text but no item, or a quantity that is not a whole
    number, is the console's own error next to that field. Ranges (1 … 1,000,000), unknown items
    and non-essentials are left to intake, so that its rules are the only ones."""
    draft = DemandDraft()
    for i, ln in enumerate(lines):
        if ln.blank:
            continue
        if not ln.item.strip():
            draft.errors[f"{prefix}-{i}-item"] = "required"
        qty = ln.quantity.strip().replace(",", "").replace("，", "")
        if not re.fullmatch(r"[+-]?\d{1,15}", qty):
            draft.errors[f"{prefix}-{i}-quantity"] = "whole_number"
            continue
        draft.lines.append((item_code(ln.item, catalogue), int(qty), ln.note.strip()))
        draft.origin.append(i)
    if not draft.lines and not draft.errors:
        draft.errors[prefix] = "no_lines"
    return draft


@dataclass(frozen=True)
class Refusal:
    """Where a service's refusal goes on the form: `field` is a form field id ("" for the form
    as a whole), `rule` the rule code (NON_ESSENTIAL …), `text` the message in the page's
    language."""

    field: str
    rule: str
    text: str


def in_language(text: str, lang: str) -> str:
    """One side of a bilingual service text "中文 / English" (the whole text when it has one side)."""
    zh, sep, en = text.partition(" / ")
    if not sep:
        return text
    return zh.strip() if lang == "zh_CN" else en.strip()


def refusal(service_field: str, rule: str, message: str, origin: list[int], lang: str,
            prefix: str = "lines", fields: Mapping[str, str] | None = None,
            parts: Mapping[str, str] = LINE_PARTS, default_part: str = "item") -> Refusal:
    """Place a service error on the form. `service_field` comes from google.rpc.BadRequest; a
    rule refusal names its field in the message ("[NON_ESSENTIAL] lines[1].item_code: …").
    `origin` maps request line indexes back to form lines; `fields` maps other request fields
    to form field ids (e.g. "beneficiary.phone" → "beneficiary-phone")."""
    text = message
    m = RULE_MESSAGE.match(message)
    if m:
        rule = rule or m.group("rule")
        service_field = service_field or (m.group("field") or "")
        text = m.group("text")
    elif service_field and message.startswith(service_field + ":"):
        text = message[len(service_field) + 1:]
    text = in_language(text.strip(), lang)
    return Refusal(form_field(service_field, origin, prefix, fields or {}, parts, default_part), rule, text)


# Intake's INVALID_ARGUMENT messages are English; these are the ones a village worker meets,
# as a code and values the page translates ("" : show the service's text as it is).
EXPLAINED = (
    ("at_least", re.compile(r"must be >= (?P<n>-?\d+), got (?P<got>-?\d+)")),
    ("at_most", re.compile(r"must be <= (?P<n>-?\d+), got (?P<got>-?\d+)")),
    ("unknown_item", re.compile(r"unknown item code '(?P<code>[^']*)'")),
    ("repeated_item", re.compile(r"^(?P<code>\S+) repeats ")),
    ("too_long", re.compile(r"at most (?P<n>\d+) characters")),
    ("whole_number", re.compile(r"must be (?:a whole number|an integer)")),
    ("over_shipped", re.compile(r"received (?P<got>\d+) is more than shipped (?P<n>\d+)")),
    ("reason_needed", re.compile(r"a reason \(short, damaged, refused\) is required")),
)


def explain(text: str) -> tuple[str, dict[str, str]]:
    """(code, values) of a known service message, else ("", {})."""
    for code, pattern in EXPLAINED:
        m = pattern.search(text)
        if m:
            return code, m.groupdict()
    return "", {}


def form_field(service_field: str, origin: list[int], prefix: str = "lines",
               fields: Mapping[str, str] | None = None, parts: Mapping[str, str] = LINE_PARTS,
               default_part: str = "item") -> str:
    """"lines[1].quantity" → "lines-<form index>-quantity"; "lines[1].item_code" or "lines[1]"
    → the item field (`parts` and `default_part` say which form field a part of a line goes
    to); "lines" → "lines"; other fields through `fields`, else ""."""
    m = SERVICE_FIELD.match(service_field or "")
    if m:
        i = int(m.group("i"))
        form_i = origin[i] if i < len(origin) else i
        rest = (m.group("rest") or "").split(".")[0].split("[")[0]
        return f"{prefix}-{form_i}-{parts.get(rest, default_part)}"
    if service_field == "lines":
        return prefix
    return (fields or {}).get(service_field, "")


# ---- where a demand stands ------------------------------------------------------------------
@dataclass(frozen=True)
class Shipment:
    """A manifest line of a trip stopping at the village, for one demand."""

    trip_id: str
    vehicle_id: str
    eta: datetime | None
    item_code: str
    quantity: int
    delivered: bool  # the stop has been confirmed (签收)


@dataclass(frozen=True)
class Standing:
    """Where a demand stands. code: submitted, closed, allocated, not_allocated, on_trip,
    received, delivered, short, not_delivered, cancelled. `tone` is the pill's colour (ok, warn,
    bad, "")."""

    code: str
    tone: str
    carry_over: str = ""  # the demand holding the undelivered rest


def standing(status: str, carry_over_demand_id: str, cutoff_at: datetime | None, now: datetime,
             shipments: Iterable[Shipment], allocated: int | None = None) -> Standing:
    """status: intake's DemandStatus without its prefix, lower case (open, fulfilled, …).

    Intake knows open, delivered in full, partly delivered with the rest carried over, nothing
    delivered and carried over, cancelled. Logistics adds: on a trip (its lines are on an
    approved plan's trip) and received at the drop point (confirmed, intake not yet closed).
    Allocation adds what the day's approved plan gave the demand (`allocated`, its units; None
    while no plan of the day is approved): allocated, or nothing allocated (short stock)."""
    shipments = list(shipments)
    if status == "cancelled":
        return Standing("cancelled", "")
    if status == "fulfilled":
        return Standing("delivered", "ok")
    if status == "partly_fulfilled":
        return Standing("short", "warn", carry_over_demand_id)
    if status == "rolled":
        return Standing("not_delivered", "bad", carry_over_demand_id)
    if shipments and all(s.delivered for s in shipments):
        return Standing("received", "ok")
    if shipments:
        return Standing("on_trip", "ok")
    if allocated is not None:
        return Standing("allocated", "ok") if allocated > 0 else Standing("not_allocated", "bad")
    if cutoff_at is not None and now < cutoff_at:
        return Standing("submitted", "")
    return Standing("closed", "")


def minutes_until(at: datetime | None, now: datetime) -> int | None:
    """Whole minutes from now to `at` (negative once passed); None without `at`."""
    if at is None:
        return None
    return int((at - now).total_seconds() // 60)
