"""Supermarket (定点超市 / 保供点) pages of the supermarket channel, and HQ's page of it: the
community orders to confirm per delivery day, the answer line by line (full, partial with the
quantity it has, out of stock), packing, the labels (the market service's HTML with its print
CSS, in a tab of its own) and the packing list per drop point, the deliveries' state, and the
sellable list of a day (prices typed in yuan, sent in fen). HQ: outlets, which outlet serves
which community, the channel's day and the settlement report. A supermarket acts for its own
outlet (`viewer.scope`) only; the market service checks the same on the person's token."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from supply.v1 import intake_pb2 as ipb
from supply.v1 import market_pb2 as mpb

from services.console.adapters.services import ServiceError
from services.console.domain import market as dm
from services.console.domain.forms import Lines
from services.console.entrypoints.lookups import catalogue, day_param, local_time
from services.console.entrypoints.market_forms import (
    communities,
    community_orders,
    delivery_day,
    document,
    drop_point_name,
    household_orders,
    market_context,
    refusal,
    sellable_list,
    svc,
)
from services.console.entrypoints.web import (
    Viewer,
    act,
    gettext_of,
    new_key,
    page,
    render,
)

OUTLET = ("supermarket",)
HQ = ("hq", "admin")
LIST_LINE = ("item_code", "price", "available")
ANSWER_FIELD = re.compile(r"^answers\[(\d+)\]\.?(\w*)")


# ---- home: the community orders of a delivery day ------------------------------------------
async def _deliveries(request: Request, viewer: Viewer, orders: list[mpb.CommunityOrder], day) -> dict[str, Counter]:
    """community order id → parcels per outcome (packed, received, short, refused)."""
    packed = [co for co in orders if co.status in ("packed", "delivered")]
    found = await asyncio.gather(*(household_orders(request, viewer, co.community_id, day) for co in packed))
    out: dict[str, Counter] = {}
    for co, hos in zip(packed, found, strict=True):
        mine = set(co.household_order_ids)
        out[co.community_order_id] = Counter(
            dm.parcel_state(o.order_id, o.status, [(ln.confirmed, ln.delivered) for ln in o.lines]).outcome
            for o in hos if o.order_id in mine and o.status in ("packed", "delivered", "refused"))
    return out


@page(*OUTLET)
async def home(request: Request, viewer: Viewer) -> Response:
    day = delivery_day(request)
    orders, comms, current, items = await asyncio.gather(
        community_orders(request, viewer, day, outlet_id=viewer.scope),
        communities(request, viewer, viewer.scope),
        sellable_list(request, viewer, day, outlet_id=viewer.scope),
        catalogue(request, viewer))
    deliveries = await _deliveries(request, viewer, orders, day)
    return render(request, "market/outlet_home.html", day=day, prev_day=day - timedelta(days=1),
                  next_day=day + timedelta(days=1), orders=orders, communities=comms, current=current,
                  deliveries=deliveries, dp_name=drop_point_name, **market_context(request, items))


# ---- the sellable list ------------------------------------------------------------------------
async def _list_page(request: Request, viewer: Viewer, day, *, lines: Lines | None = None, key: str = "",
                     errors: dict | None = None, status: int = 200, published: mpb.SellableList | None = None):
    current, items, essentials = await asyncio.gather(
        sellable_list(request, viewer, day, outlet_id=viewer.scope), catalogue(request, viewer),
        svc(request).call(viewer.person, "intake", "ListCatalogueItems",
                          ipb.ListCatalogueItemsRequest(essential_only=True)))
    shown = published or current
    if lines is None:  # one row per necessity, those on the current list first with their prices
        on_list = {ln.item_code: ln for ln in shown.lines} if shown else {}
        codes = [*on_list, *(i.item_code for i in essentials.items if i.item_code not in on_list)]
        lines = Lines(LIST_LINE, [{
            "item_code": c, "price": dm.yuan(on_list[c].price_fen) if c in on_list else "",
            "available": str(on_list[c].available) if c in on_list and on_list[c].has_available else ""}
            for c in codes])
    return render(request, "market/outlet_list.html", status=status, day=day, lines=lines.rows, current=current,
                  published=published, key=key or new_key(), errors=errors or {}, **market_context(request, items))


@page(*OUTLET)
async def sellable(request: Request, viewer: Viewer) -> Response:
    day = delivery_day(request)
    if request.method == "GET":
        return await _list_page(request, viewer, day)
    _ = gettext_of(request)
    form = request.state.form
    key = str(form.get("idempotency_key", ""))[:64] or new_key()
    lines = Lines.read(form, LIST_LINE)
    errors: dict[str, str] = {}
    specs = []
    priced = [(i, r) for i, r in enumerate(lines.rows) if r["price"] or r["available"]]
    lines.sent = [i for i, _r in priced]
    for i, row in priced:
        fen = dm.parse_yuan(row["price"])
        if fen is None:
            errors[f"line-{i}-price"] = _("A price in yuan above 0, e.g. 12.50")
        available = dm.whole(row["available"], 0, 10_000_000) if row["available"] else None
        if row["available"] and available is None:
            errors[f"line-{i}-available"] = _("A whole number, 0 or more.")
        specs.append(mpb.SellableLine(item_code=row["item_code"], price_fen=fen or 0, available=available or 0,
                                      has_available=available is not None))
    if not priced:
        errors["form"] = _("Enter a price for at least one item.")
    if errors:
        return await _list_page(request, viewer, day, lines=lines, key=key, errors=errors, status=422)
    try:
        published = await act(request, viewer, "market_publish_list", f"{viewer.scope} {day}", "market",
                              "PublishSellableList", mpb.PublishSellableListRequest(
                                  idempotency_key=key, outlet_id=viewer.scope, day=day.isoformat(), lines=specs))
    except ServiceError as exc:
        placed = refusal(request, exc, lines, rename={"price_fen": "price", "quantity": "price"})
        if placed is None:
            raise
        if exc.code.name == "FAILED_PRECONDITION" and "form" in placed:
            placed = _rule_on_line(exc, lines, placed)
        return await _list_page(request, viewer, day, lines=lines, key=new_key(), errors=placed, status=422)
    return await _list_page(request, viewer, day, published=published)


def _rule_on_line(exc: ServiceError, lines: Lines, placed: dict[str, str]) -> dict[str, str]:
    """A rule refusal names the item (e.g. a non-essential one): put it on that item's row."""
    for i in lines.sent:
        code = lines.rows[i]["item_code"]
        if code and code in exc.message:
            return {f"line-{i}-price": placed["form"]}
    return placed


