"""What the village pages share: reading a posted form, the catalogue cached for names, the
county's clock, the day's trips, and a service's refusal put next to the field it names."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from supply.v1 import intake_pb2 as ipb
from supply.v1 import logistics_pb2 as lpb

from services.console.adapters.services import ServiceError
from services.console.domain import village as dv
from services.console.entrypoints.web import Viewer, console_of, gettext_of, lang_of, new_key

VILLAGE = ("village", "grid_worker")
CATALOGUE_TTL_S = 300.0
_catalogues: dict[int, tuple[float, dict[str, dv.CatalogueEntry]]] = {}


def county_now(request: Request) -> datetime:
    console = console_of(request)
    return console.now().astimezone(console.settings.common.timezone)


def local(ts: Timestamp, request: Request) -> datetime | None:
    """A protobuf instant in county time; None when unset."""
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=console_of(request).settings.common.timezone)


def enum_name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


def form_text(form, name: str, limit: int = 200) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def form_key(form) -> str:
    """The idempotency key rendered into the form; a new one when it is missing or malformed."""
    key = form_text(form, "idempotency_key")
    return key if dv.KEY.match(key) else new_key()


async def catalogue(request: Request, viewer: Viewer) -> dict[str, dv.CatalogueEntry]:
    """The whole item catalogue (for names in the page's language), read once per few minutes.
    When intake cannot list it, the pages go on with item codes (request.state.catalogue_problem
    says why) rather than refusing to take a demand."""
    services = console_of(request).services
    cached = _catalogues.get(id(services))
    if cached and cached[0] > time.monotonic():
        return cached[1]
    try:
        answer = await services.call(viewer.person, "intake", "ListCatalogueItems", ipb.ListCatalogueItemsRequest())
    except ServiceError as exc:
        request.state.catalogue_problem = exc
        return {}
    entries = {i.item_code: entry(i) for i in answer.items}
    _catalogues[id(services)] = (time.monotonic() + CATALOGUE_TTL_S, entries)
    return entries


def entry(i: ipb.CatalogueItem) -> dv.CatalogueEntry:
    return dv.CatalogueEntry(i.item_code, i.name_zh, i.name_en, i.unit, i.group, i.group_name_zh,
                             i.group_name_en, i.essential, i.special_need, i.package)


async def optional(coro) -> tuple[Any, ServiceError | None]:
    """A read a page can do without: (answer, None) or (None, the refusal)."""
    try:
        return await coro, None
    except ServiceError as exc:
        return None, exc


def explained(request: Request, text: str) -> str:
    """A service's English INVALID_ARGUMENT text in the page's language when it is a known one."""
    _ = gettext_of(request)
    code, v = dv.explain(text)
    messages = {
        "at_least": lambda: _("At least %(n)s (you entered %(got)s)", **v),
        "at_most": lambda: _("At most %(n)s (you entered %(got)s)", **v),
        "unknown_item": lambda: _("Not in the catalogue: %(code)s", **v),
        "repeated_item": lambda: _("%(code)s is already on another line: put the whole quantity on one line", **v),
        "too_long": lambda: _("At most %(n)s characters", **v),
        "whole_number": lambda: _("Enter a whole number"),
        "over_shipped": lambda: _("More than was shipped (%(n)s)", **v),
        "reason_needed": lambda: _("Less than was shipped: choose why"),
    }
    return messages[code]() if code in messages else text


def own_errors(request: Request, codes: dict[str, str]) -> dict[str, str]:
    """The console's own form checks, in the page's language."""
    _ = gettext_of(request)
    text = {"required": _("Choose an item from the catalogue"), "whole_number": _("Enter a whole number"),
            "no_lines": _("Add at least one line: an item and its quantity"),
            "required_text": _("Required")}
    return {f: text.get(c, c) for f, c in codes.items()}


def place_error(request: Request, exc: ServiceError, origin: list[int], fields: dict[str, str],
                prefix: str = "lines", parts: dict[str, str] = dv.LINE_PARTS,
                default_part: str = "item") -> dict[str, str]:
    """A refusal that names a field or a rule, next to its field (or the form's own error)."""
    r = dv.refusal(exc.field, exc.rule, exc.message, origin, lang_of(request), prefix, fields, parts, default_part)
    return {r.field or "form": explained(request, r.text)}  # a rule's text names the rule (篇5 …)


def refusable(exc: ServiceError) -> bool:
    """A refusal the person can fix on the form (else the page shows the service's banner)."""
    return not exc.unavailable and exc.code.name in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "ALREADY_EXISTS")




async def trips_of_day(request: Request, viewer: Viewer, day: date) -> list[lpb.Trip]:
    """The trips of `day` stopping at the village (logistics gives a village only its own stops)."""
    answer = await console_of(request).services.call(viewer.person, "logistics", "ListTrips",
                                                     lpb.ListTripsRequest(delivery_day=day.isoformat()))
    return [t for t in answer.trips if any(s.requester_id == viewer.scope for s in t.stops)]
