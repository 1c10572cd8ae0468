"""Depot keeper (仓库管理员) pages: the depots and their stock at a glance, receiving stock
(验收入库) with the service's refusals next to the line they are about, lots with quarantine,
release and write-off (隔离、放行、报损), today's trips with their pick lists and manifests for
print, and proof of delivery per stop (签收). Everything through logistics' public API, as the
signed-in person; every write through act(), so the console's audit trail names who did it."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import timedelta
from urllib.parse import urlencode

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from supply.v1 import common_pb2 as cpb
from supply.v1 import logistics_pb2 as lpb

from services.console.adapters.services import ServiceError
from services.console.domain.forms import (
    Lines,
    field_text,
    line_named_by,
    rule_text,
    signature_ref,
    whole_number,
)
from services.console.entrypoints.lookups import (
    catalogue,
    county_today,
    day_param,
    page_context,
    requesters,
)
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

KEEPER = ("depot_keeper", "hq", "admin")
NEAR_EXPIRY_DAYS = 30  # monitoring's default expiry warning window (fresh groups warn at 3 days)
RECEIPT_KINDS = OrderedDict([
    ("purchase", lpb.RECEIPT_KIND_PURCHASE), ("donation", lpb.RECEIPT_KIND_DONATION),
    ("transfer", lpb.RECEIPT_KIND_TRANSFER), ("upper_level_allocation", lpb.RECEIPT_KIND_UPPER_LEVEL_ALLOCATION),
])
RECEIVE_LINE = ("item_code", "quantity", "zone_id", "lot_number", "expiry")
# the line field a rule refusal of a receipt is about
RULE_FIELD = {"SEGREGATION": "zone_id", "STORAGE_CLASS_MISMATCH": "zone_id", "NO_FITTING_ZONE": "zone_id",
              "ZONE_CAPACITY": "quantity", "EXPIRED_ON_ARRIVAL": "expiry", "NON_ESSENTIAL_ITEM": "item_code"}
LOT_STATUS = {"available": lpb.LOT_STATUS_AVAILABLE, "quarantined": lpb.LOT_STATUS_QUARANTINED,
              "written_off": lpb.LOT_STATUS_WRITTEN_OFF}
STATUS_OF_LOT = {v: k for k, v in LOT_STATUS.items()}
LOT_ACTIONS = {"quarantine": "QuarantineLot", "release": "ReleaseLot", "write-off": "WriteOffLot"}
WRITE_OFF_DOCS = ("inspection", "stocktake", "alert")
DISCREPANCIES = ("short", "damaged", "refused")
LOTS_PAGE = 100


def _svc(request: Request):
    return console_of(request).services


async def _depots(request: Request, viewer: Viewer) -> list[lpb.DepotInfo]:
    snapshot = await _svc(request).call(viewer.person, "logistics", "GetStockSnapshot",
                                        lpb.GetStockSnapshotRequest())
    return list(snapshot.depots)


def _service_field(exc: ServiceError) -> str:
    """The request field a refusal names: the BadRequest detail, else the "field: …" prefix that
    NOT_FOUND and ALREADY_EXISTS messages start with."""
    if exc.field:
        return exc.field
    head = exc.message.split(":", 1)[0]
    return head if exc.code.name in ("NOT_FOUND", "ALREADY_EXISTS") and " " not in head else ""


# ---- home ------------------------------------------------------------------------------------
@page(*KEEPER)
async def home(request: Request, viewer: Viewer) -> Response:
    svc, person = _svc(request), viewer.person
    today = county_today(request)
    depots, stock, supply, lots, trips, items = await asyncio.gather(
        _depots(request, viewer),
        svc.call(person, "logistics", "GetStock", lpb.GetStockRequest()),
        svc.call(person, "logistics", "GetDaysOfSupply", lpb.GetDaysOfSupplyRequest()),
        svc.all_pages(person, "logistics", "ListLots", lpb.ListLotsRequest(), "lots"),
        svc.call(person, "logistics", "ListTrips", lpb.ListTripsRequest(delivery_day=today.isoformat())),
        catalogue(request, viewer))
    horizon = (today + timedelta(days=NEAR_EXPIRY_DAYS)).isoformat()
    near = sorted((lt for lt in lots if lt.status != lpb.LOT_STATUS_WRITTEN_OFF and lt.expiry <= horizon),
                  key=lambda lt: (lt.expiry, lt.lot_id))
    by_depot: dict[str, list] = {d.depot_id: [] for d in depots}
    for line in stock.lines:
        by_depot.setdefault(line.depot_id, []).append(line)
    return render(request, "depot/home.html", depots=depots, by_depot=by_depot, supply=supply,
                  quarantined=[lt for lt in lots if lt.status == lpb.LOT_STATUS_QUARANTINED],
                  near=near, near_days=NEAR_EXPIRY_DAYS, trips=trips.trips, today=today,
                  lot_count=len(lots), **page_context(request, items))


# ---- receiving stock -------------------------------------------------------------------------
async def _receive_page(request: Request, viewer: Viewer, *, values: dict, lines: Lines,
                        errors: dict, status: int = 200, receipt: lpb.Receipt | None = None) -> Response:
    svc, person = _svc(request), viewer.person
    depots, stock, items = await asyncio.gather(
        _depots(request, viewer), svc.call(person, "logistics", "GetStock", lpb.GetStockRequest()),
        catalogue(request, viewer))
    zones = sorted({(s.depot_id, s.zone_id) for s in stock.lines})
    return render(request, "depot/receive.html", status=status, depots=depots, zones=zones,
                  kinds=list(RECEIPT_KINDS), values=values, lines=lines.rows, errors=errors,
                  receipt=receipt, **page_context(request, items))


@page(*KEEPER)
async def receive(request: Request, viewer: Viewer) -> Response:
    if request.method == "GET":
        return await _receive_page(request, viewer, values={"kind": "purchase", "idempotency_key": new_key()},
                                   lines=Lines.blank(RECEIVE_LINE, 3), errors={})
    _ = gettext_of(request)
    lang = lang_of(request)
    form = request.state.form
    values = {k: str(form.get(k, "")).strip() for k in ("kind", "depot_id", "origin_ref", "idempotency_key")}
    values["idempotency_key"] = values["idempotency_key"] or new_key()
    lines = Lines.read(form, RECEIVE_LINE, min_rows=1)
    errors: dict[str, str] = {}
    if values["kind"] not in RECEIPT_KINDS:
        errors["kind"] = _("Choose the kind of receipt.")
    if not values["depot_id"]:
        errors["depot_id"] = _("Choose the receiving depot.")
    filled = lines.filled()
    if not filled:
        errors["line-0-item_code"] = _("Enter at least one line.")
    specs = []
    for i, row in filled:
        row["item_code"] = row["item_code"].upper()
        quantity = whole_number(row["quantity"])
        for name in ("item_code", "lot_number", "expiry"):
            if not row[name]:
                errors[f"line-{i}-{name}"] = _("Required.")
        if quantity is None:
            errors[f"line-{i}-quantity"] = _("A whole number above 0.")
        specs.append(lpb.ReceiptLineSpec(item_code=row["item_code"], quantity=quantity or 0,
                                         lot_number=row["lot_number"], expiry=row["expiry"],
                                         zone_id=row["zone_id"]))
    if errors:
        return await _receive_page(request, viewer, values=values, lines=lines, errors=errors, status=422)
    message = lpb.ReceiveStockRequest(idempotency_key=values["idempotency_key"], kind=RECEIPT_KINDS[values["kind"]],
                                      depot_id=values["depot_id"], origin_ref=values["origin_ref"], lines=specs)
    try:
        receipt = await act(request, viewer, "stock_receive", f"{values['depot_id']} {values['origin_ref']}"[:200],
                            "logistics", "ReceiveStock", message)
    except ServiceError as exc:
        items = await catalogue(request, viewer)
        placed = _receipt_error(exc, lines, filled, {c: (i.name_zh, i.name_en) for c, i in items.items()}, lang)
        if placed is None:
            raise
        values["idempotency_key"] = new_key()  # the corrected receipt is another request
        return await _receive_page(request, viewer, values=values, lines=lines, errors=placed, status=422)
    if receipt.status != "accepted":
        values["idempotency_key"] = new_key()
        return await _receive_page(request, viewer, values=values, lines=lines, status=422, errors={
            "form": f"{rule_text(receipt.message, lang)} [{receipt.rule_code}]"})
    return await _receive_page(request, viewer, values={"kind": values["kind"], "depot_id": values["depot_id"],
                                                        "idempotency_key": new_key()},
                               lines=Lines.blank(RECEIVE_LINE, 3), errors={}, receipt=receipt)


def _receipt_error(exc: ServiceError, lines: Lines, filled, names, lang: str) -> dict[str, str] | None:
    """A refused receipt as errors next to the inputs they are about; None when it is not about
    what was typed (the banner then)."""
    if exc.code.name == "FAILED_PRECONDITION":
        text = f"{rule_text(exc.message, lang)} [{exc.rule or 'RULE'}]"
        if exc.rule == "ORIGIN_DOCUMENT_REQUIRED":
            return {"origin_ref": text}
        row = line_named_by(exc.message, filled, names)
        if row is not None and exc.rule in RULE_FIELD:
            return {f"line-{row}-{RULE_FIELD[exc.rule]}": text}
        return {"form": text}
    if exc.code.name not in ("INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS"):
        return None
    field = _service_field(exc)
    target = lines.input_id(field, {"lot_id": "lot_number"}) or (
        field if field in ("depot_id", "origin_ref", "kind") else "form")
    return {target: field_text(exc.message, lang)}


# ---- lots ------------------------------------------------------------------------------------
def _lot_filters(source) -> dict[str, str]:
    """The lots page's filters from a query string or from the hidden fields of an action form."""
    get = source.get
    return {"depot": str(get("depot", "")).strip()[:64], "status": str(get("status", "")).strip()[:20],
            "item": str(get("item", "")).strip().upper()[:64], "lot": str(get("lot", "")).strip()[:128],
            "empty": "1" if get("empty") == "1" else ""}


