"""Village and grid worker pages (村居专班 / 网格员), phone first: today's demands of the village
and where each stands, the demand form (with an offline queue: static/village.js and the
service worker static/sw.js), special needs, the WeChat spreadsheet import, and the receipt at
the drop point (签收; village_import.py and village_receive.py, helpers in village_forms.py).
Every page acts for `viewer.scope` only, never for an id from the URL or the form; the services
refuse the rest as well."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from supply.v1 import allocation_pb2 as apb
from supply.v1 import common_pb2 as cpb
from supply.v1 import intake_pb2 as ipb
from supply.v1 import logistics_pb2 as lpb

from services.console.adapters.services import ServiceError
from services.console.domain import village as dv
from services.console.entrypoints.village_forms import (
    VILLAGE,
    catalogue,
    county_now,
    entry,
    enum_name,
    form_key,
    form_text,
    local,
    optional,
    own_errors,
    place_error,
    refusable,
    trips_of_day,
)
from services.console.entrypoints.village_import import import_page, import_template
from services.console.entrypoints.village_receive import receive_page
from services.console.entrypoints.web import (
    Viewer,
    act,
    console_of,
    gettext_of,
    lang_of,
    new_key,
    page,
    render,
)

STATIC = Path(__file__).resolve().parents[1] / "static"
FORM_PATH = "/village/demand/new"
DEMAND_FIELDS = {"delivery_day": "delivery_day", "requester_id": "form"}
NEED_FIELDS = {"beneficiary.name": "beneficiary-name", "beneficiary.phone": "beneficiary-phone",
               "beneficiary": "beneficiary-name", "category": "category", "period_days": "period_days",
               "delivery_day": "delivery_day", "note": "note", "requester_id": "form"}
CATEGORIES = ("infant_formula", "chronic_medicine", "elderly_alone", "disability", "pregnancy", "other")


# ---- today's demands -------------------------------------------------------------------------
@dataclass
class LineView:
    code: str
    name: str
    unit: str
    asked: int
    delivered: int | None
    shipped: int
    tier: int
    flagged: bool
    norm: int
    note: str
    allocated: int | None = None  # what the day's approved plan gave this line; None: no plan yet


@dataclass
class DemandView:
    id: str
    delivery_day: str
    requested_day: str
    rolled_over: bool
    standing: dv.Standing
    origin: str
    origin_ref: str
    submitted_at: datetime | None
    cutoff_at: datetime | None
    minutes_left: int | None
    flagged: bool
    top_tier: int
    lines: list[LineView]
    notices: list[str]
    trips: list[tuple[str, str, datetime | None]] = field(default_factory=list)


def shipments_by_demand(trips: list[lpb.Trip], request: Request) -> dict[str, list[dv.Shipment]]:
    out: dict[str, list[dv.Shipment]] = defaultdict(list)
    for t in trips:
        for s in t.stops:
            for ln in s.lines:
                out[ln.demand_id].append(dv.Shipment(t.trip_id, t.vehicle_id, local(s.eta, request),
                                                     ln.item_code, int(ln.quantity), s.delivered))
    return out


def demand_view(d: ipb.Demand, cat: dict[str, dv.CatalogueEntry], shipments: list[dv.Shipment],
                request: Request, now: datetime, allocated: dict[int, int] | None = None) -> DemandView:
    """`allocated`: line number → units the day's approved plan gave (None: no approved plan)."""
    lang = lang_of(request)
    shipped: dict[str, int] = defaultdict(int)
    for s in shipments:
        shipped[s.item_code] += s.quantity
    cutoff = local(d.cutoff_at, request)
    status = enum_name(ipb.DemandStatus, d.status, "DEMAND_STATUS_")
    lines = []
    for ln in d.lines:
        e = cat.get(ln.item_code)
        lines.append(LineView(ln.item_code, e.name(lang) if e else ln.item_code, e.unit if e else "",
                              ln.quantity, ln.delivered if ln.HasField("delivered") else None,
                              shipped.get(ln.item_code, 0), int(ln.tier), ln.flagged, ln.norm_quantity, ln.note,
                              None if allocated is None else allocated.get(ln.line_no, 0)))
    trips = sorted({(s.trip_id, s.vehicle_id, s.eta) for s in shipments}, key=lambda t: t[0])
    return DemandView(
        id=d.id, delivery_day=d.delivery_day, requested_day=d.requested_day, rolled_over=d.rolled_over,
        standing=dv.standing(status, d.carry_over_demand_id, cutoff, now, shipments,
                             None if allocated is None else sum(allocated.values())),
        origin=enum_name(ipb.DemandOrigin, d.origin, "DEMAND_ORIGIN_"), origin_ref=d.origin_ref,
        submitted_at=local(d.submitted_at, request), cutoff_at=cutoff,
        minutes_left=dv.minutes_until(cutoff, now) if status == "open" else None,
        flagged=d.flagged, top_tier=int(d.top_tier), lines=lines,
        notices=[n.zh if lang == "zh_CN" else n.en for n in d.notices], trips=trips)


