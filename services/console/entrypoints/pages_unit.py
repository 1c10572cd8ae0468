"""Unit (单位) and unit head (单位一把手) pages, and HQ's second approval: a unit files a
requisition (防控物资申请审批单, 按实申领) and follows it; the unit head approves or rejects first
(一把手审核); HQ approves or rejects second (指挥部审批), which turns it into a demand. A unit's
people only ever act for their own unit (their scope); intake checks the same."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from supply.v1 import common_pb2 as cpb
from supply.v1 import intake_pb2 as ipb

from services.console.adapters.services import ServiceError
from services.console.domain.forms import Lines, field_text, rule_text, whole_number
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

STAFF = ("unit", "unit_head")
APPROVERS = ("unit_head", "hq", "admin")
READERS = (*STAFF, "hq", "admin", "auditor")
COUNTY = ("hq", "admin", "auditor")
STATUS = {"submitted": ipb.REQUISITION_STATUS_SUBMITTED, "head_approved": ipb.REQUISITION_STATUS_HEAD_APPROVED,
          "hq_approved": ipb.REQUISITION_STATUS_HQ_APPROVED, "rejected": ipb.REQUISITION_STATUS_REJECTED}
STATUS_OF = {v: k for k, v in STATUS.items()}
STEP_OF = {ipb.APPROVAL_STEP_SUBMIT: "submit", ipb.APPROVAL_STEP_HEAD: "head", ipb.APPROVAL_STEP_HQ: "hq"}
DECISION_OF = {ipb.APPROVAL_DECISION_SUBMITTED: "submitted", ipb.APPROVAL_DECISION_APPROVED: "approved",
               ipb.APPROVAL_DECISION_REJECTED: "rejected"}
LINE = ("item_code", "quantity", "note")
FIELDS = ("purpose", "headcount_basis", "delivery_day")


def _svc(request: Request):
    return console_of(request).services


async def _list(request: Request, viewer: Viewer, statuses: list[int]) -> list[ipb.Requisition]:
    """Requisitions the viewer may see (a unit's people: their own unit's), newest first."""
    found = await _svc(request).all_pages(viewer.person, "intake", "ListRequisitions", ipb.ListRequisitionsRequest(
        unit_id=viewer.scope if viewer.role in STAFF else "", statuses=statuses), "requisitions")
    return sorted(found, key=lambda r: (r.filed_at.seconds, r.id), reverse=True)


async def _unit_names(request: Request, viewer: Viewer, unit_ids: set[str]) -> dict[str, str]:
    """Unit names for the list (a unit's people read only their own unit)."""
    svc = _svc(request)

    async def one(uid: str) -> tuple[str, str]:
        try:
            r = await svc.call(viewer.person, "intake", "GetRequester", ipb.GetRequesterRequest(requester_id=uid))
            return uid, r.name
        except ServiceError:
            return uid, uid
    return dict(await asyncio.gather(*(one(u) for u in sorted(unit_ids))))


@page(*READERS)
async def home(request: Request, viewer: Viewer) -> Response:
    if viewer.role not in STAFF:
        return RedirectResponse("/unit/requisitions", status_code=303)
    return await _list_page(request, viewer, "")


@page(*READERS)
async def requisitions(request: Request, viewer: Viewer) -> Response:
    status = request.query_params.get("status", "")
    if viewer.role in COUNTY and not status and request.query_params.get("all") != "1":
        status = "head_approved"  # HQ's queue: what waits for its approval
    return await _list_page(request, viewer, status if status in STATUS else "")


async def _list_page(request: Request, viewer: Viewer, status: str) -> Response:
    found, items = await asyncio.gather(_list(request, viewer, [STATUS[status]] if status else []),
                                        catalogue(request, viewer))
    waiting_step = {"unit_head": ipb.APPROVAL_STEP_HEAD, "hq": ipb.APPROVAL_STEP_HQ}.get(viewer.role)
    names = await _unit_names(request, viewer, {r.unit_id for r in found})
    return render(request, "unit/list.html", requisitions=found, status_filter=status, statuses=list(STATUS),
                  status_of=STATUS_OF, names=names, waiting_step=waiting_step,
                  is_staff=viewer.role in STAFF, **page_context(request, items))


# ---- filing -----------------------------------------------------------------------------------
async def _new_page(request: Request, viewer: Viewer, *, values: dict, lines: Lines, errors: dict,
                    status: int = 200) -> Response:
    unit, items = await asyncio.gather(
        _svc(request).call(viewer.person, "intake", "GetRequester", ipb.GetRequesterRequest(requester_id=viewer.scope)),
        catalogue(request, viewer))
    if "headcount_basis" not in values:
        values["headcount_basis"] = str(unit.headcount + unit.beds)
    groups: dict[str, list] = {}
    for item in sorted(items.values(), key=lambda i: (i.group, i.code)):
        if item.essential:
            groups.setdefault(item.group, []).append(item)
    return render(request, "unit/new.html", status=status, unit=unit, values=values, lines=lines.rows,
                  errors=errors, groups=groups, min_day=county_today(request).isoformat(),
                  **page_context(request, items))


@page(*STAFF)
async def new(request: Request, viewer: Viewer) -> Response:
    if request.method == "GET":
        return await _new_page(request, viewer, values={"idempotency_key": new_key()},
                               lines=Lines.blank(LINE, 4), errors={})
    _ = gettext_of(request)
    form = request.state.form
    values = {k: str(form.get(k, "")).strip() for k in (*FIELDS, "idempotency_key")}
    lines = Lines.read(form, LINE)
    errors: dict[str, str] = {}
    if not values["purpose"]:
        errors["purpose"] = _("Say what the supplies are for.")
    basis = whole_number(values["headcount_basis"], hi=5_000_000)
    if basis is None:
        errors["headcount_basis"] = _("The number of people on site, a whole number above 0.")
    filled = lines.filled()
    if not filled:
        errors["line-0-item_code"] = _("Enter at least one line.")
    asked = []
    for i, row in filled:
        quantity = whole_number(row["quantity"], hi=1_000_000)
        if not row["item_code"]:
            errors[f"line-{i}-item_code"] = _("Choose the item.")
        if quantity is None:
            errors[f"line-{i}-quantity"] = _("A whole number above 0.")
        asked.append(cpb.ItemLine(item_code=row["item_code"], quantity=quantity or 0, note=row["note"][:200]))
    if errors:
        return await _new_page(request, viewer, values=values, lines=lines, errors=errors, status=422)
    message = ipb.FileRequisitionRequest(
        idempotency_key=values["idempotency_key"] or new_key(), unit_id=viewer.scope, lines=asked,
        purpose=values["purpose"], headcount_basis=basis or 0, delivery_day=values["delivery_day"])
    try:
        filed = await act(request, viewer, "requisition_file", viewer.scope, "intake", "FileRequisition", message)
    except ServiceError as exc:
        if exc.code.name not in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
            raise
        lang = lang_of(request)
        target = lines.input_id(exc.field) or (exc.field if exc.field in FIELDS else "form")
        errors[target] = field_text(exc.message, lang) if exc.field else \
            f"{rule_text(exc.message, lang)} [{exc.rule or 'RULE'}]"
        values["idempotency_key"] = new_key()
        return await _new_page(request, viewer, values=values, lines=lines, errors=errors, status=422)
    return RedirectResponse(f"/unit/requisitions/{filed.id}?done=filed", status_code=303)


# ---- one requisition and its approvals --------------------------------------------------------
async def _detail_page(request: Request, viewer: Viewer, requisition_id: str, *, status: int = 200,
                       failed: dict | None = None) -> Response:
    req = await _svc(request).call(viewer.person, "intake", "GetRequisition",
                                   ipb.GetRequisitionRequest(requisition_id=requisition_id))
    names, items = await asyncio.gather(_unit_names(request, viewer, {req.unit_id}), catalogue(request, viewer))
    step = req.pending_step
    can_act = (step == ipb.APPROVAL_STEP_HEAD and viewer.role in ("unit_head", "admin")) or \
              (step == ipb.APPROVAL_STEP_HQ and viewer.role in ("hq", "admin"))
    return render(request, "unit/detail.html", status=status, req=req, unit_name=names.get(req.unit_id, req.unit_id),
                  status_of=STATUS_OF, step_of=STEP_OF, decision_of=DECISION_OF, can_act=can_act,
                  failed=failed or {}, new_key=new_key, done=request.query_params.get("done", ""),
                  **page_context(request, items))


@page(*READERS)
async def detail(request: Request, viewer: Viewer) -> Response:
    return await _detail_page(request, viewer, request.path_params["requisition_id"][:100])


@page(*APPROVERS)
async def decide(request: Request, viewer: Viewer) -> Response:
    """Approve or reject at the pending step: the unit head first, HQ second."""
    _ = gettext_of(request)
    requisition_id = request.path_params["requisition_id"][:100]
    decision = request.path_params["decision"]
    if decision not in ("approve", "reject"):
        return Response(status_code=404)
    form = request.state.form
    typed = {k: str(form.get(k, "")).strip() for k in ("reason", "idempotency_key")}
    failed = {"decision": decision, "typed": typed, "errors": {}}
    if decision == "reject" and not typed["reason"]:
        failed["errors"]["reason"] = _("Give the reason for rejecting: the unit sees it.")
        return await _detail_page(request, viewer, requisition_id, status=422, failed=failed)
    key = typed["idempotency_key"] or new_key()
    if decision == "approve":
        step = {"unit_head": ipb.APPROVAL_STEP_HEAD, "hq": ipb.APPROVAL_STEP_HQ}.get(viewer.role)
        if step is None:  # admin: the step that is pending
            step = (await _svc(request).call(viewer.person, "intake", "GetRequisition", ipb.GetRequisitionRequest(
                requisition_id=requisition_id))).pending_step
        method, message = "ApproveRequisition", ipb.ApproveRequisitionRequest(
            idempotency_key=key, requisition_id=requisition_id, step=step, reason=typed["reason"])
    else:
        method, message = "RejectRequisition", ipb.RejectRequisitionRequest(
            idempotency_key=key, requisition_id=requisition_id, reason=typed["reason"])
    try:
        await act(request, viewer, f"requisition_{decision}", requisition_id, "intake", method, message)
    except ServiceError as exc:
        if exc.code.name not in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
            raise
        lang = lang_of(request)
        failed["errors"]["reason" if exc.field == "reason" else "form"] = \
            field_text(exc.message, lang) if exc.field else f"{rule_text(exc.message, lang)} [{exc.rule or 'RULE'}]"
        typed["idempotency_key"] = new_key()
        return await _detail_page(request, viewer, requisition_id, status=422, failed=failed)
    done = "approved" if decision == "approve" else "rejected"
    return RedirectResponse(f"/unit/requisitions/{requisition_id}?{urlencode({'done': done})}", status_code=303)


routes = [
    Route("/unit", home),
    Route("/unit/requisitions", requisitions),
    Route("/unit/requisitions/new", new, methods=["GET", "POST"]),
    Route("/unit/requisitions/{requisition_id}", detail),
    Route("/unit/requisitions/{requisition_id}/{decision:str}", decide, methods=["POST"]),
]