async def _lots_page(request: Request, viewer: Viewer, filters: dict[str, str], *, status: int = 200,
                     failed: dict | None = None) -> Response:
    svc, person = _svc(request), viewer.person
    query = lpb.ListLotsRequest(depot_id=filters["depot"], item_code=filters["item"], lot_id=filters["lot"],
                                status=LOT_STATUS.get(filters["status"], lpb.LOT_STATUS_UNSPECIFIED),
                                include_empty=filters["empty"] == "1",
                                page=cpb.PageRequest(page_size=LOTS_PAGE,
                                                     page_token=request.query_params.get("page", "")[:500]))
    depots, answer, items = await asyncio.gather(
        _depots(request, viewer), svc.call(person, "logistics", "ListLots", query), catalogue(request, viewer))
    today = county_today(request)
    params = {k: v for k, v in filters.items() if v}
    done = request.query_params.get("done", "")
    return render(request, "depot/lots.html", status=status, depots=depots, lots=answer.lots,
                  total=answer.page.total, next_page=answer.page.next_page_token, filters=filters,
                  query=urlencode(params), statuses=list(LOT_STATUS), status_of=STATUS_OF_LOT,
                  near=(today + timedelta(days=NEAR_EXPIRY_DAYS)).isoformat(), failed=failed or {},
                  done=done if done in LOT_ACTIONS else "", done_lot=request.query_params.get("done_lot", ""),
                  doc_types=WRITE_OFF_DOCS, new_key=new_key, **page_context(request, items))


