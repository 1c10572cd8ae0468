"""Grid worker (网格员) and village pages of the supermarket channel, phone first: the day's
household orders of the community, a household order (its address goes to the market service
only; the amount the page shows is sent as expected_amount_fen), closing the day into the
community order, payments (online reference, advance collection 统收), the parcels at the drop
point (received, short, refused with a reason), the settlement with the delivery staff, the cash
book and the on-account ledger (代付台账). Every page acts for `viewer.scope` only: an order,
parcel or community order id from a form is looked up among the community's own first."""

from __future__ import annotations

import asyncio
import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from supply.v1 import market_pb2 as mpb

from services.console.adapters.services import ServiceError
from services.console.domain import market as dm
from services.console.domain.forms import Lines
from services.console.entrypoints.lookups import catalogue
from services.console.entrypoints.market_forms import (
    communities,
    community_orders,
    delivery_day,
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

GRID = ("grid_worker", "village")
ORDER_LINE = ("item_code", "price_fen", "quantity")
ORDER_FIELDS = {"address": "address", "payment_mode": "payment_mode", "expected_amount_fen": "amount",
                "day": "form", "community_id": "form"}
CLOSED = ("delivered", "refused", "cancelled")


def _text(form, name: str, limit: int = 200) -> str:
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


def _key(form) -> str:
    key = _text(form, "idempotency_key", 64)
    return key if re.fullmatch(r"[0-9a-f]{32}", key) else new_key()


# ---- home: the day's household orders --------------------------------------------------------
async def _home(request: Request, viewer: Viewer, *, failed: dict | None = None, status: int = 200,
                done: str = "", settlement: mpb.DeliverySettlement | None = None) -> Response:
    day = delivery_day(request)
    orders, cos, comms, current, items = await asyncio.gather(
        household_orders(request, viewer, viewer.scope, day),
        community_orders(request, viewer, day, community_id=viewer.scope),
        communities(request, viewer),
        sellable_list(request, viewer, day, community_id=viewer.scope),
        catalogue(request, viewer))
    paid = {o.order_id: o.paid_fen for o in orders if o.paid_fen}  # online or collected in advance
    parcels = {o.order_id: dm.parcel_state(o.order_id, o.status, [(ln.confirmed, ln.delivered) for ln in o.lines])
               for o in orders}
    by_co = {co.community_order_id: [o for o in orders if o.order_id in set(co.household_order_ids)] for co in cos}
    return render(request, "market/community_home.html", status=status, day=day, orders=orders,
                  community_orders=cos, by_co=by_co, community=comms.get(viewer.scope), current=current,
                  paid=paid, parcels=parcels, failed=failed or {}, done=done or request.query_params.get("done", "")[:80],
                  placed=request.query_params.get("placed", "")[:80], settlement=settlement,
                  placed_count=sum(1 for o in orders if o.status == "placed"), closed=CLOSED,
                  key=new_key(), keys=_keys(orders, cos), dp_name=drop_point_name, **market_context(request, items))


def _keys(orders, cos) -> dict[str, str]:
    """An idempotency key for each form of the page (a payment, a parcel, a settlement)."""
    out = {f"{kind}-{o.order_id}": new_key() for o in orders for kind in ("pay", "parcel")}
    out.update({f"settle-{co.community_order_id}": new_key() for co in cos})
    return out


@page(*GRID)
async def home(request: Request, viewer: Viewer) -> Response:
    return await _home(request, viewer)


async def _own_order(request: Request, viewer: Viewer, order_id: str) -> mpb.HouseholdOrder | None:
    """The household order if it is the community's (of the form's day), else None."""
    found = await household_orders(request, viewer, viewer.scope, delivery_day(request))
    return next((o for o in found if o.order_id == order_id), None)


def _not_yours(request: Request) -> Response:
    _ = gettext_of(request)
    return render(request, "problem.html", status=404, title=_("No such order for your community"),
                  detail=_("You act for your own community only."))


async def _again(request: Request, viewer: Viewer, target: str, typed: dict, errors: dict) -> Response:
    """The home page again with one form's errors next to its fields and what was typed in it
    (a new idempotency key: the corrected form is another request)."""
    typed["idempotency_key"] = new_key()
    return await _home(request, viewer, failed={"target": target, "typed": typed, "errors": errors}, status=422)


def _back(day, done: str) -> RedirectResponse:
    return RedirectResponse(f"/market/community?day={day}&done={done}", status_code=303)


# ---- one household order ---------------------------------------------------------------------
async def _order_page(request: Request, viewer: Viewer, *, lines: Lines | None = None, values: dict | None = None,
                      errors: dict | None = None, status: int = 200) -> Response:
    day = delivery_day(request)
    current, items = await asyncio.gather(sellable_list(request, viewer, day, community_id=viewer.scope),
                                          catalogue(request, viewer))
    if lines is None:
        lines = Lines(ORDER_LINE, [{"item_code": ln.item_code, "price_fen": str(ln.price_fen), "quantity": ""}
                                   for ln in (current.lines if current else [])])
    if current is not None:  # the prices as the list says now (a new version replaces them)
        now = {ln.item_code: str(ln.price_fen) for ln in current.lines}
        for row in lines.rows:
            row["price_fen"] = now.get(row["item_code"], row["price_fen"])
    shown = [(dm.whole(r["quantity"]) or 0, dm.whole(r["price_fen"], 0, 10_000_000) or 0) for r in lines.rows]
    return render(request, "market/community_order.html", status=status, day=day, current=current,
                  lines=lines.rows, values=values or {"idempotency_key": new_key(), "payment_mode": ""},
                  errors=errors or {}, total=dm.total_fen(shown), modes=dm.PAYMENT_MODES,
                  **market_context(request, items))


@page(*GRID)
async def new_order(request: Request, viewer: Viewer) -> Response:
    if request.method == "GET":
        return await _order_page(request, viewer)
    _ = gettext_of(request)
    form = request.state.form
    day = delivery_day(request)
    values = {"idempotency_key": _key(form), "address": _text(form, "address"),
              "payment_mode": _text(form, "payment_mode", 20)}
    lines = Lines.read(form, ORDER_LINE, min_rows=0)
    errors: dict[str, str] = {}
    wanted = [(i, r) for i, r in enumerate(lines.rows) if r["quantity"]]
    lines.sent = [i for i, _r in wanted]
    specs, priced = [], []
    for i, row in wanted:
        q = dm.whole(row["quantity"], 1, 99)
        if q is None:
            errors[f"line-{i}-quantity"] = _("A whole number from 1 to 99.")
        price = dm.whole(row["price_fen"], 0, 10_000_000) or 0
        specs.append(mpb.OrderLine(item_code=row["item_code"], quantity=q or 0))
        priced.append((q or 0, price))
    if form.get("calculate"):  # the no-script "show the amount" button
        return await _order_page(request, viewer, lines=lines, values=values, errors=errors,
                                 status=422 if errors else 200)
    if not wanted:
        errors["form"] = _("Enter the quantity of at least one item.")
    if not values["address"]:
        errors["address"] = _("Required: the household's address in the community (e.g. 3栋2单元501).")
    if values["payment_mode"] not in dm.PAYMENT_MODES:
        errors["payment_mode"] = _("Choose how the household pays.")
    if errors:
        return await _order_page(request, viewer, lines=lines, values=values, errors=errors, status=422)
    try:
        placed = await act(request, viewer, "market_place_order", f"{viewer.scope} {day}", "market",
                           "PlaceHouseholdOrder", mpb.PlaceHouseholdOrderRequest(
                               idempotency_key=values["idempotency_key"], community_id=viewer.scope,
                               day=day.isoformat(), address=values["address"], payment_mode=values["payment_mode"],
                               lines=specs, expected_amount_fen=dm.total_fen(priced)))
    except ServiceError as exc:
        placed_error = refusal(request, exc, lines, tuple(ORDER_FIELDS))
        if placed_error is None:
            raise
        placed_error = {ORDER_FIELDS.get(k, k): v for k, v in placed_error.items()}
        if exc.code.name == "FAILED_PRECONDITION" and "form" in placed_error:
            for i in lines.sent:
                if lines.rows[i]["item_code"] and lines.rows[i]["item_code"] in exc.message:
                    placed_error = {f"line-{i}-quantity": placed_error["form"]}
                    break
        if exc.code.name == "ALREADY_EXISTS":
            placed_error = {"form": _("This form was already sent once with other lines. Check them and send again.")}
        values["idempotency_key"] = new_key()
        return await _order_page(request, viewer, lines=lines, values=values, errors=placed_error, status=422)
    return RedirectResponse(f"/market/community?day={day}&placed={placed.order_id}", status_code=303)


# ---- closing the day, payments, parcels, settlement ------------------------------------------
@page(*GRID)
async def aggregate(request: Request, viewer: Viewer) -> Response:
    form = request.state.form
    day = delivery_day(request)
    try:
        await act(request, viewer, "market_aggregate", f"{viewer.scope} {day}", "market", "AggregateCommunityOrder",
                  mpb.AggregateCommunityOrderRequest(idempotency_key=_key(form), community_id=viewer.scope,
                                                     day=day.isoformat(),
                                                     drop_point_id=_text(form, "drop_point_id", 64)))
    except ServiceError as exc:
        placed = refusal(request, exc)
        if placed is None:
            raise
        return await _home(request, viewer, failed={"target": "aggregate", "errors": {"aggregate": next(
            iter(placed.values()))}}, status=422)
    return _back(day, "aggregated")


@page(*GRID)
async def payment(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    form = request.state.form
    order = await _own_order(request, viewer, _text(form, "order_id", 64))
    if order is None:
        return _not_yours(request)
    typed = {k: _text(form, k) for k in ("mode", "amount", "reference", "idempotency_key")}
    errors: dict[str, str] = {}
    fen = dm.parse_yuan(typed["amount"])
    if fen is None:
        errors["amount"] = _("A price in yuan above 0, e.g. 12.50")
    if typed["mode"] not in ("online", "collected"):
        errors["mode"] = _("Choose online or collected.")
    elif typed["mode"] == "online" and not typed["reference"]:
        errors["reference"] = _("Required for an online payment: the payment's reference.")
    if not errors:
        try:
            await act(request, viewer, "market_payment", order.order_id, "market", "RecordPayment",
                      mpb.RecordPaymentRequest(idempotency_key=_key(form), order_id=order.order_id, mode=typed["mode"],
                                               amount_fen=fen or 0, reference=typed["reference"]))
        except ServiceError as exc:
            placed = refusal(request, exc, fields=("amount_fen", "mode", "reference"))
            if placed is None:
                raise
            errors = {{"amount_fen": "amount"}.get(k, k): v for k, v in placed.items()}
    if errors:
        return await _again(request, viewer, f"pay-{order.order_id}", typed, errors)
    return _back(order.day, "paid")


@page(*GRID)
async def parcel(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    form = request.state.form
    order = await _own_order(request, viewer, _text(form, "order_id", 64))
    if order is None:
        return _not_yours(request)
    typed = {k: _text(form, k, 300) for k, _v in form.multi_items() if k != "csrf_token"}
    outcome, reason = typed.get("outcome", ""), typed.get("reason", "")
    errors: dict[str, str] = {}
    short = []
    if outcome not in dm.OUTCOMES:
        errors["outcome"] = _("Choose received, short or refused.")
    if outcome in ("refused", "short") and not reason:
        errors["reason"] = _("Say why, in a few words.")
    if outcome == "short":
        for ln in order.lines:
            raw = typed.get(f"got-{ln.item_code}", "")
            if raw == "" or ln.confirmed <= 0:
                continue
            got = dm.whole(raw, 0, max(0, ln.confirmed))
            if got is None:
                errors[f"got-{ln.item_code}"] = _("0 to %(n)s.", n=ln.confirmed)
            elif got < ln.confirmed:
                short.append(mpb.ParcelLine(item_code=ln.item_code, quantity=got))
        if not short and not errors:
            errors["outcome"] = _("Short: enter the units received of the lines that were short.")
    if not errors:
        try:
            await act(request, viewer, "market_parcel", order.order_id, "market", "ConfirmParcelDelivery",
                      mpb.ConfirmParcelDeliveryRequest(
                          idempotency_key=_key(form), parcel_id=dm.parcel_state(order.order_id, "packed", []).parcel_id,
                          outcome=outcome, short_lines=short, reason=reason))
        except ServiceError as exc:
            placed = refusal(request, exc, fields=("outcome", "reason"))
            if placed is None:
                raise
            errors = placed
    if errors:
        return await _again(request, viewer, f"parcel-{order.order_id}", typed, errors)
    return _back(order.day, "parcel")


@page(*GRID)
async def settle(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    form = request.state.form
    co_id = _text(form, "community_order_id", 64)
    own = await community_orders(request, viewer, delivery_day(request), community_id=viewer.scope)
    if not any(co.community_order_id == co_id for co in own):
        return _not_yours(request)
    try:
        settlement = await act(request, viewer, "market_settle", co_id, "market", "SettleDelivery",
                               mpb.SettleDeliveryRequest(idempotency_key=_key(form), community_order_id=co_id))
    except ServiceError as exc:
        placed = refusal(request, exc)
        if placed is None:
            raise
        return await _home(request, viewer, failed={"target": f"settle-{co_id}", "errors": {
            "settle": next(iter(placed.values()))}}, status=422)
    return await _home(request, viewer, settlement=settlement, done="settled")


@page(*GRID)
async def books(request: Request, viewer: Viewer) -> Response:
    s, person = svc(request), viewer.person
    book, ledger = await asyncio.gather(
        s.call(person, "market", "GetCashBook", mpb.GetCashBookRequest(community_id=viewer.scope)),
        s.call(person, "market", "GetAccountLedger", mpb.GetAccountLedgerRequest(community_id=viewer.scope)))
    return render(request, "market/community_books.html", book=book, ledger=ledger, yuan=dm.yuan)


routes = [
    Route("/market/community", home),
    Route("/market/community/order/new", new_order, methods=["GET", "POST"]),
    Route("/market/community/aggregate", aggregate, methods=["POST"]),
    Route("/market/community/payment", payment, methods=["POST"]),
    Route("/market/community/parcel", parcel, methods=["POST"]),
    Route("/market/community/settle", settle, methods=["POST"]),
    Route("/market/community/books", books),
]
