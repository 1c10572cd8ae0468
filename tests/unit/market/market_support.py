"""Shared builders for the market unit tests."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from services.common.catalogue import load_catalogue
from services.market.domain.outlets import Community, DropPoint, Outlet

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 3, 2)
CATALOGUE = load_catalogue()
ESSENTIAL = sorted(c for c, i in CATALOGUE.items.items() if i.essential and not i.is_package)
NON_ESSENTIAL = sorted(c for c, i in CATALOGUE.items.items() if not i.essential)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), TZ)


def outlet(outlet_id="O1", lat=30.0, lon=120.0, kind="supermarket", active=True, cutoff=None) -> Outlet:
    return Outlet(outlet_id, f"超市 {outlet_id}", kind, "T1", lat, lon, active, cutoff)


def community(community_id="C1", lat=30.0, lon=120.0) -> Community:
    return Community(community_id, f"社区 {community_id}", "T1", lat, lon,
                     (DropPoint("DP1", "东门"), DropPoint("DP2", "西门")), 120)