@page(*KEEPER)
async def lots(request: Request, viewer: Viewer) -> Response:
    return await _lots_page(request, viewer, _lot_filters(request.query_params))


@page(*KEEPER)
async def lot_action(request: Request, viewer: Viewer) -> Response:
    action = request.path_params["action"]
    if action not in LOT_ACTIONS:
        return Response(status_code=404)
    _ = gettext_of(request)
    form = request.state.form
    filters = _lot_filters(form)
    typed = {k: str(form.get(k, "")).strip() for k in ("lot_id", "ref", "reason", "quantity", "doc_type",
                                                       "idempotency_key")}
    errors: dict[str, str] = {}
    if not typed["reason"]:
        errors["reason"] = _("Give the reason: it goes into the ledger.")
    if not typed["ref"]:
        errors["ref"] = _("Name the inspection or document this rests on.")
    quantity = 0
    if action == "write-off":
        if typed["doc_type"] not in WRITE_OFF_DOCS:
            errors["doc_type"] = _("Choose the kind of document.")
        if typed["quantity"]:
            quantity = whole_number(typed["quantity"])
            if quantity is None:
                errors["quantity"] = _("A whole number above 0, or empty for all of it.")
    failed = {"lot_id": typed["lot_id"], "action": action, "typed": typed, "errors": errors}
    if errors:
        return await _lots_page(request, viewer, filters, status=422, failed=failed)
    key = typed["idempotency_key"] or new_key()
    lot_id = typed["lot_id"]
    message = {
        "quarantine": lambda: lpb.QuarantineLotRequest(idempotency_key=key, lot_id=lot_id,
                                                       inspection_ref=typed["ref"], reason=typed["reason"]),
        "release": lambda: lpb.ReleaseLotRequest(idempotency_key=key, lot_id=lot_id,
                                                 inspection_ref=typed["ref"], reason=typed["reason"]),
        "write-off": lambda: lpb.WriteOffLotRequest(idempotency_key=key, lot_id=lot_id, quantity=quantity or 0,
                                                    doc_type=typed["doc_type"], doc_id=typed["ref"],
                                                    reason=typed["reason"]),
    }[action]()
    try:
        await act(request, viewer, f"lot_{action.replace('-', '_')}", lot_id, "logistics",
                  LOT_ACTIONS[action], message)
    except ServiceError as exc:
        if exc.code.name not in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
            raise
        field = {"inspection_ref": "ref", "doc_id": "ref"}.get(exc.field, exc.field)
        text = (field_text if exc.field else rule_text)(exc.message, lang_of(request))
        errors[field if field in ("ref", "reason", "quantity", "doc_type") else "form"] = text
        typed["idempotency_key"] = new_key()
        return await _lots_page(request, viewer, filters, status=422, failed=failed)
    params = {k: v for k, v in filters.items() if v}
    params.update(done=action, done_lot=lot_id)
    return RedirectResponse(f"/depot/lots?{urlencode(params)}", status_code=303)