async def demands_of_day(request: Request, viewer: Viewer, day: date) -> list[ipb.Demand]:
    answer = await console_of(request).services.call(viewer.person, "intake", "ListDemands", ipb.ListDemandsRequest(
        requester_id=viewer.scope, delivery_day=day.isoformat(), page=cpb.PageRequest(page_size=200)))
    return list(answer.demands)


async def allocations_of_day(request: Request, viewer: Viewer, day: date) -> dict[str, dict[int, int]] | None:
    """demand id → line number → units, from the day's plan once HQ approved it (the village's
    own lines: allocation narrows the plan to the caller's requester); None before that."""
    try:
        page = await console_of(request).services.call(viewer.person, "allocation", "GetPlan", apb.GetPlanRequest(
            delivery_day=day.isoformat(), requester_id=viewer.scope, lines_page=cpb.PageRequest(page_size=1000)))
    except ServiceError as exc:
        if exc.code.name == "NOT_FOUND":
            return None
        raise
    if page.plan.status != apb.PLAN_STATUS_APPROVED:
        return None
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for ln in page.lines:
        out[ln.demand_id][ln.demand_line_no] = out[ln.demand_id].get(ln.demand_line_no, 0) + int(ln.allocated)
    return out


@page(*VILLAGE)
async def home(request: Request, viewer: Viewer) -> Response:
    now = county_now(request)
    today, tomorrow = now.date(), now.date() + timedelta(days=1)
    (d_today, d_next, cat, (trips, trips_refused), (requester, _r), (plan, _p)) = await asyncio.gather(
        demands_of_day(request, viewer, today), demands_of_day(request, viewer, tomorrow),
        catalogue(request, viewer), optional(trips_of_day(request, viewer, today)),
        optional(console_of(request).services.call(viewer.person, "intake", "GetRequester",
                                                   ipb.GetRequesterRequest(requester_id=viewer.scope))),
        optional(allocations_of_day(request, viewer, today)))
    by_demand = shipments_by_demand(trips or [], request)

    def given(d: ipb.Demand) -> dict[int, int] | None:
        return None if plan is None else plan.get(d.id, {})
    days = [(today, [demand_view(d, cat, by_demand.get(d.id, []), request, now, given(d)) for d in d_today]),
            (tomorrow, [demand_view(d, cat, by_demand.get(d.id, []), request, now) for d in d_next])]
    return render(request, "village/home.html", days=days, local_now=now, requester=requester,
                  trips_refused=trips_refused, labels=standing_labels(request), origins=origin_labels(request))


@page(*VILLAGE)
async def demand_detail(request: Request, viewer: Viewer) -> Response:
    """One demand of the village; POST cancels it (before its cut-off, CancelDemand)."""
    _ = gettext_of(request)
    demand_id = request.path_params["demand_id"][:80]
    services = console_of(request).services
    d = await services.call(viewer.person, "intake", "GetDemand", ipb.GetDemandRequest(demand_id=demand_id))
    if d.requester_id != viewer.scope:  # the service refuses this too (PERMISSION_DENIED)
        return render(request, "problem.html", status=404, title=_("No such demand for your village"))
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = request.state.form
        try:
            await act(request, viewer, "cancel_demand", d.id, "intake", "CancelDemand", ipb.CancelDemandRequest(
                idempotency_key=form_key(form), demand_id=d.id, reason=form_text(form, "reason").strip()))
        except ServiceError as exc:
            if not refusable(exc):
                raise
            errors = {"cancel": dv.in_language(dv.refusal(exc.field, exc.rule, exc.message, [], lang_of(request)).text,
                                               lang_of(request))}
        else:
            return RedirectResponse(f"/village/demands/{d.id}", status_code=303)
    now = county_now(request)
    cat = await catalogue(request, viewer)
    trips, trips_refused = await optional(trips_of_day(request, viewer, date.fromisoformat(d.delivery_day)))
    view = demand_view(d, cat, shipments_by_demand(trips or [], request).get(d.id, []), request, now)
    return render(request, "village/demand.html", status=422 if errors else 200, d=view,
                  accepted=request.query_params.get("accepted") == "1", trips_refused=trips_refused,
                  labels=standing_labels(request), origins=origin_labels(request), form_path=FORM_PATH,
                  errors=errors, key=new_key())


