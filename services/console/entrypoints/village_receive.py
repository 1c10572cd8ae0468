"""The receipt at the drop point (签收): the day's stops at the village with their manifest lines,
and ConfirmDelivery from the signed form."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import Response
from supply.v1 import intake_pb2 as ipb
from supply.v1 import logistics_pb2 as lpb

from services.console.adapters.services import ServiceError
from services.console.entrypoints.village_forms import (
    VILLAGE,
    county_now,
    form_key,
    form_text,
    local,
    optional,
    place_error,
    refusable,
    trips_of_day,
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

RECEIVE_PARTS = {"received": "received", "discrepancies": "reason"}
RECEIVE_FIELDS = {"receiver": "receiver", "received_at": "received_at", "proof_ref": "form", "lines": "form"}
DISCREPANCIES = ("short", "damaged", "refused")


@dataclass
class StopLine:
    plan_line_id: str
    lot_id: str
    demand_id: str
    code: str
    name: str
    unit: str
    shipped: int
    cold: bool


@dataclass
class StopView:
    trip: lpb.Trip
    stop: lpb.TripStop
    drop_point: str
    eta: datetime | None
    lines: list[StopLine]

    @property
    def form_id(self) -> str:
        return hashlib.sha256(f"{self.trip.trip_id}|{self.stop.drop_point_id}".encode()).hexdigest()[:12]


def stop_lines(stop: lpb.TripStop, lang: str) -> list[StopLine]:
    """The stop's manifest lines, one per plan line and lot (ConfirmDelivery takes each once)."""
    out: dict[tuple[str, str], StopLine] = {}
    for ln in stop.lines:
        key = (ln.plan_line_id, ln.lot_id)
        if key in out:
            out[key].shipped += int(ln.quantity)
            continue
        out[key] = StopLine(ln.plan_line_id, ln.lot_id, ln.demand_id, ln.item_code,
                            ln.name_zh if lang == "zh_CN" else ln.name_en, ln.unit, int(ln.quantity), ln.cold)
    return list(out.values())


def stop_views(request: Request, trips: list[lpb.Trip], viewer: Viewer, drop_names: dict[str, str]) -> list[StopView]:
    lang = lang_of(request)
    return [StopView(t, s, drop_names.get(s.drop_point_id, s.drop_point_id), local(s.eta, request),
                     stop_lines(s, lang))
            for t in trips for s in t.stops if s.requester_id == viewer.scope]


@page(*VILLAGE)
async def receive_page(request: Request, viewer: Viewer) -> Response:
    services = console_of(request).services
    now = county_now(request)
    requester, _r = await optional(services.call(viewer.person, "intake", "GetRequester",
                                                 ipb.GetRequesterRequest(requester_id=viewer.scope)))
    drop_names = {dp.id: dp.name for dp in requester.drop_points} if requester else {}
    posted: dict[str, Any] = {}
    if request.method == "POST":
        posted = await confirm(request, viewer, now)
    trips, refused = await optional(trips_of_day(request, viewer, now.date()))
    stops = stop_views(request, trips or [], viewer, drop_names)
    return render(request, "village/receive.html", status=422 if posted.get("errors") else 200, stops=stops,
                  refused=refused, posted=posted, default_at=now.strftime("%Y-%m-%dT%H:%M"),
                  reasons=discrepancy_labels(request), day=now.date(), new_key=new_key)


def discrepancy_labels(request: Request) -> dict[str, str]:
    _ = gettext_of(request)
    return {"short": _("Short (missing)"), "damaged": _("Damaged"), "refused": _("Refused")}


async def confirm(request: Request, viewer: Viewer, now: datetime) -> dict[str, Any]:
    """ConfirmDelivery for the posted stop: {"form_id", "values", "errors"} to show again, or
    {"result": DeliveryResult} once confirmed."""
    _ = gettext_of(request)
    form = request.state.form
    trip_id, dp = form_text(form, "trip_id", 80), form_text(form, "drop_point_id", 80)
    manifest = await console_of(request).services.call(viewer.person, "logistics", "GetManifest",
                                                       lpb.GetManifestRequest(trip_id=trip_id))
    stop = next((s for s in manifest.trip.stops if s.requester_id == viewer.scope and s.drop_point_id == dp), None)
    values = {k: form_text(form, k, 300) for k in form if isinstance(form.get(k), str) and k != "csrf_token"}
    posted: dict[str, Any] = {"form_id": StopView(manifest.trip, stop or lpb.TripStop(drop_point_id=dp), "",
                                                  None, []).form_id, "values": values, "errors": {}}
    errors: dict[str, str] = posted["errors"]
    if stop is None:
        errors["form"] = _("This trip does not stop at your drop point")
        return posted
    receiver = values.get("receiver", "").strip()
    if not receiver:
        errors["receiver"] = _("Required")
    try:
        at = datetime.fromisoformat(values.get("received_at", "")).replace(tzinfo=now.tzinfo)
    except ValueError:
        errors["received_at"] = _("Enter the date and time it arrived")
    else:
        if at > now + timedelta(minutes=10):
            errors["received_at"] = _("Not in the future")
        elif at < now - timedelta(days=3):
            errors["received_at"] = _("More than three days ago: ask HQ")
    lines = []
    for k, ln in enumerate(stop_lines(stop, lang_of(request))):
        raw = values.get(f"l-{k}-received", "").strip()
        if not raw.isdigit():
            errors[f"l-{k}-received"] = _("Enter a whole number")
            continue
        got = int(raw)
        reason = values.get(f"l-{k}-reason", "short")
        disc = []
        if got < ln.shipped:
            disc = [lpb.Discrepancy(reason=reason if reason in DISCREPANCIES else "short",
                                    quantity=ln.shipped - got, note=values.get(f"l-{k}-note", "").strip()[:200])]
        lines.append(lpb.ReceivedLine(plan_line_id=ln.plan_line_id, lot_id=ln.lot_id, received=got,
                                      discrepancies=disc))
    if errors:
        return posted
    received_at = Timestamp()
    received_at.FromDatetime(at)
    proof = hashlib.sha256("|".join([trip_id, viewer.scope, dp, receiver, at.isoformat(),
                                     *(f"{ln.plan_line_id}/{ln.lot_id}={ln.received}" for ln in lines)])
                           .encode()).hexdigest()
    req = lpb.ConfirmDeliveryRequest(idempotency_key=form_key(form), trip_id=trip_id, requester_id=viewer.scope,
                                     drop_point_id=dp, receiver=receiver, received_at=received_at,
                                     proof_ref=f"signature:{proof}", lines=lines)
    try:
        result = await act(request, viewer, "confirm_delivery", f"{trip_id}/{dp}", "logistics", "ConfirmDelivery", req)
    except ServiceError as exc:
        if not refusable(exc):
            raise
        if exc.code.name == "ALREADY_EXISTS":
            errors["form"] = _("This stop was already confirmed with other quantities.")
        else:
            errors.update(place_error(request, exc, list(range(len(lines))), RECEIVE_FIELDS, "l",
                                      RECEIVE_PARTS, "received"))
        return posted
    names = {ln.plan_line_id + "/" + ln.lot_id: ln for ln in stop_lines(stop, lang_of(request))}
    return {"result": result, "names": names, "at": at}
