"""Purchase on behalf (代买, 篇12): a village's list to its supply point the day before, the
supply point's readiness, the pickup in the village's slot with a driver and a clerk, and the
collection against the agreed list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork, new_id
from services.common.errors import InvalidInput, NotFound, RuleRefused
from services.market.adapters import repositories as repo
from services.market.domain import events as ev
from services.market.domain.purchase import (
    Discrepancy,
    PurchaseList,
    answer_readiness,
    book_pickup,
    record_collection,
    submit_purchase_list,
)
from services.market.handlers import outlets as outlets_h
from services.market.handlers.base import (
    COLLECTION_ROLES,
    HQ,
    OUTLET_ROLES,
    PURCHASE_ROLES,
    MarketContext,
    community,
    day,
    for_community,
    for_outlet,
    record,
    required,
)


def purchase_list(uow: UnitOfWork, list_id: str) -> PurchaseList:
    """Locked until the transaction ends: every caller changes it."""
    found = repo.purchase_lists.get(uow.conn, required(list_id, "list_id"), lock=True)
    if found is None:
        raise NotFound(f"list_id: no purchase list {list_id!r} / 没有该代买清单")
    return found


def _pairs(items: Sequence[tuple[str, int]], field_name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, (code, qty) in enumerate(items):
        if code in out:
            raise InvalidInput(f"{field_name}[{i}].item_code", f"{code} is named twice / 重复")
        out[code] = qty
    return out


def submit(ctx: MarketContext, uow: UnitOfWork, actor: Caller, village_id: str, pickup_day: str,
           raw_lines: Sequence[dict[str, Any]]) -> PurchaseList:
    for_community(actor, village_id, *PURCHASE_ROLES)
    c = community(uow, village_id, "village_id")
    sp = outlets_h.serving(uow, c, "supply_point")
    if sp is None:
        raise RuleRefused("market_no_outlet", f"no active supply point serves {c.community_id} "
                                              f"/ 没有对接的保供点")
    plist = submit_purchase_list(
        list_id=new_id("PL"), village_id=c.community_id, supply_point_id=sp.outlet_id,
        pickup_day=day(pickup_day, "pickup_day"), raw_lines=raw_lines,
        previous_pickup_days=[p.pickup_day for p in repo.purchase_lists_of(uow.conn, c.community_id)],
        now=ctx.clock.now(), tz=ctx.tz, policy=ctx.policy, catalogue=ctx.catalogue)
    repo.purchase_lists.add(uow.conn, plist)
    record(uow, ev.purchase_list_sent(plist))
    return plist


def readiness(uow: UnitOfWork, actor: Caller, list_id: str, answers: Sequence[tuple[str, int]]) -> PurchaseList:
    plist = purchase_list(uow, list_id)
    for_outlet(actor, plist.supply_point_id, *OUTLET_ROLES)
    done = answer_readiness(plist, _pairs(answers, "answers"))
    repo.purchase_lists.save(uow.conn, done)
    record(uow, ev.purchase_list_ready(done))
    return done


def _hhmm(text: str, field_name: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise InvalidInput(field_name, "must be a local time HH:MM / 时间格式应为 HH:MM") from None


def set_slots(uow: UnitOfWork, actor: Caller, village_id: str,
              slots: Sequence[tuple[Sequence[int], str, str]]) -> list[dict]:
    """slots: (ISO weekdays, or none for every day; start "HH:MM"; end "HH:MM")."""
    actor.require(*HQ)
    c = community(uow, village_id, "village_id")
    out = []
    for i, (weekdays, start, end) in enumerate(slots):
        f = f"slots[{i}]"
        bad = [w for w in weekdays if not 1 <= w <= 7]
        if bad:
            raise InvalidInput(f"{f}.weekdays", "ISO weekdays 1 (Monday) … 7 / 星期须为 1 到 7")
        if _hhmm(end, f"{f}.window.end") <= _hhmm(start, f"{f}.window.start"):
            raise InvalidInput(f"{f}.window.end", f"must be later than the start ({start}) / 结束须晚于开始")
        out.append({"weekdays": sorted(set(weekdays)), "start": start, "end": end})
    repo.put_slots(uow.conn, c.community_id, out)
    return out


def slots_of(uow: UnitOfWork, village_id: str) -> list[dict]:
    return repo.slots(uow.conn, village_id) or []


def list_lists(uow: UnitOfWork, actor: Caller, village_id: str,
               supply_point_id: str) -> tuple[list[PurchaseList], list[dict]]:
    """A village's lists with its slots, or a supply point's lists; each read scoped as its writes."""
    if bool(village_id) == bool(supply_point_id):
        raise InvalidInput("village_id", "name a village or a supply point, not both / 请指定村或保供点之一")
    if village_id:
        for_community(actor, village_id, *PURCHASE_ROLES)
        return repo.purchase_lists_of(uow.conn, village_id), slots_of(uow, village_id)
    for_outlet(actor, supply_point_id, *OUTLET_ROLES)
    return repo.purchase_lists_for(uow.conn, supply_point_id), []


def book(ctx: MarketContext, uow: UnitOfWork, actor: Caller, list_id: str, slot_start: datetime,
         slot_end: datetime, driver: str, clerk: str) -> PurchaseList:
    plist = purchase_list(uow, list_id)
    for_community(actor, plist.village_id, *PURCHASE_ROLES)
    d = plist.pickup_day
    village = [(datetime.combine(d, time.fromisoformat(s["start"]), ctx.tz),
                datetime.combine(d, time.fromisoformat(s["end"]), ctx.tz))
               for s in slots_of(uow, plist.village_id) if not s["weekdays"] or d.isoweekday() in s["weekdays"]]
    done = book_pickup(plist, slot_start.astimezone(ctx.tz), slot_end.astimezone(ctx.tz), driver, clerk, village)
    repo.purchase_lists.save(uow.conn, done)
    record(uow, ev.pickup_booked(done))
    return done


def collect(uow: UnitOfWork, actor: Caller, list_id: str,
            lines: Sequence[tuple[str, int]]) -> tuple[PurchaseList, list[Discrepancy]]:
    actor.require(*COLLECTION_ROLES)
    plist = purchase_list(uow, list_id)
    done, gaps = record_collection(plist, _pairs(lines, "lines"))
    repo.purchase_lists.save(uow.conn, done)
    record(uow, ev.purchase_collected(done, gaps))
    return done, gaps