def standing_labels(request: Request) -> dict[str, str]:
    _ = gettext_of(request)
    return {"submitted": _("Submitted: can be cancelled until the cut-off"),
            "closed": _("Closed at the cut-off: waiting for the approved plan and its trips"),
            "allocated": _("Allocated by the approved plan"),
            "not_allocated": _("Nothing allocated today: the plan says why"),
            "on_trip": _("On a trip"), "received": _("Received at the drop point"),
            "delivered": _("Delivered in full"), "short": _("Short: the rest is carried over"),
            "not_delivered": _("Nothing delivered: carried over"), "cancelled": _("Cancelled")}


def origin_labels(request: Request) -> dict[str, str]:
    _ = gettext_of(request)
    return {"direct": _("Submitted here"), "import": _("From a spreadsheet"), "special_need": _("Special need"),
            "requisition": _("Requisition"), "carry_over": _("Carried over")}


# ---- the demand form -------------------------------------------------------------------------
async def open_day(request: Request, viewer: Viewer, now: datetime) -> tuple[date, datetime] | None:
    """The earliest delivery day still open now and its cut-off, from the county's policy."""
    policy, _refused = await optional(console_of(request).services.call(
        viewer.person, "allocation", "GetPolicy", apb.GetPolicyRequest()))
    if policy is None:
        return None
    try:
        hh, mm = (int(x) for x in (policy.cutoff or "11:00").split(":"))
    except ValueError:
        return None
    day = now.date()
    for _i in range(10):
        cutoff = datetime.combine(day - timedelta(days=policy.cutoff_days_before),
                                  datetime.min.time().replace(hour=hh, minute=mm), now.tzinfo)
        if now < cutoff:
            return day, cutoff
        day += timedelta(days=1)
    return None


async def render_form(request: Request, viewer: Viewer, *, lines: list[dv.FormLine] | None = None,
                      key: str = "", delivery_day: str = "", errors: dict[str, str] | None = None,
                      status: int = 200) -> Response:
    query = request.query_params.get("q", "")[:100]
    services = console_of(request).services
    now = county_now(request)
    cat, (picker, _refused), opening = await asyncio.gather(
        catalogue(request, viewer),
        optional(services.call(viewer.person, "intake", "ListCatalogueItems",
                               ipb.ListCatalogueItemsRequest(query=query, essential_only=True))),
        open_day(request, viewer, now))
    lines = lines or [dv.FormLine(), dv.FormLine()]
    return render(request, "village/demand_form.html", status=status, lines=lines, key=key or new_key(),
                  delivery_day=delivery_day, errors=errors or {}, query=query,
                  picker=[entry(i) for i in picker.items] if picker else [], catalogue=cat, opening=opening,
                  minutes_left=dv.minutes_until(opening[1], now) if opening else None,
                  today=now.date(), form_path=FORM_PATH)


def edit_lines(form, lines: list[dv.FormLine]) -> list[dv.FormLine] | None:
    """The no-script line buttons: add a line, add a catalogue item, remove a line (None: none
    was pressed)."""
    if form.get("add_line"):
        return [*lines, dv.FormLine()]
    if add := form_text(form, "add_item", 64):
        blank = next((i for i, ln in enumerate(lines) if ln.blank), None)
        if blank is None:
            return [*lines, dv.FormLine(item=add)]
        return [dv.FormLine(item=add) if i == blank else ln for i, ln in enumerate(lines)]
    if (gone := form_text(form, "remove_line", 4)).isdigit():
        kept = [ln for i, ln in enumerate(lines) if i != int(gone)]
        return kept or [dv.FormLine()]
    return None


def submit_request(viewer: Viewer, key: str, draft: dv.DemandDraft, delivery_day: str) -> ipb.SubmitDemandRequest:
    return ipb.SubmitDemandRequest(
        idempotency_key=key, requester_id=viewer.scope, delivery_day=delivery_day,
        lines=[cpb.ItemLine(item_code=c, quantity=q, note=n) for c, q, n in draft.lines])