# ---- one community order: confirm, pack, labels, packing list ----------------------------------
async def _order(request: Request, viewer: Viewer, co_id: str) -> mpb.CommunityOrder | None:
    found = await community_orders(request, viewer, delivery_day(request), outlet_id=viewer.scope)
    return next((co for co in found if co.community_order_id == co_id), None)


async def _order_page(request: Request, viewer: Viewer, co: mpb.CommunityOrder, *, typed: dict | None = None,
                      errors: dict | None = None, status: int = 200, changed: list | None = None) -> Response:
    comms, items = await asyncio.gather(communities(request, viewer, viewer.scope), catalogue(request, viewer))
    packing = None
    if co.status in ("packed", "delivered"):
        packing = await svc(request).call(viewer.person, "market", "GetPackingList",
                                          mpb.GetPackingListRequest(community_order_id=co.community_order_id))
    return render(request, "market/outlet_order.html", status=status, co=co, community=comms.get(co.community_id),
                  typed=typed or {}, errors=errors or {}, key=(typed or {}).get("idempotency_key") or new_key(),
                  packing=packing, changed=changed or [], dp_name=drop_point_name, **market_context(request, items))


@page(*OUTLET)
async def order(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    co_id = request.path_params["co_id"][:64]
    co = await _order(request, viewer, co_id)
    if co is None:
        return render(request, "problem.html", status=404, title=_("No such community order for your outlet"))
    if request.method == "GET":
        return await _order_page(request, viewer, co)
    form = request.state.form
    typed = {k: str(v)[:64] for k, v in form.multi_items() if k != "csrf_token"}
    errors: dict[str, str] = {}
    answers = []
    for i, ln in enumerate(co.lines):
        answer = typed.get(f"answer-{i}", "")
        quantity = 0
        if answer not in dm.ANSWERS:
            errors[f"line-{i}-answer"] = _("Choose full, partial or out of stock.")
        elif answer == "partial":
            q = dm.whole(typed.get(f"quantity-{i}", ""), 1, max(1, ln.quantity - 1))
            if q is None or ln.quantity < 2:
                errors[f"line-{i}-quantity"] = _("Partial: the units you have, 1 to %(n)s.", n=max(1, ln.quantity - 1))
            quantity = q or 0
        answers.append(mpb.LineAnswer(item_code=ln.item_code, answer=answer, quantity=quantity))
    if errors:
        return await _order_page(request, viewer, co, typed=typed, errors=errors, status=422)
    try:
        answer = await act(request, viewer, "market_confirm_order", co.community_order_id, "market",
                           "ConfirmCommunityOrder", mpb.ConfirmCommunityOrderRequest(
                               idempotency_key=typed.get("idempotency_key") or new_key(),
                               community_order_id=co.community_order_id, answers=answers))
    except ServiceError as exc:
        placed = refusal(request, exc)
        if placed is None:
            raise
        m = ANSWER_FIELD.match(exc.field)
        if m and "form" in placed:
            part = "quantity" if m.group(2) == "quantity" else "answer"
            placed = {f"line-{m.group(1)}-{part}": placed["form"]}
        typed["idempotency_key"] = new_key()
        return await _order_page(request, viewer, co, typed=typed, errors=placed, status=422)
    return await _order_page(request, viewer, answer.community_order, changed=list(answer.changed_orders))


@page(*OUTLET)
async def pack(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    co = await _order(request, viewer, request.path_params["co_id"][:64])
    if co is None:
        return render(request, "problem.html", status=404, title=_("No such community order for your outlet"))
    form = request.state.form
    try:
        await act(request, viewer, "market_pack_order", co.community_order_id, "market", "PackCommunityOrder",
                  mpb.PackCommunityOrderRequest(idempotency_key=str(form.get("idempotency_key", ""))[:64] or new_key(),
                                                community_order_id=co.community_order_id))
    except ServiceError as exc:
        placed = refusal(request, exc)
        if placed is None:
            raise
        return await _order_page(request, viewer, co, errors={"pack": next(iter(placed.values()))}, status=422)
    return RedirectResponse(f"/market/outlet/orders/{co.community_order_id}?day={co.day}&packed=1", status_code=303)


@page(*OUTLET, *HQ)
async def labels(request: Request, viewer: Viewer) -> Response:
    doc = await svc(request).call(viewer.person, "market", "GetLabels",
                                  mpb.GetLabelsRequest(community_order_id=request.path_params["co_id"][:64]))
    return document(doc)


@page(*OUTLET, *HQ)
async def packing_list(request: Request, viewer: Viewer) -> Response:
    answer = await svc(request).call(viewer.person, "market", "GetPackingList",
                                     mpb.GetPackingListRequest(community_order_id=request.path_params["co_id"][:64]))
    return document(answer.document)


# ---- HQ: the channel ---------------------------------------------------------------------------
async def _optional(coro):
    try:
        return await coro, None
    except ServiceError as exc:
        if exc.unavailable:
            raise
        return None, exc


async def _hq_page(request: Request, viewer: Viewer, *, failed: dict | None = None, status: int = 200) -> Response:
    day = day_param(request)
    person, s = viewer.person, svc(request)
    (outlets, comms, (summary, summary_refused), (report, report_refused)) = await asyncio.gather(
        s.call(person, "market", "ListOutlets", mpb.ListOutletsRequest()),
        communities(request, viewer),
        _optional(s.call(person, "market", "GetChannelSummary", mpb.GetChannelSummaryRequest(day=day.isoformat()))),
        _optional(s.call(person, "market", "GetSettlementReport", mpb.GetSettlementReportRequest())))
    return render(request, "market/hq.html", status=status, day=day, prev_day=day - timedelta(days=1),
                  next_day=day + timedelta(days=1), outlets=outlets.outlets, communities=comms,
                  summary=summary, summary_refused=summary_refused, report=report, report_refused=report_refused,
                  yuan=dm.yuan, key=new_key(), when=local_time(request), failed=failed or {},
                  assigned=request.query_params.get("assigned", "")[:64],
                  keys={c: new_key() for c in comms})


@page(*HQ)
async def hq_market(request: Request, viewer: Viewer) -> Response:
    return await _hq_page(request, viewer)


@page(*HQ)
async def assign(request: Request, viewer: Viewer) -> Response:
    """HQ assigns a community's supermarket or supply point (AssignCommunity): an active outlet;
    its kind says which of the two it replaces. A refusal comes back next to the community's
    choice, with what was chosen kept."""
    _ = gettext_of(request)
    form = request.state.form
    community_id = str(form.get("community_id", ""))[:64]
    outlet_id = str(form.get("outlet_id", ""))[:64]
    key = str(form.get("idempotency_key", ""))[:64] or new_key()
    day = str(form.get("day", ""))[:10]
    error = "" if outlet_id else _("Choose an active supermarket or supply point.")
    if not error:
        try:
            await act(request, viewer, "market_assign_community", f"{community_id} {outlet_id}", "market",
                      "AssignCommunity", mpb.AssignCommunityRequest(idempotency_key=key, community_id=community_id,
                                                                    outlet_id=outlet_id))
        except ServiceError as exc:
            placed = refusal(request, exc)
            if placed is None:
                raise
            error = next(iter(placed.values()))
    if error:
        return await _hq_page(request, viewer, status=422, failed={
            "community_id": community_id, "outlet_id": outlet_id, "error": error})
    return RedirectResponse(f"/hq/market?day={day}&assigned={community_id}#assignments", status_code=303)


@page(*HQ)
async def close_accounts(request: Request, viewer: Viewer) -> Response:
    """At the lockdown's end: the settlement report as it stands is kept, the accounts closed."""
    form = request.state.form
    await act(request, viewer, "market_close_accounts", "market", "market", "CloseAccounts",
              mpb.CloseAccountsRequest(idempotency_key=str(form.get("idempotency_key", ""))[:64] or new_key()))
    return RedirectResponse(f"/hq/market?day={str(form.get('day', ''))[:10]}#settlement", status_code=303)


routes = [
    Route("/market/outlet", home),
    Route("/market/outlet/list", sellable, methods=["GET", "POST"]),
    Route("/market/outlet/orders/{co_id}", order, methods=["GET", "POST"]),
    Route("/market/outlet/orders/{co_id}/pack", pack, methods=["POST"]),
    Route("/market/outlet/orders/{co_id}/labels", labels),
    Route("/market/outlet/orders/{co_id}/packing", packing_list),
    Route("/hq/market", hq_market),
    Route("/hq/market/close-accounts", close_accounts, methods=["POST"]),
    Route("/hq/market/assign", assign, methods=["POST"]),
]
