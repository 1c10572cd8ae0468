"""Demands: what a requester asks for a delivery day (RULES.md §2, §3, §6).

Decisions:
- A refused line refuses that line only (RULES §6): a non-essential item (NON_ESSENTIAL) or an
  item not in the catalogue (UNKNOWN_ITEM) is left out and listed in the demand's
  refused_lines, the rest is accepted; a demand whose every line is refused is refused with the
  first line's error. A malformed line (a bad quantity, a repeated item, a long note) refuses
  the whole demand: that is the sender's mistake to fix, not a county rule.
- The same item twice in one demand is refused on the second line (InvalidInput), so that a
  demand line is identified by its item code (delivery results are keyed by item code).
- Tiers are derived here from where a line comes from, never taken from the caller: a
  registered special need's lines are VULNERABLE, any other line has its requester's tier.
- Delivery results close the demand: all delivered → fulfilled; part → partly_fulfilled;
  nothing → rolled. In the last two cases the remainder of each short line is carried to a
  new open demand (origin carry_over) for the next delivery day whose cut-off is still ahead;
  it keeps the lines' tiers and notes and is not subject to the caller cut-off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Any

from services.common.catalogue import Catalogue, Item
from services.common.errors import InvalidInput

from . import rules
from .fields import as_date, as_int, as_text, get, is_blank, require_aware
from .policy import DemandPolicy, ceil_norm
from .requesters import Requester, RiskLevel, UnitType


class Tier(IntEnum):
    """Priority of a demand line, 1 served first (RULES.md §3)."""

    FRONTLINE_MEDICAL = 1   # hospitals, fever clinics, isolation sites
    VULNERABLE = 2          # registered special needs (a person's lines), nursing homes
    SEALED_AREA = 3         # villages / communities at risk level sealed
    CONTROLLED_AREA = 4     # … at risk level controlled
    GENERAL = 5             # prevention areas, schools, enterprises

    @property
    def label(self) -> str:
        return self.name.lower()


class DemandStatus(StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"
    PARTLY_FULFILLED = "partly_fulfilled"
    ROLLED = "rolled"        # nothing delivered: everything carried to a later day


class DemandOrigin(StrEnum):
    DIRECT = "direct"              # SubmitDemand / SubmitDemandBatch
    IMPORT = "import"              # spreadsheet import
    SPECIAL_NEED = "special_need"  # a registered special need (篇5 §二6)
    REQUISITION = "requisition"    # an HQ-approved unit requisition (篇6, 篇11)
    CARRY_OVER = "carry_over"      # remainder of a partly delivered demand


def derive_tier(requester: Requester) -> Tier:
    """The tier of a requester's ordinary line: its own rank, whatever the item (RULES §3.2).
    Lines of a registered special need are VULNERABLE (special_need_demand), so a village's
    ordinary formula stays in the village's tier."""
    if requester.is_frontline:
        return Tier.FRONTLINE_MEDICAL
    if requester.unit_type is UnitType.NURSING_HOME:
        return Tier.VULNERABLE
    if requester.risk_level is RiskLevel.SEALED:
        return Tier.SEALED_AREA
    if requester.risk_level is RiskLevel.CONTROLLED:
        return Tier.CONTROLLED_AREA
    return Tier.GENERAL


@dataclass(frozen=True)
class RequestedLine:
    """A validated line as asked: catalogue item code, quantity in the item's unit, note."""

    item_code: str
    quantity: int
    note: str = ""


@dataclass(frozen=True)
class RefusedLine:
    """A line of a demand left out by a county rule: line_no is its index in the request,
    code the rule (NON_ESSENTIAL, UNKNOWN_ITEM), zh / en why."""

    line_no: int
    item_code: str
    field: str
    code: str
    zh: str
    en: str


def _non_essential_texts(item: Item) -> tuple[str, str]:
    return (f"{item.name_zh}({item.code})为非必需品, 烟酒等非必须品除外, 不予受理(篇5)",
            f"{item.name_en} ({item.code}) is non-essential; tobacco, alcohol and other "
            f"non-essentials are not handled")


def non_essential_refusal(item: Item, field: str) -> rules.LineRuleRefused:
    return rules.refuse(rules.NON_ESSENTIAL, *_non_essential_texts(item), field=field)