async def submit(request: Request, viewer: Viewer) -> tuple[ipb.Demand | None, dict[str, str], str]:
    """SubmitDemand from the posted form: (demand, {}, key) or (None, errors next to fields, key
    to send again with). Unavailable services and refusals of the person raise (banner)."""
    _ = gettext_of(request)
    form = request.state.form
    key = form_key(form)
    cat = await catalogue(request, viewer)
    draft = dv.demand_draft(dv.form_lines(form), cat)
    if draft.errors:
        return None, own_errors(request, draft.errors), key
    day = form_text(form, "delivery_day", 10).strip()
    try:
        demand = await act(request, viewer, "submit_demand", viewer.scope, "intake", "SubmitDemand",
                           submit_request(viewer, key, draft, day))
    except ServiceError as exc:
        if not refusable(exc):
            raise
        if exc.code.name == "ALREADY_EXISTS":
            return None, {"form": _("This form was already sent once with other lines. Check the lines and "
                                    "send again.")}, new_key()
        return None, place_error(request, exc, draft.origin, DEMAND_FIELDS), key
    return demand, {}, key


@page(*VILLAGE)
async def demand_form(request: Request, viewer: Viewer) -> Response:
    if request.method == "GET":
        return await render_form(request, viewer)
    form = request.state.form
    lines = dv.form_lines(form)
    day = form_text(form, "delivery_day", 10)
    edited = edit_lines(form, lines)
    if edited is not None:
        return await render_form(request, viewer, lines=edited, key=form_key(form), delivery_day=day)
    demand, errors, key = await submit(request, viewer)
    if demand is None:
        return await render_form(request, viewer, lines=lines or [dv.FormLine()], key=key, delivery_day=day,
                                 errors=errors, status=422)
    return RedirectResponse(f"/village/demands/{demand.id}?accepted=1", status_code=303)


