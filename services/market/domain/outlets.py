"""Outlets (定点超市 / 保供点), communities and who serves whom (就近原则, or HQ's assignment)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any

from .rules import NO_OUTLET, invalid, refuse

OUTLET_KINDS = ("supermarket", "supply_point")
EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class Outlet:
    outlet_id: str
    name: str
    kind: str
    township: str
    lat: float
    lon: float
    active: bool = True
    order_cutoff: time | None = None


@dataclass(frozen=True)
class DropPoint:
    drop_point_id: str
    name: str


@dataclass(frozen=True)
class Community:
    community_id: str
    name: str
    township: str
    lat: float
    lon: float
    drop_points: tuple[DropPoint, ...] = ()
    households: int = 0

    def drop_point(self, drop_point_id: str) -> DropPoint | None:
        return next((d for d in self.drop_points if d.drop_point_id == drop_point_id), None)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def nearest_outlet(community: Community, outlets: Iterable[Outlet], kind: str) -> Outlet | None:
    """The nearest active outlet of `kind` (great-circle distance); equal distances → lowest id."""
    best: tuple[float, str] | None = None
    found = None
    for o in outlets:
        if not o.active or o.kind != kind:
            continue
        key = (haversine_m(community.lat, community.lon, o.lat, o.lon), o.outlet_id)
        if best is None or key < best:
            best, found = key, o
    return found


def serving_outlet(community: Community, outlets: Iterable[Outlet], kind: str,
                   assigned: Mapping[str, str]) -> Outlet:
    """HQ's assignment (community_id → outlet_id) wins when that outlet is active and of `kind`;
    else the nearest. RuleRefused market_no_outlet when there is none."""
    outlets = list(outlets)
    want = assigned.get(community.community_id)
    if want is not None:
        for o in outlets:
            if o.outlet_id == want and o.active and o.kind == kind:
                return o
    o = nearest_outlet(community, outlets, kind)
    if o is None:
        raise refuse(NO_OUTLET, f"社区 {community.community_id} 没有可服务的{_kind_zh(kind)}",
                     f"no active {kind} serves community {community.community_id}")
    return o


def _kind_zh(kind: str) -> str:
    return {"supermarket": "定点超市", "supply_point": "保供点"}.get(kind, kind)


def _text(raw: Mapping[str, Any], key: str, max_len: int = 200, required: bool = True) -> str:
    v = raw.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise invalid(key, "必填", "is required")
        return ""
    if not isinstance(v, str):
        raise invalid(key, "须为文本", "must be text")
    v = v.strip()
    if len(v) > max_len:
        raise invalid(key, f"最多 {max_len} 个字符", f"at most {max_len} characters")
    return v


def _coord(raw: Mapping[str, Any], key: str, limit: float) -> float:
    v = raw.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not -limit <= v <= limit:
        raise invalid(key, f"须为 -{limit:g} 到 {limit:g} 之间的数", f"must be a number from -{limit:g} to {limit:g}")
    return float(v)


def validate_outlet(raw: Mapping[str, Any]) -> Outlet:
    """An outlet from request fields; InvalidInput names the first bad field."""
    outlet_id = _text(raw, "outlet_id", 64)
    name = _text(raw, "name")
    kind = raw.get("kind")
    if kind not in OUTLET_KINDS:
        raise invalid("kind", "须为 supermarket 或 supply_point", "must be supermarket or supply_point")
    township = _text(raw, "township", required=False)
    lat = _coord(raw, "lat", 90)
    lon = _coord(raw, "lon", 180)
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise invalid("active", "须为真或假", "must be true or false")
    cutoff = raw.get("order_cutoff")
    if cutoff is not None and not isinstance(cutoff, time):
        if isinstance(cutoff, str):
            try:
                cutoff = time.fromisoformat(cutoff.strip())
            except ValueError:
                raise invalid("order_cutoff", "时间格式应为 HH:MM", "must be a time HH:MM") from None
        else:
            raise invalid("order_cutoff", "时间格式应为 HH:MM", "must be a time HH:MM")
    return Outlet(outlet_id, name, kind, township, lat, lon, active, cutoff)
