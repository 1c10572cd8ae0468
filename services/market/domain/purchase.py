"""Purchase on behalf (代买, 篇12): a village's list for its supply point, the readiness answer,
the pickup in the village's slot with a driver and a clerk, and the collection against the
agreed (= ready) quantities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from services.common.catalogue import Catalogue

from .lists import as_count, essential_lines
from .policy import DEFAULT_POLICY, MarketPolicy
from .rules import (
    AFTER_CUTOFF,
    BAD_STATE,
    PURCHASE_INTERVAL,
    SAME_PERSON,
    SLOT_NOT_VILLAGE,
    invalid,
    refuse,
    same_person,
)

PURCHASE_STATUSES = ("sent", "ready", "booked", "collected")


@dataclass(frozen=True)
class PurchaseLine:
    """ready: the supply point's answer (the agreed quantity); collected: what was taken."""

    item_code: str
    quantity: int
    ready: int | None = None
    collected: int | None = None


@dataclass(frozen=True)
class PurchaseList:
    list_id: str
    village_id: str
    supply_point_id: str
    pickup_day: date
    lines: tuple[PurchaseLine, ...]
    status: str = "sent"
    submitted_at: datetime | None = None
    slot_start: datetime | None = None
    slot_end: datetime | None = None
    driver: str = ""
    clerk: str = ""


@dataclass(frozen=True)
class Discrepancy:
    item_code: str
    agreed: int
    collected: int

    @property
    def difference(self) -> int:
        return self.collected - self.agreed


def purchase_cutoff_at(pickup_day: date, tz: tzinfo, policy: MarketPolicy = DEFAULT_POLICY) -> datetime:
    return datetime.combine(pickup_day - timedelta(days=policy.purchase_list_days_before),
                            policy.purchase_list_cutoff, tz)


def submit_purchase_list(*, list_id: str, village_id: str, supply_point_id: str, pickup_day: date,
                         raw_lines: Sequence[Mapping[str, Any]], previous_pickup_days: Iterable[date] = (),
                         now: datetime, tz: tzinfo, policy: MarketPolicy = DEFAULT_POLICY,
                         catalogue: Catalogue) -> PurchaseList:
    """Refusals: market_after_cutoff (after purchase_list_cutoff the day before),
    market_non_essential, market_purchase_interval (another pickup of the village less than
    purchase_interval_days away)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = purchase_cutoff_at(pickup_day, tz, policy)
    if now > cutoff:
        raise refuse(AFTER_CUTOFF, f"{pickup_day} 的代买清单须在 {cutoff:%m-%d %H:%M} 前送达保供点",
                     f"the purchase list for {pickup_day} was due at the supply point by {cutoff:%Y-%m-%d %H:%M}")
    for d in previous_pickup_days:
        if d != pickup_day and abs((pickup_day - d).days) < policy.purchase_interval_days:
            raise refuse(PURCHASE_INTERVAL, f"距上次采买({d})不足 {policy.purchase_interval_days} 天",
                         f"less than {policy.purchase_interval_days} days from the pickup on {d}")
    lines = []
    for f, item, raw in essential_lines(
            raw_lines, catalogue, most=policy.max_purchase_lines,
            most_text=(f"最多 {policy.max_purchase_lines} 行", f"at most {policy.max_purchase_lines} lines")):
        lines.append(PurchaseLine(item.code, as_count(raw.get("quantity"), f"{f}.quantity", 1,
                                                      policy.max_purchase_quantity_per_line)))
    return PurchaseList(list_id, village_id, supply_point_id, pickup_day, tuple(lines), "sent", now)


def _state(plist: PurchaseList, want: str) -> None:
    if plist.status != want:
        raise refuse(BAD_STATE, f"代买清单状态为 {plist.status}", f"the purchase list is {plist.status}, not {want}")


def answer_readiness(plist: PurchaseList, answers: Mapping[str, int]) -> PurchaseList:
    """The supply point's ready quantity per line (0..asked), every line once."""
    _state(plist, "sent")
    codes = {ln.item_code for ln in plist.lines}
    for code in answers:
        if code not in codes:
            raise invalid(f"answers.{code}", "该物品不在清单上", "this item is not on the list")
    lines = []
    for ln in plist.lines:
        f = f"answers.{ln.item_code}"
        if ln.item_code not in answers:
            raise invalid(f, "每行须答复一次", "every line needs an answer")
        lines.append(replace(ln, ready=as_count(answers[ln.item_code], f, 0, ln.quantity)))
    return replace(plist, lines=tuple(lines), status="ready")


def book_pickup(plist: PurchaseList, slot_start: datetime, slot_end: datetime, driver: str, clerk: str,
                village_slots: Iterable[tuple[datetime, datetime]]) -> PurchaseList:
    """The pickup in one of the village's slots (采买时间安排表), on the pickup day, by two people."""
    _state(plist, "ready")
    driver, clerk = (driver or "").strip(), (clerk or "").strip()
    if not driver:
        raise invalid("driver", "须有司机", "a driver is required")
    if not clerk:
        raise invalid("clerk", "须有采买员", "a clerk is required")
    if same_person(driver, clerk):
        raise refuse(SAME_PERSON, "司机和采买员须为两人", "the driver and the clerk must be two different people")
    if slot_start.tzinfo is None or slot_end.tzinfo is None or slot_end <= slot_start:
        raise invalid("slot_end", "时段须有开始和结束", "a slot needs a start before its end")
    inside = any(s <= slot_start and slot_end <= e for s, e in village_slots)
    if not inside or slot_start.astimezone(slot_start.tzinfo).date() != plist.pickup_day:
        raise refuse(SLOT_NOT_VILLAGE, f"{slot_start:%m-%d %H:%M} 不在本村 {plist.pickup_day} 的采买时段内",
                     f"{slot_start:%Y-%m-%d %H:%M} is not in the village's purchase slot on {plist.pickup_day}")
    return replace(plist, status="booked", slot_start=slot_start, slot_end=slot_end, driver=driver, clerk=clerk)


def record_collection(plist: PurchaseList, collected_lines: Mapping[str, int]
                      ) -> tuple[PurchaseList, list[Discrepancy]]:
    """What was collected against the agreed (ready) quantities; an item not named was not taken."""
    _state(plist, "booked")
    codes = {ln.item_code for ln in plist.lines}
    for code in collected_lines:
        if code not in codes:
            raise invalid(f"collected.{code}", "该物品不在清单上", "this item is not on the list")
    lines, gaps = [], []
    for ln in plist.lines:
        got = as_count(collected_lines.get(ln.item_code, 0), f"collected.{ln.item_code}", 0, 10**9)
        lines.append(replace(ln, collected=got))
        if got != (ln.ready or 0):
            gaps.append(Discrepancy(ln.item_code, ln.ready or 0, got))
    return replace(plist, lines=tuple(lines), status="collected"), gaps
