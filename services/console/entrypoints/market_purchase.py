"""Purchase on behalf (代买, 篇12) pages of the supermarket channel. The village (or its grid
worker) sends the next pickup day's list of necessities to its supply point (by 18:00 the day
before), follows each list's status and readiness, and books the pickup in one of the village's
purchase slots with a driver and a clerk (two different people). The supply point (a
`supermarket` account whose outlet is of kind supply_point) answers the readiness of each line.
Each page acts for `viewer.scope` only; the market service checks the same on the token."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, time

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from supply.v1 import market_pb2 as mpb

from services.console.adapters.services import ServiceError
from services.console.domain import market as dm
from services.console.domain.forms import Lines
from services.console.entrypoints.lookups import catalogue
from services.console.entrypoints.market_forms import delivery_day, market_context, refusal, svc
from services.console.entrypoints.web import (
    Viewer,
    act,
    console_of,
    gettext_of,
    new_key,
    page,
    render,
)

VILLAGE = ("village", "grid_worker")
OUTLET = ("supermarket",)
LIST_LINE = ("item_code", "quantity")
EXTRA_ROWS = 2  # rows with an item to choose, for what is not among the rows of necessities
MAX_UNITS = 100_000  # proto limit of PurchaseLine.quantity
DAY_RULES = ("market_after_cutoff", "market_purchase_interval")
BOOK_FIELDS = ("slot", "driver", "clerk")


def _rule(exc: ServiceError) -> str:
    """The rule code of a refusal: its ErrorInfo, else the message's "[rule]" prefix."""
    m = re.match(r"^\[([\w.]+)\]", exc.message)
    return exc.rule or (m.group(1) if m else "")


def _text(form, name: str, limit: int = 100) -> str:
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


async def _lists(request: Request, viewer: Viewer, **where: str) -> mpb.ListPurchaseListsResponse:
    return await svc(request).call(viewer.person, "market", "ListPurchaseLists", mpb.ListPurchaseListsRequest(**where))


def _slots_on(slots, day: date) -> list[str]:
    """The village's purchase slots on a day as "HH:MM-HH:MM"."""
    return [f"{s.window.start}-{s.window.end}" for s in slots if not s.weekdays or day.isoweekday() in s.weekdays]


def _stamp(request: Request, day: date, hhmm: str) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(datetime.combine(day, time.fromisoformat(hhmm), console_of(request).settings.common.timezone))
    return t


# ---- the village: its lists, a new list, booking the pickup -----------------------------------
async def _village_page(request: Request, viewer: Viewer, *, lines: Lines | None = None, values: dict | None = None,
                        errors: dict | None = None, booking: dict | None = None, status: int = 200) -> Response:
    found, items = await asyncio.gather(_lists(request, viewer, village_id=viewer.scope), catalogue(request, viewer))
    if lines is None:
        lines = Lines(LIST_LINE, [{"item_code": code, "quantity": ""} for code, it in items.items() if it.essential]
                      + [{"item_code": "", "quantity": ""} for _ in range(EXTRA_ROWS)])
    lists = sorted(found.purchase_lists, key=lambda p: p.pickup_day, reverse=True)
    return render(request, "market/purchase_village.html", status=status, lists=lists, lines=lines.rows,
                  extra=EXTRA_ROWS, values=values or {"pickup_day": delivery_day(request).isoformat(),
                                                          "idempotency_key": new_key()},
                  errors=errors or {}, booking=booking or {}, keys={p.list_id: new_key() for p in lists},
                  slots={p.list_id: _slots_on(found.slots, date.fromisoformat(p.pickup_day)) for p in lists},
                  sent=request.query_params.get("sent", "")[:64], booked=request.query_params.get("booked", "")[:64],
                  **market_context(request, items))


@page(*VILLAGE)
async def village(request: Request, viewer: Viewer) -> Response:
    if request.method == "GET":
        return await _village_page(request, viewer)
    _ = gettext_of(request)
    form = request.state.form
    values = {"pickup_day": _text(form, "pickup_day", 10), "idempotency_key": _text(form, "idempotency_key", 64)
              or new_key()}
    lines = Lines.read(form, LIST_LINE, min_rows=0)
    errors: dict[str, str] = {}
    try:
        day = date.fromisoformat(values["pickup_day"])
    except ValueError:
        day = None
        errors["pickup_day"] = _("A day as YYYY-MM-DD.")
    wanted = [(i, r) for i, r in enumerate(lines.rows) if r["quantity"]]
    lines.sent = [i for i, _r in wanted]
    specs = []
    for i, row in wanted:
        q = dm.whole(row["quantity"], 1, MAX_UNITS)
        if q is None:
            errors[f"line-{i}-quantity"] = _("A whole number from 1 to %(n)s.", n=MAX_UNITS)
        if not row["item_code"]:
            errors[f"line-{i}-item_code"] = _("Choose the item.")
        specs.append(mpb.PurchaseLine(item_code=row["item_code"], quantity=q or 0))
    if not wanted:
        errors["form"] = _("Enter the quantity of at least one item.")
    if errors:
        return await _village_page(request, viewer, lines=lines, values=values, errors=errors, status=422)
    try:
        plist = await act(request, viewer, "market_purchase_list", f"{viewer.scope} {day}", "market",
                          "SubmitPurchaseList", mpb.SubmitPurchaseListRequest(
                              idempotency_key=values["idempotency_key"], village_id=viewer.scope,
                              pickup_day=day.isoformat(), lines=specs))
    except ServiceError as exc:
        placed = refusal(request, exc, lines, fields=("pickup_day",))
        if placed is None:
            raise
        if exc.code.name == "FAILED_PRECONDITION" and "form" in placed:
            placed = _rule_placed(exc, lines, placed)
        values["idempotency_key"] = new_key()
        return await _village_page(request, viewer, lines=lines, values=values, errors=placed, status=422)
    return RedirectResponse(f"/market/purchase?sent={plist.list_id}#list-{plist.list_id}", status_code=303)