def parse_lines(raw_lines: Sequence[Any] | None, catalogue: Catalogue, *, max_lines: int,
                max_quantity: int, max_note_chars: int = 200, field: str = "lines",
                refused: list[RefusedLine] | None = None) -> tuple[RequestedLine, ...]:
    """Validate lines (mappings or objects with item_code, quantity, note).

    Raises InvalidInput naming ``lines[i].<field>`` (0-based) for an empty list, too many
    lines, an unknown item code, a quantity that is not an integer in 1..max_quantity, a too
    long note or a repeated item; LineRuleRefused NON_ESSENTIAL for a non-essential item.
    Given a `refused` list, an unknown or non-essential item is appended to it and its line
    left out instead, unless every line is: then the first line's error is raised.
    """
    items = list(raw_lines or ())
    if not items:
        raise InvalidInput(field, "at least one line is required")
    if len(items) > max_lines:
        raise InvalidInput(field, f"at most {max_lines} lines, got {len(items)}")
    out: list[RequestedLine] = []
    seen: dict[str, int] = {}
    first_error: Exception | None = None
    for i, raw in enumerate(items):
        f = f"{field}[{i}]"
        code = as_text(get(raw, "item_code"), f"{f}.item_code", max_len=64)
        item = catalogue.items.get(code) or catalogue.items.get(code.upper())
        if item is None or not item.essential:
            if item is None:
                error: Exception = InvalidInput(
                    f"{f}.item_code", f"unknown item code {code!r} (catalogue {catalogue.version})")
                texts = (f"物资编码{code}不在物资目录({catalogue.version})中, 不予受理",
                         f"unknown item code {code!r} (catalogue {catalogue.version})")
            else:
                error, texts = non_essential_refusal(item, f"{f}.item_code"), _non_essential_texts(item)
            if refused is None:
                raise error
            first_error = first_error or error
            refused.append(RefusedLine(i, item.code if item else code, f"{f}.item_code",
                                       rules.UNKNOWN_ITEM if item is None else rules.NON_ESSENTIAL,
                                       *texts))
            continue
        if item.code in seen:
            raise InvalidInput(f"{f}.item_code", f"{item.code} repeats {field}[{seen[item.code]}]; "
                                                 f"put the whole quantity on one line")
        seen[item.code] = i
        qty = as_int(get(raw, "quantity"), f"{f}.quantity", min_value=1, max_value=max_quantity)
        note = as_text(get(raw, "note"), f"{f}.note", required=False, max_len=max_note_chars)
        out.append(RequestedLine(item.code, qty, note))
    if not out and first_error is not None:
        raise first_error
    return tuple(out)


@dataclass(frozen=True)
class DemandLine:
    """One line of a demand.

    line_no: 0-based position in the demand. tier: derived priority. norm_quantity: expected
    consumption for the basis and cycle, rounded up (None when the item has no per-capita
    norm). flagged: quantity > over_norm_factor × norm (按实申领; informs allocation and HQ,
    does not refuse). delivered: quantity delivered once results are applied (None before).
    special_need_id: the special need the line comes from, if any.
    """

    line_no: int
    item_code: str
    quantity: int
    tier: Tier
    note: str = ""
    norm_quantity: int | None = None
    flagged: bool = False
    delivered: int | None = None
    special_need_id: str | None = None

    @property
    def remainder(self) -> int:
        return max(0, self.quantity - (self.delivered or 0))


@dataclass(frozen=True)
class Demand:
    """A requester's demand for one delivery day.

    requested_day: the day asked for (None: earliest open day). rolled_over: the requested
    day's cut-off had passed at submission and the demand moved to `delivery_day`.
    cutoff_at: the cut-off of `delivery_day`; the demand can be cancelled before it.
    origin / origin_ref: where the demand comes from (requisition id, special need id,
    the demand carried over …). carry_over_demand_id: the demand holding this one's
    undelivered remainder, once delivery results are applied. refused_lines: the lines of the
    request left out by a county rule (their line numbers are not among `lines`').
    """

    id: str
    requester_id: str
    delivery_day: date
    requested_day: date | None
    rolled_over: bool
    submitted_at: datetime
    cutoff_at: datetime
    lines: tuple[DemandLine, ...]
    status: DemandStatus = DemandStatus.OPEN
    origin: DemandOrigin = DemandOrigin.DIRECT
    origin_ref: str | None = None
    closed_at: datetime | None = None
    cancel_reason: str = ""
    carry_over_demand_id: str | None = None
    refused_lines: tuple[RefusedLine, ...] = ()

    @property
    def flagged(self) -> bool:
        return any(line.flagged for line in self.lines)

    @property
    def top_tier(self) -> Tier:
        return min(line.tier for line in self.lines)

    def line(self, item_code: str) -> DemandLine | None:
        return next((ln for ln in self.lines if ln.item_code == item_code), None)