# ---- trips -----------------------------------------------------------------------------------
@page(*KEEPER)
async def trips(request: Request, viewer: Viewer) -> Response:
    day = day_param(request)
    answer = await _svc(request).call(viewer.person, "logistics", "ListTrips",
                                      lpb.ListTripsRequest(delivery_day=day.isoformat()))
    items = await catalogue(request, viewer)
    return render(request, "depot/trips.html", day=day, trips=answer.trips, dispatches=answer.dispatches,
                  today=county_today(request), **page_context(request, items))


def _stop_lines(stop: lpb.TripStop) -> list[dict]:
    """A stop's manifest lines, one per plan line and lot (what a proof of delivery confirms)."""
    merged: dict[tuple[str, str], dict] = {}
    for ln in stop.lines:
        row = merged.setdefault((ln.plan_line_id, ln.lot_id), {
            "plan_line_id": ln.plan_line_id, "lot_id": ln.lot_id, "item_code": ln.item_code,
            "name_zh": ln.name_zh, "name_en": ln.name_en, "unit": ln.unit, "shipped": 0, "cold": ln.cold})
        row["shipped"] += ln.quantity
    return list(merged.values())


async def _trip_page(request: Request, viewer: Viewer, trip_id: str, *, status: int = 200,
                     failed: dict | None = None) -> Response:
    manifest = await _svc(request).call(viewer.person, "logistics", "GetManifest",
                                        lpb.GetManifestRequest(trip_id=trip_id))
    names = await requesters(request, viewer)
    stops = [{"stop": s, "lines": _stop_lines(s), "key": new_key()} for s in manifest.trip.stops]
    confirmed = request.query_params.get("confirmed", "")
    return render(request, "depot/trip.html", status=status, manifest=manifest, trip=manifest.trip,
                  stops=stops, requesters=names, failed=failed or {}, discrepancies=DISCREPANCIES,
                  confirmed=confirmed, **page_context(request, {}))


@page(*KEEPER)
async def trip(request: Request, viewer: Viewer) -> Response:
    return await _trip_page(request, viewer, request.query_params.get("id", "")[:200])


@page(*KEEPER)
async def pick_list(request: Request, viewer: Viewer) -> Response:
    """Lots and quantities per zone, in the order the service picked them (first expiry first)."""
    svc, person = _svc(request), viewer.person
    manifest = await svc.call(person, "logistics", "GetManifest",
                              lpb.GetManifestRequest(trip_id=request.query_params.get("id", "")[:200]))
    lots = await svc.all_pages(person, "logistics", "ListLots", lpb.ListLotsRequest(
        depot_id=manifest.trip.depot_id, include_empty=True), "lots")
    lot_of = {lt.lot_id: lt for lt in lots}
    picks: dict[tuple[str, str], dict] = {}
    for ln in manifest.lines:
        lot = lot_of.get(ln.lot_id)
        row = picks.setdefault((ln.lot_id, ln.item_code), {
            "zone": lot.zone_id if lot else "", "lot_id": ln.lot_id, "item_code": ln.item_code,
            "name_zh": ln.name_zh, "name_en": ln.name_en, "unit": ln.unit, "quantity": 0, "kg": 0.0,
            "lot_number": lot.lot_number if lot else "", "expiry": lot.expiry if lot else "", "cold": ln.cold})
        row["quantity"] += ln.quantity
        row["kg"] += ln.quantity * ln.weight_kg
    zones: dict[str, list] = {}
    for row in sorted(picks.values(), key=lambda r: (r["zone"], r["item_code"], r["expiry"], r["lot_id"])):
        zones.setdefault(row["zone"], []).append(row)
    return render(request, "depot/picklist.html", manifest=manifest, trip=manifest.trip, zones=zones,
                  **page_context(request, {}))


