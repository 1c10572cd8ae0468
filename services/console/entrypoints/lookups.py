"""What the depot keeper's, the inspector's and the units' pages look up besides their own
calls: the item catalogue (names in both languages, units, groups), requesters' names and drop
points, the county day and county-local times of the services' timestamps."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from supply.v1 import intake_pb2 as ipb

from services.console.adapters.services import ServiceError
from services.console.entrypoints.web import Viewer, console_of, lang_of

CATALOGUE_TTL_S = 300.0
_catalogue: dict[str, object] = {"at": 0.0, "items": {}}


@dataclass(frozen=True)
class Item:
    code: str
    name_zh: str
    name_en: str
    unit: str
    group: str
    essential: bool

    def name(self, lang: str) -> str:
        return self.name_zh if lang == "zh_CN" else self.name_en


async def catalogue(request: Request, viewer: Viewer) -> dict[str, Item]:
    """The item catalogue by code, kept for a few minutes. Empty when intake cannot give it:
    pages then show item codes instead of names (never a failed page for want of names)."""
    if _catalogue["items"] and time.monotonic() - float(_catalogue["at"]) < CATALOGUE_TTL_S:
        return _catalogue["items"]  # type: ignore[return-value]
    try:
        answer = await console_of(request).services.call(viewer.person, "intake", "ListCatalogueItems",
                                                          ipb.ListCatalogueItemsRequest())
    except ServiceError:
        return {}
    items = {i.item_code: Item(i.item_code, i.name_zh, i.name_en, i.unit, i.group, i.essential)
             for i in answer.items}
    _catalogue.update(at=time.monotonic(), items=items)
    return items


def item_namer(items: dict[str, Item], lang: str) -> Callable[[str], str]:
    """code → "name" in the page's language (the code itself when the catalogue is unknown)."""
    return lambda code: items[code].name(lang) if code in items else code


async def requesters(request: Request, viewer: Viewer) -> dict[str, ipb.Requester]:
    """Every requester the viewer may read, by id (names and drop points of trip stops)."""
    found = await console_of(request).services.all_pages(
        viewer.person, "intake", "ListRequesters", ipb.ListRequestersRequest(), "requesters")
    return {r.id: r for r in found}


def county_today(request: Request) -> date:
    console = console_of(request)
    return console.now().astimezone(console.settings.common.timezone).date()


def day_param(request: Request, name: str = "day") -> date:
    """?day=YYYY-MM-DD, else today on the county clock (a malformed day is today too)."""
    raw = request.query_params.get(name, "")
    try:
        return date.fromisoformat(raw) if raw else county_today(request)
    except ValueError:
        return county_today(request)


def local_time(request: Request) -> Callable[[Timestamp, str], str]:
    """A template function: a service timestamp in county time ("" when unset)."""
    tz = console_of(request).settings.common.timezone

    def fmt(ts: Timestamp, pattern: str = "%H:%M") -> str:
        if ts is None or (ts.seconds == 0 and ts.nanos == 0):
            return ""
        return datetime.fromtimestamp(ts.seconds, tz).strftime(pattern)
    return fmt


def page_context(request: Request, items: dict[str, Item]) -> dict:
    """What every page of these areas gives its template."""
    lang = lang_of(request)
    return {"item_name": item_namer(items, lang), "items": items, "when": local_time(request)}