def build_lines(requested: Sequence[RequestedLine], requester: Requester, catalogue: Catalogue,
                policy: DemandPolicy, *, tier: Tier | None = None, basis: int | None = None,
                days: int | None = None, special_need_id: str | None = None,
                ) -> tuple[DemandLine, ...]:
    """Demand lines with derived tiers and over-norm flags.

    `tier` forces the tier (special needs: VULNERABLE, unless the requester ranks higher);
    `basis` / `days` override the norm basis (people) and days (default: the requester's
    population or headcount, and the policy cycle).
    """
    people = requester.norm_basis(policy) if basis is None else basis
    out = []
    for i, rl in enumerate(requested):
        item = catalogue.item(rl.item_code)
        line_tier = derive_tier(requester) if tier is None else min(tier, derive_tier(requester))
        expected = policy.norm(item.per_capita_daily, people, days)
        out.append(DemandLine(
            line_no=i, item_code=item.code, quantity=rl.quantity, tier=line_tier, note=rl.note,
            norm_quantity=ceil_norm(expected) if expected > 0 else None,
            flagged=policy.is_over_norm(rl.quantity, item.per_capita_daily, people, days),
            special_need_id=special_need_id,
        ))
    return tuple(out)


def numbered_as_sent(built: Sequence[DemandLine], refused: Sequence[RefusedLine]
                     ) -> tuple[DemandLine, ...]:
    """The accepted lines numbered by their index in the request, skipping the refused ones."""
    left_out = {r.line_no for r in refused}
    sent = [i for i in range(len(built) + len(refused)) if i not in left_out]
    return tuple(replace(ln, line_no=i) for ln, i in zip(built, sent, strict=True))


def new_demand(*, demand_id: str, requester: Requester, lines: tuple[DemandLine, ...],
               policy: DemandPolicy, at: datetime, delivery_day: date | None = None,
               origin: DemandOrigin = DemandOrigin.DIRECT, origin_ref: str | None = None,
               field: str = "delivery_day") -> Demand:
    """A demand from ready lines, placed on its delivery day by the cut-off rule."""
    target = policy.delivery_target(at, delivery_day, field=field)
    return Demand(
        id=demand_id, requester_id=requester.id, delivery_day=target.day,
        requested_day=target.requested_day, rolled_over=target.rolled_over, submitted_at=at,
        cutoff_at=target.cutoff_at, lines=lines, origin=origin, origin_ref=origin_ref,
    )


def submit_demand(*, demand_id: str, requester: Requester, lines: Sequence[Any],
                  catalogue: Catalogue, policy: DemandPolicy, at: datetime,
                  delivery_day: date | str | None = None,
                  origin: DemandOrigin = DemandOrigin.DIRECT) -> Demand:
    """Validate and place a requester's demand submitted at `at`.

    lines: mappings or objects with item_code, quantity, note. delivery_day: a date,
    "YYYY-MM-DD", or None/"" for the earliest open day. See DemandPolicy.delivery_target for
    the cut-off and rollover rule. An unknown or non-essential item refuses its line only
    (Demand.refused_lines), every line refused raises its first error. Raises InvalidInput
    (field named), RuleRefused NON_ESSENTIAL.
    """
    require_aware(at)
    day = None if is_blank(delivery_day) else as_date(delivery_day, "delivery_day")
    refused: list[RefusedLine] = []
    requested = parse_lines(lines, catalogue, max_lines=policy.max_lines,
                            max_quantity=policy.max_quantity, max_note_chars=policy.max_note_chars,
                            refused=refused)
    built = numbered_as_sent(build_lines(requested, requester, catalogue, policy), refused)
    demand = new_demand(demand_id=demand_id, requester=requester, lines=built, policy=policy,
                        at=at, delivery_day=day, origin=origin)
    return replace(demand, refused_lines=tuple(refused))


def _require_open(demand: Demand) -> None:
    if demand.status is not DemandStatus.OPEN:
        raise rules.refuse(rules.DEMAND_NOT_OPEN, f"需求{demand.id}状态为{demand.status.value}, 不可变更",
                           f"demand {demand.id} is {demand.status.value}, not open")


def cancel_demand(demand: Demand, at: datetime, reason: str = "") -> Demand:
    """Cancel an open demand before its delivery day's cut-off (CUTOFF_PASSED after)."""
    require_aware(at)
    _require_open(demand)
    if not at < demand.cutoff_at:
        raise rules.refuse(
            rules.CUTOFF_PASSED,
            f"{demand.delivery_day}的截止时间{demand.cutoff_at:%Y-%m-%d %H:%M}已过, 不能取消",
            f"the cut-off for {demand.delivery_day} ({demand.cutoff_at:%Y-%m-%d %H:%M} local) "
            f"has passed; the demand can no longer be cancelled",
        )
    return replace(demand, status=DemandStatus.CANCELLED, closed_at=at,
                   cancel_reason=as_text(reason, "reason", required=False))


def follow_cutoff(demand: Demand, policy: DemandPolicy) -> Demand:
    """An open demand under a changed county cut-off: it closes when its day's cut-off now says
    (the day it was placed on stays: moving accepted demands would surprise their requesters)."""
    return replace(demand, cutoff_at=policy.cutoff_at(demand.delivery_day))