@page(*VILLAGE)
async def demand_json(request: Request, viewer: Viewer) -> Response:
    """A demand queued in the browser while offline, sent when the network is back (village.js):
    the same fields as the form, with the idempotency key the form had when it was queued, so a
    send repeated after a lost answer is still one demand. 200 with the demand; 4xx with the
    errors (kept in the browser's queue and shown); 503 when intake does not answer (retried)."""
    _ = gettext_of(request)
    form = request.state.form
    requester = form_text(form, "requester_id", 64)
    if requester and requester != viewer.scope:
        return JSONResponse({"error": _("This demand was queued for %(other)s; you act for %(scope)s.",
                                        other=requester, scope=viewer.scope)}, status_code=403)
    if not dv.KEY.match(form_text(form, "idempotency_key")):
        return JSONResponse({"error": _("The queued demand has no valid key.")}, status_code=400)
    try:
        demand, errors, _key = await submit(request, viewer)
    except ServiceError as exc:
        if exc.unavailable:
            return JSONResponse({"error": _("The intake service is not answering; it will be sent again."),
                                 "retry": True}, status_code=503)
        status = {"PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401, "NOT_FOUND": 404}.get(exc.code.name, 400)
        return JSONResponse({"error": exc.message[:300]}, status_code=status)
    if demand is None:
        return JSONResponse({"error": " ".join(dict.fromkeys(errors.values())), "errors": errors}, status_code=422)
    return JSONResponse({"demand": {"id": demand.id, "delivery_day": demand.delivery_day,
                                    "rolled_over": demand.rolled_over,
                                    "url": f"/village/demands/{demand.id}"}})


# ---- special needs ---------------------------------------------------------------------------
@page(*VILLAGE)
async def special_needs(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    if request.method == "GET":
        return await render_needs(request, viewer, registered=request.query_params.get("registered", "")[:80])
    form = request.state.form
    key = form_key(form)
    cat = await catalogue(request, viewer)
    lines = dv.form_lines(form)
    values = {k: form_text(form, k, 300) for k in ("category", "period_days", "delivery_day", "note")}
    name, phone = form_text(form, "beneficiary-name", 60).strip(), form_text(form, "beneficiary-phone", 30).strip()
    edited = edit_lines(form, lines)
    if edited is not None:  # the no-script line buttons; name and phone come back from the tab
        return await render_needs(request, viewer, lines=edited, key=key, values=values, restore=True)
    draft = dv.demand_draft(lines, cat)
    errors = own_errors(request, draft.errors)
    if not name:
        errors["beneficiary-name"] = _("Required")
    if not phone:
        errors["beneficiary-phone"] = _("Required")
    if values["category"] not in CATEGORIES:
        errors["category"] = _("Choose a category")
    period = values["period_days"].strip() or "0"
    if not period.isdigit():
        errors["period_days"] = _("Enter a whole number")
    if not errors:
        req = ipb.RegisterSpecialNeedRequest(
            idempotency_key=key, requester_id=viewer.scope, beneficiary=ipb.Beneficiary(name=name, phone=phone),
            category=ipb.SpecialNeedCategory.Value("SPECIAL_NEED_CATEGORY_" + values["category"].upper()),
            lines=[cpb.ItemLine(item_code=c, quantity=q, note=n) for c, q, n in draft.lines],
            period_days=int(period), delivery_day=values["delivery_day"].strip(), note=values["note"].strip())
        try:
            answer = await act(request, viewer, "register_special_need", viewer.scope, "intake",
                               "RegisterSpecialNeed", req)
        except ServiceError as exc:
            if not refusable(exc):
                raise
            errors = place_error(request, exc, draft.origin, NEED_FIELDS)
        else:
            return RedirectResponse(f"/village/special-needs?registered={answer.special_need.id}", status_code=303)
    # Name and phone are not sent back (personal data): village.js puts them back from this tab.
    return await render_needs(request, viewer, lines=lines or [dv.FormLine()], key=key, values=values,
                              errors=errors, status=422)


async def render_needs(request: Request, viewer: Viewer, *, lines: list[dv.FormLine] | None = None,
                       key: str = "", values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                       registered: str = "", status: int = 200, restore: bool = False) -> Response:
    services = console_of(request).services
    cat, answer = await asyncio.gather(catalogue(request, viewer), services.call(
        viewer.person, "intake", "ListSpecialNeeds",
        ipb.ListSpecialNeedsRequest(requester_id=viewer.scope, page=cpb.PageRequest(page_size=200))))
    lang = lang_of(request)
    needs = [{"id": n.id, "masked_name": n.masked_name, "masked_phone": n.masked_phone,
              "pseudonym": n.beneficiary, "category": enum_name(ipb.SpecialNeedCategory, n.category,
                                                                "SPECIAL_NEED_CATEGORY_"),
              "lines": [(cat[ln.item_code].name(lang) if ln.item_code in cat else ln.item_code, ln.quantity,
                         cat[ln.item_code].unit if ln.item_code in cat else "") for ln in n.lines],
              "period_days": n.period_days, "start_day": n.start_day,
              "registered_at": local(n.registered_at, request),
              # lines intake left out (RULES §6: tobacco, alcohol, unknown items), the rest registered
              "refused": [(r.line_no + 1, r.item_code, r.reason.zh if lang == "zh_CN" else r.reason.en,
                           r.reason.code) for r in n.refused_lines]} for n in answer.special_needs]
    just = next((n for n in needs if n["id"] == registered), None)
    return render(request, "village/special_needs.html", status=status, needs=needs, total=answer.page.total,
                  just=just, lines=lines or [dv.FormLine()], key=key or new_key(), values=values or {},
                  errors=errors or {}, catalogue=cat, categories=category_labels(request),
                  restore=restore or bool(errors))


def category_labels(request: Request) -> dict[str, str]:
    _ = gettext_of(request)
    return {"infant_formula": _("Infant formula"), "chronic_medicine": _("Chronic medicine"),
            "elderly_alone": _("Elderly person living alone"), "disability": _("Disability"),
            "pregnancy": _("Pregnancy"), "other": _("Other")}


# ---- offline: the service worker -------------------------------------------------------------
async def service_worker(request: Request) -> Response:
    """static/sw.js at the root path (a worker's scope cannot be above its own path); it holds no
    data, so it needs no sign-in. It controls /village pages only (registered with that scope)."""
    return Response((STATIC / "sw.js").read_bytes(), media_type="text/javascript",
                    headers={"service-worker-allowed": "/village"})


routes = [
    Route("/village", home),
    Route("/village/demand/new", demand_form, methods=["GET", "POST"]),
    Route("/village/demand.json", demand_json, methods=["POST"]),
    Route("/village/demands/{demand_id}", demand_detail, methods=["GET", "POST"]),
    Route("/village/special-needs", special_needs, methods=["GET", "POST"]),
    Route("/village/import", import_page, methods=["GET", "POST"]),
    Route("/village/import/template.csv", import_template),
    Route("/village/receive", receive_page, methods=["GET", "POST"]),
]