def _rule_placed(exc: ServiceError, lines: Lines, placed: dict[str, str]) -> dict[str, str]:
    """A rule about the day goes next to the day; one naming an item (a non-essential) on its row."""
    if _rule(exc) in DAY_RULES:
        return {"pickup_day": placed["form"]}
    for i in lines.sent:
        code = lines.rows[i]["item_code"]
        if code and code in exc.message:
            return {f"line-{i}-item_code": placed["form"]}
    return placed


@page(*VILLAGE)
async def book(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    form = request.state.form
    list_id = _text(form, "list_id", 64)
    found = await _lists(request, viewer, village_id=viewer.scope)
    plist = next((p for p in found.purchase_lists if p.list_id == list_id), None)
    if plist is None:
        return render(request, "problem.html", status=404, title=_("No such purchase list for your village"),
                      detail=_("You act for your own village only."))
    typed = {k: _text(form, k) for k in (*BOOK_FIELDS, "idempotency_key")}
    errors: dict[str, str] = {}
    day = date.fromisoformat(plist.pickup_day)
    if typed["slot"] not in _slots_on(found.slots, day):
        errors["slot"] = _("Choose one of the village's purchase slots.")
    for name in ("driver", "clerk"):
        if not typed[name]:
            errors[name] = _("Required: the person's name.")
    if not errors:
        start, end = typed["slot"].split("-")
        try:
            await act(request, viewer, "market_book_pickup", list_id, "market", "BookPickup", mpb.BookPickupRequest(
                idempotency_key=typed["idempotency_key"] or new_key(), list_id=list_id,
                slot_start=_stamp(request, day, start), slot_end=_stamp(request, day, end),
                driver=typed["driver"], clerk=typed["clerk"]))
        except ServiceError as exc:
            placed = refusal(request, exc, fields=BOOK_FIELDS)
            if placed is None:
                raise
            where = {"market_same_person": "clerk", "market_slot_not_village": "slot"}.get(_rule(exc), "")
            errors = {({"slot_start": "slot", "slot_end": "slot"}.get(k, where or k)): v for k, v in placed.items()}
    if errors:
        typed["idempotency_key"] = new_key()
        return await _village_page(request, viewer, booking={"list_id": list_id, "typed": typed, "errors": errors},
                                   status=422)
    return RedirectResponse(f"/market/purchase?booked={list_id}#list-{list_id}", status_code=303)


# ---- the supply point: lists sent to it, readiness per line -----------------------------------
async def _supply_page(request: Request, viewer: Viewer, *, failed: dict | None = None, status: int = 200,
                       ) -> Response:
    outlets, found, items = await asyncio.gather(
        svc(request).call(viewer.person, "market", "ListOutlets", mpb.ListOutletsRequest()),
        _lists(request, viewer, supply_point_id=viewer.scope), catalogue(request, viewer))
    own = next((o for o in outlets.outlets if o.outlet_id == viewer.scope), None)
    lists = sorted(found.purchase_lists, key=lambda p: p.pickup_day, reverse=True)
    return render(request, "market/purchase_supply.html", status=status, outlet=own, lists=lists,
                  failed=failed or {}, keys={p.list_id: new_key() for p in lists},
                  answered=request.query_params.get("answered", "")[:64], **market_context(request, items))


@page(*OUTLET)
async def supply(request: Request, viewer: Viewer) -> Response:
    return await _supply_page(request, viewer)


@page(*OUTLET)
async def readiness(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    form = request.state.form
    list_id = request.path_params["list_id"][:64]
    found = await _lists(request, viewer, supply_point_id=viewer.scope)
    plist = next((p for p in found.purchase_lists if p.list_id == list_id), None)
    if plist is None:
        return render(request, "problem.html", status=404, title=_("No such purchase list for your supply point"))
    typed = {f"ready-{ln.item_code}": _text(form, f"ready-{ln.item_code}", 12) for ln in plist.lines}
    errors: dict[str, str] = {}
    answers = []
    for ln in plist.lines:
        n = dm.whole(typed[f"ready-{ln.item_code}"], 0, ln.quantity)
        if n is None:
            errors[f"ready-{ln.item_code}"] = _("0 to %(n)s.", n=ln.quantity)
        answers.append(mpb.ReadinessAnswer(item_code=ln.item_code, ready=n or 0))
    if not errors:
        try:
            await act(request, viewer, "market_readiness", list_id, "market", "AnswerReadiness",
                      mpb.AnswerReadinessRequest(idempotency_key=_text(form, "idempotency_key", 64) or new_key(),
                                                 list_id=list_id, answers=answers))
        except ServiceError as exc:
            placed = refusal(request, exc)
            if placed is None:
                raise
            code = exc.field.removeprefix("answers.") if exc.field.startswith("answers.") else ""
            errors = {f"ready-{code}": placed["form"]} if code and "form" in placed else placed
    if errors:
        return await _supply_page(request, viewer, failed={"list_id": list_id, "typed": typed, "errors": errors},
                                  status=422)
    return RedirectResponse(f"/market/purchase/supply?answered={list_id}#list-{list_id}", status_code=303)


routes = [
    Route("/market/purchase", village, methods=["GET", "POST"]),
    Route("/market/purchase/book", book, methods=["POST"]),
    Route("/market/purchase/supply", supply),
    Route("/market/purchase/supply/{list_id}", readiness, methods=["POST"]),
]