@dataclass(frozen=True)
class Notice:
    """A bilingual note for the operator about an accepted demand (not an error)."""

    code: str
    zh: str
    en: str


ROLLED_OVER = "ROLLED_OVER"
OVER_NORM = "OVER_NORM"


def notices(demand: Demand, policy: DemandPolicy) -> tuple[Notice, ...]:
    """ROLLED_OVER when the requested day's cut-off had passed; OVER_NORM per flagged line; the
    rule code of each refused line, so that a client showing notices shows those too."""
    out = []
    if demand.rolled_over and demand.requested_day:
        cut = policy.cutoff_at(demand.requested_day)
        out.append(Notice(
            ROLLED_OVER,
            f"{demand.requested_day}的报需求截止时间{cut:%m-%d %H:%M}已过, 顺延至{demand.delivery_day}",
            f"the cut-off for {demand.requested_day} ({cut:%m-%d %H:%M} local) had passed; "
            f"moved to {demand.delivery_day}"))
    for ln in demand.lines:
        if ln.flagged:
            out.append(Notice(
                OVER_NORM,
                f"第{ln.line_no}行{ln.item_code}数量{ln.quantity}超过人均定额({ln.norm_quantity})的"
                f"{policy.over_norm_factor:g}倍, 请按实申领",
                f"line {ln.line_no} {ln.item_code}: {ln.quantity} is more than "
                f"{policy.over_norm_factor:g} × the per-capita norm ({ln.norm_quantity})"))
    out.extend(Notice(r.code, f"第{r.line_no}行{r.item_code}未受理: {r.zh}",
                      f"line {r.line_no} {r.item_code} left out: {r.en}") for r in demand.refused_lines)
    return tuple(out)


@dataclass(frozen=True)
class DeliveryOutcome:
    """`demand`: the closed demand. `carry_over`: the new open demand with the remainder."""

    demand: Demand
    carry_over: Demand | None


def record_delivery(demand: Demand, delivered: Mapping[str, Any]) -> Demand:
    """Add one delivery's quantities per item code to an open demand, without closing it: a
    demand served from two depots or in a cold and an ambient part arrives in several stops."""
    _require_open(demand)
    got: dict[str, int] = {}
    for code, qty in delivered.items():
        if demand.line(code) is None:
            raise InvalidInput(f"delivered[{code}]", f"not a line of demand {demand.id}")
        got[code] = as_int(qty, f"delivered[{code}]", min_value=0)
    return replace(demand, lines=tuple(
        replace(ln, delivered=(ln.delivered or 0) + got[ln.item_code]) if ln.item_code in got else ln
        for ln in demand.lines))


def delivered_so_far(demand: Demand) -> dict[str, int]:
    return {ln.item_code: ln.delivered or 0 for ln in demand.lines}


def apply_delivery_results(demand: Demand, delivered: Mapping[str, Any], *, at: datetime,
                           policy: DemandPolicy, carry_over_id: str) -> DeliveryOutcome:
    """Close an open demand with the quantities delivered per item code.

    Items missing from `delivered` count as 0; delivering more than asked is recorded as such
    and counts as fulfilled. A requester who no longer wants the remainder cancels the
    carry-over demand before its cut-off.
    """
    require_aware(at)
    _require_open(demand)
    got: dict[str, int] = {}
    for code, qty in delivered.items():
        if demand.line(code) is None:
            raise InvalidInput(f"delivered[{code}]", f"not a line of demand {demand.id}")
        got[code] = as_int(qty, f"delivered[{code}]", min_value=0)
    lines = tuple(replace(ln, delivered=got.get(ln.item_code, 0)) for ln in demand.lines)
    if all(ln.remainder == 0 for ln in lines):
        status = DemandStatus.FULFILLED
    elif sum(ln.delivered or 0 for ln in lines) == 0:
        status = DemandStatus.ROLLED
    else:
        status = DemandStatus.PARTLY_FULFILLED
    rest = [ln for ln in lines if ln.remainder > 0]
    new = None
    if rest:
        day = policy.first_open_day_from(policy.next_delivery_day(demand.delivery_day), at)
        new = Demand(
            id=carry_over_id, requester_id=demand.requester_id, delivery_day=day,
            requested_day=None, rolled_over=False, submitted_at=at, cutoff_at=policy.cutoff_at(day),
            lines=tuple(replace(ln, line_no=i, quantity=ln.remainder, delivered=None)
                        for i, ln in enumerate(rest)),
            origin=DemandOrigin.CARRY_OVER, origin_ref=demand.id,
        )
    closed = replace(demand, lines=lines, status=status, closed_at=at,
                     carry_over_demand_id=new.id if new else None)
    return DeliveryOutcome(closed, new)
