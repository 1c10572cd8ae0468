"""Special needs (个性化需求): personal lines for one beneficiary (篇5 §二6, 篇13 §六(二)).

A grid worker (网格员) registers, under a village or community, what one person needs:
infant formula, chronic medicine (collected periodically, 篇13 §六(二)4), items for an elderly
person living alone … The record keeps the beneficiary's name and phone so the drop point
can hand over, but everything that leaves intake (events, lists) carries only the pseudonym
and masked forms. The pseudonym is stable: the same name and phone under the same requester
always give the same pseudonym (HMAC-SHA256 with a county secret), so registering a person
twice is recognisable without storing or sending who they are. A non-essential or unknown item
refuses its own line only, as in a demand (RULES §6): the need lists it in refused_lines.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from services.common.catalogue import Catalogue

from . import rules
from .demands import (
    Demand,
    DemandOrigin,
    RefusedLine,
    RequestedLine,
    Tier,
    build_lines,
    new_demand,
    parse_lines,
)
from .fields import as_choice, as_date, as_int, as_text, is_blank, require_aware
from .personal_data import mask_name, mask_phone, normalize_name, normalize_phone
from .policy import DemandPolicy, SpecialNeedPolicy
from .requesters import Requester

DEFAULT_SPECIAL_NEED_POLICY = SpecialNeedPolicy()
PSEUDONYM_PREFIX = "BEN-"


class SpecialNeedCategory(StrEnum):
    INFANT_FORMULA = "infant_formula"
    CHRONIC_MEDICINE = "chronic_medicine"
    ELDERLY_ALONE = "elderly_alone"
    DISABILITY = "disability"
    PREGNANCY = "pregnancy"
    OTHER = "other"


CATEGORY_ALIASES = {
    "婴幼儿配方奶粉": SpecialNeedCategory.INFANT_FORMULA, "奶粉": SpecialNeedCategory.INFANT_FORMULA,
    "慢性病": SpecialNeedCategory.CHRONIC_MEDICINE, "慢性病药品": SpecialNeedCategory.CHRONIC_MEDICINE,
    "独居老人": SpecialNeedCategory.ELDERLY_ALONE, "残疾": SpecialNeedCategory.DISABILITY,
    "孕产妇": SpecialNeedCategory.PREGNANCY, "其他": SpecialNeedCategory.OTHER,
}


def pseudonym(requester_id: str, name: str, phone: str, secret: bytes) -> str:
    """Stable pseudonymous beneficiary id: ``BEN-`` and 20 hex digits (24 characters).

    HMAC-SHA256(secret, requester_id ␟ normalized name ␟ normalized phone), so the same
    person registered twice under the same requester gets the same pseudonym, and without the
    secret the name and phone can be neither recovered nor tested. The secret is county
    configuration (at least 16 bytes); changing it changes every pseudonym.
    """
    if not isinstance(secret, bytes | bytearray) or len(secret) < 16:
        raise ValueError("the pseudonym secret must be at least 16 bytes")
    msg = "\x1f".join((requester_id, normalize_name(name), normalize_phone(phone))).encode()
    return PSEUDONYM_PREFIX + hmac.new(bytes(secret), msg, hashlib.sha256).hexdigest()[:20]


@dataclass(frozen=True)
class Beneficiary:
    """The person a special need is for. `name` and `phone` stay inside intake."""

    pseudonym: str
    name: str
    phone: str

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


@dataclass(frozen=True)
class SpecialNeedView:
    """What lists show: pseudonym and masked name and phone, never the clear values."""

    id: str
    requester_id: str
    pseudonym: str
    masked_name: str
    masked_phone: str
    category: SpecialNeedCategory
    lines: tuple[RequestedLine, ...]
    period_days: int | None
    start_day: date
    registered_by: str
    registered_at: datetime
    refused_lines: tuple[RefusedLine, ...] = ()


@dataclass(frozen=True)
class SpecialNeed:
    """A beneficiary's personal lines under a village or community.

    period_days: None for a one-off need; n for a need collected every n days (chronic
    medicine), due on start_day + k × n. start_day: the first delivery day.
    registered_by: the grid worker's identity. refused_lines: the lines of the request left
    out by a county rule (NON_ESSENTIAL, UNKNOWN_ITEM), line_no their index in the request.
    """

    id: str
    requester_id: str
    beneficiary: Beneficiary
    category: SpecialNeedCategory
    lines: tuple[RequestedLine, ...]
    period_days: int | None
    start_day: date
    registered_by: str
    registered_at: datetime
    note: str = ""
    refused_lines: tuple[RefusedLine, ...] = ()

    def view(self) -> SpecialNeedView:
        return SpecialNeedView(
            id=self.id, requester_id=self.requester_id, pseudonym=self.beneficiary.pseudonym,
            masked_name=self.beneficiary.masked_name, masked_phone=self.beneficiary.masked_phone,
            category=self.category, lines=self.lines, period_days=self.period_days,
            start_day=self.start_day, registered_by=self.registered_by,
            registered_at=self.registered_at, refused_lines=self.refused_lines,
        )

    def is_due(self, day: date) -> bool:
        """True when a demand for delivery day `day` is due for this need."""
        if day < self.start_day:
            return False
        if self.period_days is None:
            return day == self.start_day
        return (day - self.start_day).days % self.period_days == 0


def register_special_need(*, need_id: str, requester: Requester, name: str, phone: str,
                          category: Any, lines: Sequence[Any], catalogue: Catalogue,
                          policy: DemandPolicy, secret: bytes, registered_by: str, at: datetime,
                          period_days: Any = None, delivery_day: date | str | None = None,
                          note: str = "",
                          sn_policy: SpecialNeedPolicy = DEFAULT_SPECIAL_NEED_POLICY) -> SpecialNeed:
    """Validate and create a special need registered by a grid worker at `at`.

    The first delivery day follows the demand cut-off rule (DemandPolicy.delivery_target).
    A non-essential or unknown item refuses its line only (refused_lines); every line refused
    raises the first line's error. Raises RuleRefused AREA_REQUESTER_ONLY for a unit,
    NON_ESSENTIAL when every line is non-essential, InvalidInput naming beneficiary.name, beneficiary.phone, category, lines[i].…,
    period_days, delivery_day, registered_by, note.
    """
    require_aware(at)
    if not requester.is_area:
        raise rules.refuse(rules.AREA_REQUESTER_ONLY,
                           "个性化需求登记在村(社区)名下", "special needs are registered under a "
                           "village or community; units file requisitions", field="requester_id")
    clear_name = normalize_name(as_text(name, "beneficiary.name", max_len=50))
    clear_phone = normalize_phone(phone, "beneficiary.phone")
    cat = as_choice(category, "category", SpecialNeedCategory, CATEGORY_ALIASES)
    refused: list[RefusedLine] = []
    requested = parse_lines(lines, catalogue, max_lines=sn_policy.max_lines,
                            max_quantity=policy.max_quantity, max_note_chars=policy.max_note_chars,
                            refused=refused)
    period = None if is_blank(period_days) or period_days == 0 else as_int(
        period_days, "period_days", min_value=1, max_value=sn_policy.max_period_days)
    day = None if is_blank(delivery_day) else as_date(delivery_day, "delivery_day")
    target = policy.delivery_target(at, day)
    return SpecialNeed(
        id=need_id, requester_id=requester.id,
        beneficiary=Beneficiary(pseudonym(requester.id, clear_name, clear_phone, secret),
                                clear_name, clear_phone),
        category=cat, lines=requested, period_days=period, start_day=target.day,
        registered_by=as_text(registered_by, "registered_by", max_len=100), registered_at=at,
        note=as_text(note, "note", required=False, max_len=policy.max_note_chars),
        refused_lines=tuple(refused),
    )


def special_need_demand(need: SpecialNeed, requester: Requester, *, demand_id: str,
                        catalogue: Catalogue, policy: DemandPolicy, at: datetime,
                        delivery_day: date | None = None,
                        sn_policy: SpecialNeedPolicy = DEFAULT_SPECIAL_NEED_POLICY) -> Demand:
    """The demand for one delivery of a special need: tier VULNERABLE on every line.

    delivery_day defaults to the need's start day; the cut-off rule applies (rolls when
    past). Over-norm flags use one person and what the delivery is for: the need's period, or
    sn_policy.one_off_days for a one-off need (not the demand cycle: 4 cans of formula are not
    one day's).
    """
    require_aware(at)
    lines = build_lines(need.lines, requester, catalogue, policy, tier=Tier.VULNERABLE, basis=1,
                        days=need.period_days or sn_policy.one_off_days, special_need_id=need.id)
    return new_demand(demand_id=demand_id, requester=requester, lines=lines, policy=policy,
                      at=at, delivery_day=delivery_day or need.start_day,
                      origin=DemandOrigin.SPECIAL_NEED, origin_ref=need.id)
