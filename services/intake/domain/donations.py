"""Donations (捐赠物资, 篇6 §二3, 篇9 §四): registration on arrival, inspection, daily summary.

Each line is inspected once: accept (meets the standard → stock; medicine and protective
items record whether they are medical grade), redirect (not medical grade but usable → to
another department or use), return (unqualified → back to the donor). A line already expired
on arrival can be registered (the record of what arrived is kept) but only returned.
A line is one lot of one item, and a lot is on one line only: a line repeating an earlier
line's item and lot (case and blanks aside) is refused as a demand's repeated item is, whatever
its quantity, expiry or certificates (one lot with two expiries is a typing error). The lot is
judged as a whole; damaged cartons of an accepted lot are written off or returned in the depot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from services.common.catalogue import Catalogue
from services.common.errors import InvalidInput, NotFound

from . import rules
from .demands import non_essential_refusal
from .fields import as_choice, as_date, as_id, as_int, as_text, get, is_blank, require_aware
from .personal_data import mask_contact, mask_name
from .policy import DonationPolicy

DEFAULT_DONATION_POLICY = DonationPolicy()


class DonorKind(StrEnum):
    ORGANIZATION = "organization"
    PERSON = "person"


DONOR_KIND_ALIASES = {"org": DonorKind.ORGANIZATION, "单位": DonorKind.ORGANIZATION,
                      "企业": DonorKind.ORGANIZATION, "机构": DonorKind.ORGANIZATION,
                      "个人": DonorKind.PERSON}


class InspectionDecision(StrEnum):
    ACCEPT = "accept"        # meets the standard → stock
    REDIRECT = "redirect"    # not medical grade but usable → another department / use
    RETURN = "return"        # unqualified → back to the donor


class DonationStatus(StrEnum):
    REGISTERED = "registered"
    PARTLY_INSPECTED = "partly_inspected"
    INSPECTED = "inspected"


@dataclass(frozen=True)
class Donor:
    name: str
    contact: str
    kind: DonorKind

    @property
    def masked_contact(self) -> str:
        return mask_contact(self.contact)

    @property
    def display_name(self) -> str:
        """Public name: an organisation in full, a person masked (张**)."""
        return self.name if self.kind is DonorKind.ORGANIZATION else mask_name(self.name)


@dataclass(frozen=True)
class Inspection:
    """Result of inspecting one line. medical_grade: for medicine / protective items that
    are accepted, whether they meet the medical standard; None otherwise. redirect_to: where
    a redirected line goes."""

    decision: InspectionDecision
    reason: str
    inspector: str
    at: datetime
    medical_grade: bool | None = None
    redirect_to: str = ""


@dataclass(frozen=True)
class DonationLine:
    line_no: int
    item_code: str
    quantity: int
    lot: str
    expiry: date
    certificates: tuple[str, ...] = ()
    production_date: date | None = None
    expired_on_arrival: bool = False
    inspection: Inspection | None = None


@dataclass(frozen=True)
class Donation:
    """A donation as registered on arrival.

    Targeted (定向) when it names a target requester or a target use; otherwise it goes to
    the central store. registered_by: the depot keeper or clerk who registered it.
    """

    id: str
    donor: Donor
    lines: tuple[DonationLine, ...]
    received_at: datetime
    registered_by: str
    target_requester_id: str | None = None
    target_use: str = ""
    note: str = ""

    @property
    def targeted(self) -> bool:
        return bool(self.target_requester_id or self.target_use)

    @property
    def status(self) -> DonationStatus:
        done = sum(1 for ln in self.lines if ln.inspection is not None)
        if done == 0:
            return DonationStatus.REGISTERED
        return DonationStatus.INSPECTED if done == len(self.lines) else DonationStatus.PARTLY_INSPECTED


def _donor(raw: Any) -> Donor:
    if raw is None:
        raise InvalidInput("donor", "is required")
    return Donor(
        name=as_text(get(raw, "name"), "donor.name", max_len=200),
        contact=as_text(get(raw, "contact"), "donor.contact", max_len=200),
        kind=as_choice(get(raw, "kind"), "donor.kind", DonorKind, DONOR_KIND_ALIASES),
    )


def _lines(raw_lines: Sequence[Any] | None, catalogue: Catalogue, received_day: date,
           policy: DonationPolicy) -> tuple[DonationLine, ...]:
    items = list(raw_lines or ())
    if not items:
        raise InvalidInput("lines", "at least one line is required")
    if len(items) > policy.max_lines:
        raise InvalidInput("lines", f"at most {policy.max_lines} lines, got {len(items)}")
    out = []
    seen: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(items):
        f = f"lines[{i}]"
        code = as_text(get(raw, "item_code"), f"{f}.item_code", max_len=64)
        item = catalogue.items.get(code) or catalogue.items.get(code.upper())
        if item is None:
            raise InvalidInput(f"{f}.item_code",
                               f"unknown item code {code!r} (catalogue {catalogue.version})")
        if not item.essential:
            raise non_essential_refusal(item, f"{f}.item_code")
        qty = as_int(get(raw, "quantity"), f"{f}.quantity", min_value=1,
                     max_value=policy.max_quantity)
        lot = as_text(get(raw, "lot"), f"{f}.lot", max_len=64)
        same = seen.setdefault((item.code, lot.casefold()), i)
        if same != i:
            raise InvalidInput(f"{f}.lot", f"lot {lot} of {item.code} repeats lines[{same}]; "
                                           f"put the whole quantity of a lot on one line")
        expiry = as_date(get(raw, "expiry"), f"{f}.expiry")
        prod_raw = get(raw, "production_date")
        production = None if is_blank(prod_raw) else as_date(prod_raw, f"{f}.production_date")
        if production is not None and production > expiry:
            raise InvalidInput(f"{f}.production_date", "must not be after the expiry date")
        if production is not None and production > received_day:
            raise InvalidInput(f"{f}.production_date", "must not be after the day of arrival")
        certs_raw = list(get(raw, "certificates") or ())
        if len(certs_raw) > policy.max_certificates:
            raise InvalidInput(f"{f}.certificates", f"at most {policy.max_certificates}")
        certs = tuple(as_text(c, f"{f}.certificates[{j}]", max_len=200)
                      for j, c in enumerate(certs_raw))
        out.append(DonationLine(
            line_no=i, item_code=item.code, quantity=qty, lot=lot, expiry=expiry,
            certificates=certs, production_date=production,
            expired_on_arrival=expiry < received_day,
        ))
    return tuple(out)


def register_donation(*, donation_id: str, donor: Any, lines: Sequence[Any],
                      catalogue: Catalogue, received_at: datetime, registered_by: str,
                      target_requester_id: str | None = None, target_use: str = "",
                      note: str = "", policy: DonationPolicy = DEFAULT_DONATION_POLICY) -> Donation:
    """Register a donation on arrival.

    donor: mapping/object with name, contact, kind (organization | person). lines: mappings
    or objects with item_code, quantity, lot, expiry (YYYY-MM-DD), certificates (list of
    certificate references), production_date (optional). Non-essential items are refused
    (NON_ESSENTIAL), a repeated lot of an item too (InvalidInput lines[i].lot); expired lines
    are registered with expired_on_arrival=True.
    """
    require_aware(received_at)
    day = policy.local_day(received_at)
    return Donation(
        id=donation_id, donor=_donor(donor),
        lines=_lines(lines, catalogue, day, policy),
        received_at=received_at,
        registered_by=as_text(registered_by, "registered_by", max_len=100),
        target_requester_id=None if is_blank(target_requester_id) else as_id(
            target_requester_id, "target_requester_id"),
        target_use=as_text(target_use, "target_use", required=False, max_len=200),
        note=as_text(note, "note", required=False, max_len=500),
    )


def inspect_line(donation: Donation, line_no: int, *, decision: Any, reason: str,
                 inspector: str, at: datetime, catalogue: Catalogue,
                 medical_grade: bool | None = None, redirect_to: str = "",
                 policy: DonationPolicy = DEFAULT_DONATION_POLICY) -> Donation:
    """Record the inspection of one line; returns the updated donation.

    NotFound for a line number the donation does not have; ALREADY_INSPECTED for a line
    inspected before; SEPARATION_OF_DUTIES when the inspector registered the donation (the
    inspection checks the registration, as 篇9 §四 has other departments appraise what the
    donation store received); EXPIRED_ON_ARRIVAL when an expired line is not returned. InvalidInput:
    decision, reason (required), inspector (required), medical_grade (required when accepting
    a medicine or protective item, refused for other items), redirect_to (required to
    redirect).
    """
    require_aware(at)
    if isinstance(line_no, bool) or not isinstance(line_no, int) or not 0 <= line_no < len(donation.lines):
        raise NotFound(f"donation {donation.id} has no line {line_no!r} "
                       f"(lines 0..{len(donation.lines) - 1})")
    line = donation.lines[line_no]
    if line.inspection is not None:
        raise rules.refuse(rules.ALREADY_INSPECTED, f"捐赠{donation.id}第{line_no}行已检验",
                           f"line {line_no} of donation {donation.id} was already inspected "
                           f"({line.inspection.decision.value})", field="line_no")
    dec = as_choice(decision, "decision", InspectionDecision)
    text = as_text(reason, "reason", max_len=500)
    who = as_text(inspector, "inspector", max_len=100)
    if rules.same_person(who, donation.registered_by):
        raise rules.refuse(rules.SEPARATION_OF_DUTIES,
                           f"登记人不能检验本人登记的捐赠{donation.id}, 须由他人检验",
                           f"{who} registered donation {donation.id} and may not inspect it; "
                           f"another person must")
    if line.expired_on_arrival and dec is not InspectionDecision.RETURN:
        raise rules.refuse(rules.EXPIRED_ON_ARRIVAL,
                           f"该批次{line.lot}到货时已过期({line.expiry}), 只能退回",
                           f"lot {line.lot} had expired on arrival ({line.expiry}); it can "
                           f"only be returned", field="decision")
    medical = catalogue.item(line.item_code).group in policy.medical_grade_groups
    grade: bool | None = None
    if dec is InspectionDecision.ACCEPT and medical:
        if not isinstance(medical_grade, bool):
            raise InvalidInput("medical_grade", "required when accepting medicine or protective "
                                                "items: does the lot meet the medical standard?")
        grade = medical_grade
    elif medical_grade is not None:
        raise InvalidInput("medical_grade", "only for accepted medicine or protective items")
    target = as_text(redirect_to, "redirect_to", required=dec is InspectionDecision.REDIRECT,
                     max_len=200)
    if target and dec is not InspectionDecision.REDIRECT:
        raise InvalidInput("redirect_to", "only for the redirect decision")
    done = replace(line, inspection=Inspection(dec, text, who, at, grade, target))
    lines = donation.lines[:line_no] + (done,) + donation.lines[line_no + 1:]
    return replace(donation, lines=lines)


@dataclass(frozen=True)
class Tally:
    lines: int = 0
    quantity: int = 0

    def add(self, quantity: int) -> Tally:
        return Tally(self.lines + 1, self.quantity + quantity)


@dataclass(frozen=True)
class ItemDaySummary:
    item_code: str
    received: Tally = field(default_factory=Tally)
    accepted: Tally = field(default_factory=Tally)
    redirected: Tally = field(default_factory=Tally)
    returned: Tally = field(default_factory=Tally)


@dataclass(frozen=True)
class DonationDaySummary:
    """一日一汇总: for one local day, per item, lines and quantities received (registered
    that day) and accepted / redirected / returned (inspected that day)."""

    day: date
    donations_received: int
    items: tuple[ItemDaySummary, ...]


_DECISION_FIELD = {InspectionDecision.ACCEPT: "accepted", InspectionDecision.REDIRECT: "redirected",
                   InspectionDecision.RETURN: "returned"}


def daily_summary(donations: Iterable[Donation], day: date,
                  policy: DonationPolicy = DEFAULT_DONATION_POLICY) -> DonationDaySummary:
    tallies: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    received = 0
    for d in donations:
        arrived = policy.local_day(d.received_at) == day
        received += arrived
        for ln in d.lines:
            if arrived:
                tallies[ln.item_code]["received"] = tallies[ln.item_code]["received"].add(ln.quantity)
            insp = ln.inspection
            if insp is not None and policy.local_day(insp.at) == day:
                key = _DECISION_FIELD[insp.decision]
                tallies[ln.item_code][key] = tallies[ln.item_code][key].add(ln.quantity)
    items = tuple(ItemDaySummary(code, **dict(t)) for code, t in sorted(tallies.items()))
    return DonationDaySummary(day, received, items)
