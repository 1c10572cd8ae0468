"""Builders shared by the logistics unit tests (plain objects, no mocks)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.common.catalogue import Item, load_catalogue
from services.logistics.domain.ledger import Ledger, LedgerKind, Posting
from services.logistics.domain.model import DocRef, Zone
from services.logistics.domain.receipts import Receipt, ReceiptLine, accept_receipt

TZ = ZoneInfo("Asia/Shanghai")
CAT = load_catalogue()
TODAY = date(2026, 11, 28)


def at(hour: int = 9, minute: int = 0, day: date = TODAY) -> datetime:
    return datetime.combine(day, time(hour, minute), TZ)


def catalogue_with_acid():
    acid = Item(code="ACID-HCL-1L", name_zh="盐酸(1升)", name_en="hydrochloric acid 1 L",
                unit="bottle", group="disinfectant", storage_class="oxidizer", shelf_life_days=730,
                per_capita_daily=0.0, essential=True, material_class=None, hazard="acid",
                special_need=False, weight_kg=1.2, volume_l=1.1)
    return dataclasses.replace(CAT, items={**CAT.items, acid.code: acid})


ZONES = {
    "Z-AMB": Zone("Z-AMB", "D1", "ambient", 100_000),
    "Z-CHL": Zone("Z-CHL", "D1", "chilled", 20_000),
    "Z-FLM": Zone("Z-FLM", "D1", "flammable", 5_000),
    "Z-OXD": Zone("Z-OXD", "D1", "oxidizer", 5_000),
    "Z-D2": Zone("Z-D2", "D2", "ambient", 100_000),
    "Z-D2C": Zone("Z-D2C", "D2", "chilled", 20_000),
}


def receive(ledger: Ledger, item: str, qty: int, *, zone: str = "Z-AMB", expiry: date | None = None,
            lot_id: str | None = None, depot: str = "D1", zones=None, catalogue=CAT,
            when: datetime | None = None, **policy_kw) -> str:
    """Receive one lot through the receipt rules and post it; returns the lot id."""
    rid = f"R-{len(ledger.balances) + 1}"
    r = Receipt(rid, "purchase", depot, when or at(8), "keeper-1",
                (ReceiptLine(item, qty, f"B{len(ledger.balances) + 1}",
                             expiry or TODAY + timedelta(days=90), zone, lot_id),))
    from services.logistics.domain.policy import ReceiptPolicy
    acc = accept_receipt(r, catalogue=catalogue, zones=zones or ZONES, balances=ledger.balances,
                         policy=ReceiptPolicy(**policy_kw))
    ledger.post_all(acc.postings)
    return acc.lots[0].lot_id


def reserve(ledger: Ledger, lot_id: str, qty: int, plan_line: str, when: datetime | None = None):
    return ledger.post(Posting(LedgerKind.RESERVATION, lot_id, qty, "planner", when or at(12),
                               "reserve for plan", DocRef("plan_line", plan_line),
                               plan_line_id=plan_line))