_first_seen: OrderedDict[str, float] = OrderedDict()


def _received_at(key: str, now: float) -> float:
    """When the person first sent this proof of delivery: a retry of the same form (same key)
    is the same confirmation, not a different one refused as ALREADY_EXISTS."""
    at = _first_seen.setdefault(key, now)
    while len(_first_seen) > 5000:
        _first_seen.popitem(last=False)
    return at


@page(*KEEPER)
async def confirm_delivery(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    form = request.state.form
    trip_id = str(form.get("trip_id", ""))[:200]
    seq = str(form.get("seq", ""))
    manifest = await _svc(request).call(viewer.person, "logistics", "GetManifest",
                                        lpb.GetManifestRequest(trip_id=trip_id))
    stop = next((s for s in manifest.trip.stops if str(s.seq) == seq), None)
    if stop is None:
        return await _trip_page(request, viewer, trip_id, status=422,
                                failed={"seq": seq, "typed": {}, "errors": {"form": _("No such stop on this trip.")}})
    typed = {k: str(v).strip() for k, v in form.multi_items() if isinstance(v, str)}
    errors: dict[str, str] = {}
    received_lines = []
    for i, ln in enumerate(_stop_lines(stop)):
        raw = typed.get(f"received-{i}", "")
        got = ln["shipped"] if raw == "" else whole_number(raw, lo=0, hi=ln["shipped"])
        if got is None:
            errors[f"received-{i}"] = _("A whole number from 0 to %(n)s.", n=ln["shipped"])
            continue
        line = lpb.ReceivedLine(plan_line_id=ln["plan_line_id"], lot_id=ln["lot_id"], received=got)
        if got < ln["shipped"]:
            reason = typed.get(f"reason-{i}", "")
            if reason not in DISCREPANCIES:
                errors[f"reason-{i}"] = _("Less than shipped: say why (short, damaged or refused).")
            line.discrepancies.append(lpb.Discrepancy(reason=reason, quantity=ln["shipped"] - got,
                                                      note=typed.get(f"note-{i}", "")[:500]))
        received_lines.append(line)
    receiver = typed.get("receiver", "")[:100]
    if not receiver:
        errors["receiver"] = _("Who received it (签收人): role and name of the village worker.")
    failed = {"seq": seq, "typed": typed, "errors": errors}
    if errors:
        return await _trip_page(request, viewer, trip_id, status=422, failed=failed)
    key = typed.get("idempotency_key") or new_key()
    at = _received_at(key, console_of(request).now().timestamp())
    received_at = _timestamp(at)
    proof = signature_ref(trip_id, stop.requester_id, stop.drop_point_id, receiver, at,
                          [[ln.plan_line_id, ln.lot_id, ln.received] for ln in received_lines])
    message = lpb.ConfirmDeliveryRequest(idempotency_key=key, trip_id=trip_id, requester_id=stop.requester_id,
                                         drop_point_id=stop.drop_point_id, receiver=receiver,
                                         received_at=received_at, proof_ref=proof, lines=received_lines)
    try:
        await act(request, viewer, "delivery_confirm", f"{trip_id} #{seq}", "logistics", "ConfirmDelivery", message)
    except ServiceError as exc:
        if exc.code.name not in ("INVALID_ARGUMENT", "ALREADY_EXISTS", "FAILED_PRECONDITION"):
            raise
        m = exc.field.split(".")
        target = "form"
        if exc.field == "receiver":
            target = "receiver"
        elif m[0].startswith("lines[") and len(m) > 1:
            i = m[0][6:-1]
            target = f"received-{i}" if m[1] == "received" else f"reason-{i}"
        errors[target] = (field_text if exc.field else rule_text)(exc.message, lang_of(request))
        return await _trip_page(request, viewer, trip_id, status=422, failed=failed)
    return RedirectResponse(f"/depot/trip?{urlencode({'id': trip_id, 'confirmed': seq})}#stop-{seq}",
                            status_code=303)


def _timestamp(unix: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(unix * 1e9))
    return ts


routes = [
    Route("/depot", home),
    Route("/depot/receive", receive, methods=["GET", "POST"]),
    Route("/depot/lots", lots),
    Route("/depot/lots/{action}", lot_action, methods=["POST"]),
    Route("/depot/trips", trips),
    Route("/depot/trip", trip),
    Route("/depot/trip/picklist", pick_list),
    Route("/depot/trip/confirm", confirm_delivery, methods=["POST"]),
]
