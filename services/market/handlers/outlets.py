"""Outlets (定点超市 / 保供点), the communities they serve (from intake's requesters), and HQ's
assignments; who serves whom is the domain's (nearest active outlet, HQ's assignment wins)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.common.auth import Caller
from services.common.db import UnitOfWork
from services.common.errors import InvalidInput, RuleRefused
from services.market.adapters import repositories as repo
from services.market.domain.outlets import (
    Community,
    DropPoint,
    Outlet,
    serving_outlet,
    validate_outlet,
)
from services.market.handlers.base import (
    HQ,
    LIST_READ_ROLES,
    community,
    outlet,
)

AREA_KINDS = ("village", "community")


@dataclass(frozen=True)
class CommunityView:
    community: Community
    supermarket_id: str
    supply_point_id: str
    supermarket_assigned: bool
    supply_point_assigned: bool


def register_outlet(uow: UnitOfWork, actor: Caller, raw: Mapping[str, Any]) -> Outlet:
    actor.require(*HQ)
    o = validate_outlet(raw)
    repo.outlets.put(uow.conn, o)
    return o


def list_outlets(uow: UnitOfWork, actor: Caller, kind: str = "", township: str = "") -> list[Outlet]:
    actor.require(*LIST_READ_ROLES)
    found = repo.all_outlets(uow.conn, kind, township)
    if actor.role == "supermarket":
        found = [o for o in found if o.outlet_id == actor.scope]
    return found


def serving(uow: UnitOfWork, c: Community, kind: str, outlets: list[Outlet] | None = None,
            assigned: dict[str, str] | None = None) -> Outlet | None:
    """The outlet of `kind` serving the community, None when there is none."""
    try:
        return serving_outlet(c, repo.all_outlets(uow.conn, kind) if outlets is None else outlets, kind,
                              repo.assignments(uow.conn, kind) if assigned is None else assigned)
    except RuleRefused:
        return None


def view(uow: UnitOfWork, c: Community, cache: dict | None = None) -> CommunityView:
    cache = {} if cache is None else cache
    out = {}
    for kind in ("supermarket", "supply_point"):
        if kind not in cache:
            cache[kind] = (repo.all_outlets(uow.conn, kind), repo.assignments(uow.conn, kind))
        outlets, assigned = cache[kind]
        o = serving(uow, c, kind, outlets, assigned)
        out[kind] = (o.outlet_id if o else "", bool(o) and assigned.get(c.community_id) == o.outlet_id)
    return CommunityView(c, out["supermarket"][0], out["supply_point"][0], out["supermarket"][1],
                         out["supply_point"][1])


def assign_community(uow: UnitOfWork, actor: Caller, community_id: str, outlet_id: str) -> CommunityView:
    actor.require(*HQ)
    c = community(uow, community_id)
    o = outlet(uow, outlet_id)
    if not o.active:
        raise InvalidInput("outlet_id", f"{o.outlet_id} is not active / 该超市(保供点)未启用")
    repo.assign(uow.conn, c.community_id, o.kind, o.outlet_id)
    return view(uow, c)


def list_communities(uow: UnitOfWork, actor: Caller, outlet_id: str = "", township: str = "") -> list[CommunityView]:
    actor.require(*LIST_READ_ROLES)
    if actor.role == "supermarket":
        outlet_id = actor.scope
    cache: dict = {}
    views = [view(uow, c, cache) for c in repo.all_communities(uow.conn, township)]
    if actor.role in ("grid_worker", "village"):
        views = [v for v in views if v.community.community_id == actor.scope]
    if outlet_id:
        views = [v for v in views if outlet_id in (v.supermarket_id, v.supply_point_id)]
    return views


def apply_requester(uow: UnitOfWork, payload: Mapping[str, Any]) -> Community | None:
    """intake's requester_registered / requester_updated: a village or community with a location
    becomes (or replaces, when its version is newer) a community; units are not the market's."""
    if payload.get("kind") not in AREA_KINDS:
        return None
    location = payload.get("location") or {}
    if location.get("lat") is None or location.get("lon") is None:
        return None
    version = int(payload.get("version") or 1)
    have = repo.community_version(uow.conn, payload["requester_id"])
    if have is not None and have >= version:
        return None
    c = Community(
        community_id=payload["requester_id"], name=payload.get("name") or "",
        township=payload.get("township") or "", lat=float(location["lat"]), lon=float(location["lon"]),
        drop_points=tuple(DropPoint(p["id"], p.get("name") or "") for p in payload.get("drop_points") or ()),
        households=int(payload.get("households") or 0))
    repo.put_community(uow.conn, c, version)
    return c
