"""Donation inspector (捐赠检验) pages: the donation lines waiting for inspection, and per line the
decision against the standard (篇6 §二3, 篇9 §四): accept (meets the medical standard → medical
use), redirect (usable but not medical grade → another department) or return to the donor, each
with its reason; and the day's summary of donations (一日一汇总). Through intake's public API."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from supply.v1 import intake_pb2 as ipb

from services.console.adapters.services import ServiceError
from services.console.domain.forms import field_text, rule_text
from services.console.entrypoints.lookups import catalogue, county_today, page_context
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

INSPECT = ("inspector", "hq", "admin")
WAITING = [ipb.DONATION_STATUS_REGISTERED, ipb.DONATION_STATUS_PARTLY_INSPECTED]
DECISIONS = {"accept": ipb.INSPECTION_DECISION_ACCEPT, "redirect": ipb.INSPECTION_DECISION_REDIRECT,
             "return": ipb.INSPECTION_DECISION_RETURN}
DECISION_OF = {v: k for k, v in DECISIONS.items()}
# Catalogue groups whose accepted lines state whether they meet the medical standard (intake's
# donation policy); for other items the question is not asked. Intake has the last word: a
# mismatch comes back as an error on the medical-grade field.
MEDICAL_GROUPS = ("medicine", "ppe")
FIELDS = ("decision", "reason", "medical_grade", "redirect_to")


async def _inspect_page(request: Request, viewer: Viewer, *, status: int = 200,
                        failed: dict | None = None) -> Response:
    svc, person = console_of(request).services, viewer.person
    today = county_today(request)
    waiting, done_today, summary, items = await asyncio.gather(
        svc.all_pages(person, "intake", "ListDonations", ipb.ListDonationsRequest(statuses=WAITING), "donations"),
        svc.all_pages(person, "intake", "ListDonations", ipb.ListDonationsRequest(
            received_day=today.isoformat(), statuses=[ipb.DONATION_STATUS_INSPECTED]), "donations"),
        svc.call(person, "intake", "GetDonationSummary", ipb.GetDonationSummaryRequest(day=today.isoformat())),
        catalogue(request, viewer))
    done = request.query_params.get("done", "")
    return render(request, "inspect/home.html", status=status, waiting=waiting, done_today=done_today,
                  summary=summary, today=today, failed=failed or {}, decision_of=DECISION_OF,
                  medical_groups=MEDICAL_GROUPS, new_key=new_key, done=done, **page_context(request, items))


@page(*INSPECT)
async def home(request: Request, viewer: Viewer) -> Response:
    return await _inspect_page(request, viewer)


@page(*INSPECT)
async def inspect_line(request: Request, viewer: Viewer) -> Response:
    _ = gettext_of(request)
    form = request.state.form
    typed = {k: str(form.get(k, "")).strip() for k in ("donation_id", "line_no", "idempotency_key", *FIELDS)}
    errors: dict[str, str] = {}
    if typed["decision"] not in DECISIONS:
        errors["decision"] = _("Choose accept, redirect or return.")
    if not typed["reason"]:
        errors["reason"] = _("Give the reason: the evaluation against the standard.")
    if typed["decision"] == "redirect" and not typed["redirect_to"]:
        errors["redirect_to"] = _("Name the department or use it goes to.")
    if typed["decision"] == "accept" and typed["medical_grade"] not in ("", "yes", "no"):
        errors["medical_grade"] = _("Choose yes or no.")
    failed = {"donation_id": typed["donation_id"], "line_no": typed["line_no"], "typed": typed, "errors": errors}
    if not typed["line_no"].isdigit():
        errors["form"] = _("No such line.")
    if errors:
        return await _inspect_page(request, viewer, status=422, failed=failed)
    message = ipb.InspectDonationLineRequest(
        idempotency_key=typed["idempotency_key"] or new_key(), donation_id=typed["donation_id"],
        line_no=int(typed["line_no"]), decision=DECISIONS[typed["decision"]], reason=typed["reason"],
        redirect_to=typed["redirect_to"] if typed["decision"] == "redirect" else "")
    if typed["decision"] == "accept" and typed["medical_grade"]:
        message.medical_grade = typed["medical_grade"] == "yes"
    try:
        await act(request, viewer, f"donation_{typed['decision']}", f"{typed['donation_id']}#{typed['line_no']}",
                  "intake", "InspectDonationLine", message)
    except ServiceError as exc:
        if exc.code.name not in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
            raise
        errors[exc.field if exc.field in FIELDS else "form"] = \
            (field_text if exc.field else rule_text)(exc.message, lang_of(request))
        typed["idempotency_key"] = new_key()
        return await _inspect_page(request, viewer, status=422, failed=failed)
    done = f"{typed['donation_id']}:{typed['line_no']}"
    return RedirectResponse(f"/inspect?{urlencode({'done': done})}#d-{typed['donation_id']}", status_code=303)


routes = [
    Route("/inspect", home),
    Route("/inspect/line", inspect_line, methods=["POST"]),
]
