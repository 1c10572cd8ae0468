"""HQ (指挥部) pages: the board of the county day, the plan with its reasons and the approval,
stock and days of supply against the reserve floors, trips on the map, alerts, reports, the
policy and the audit trail. Each board panel is its own fragment (hx-get on load), so a service
that does not answer blanks one panel with a banner naming it, not the board."""

from __future__ import annotations

import asyncio
import time
from datetime import date

from google.protobuf import field_mask_pb2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from supply.v1 import allocation_pb2 as apb
from supply.v1 import common_pb2 as cpb
from supply.v1 import intake_pb2 as ipb
from supply.v1 import logistics_pb2 as lpb
from supply.v1 import monitoring_pb2 as mpb

from services.common.tiers import TIER_NAMES
from services.console.adapters.services import ServiceError
from services.console.domain import board
from services.console.domain import policy as policy_form
from services.console.entrypoints.lookups import day_param
from services.console.entrypoints.web import (
    Viewer,
    act,
    console_of,
    gettext_of,
    lang_of,
    new_key,
    page,
    problem_html,
    render,
    render_html,
)

HQ = ("hq", "admin")
READERS = (*HQ, "auditor", "department")
PLAN_STATUS = {apb.PLAN_STATUS_PROPOSED: "proposed", apb.PLAN_STATUS_APPROVED: "approved",
               apb.PLAN_STATUS_REJECTED: "rejected", apb.PLAN_STATUS_SUPERSEDED: "superseded"}
REPORT_TIME = "17:30"
REQUESTERS_TTL_S = 60.0


async def latest_plan(request: Request, viewer: Viewer, day: date, lines: int = 0) -> apb.PlanPage | None:
    try:
        return await console_of(request).services.call(viewer.person, "allocation", "GetPlan", apb.GetPlanRequest(
            delivery_day=day.isoformat(), lines_page=cpb.PageRequest(page_size=max(lines, 1))))
    except ServiceError as exc:
        if exc.code.name == "NOT_FOUND":
            return None
        raise


def tier_rows(plan: apb.Plan) -> list[dict]:
    return [{"tier": int(t.tier), "asked": t.asked, "allocated": t.allocated, "unmet": t.unmet,
             "lines": t.lines, "packages": t.substituted_packages,
             "rate": board.fill_rate(t.allocated, t.asked)} for t in plan.tiers]


class RequesterDirectory:
    """Every requester a role and scope may see, read once per REQUESTERS_TTL_S and shared by
    the console's sessions: the demands panel no longer pages through ListRequesters on every
    load (0.1 s of intake CPU for 300 villages). Loads that find it expired or missing share one
    read; a failed read is not kept."""

    def __init__(self) -> None:
        self._reads: dict[tuple[str, str], tuple[float, asyncio.Task]] = {}

    def read(self, services, person, *, stale: asyncio.Task | None = None) -> asyncio.Task:
        """The read in flight or done less than REQUESTERS_TTL_S ago, else a new one (a new one
        too when it is `stale`)."""
        key = (person.role, person.scope)
        loop = asyncio.get_running_loop()
        at, task = self._reads.get(key, (0.0, None))
        if (task is None or task is stale or time.monotonic() - at > REQUESTERS_TTL_S or task.get_loop() is not loop
                or (task.done() and (task.cancelled() or task.exception() is not None))):
            task = loop.create_task(services.all_pages(person, "intake", "ListRequesters",
                                                       ipb.ListRequestersRequest(), "requesters"))
            self._reads[key] = (time.monotonic(), task)
        return task


def requester_directory(request: Request) -> RequesterDirectory:
    state = request.app.state
    directory = getattr(state, "hq_requesters", None)
    if directory is None:
        directory = state.hq_requesters = RequesterDirectory()
    return directory


# ---- the board -----------------------------------------------------------------------------
PANELS = ("clock", "alerts", "plan", "demands", "stock", "trips", "donations")


def _panel(template: str, **context) -> tuple[str, dict]:
    return template, context


@page(*HQ)
async def board_page(request: Request, viewer: Viewer) -> Response:
    """The whole board in one answer: its panels fetched at once, each rendered on its own, so a
    service that does not answer blanks its panels with a banner naming it, not the board."""
    fetched = await asyncio.gather(*(PANEL_DATA[name](request, viewer) for name in PANELS),
                                   return_exceptions=True)
    panels = {}
    for name, got in zip(PANELS, fetched, strict=True):
        if isinstance(got, ServiceError):
            panels[name] = Markup(problem_html(request, got))
        elif isinstance(got, BaseException):
            raise got
        else:
            panels[name] = Markup(render_html(request, got[0], **got[1]))
    return render(request, "hq/board.html", day=day_param(request), tiers=TIER_NAMES, panels=panels)


def _panel_endpoint(name: str):
    """GET /hq/panel/<name>: one panel again (the clock every 30 s, alerts after a live one)."""
    @page(*HQ)
    async def endpoint(request: Request, viewer: Viewer) -> Response:
        template, context = await PANEL_DATA[name](request, viewer)
        return render(request, template, **context)
    endpoint.__name__ = f"panel_{name}"
    return endpoint


async def _clock(request: Request, viewer: Viewer) -> tuple[str, dict]:
    console = console_of(request)
    policy = await console.services.call(viewer.person, "allocation", "GetPolicy", apb.GetPolicyRequest())
    tz = console.settings.common.timezone
    now = console.now().astimezone(tz)
    return _panel("hq/panel_clock.html", now=now, deadlines=board.deadlines(
        now, tz, now.date(), policy.cutoff, policy.dispatch_deadline, REPORT_TIME))


async def _demands(request: Request, viewer: Viewer) -> tuple[str, dict]:
    """The day's demands by tier and township and the flagged ones, counted by intake
    (SummarizeDemands: no demand is read whole); the list of every demand opens on request."""
    services = console_of(request).services
    day = day_param(request)
    directory = requester_directory(request)
    read = directory.read(services, viewer.person)
    summary, requesters = await asyncio.gather(
        services.call(viewer.person, "intake", "SummarizeDemands",
                      ipb.SummarizeDemandsRequest(delivery_day=day.isoformat())),
        asyncio.shield(read))
    townships, table, per_tier = board.tier_township_table(
        (int(c.top_tier), c.township or "?", c.demands) for c in summary.counts)
    return _panel("hq/panel_demands.html", day=day, total=summary.demands, townships=townships,
                  table=table, per_tier=per_tier, tiers=TIER_NAMES, flagged=summary.flagged,
                  names={r.id: r.name for r in requesters})


@page(*HQ)
async def panel_demand_list(request: Request, viewer: Viewer) -> Response:
    services = console_of(request).services
    day = day_param(request)
    directory = requester_directory(request)
    read = directory.read(services, viewer.person)
    demands, requesters = await asyncio.gather(
        services.all_pages(viewer.person, "intake", "ListDemands",
                           ipb.ListDemandsRequest(delivery_day=day.isoformat()), "demands"),
        asyncio.shield(read))
    if not {d.requester_id for d in demands} <= {r.id for r in requesters}:  # registered since that read
        requesters = await asyncio.shield(directory.read(services, viewer.person, stale=read))
    township = {r.id: r.township for r in requesters}
    rows = [board.DemandRow(d.id, d.requester_id, township.get(d.requester_id, "?"), int(d.top_tier),
                            len(d.lines), any(ln.flagged for ln in d.lines),
                            ipb.DemandStatus.Name(d.status).removeprefix("DEMAND_STATUS_").lower())
            for d in demands]
    return render(request, "hq/panel_demand_list.html", rows=rows, names={r.id: r.name for r in requesters})


async def _plan(request: Request, viewer: Viewer) -> tuple[str, dict]:
    day = day_param(request)
    found = await latest_plan(request, viewer, day)
    plan = found.plan if found else None
    return _panel("hq/panel_plan.html", day=day, plan=plan, plan_status=PLAN_STATUS,
                  tiers=TIER_NAMES, tier_rows=tier_rows(plan) if plan else [])


async def _stock(request: Request, viewer: Viewer) -> tuple[str, dict]:
    services = console_of(request).services
    day = day_param(request)
    supply, quarantined, lots = await asyncio.gather(
        services.call(viewer.person, "logistics", "GetDaysOfSupply", lpb.GetDaysOfSupplyRequest(day=day.isoformat())),
        services.all_pages(viewer.person, "logistics", "ListLots",
                           lpb.ListLotsRequest(status=lpb.LOT_STATUS_QUARANTINED), "lots", limit=200),
        services.all_pages(viewer.person, "logistics", "ListLots",
                           lpb.ListLotsRequest(status=lpb.LOT_STATUS_AVAILABLE), "lots", limit=5000))
    near = sorted((lot for lot in lots if lot.expiry and (date.fromisoformat(lot.expiry) - day).days <= 7),
                  key=lambda lot: lot.expiry)[:50]
    lang_zh = lang_of(request) == "zh_CN"
    chart = {"groups": [(g.name_zh if lang_zh else g.name_en) for g in supply.groups],
             "days": [round(g.days, 1) if g.HasField("days") else None for g in supply.groups],
             "floor": [g.reserve_days if g.HasField("reserve_days") else None for g in supply.groups]}
    return _panel("hq/panel_stock.html", day=day, supply=supply, quarantined=quarantined,
                  near=near, chart=chart)


async def _alerts(request: Request, viewer: Viewer) -> tuple[str, dict]:
    answer = await console_of(request).services.call(viewer.person, "monitoring", "ListAlerts", mpb.ListAlertsRequest(
        states=[mpb.ALERT_STATE_OPEN, mpb.ALERT_STATE_ACKNOWLEDGED], page=cpb.PageRequest(page_size=100)))
    return _panel("hq/panel_alerts.html", alerts=answer.alerts, total=answer.page.total, mpb=mpb)


async def _trips(request: Request, viewer: Viewer) -> tuple[str, dict]:
    day = day_param(request)
    trips = (await console_of(request).services.call(
        viewer.person, "logistics", "ListTrips", lpb.ListTripsRequest(delivery_day=day.isoformat()))).trips
    stops = sum(len(t.stops) for t in trips)
    delivered = sum(s.delivered for t in trips for s in t.stops)
    return _panel("hq/panel_trips.html", day=day, trips=trips, stops=stops, delivered=delivered)


async def _donations(request: Request, viewer: Viewer) -> tuple[str, dict]:
    day = day_param(request)
    summary = await console_of(request).services.call(
        viewer.person, "intake", "GetDonationSummary", ipb.GetDonationSummaryRequest(day=day.isoformat()))
    return _panel("hq/panel_donations.html", day=day, summary=summary)


PANEL_DATA = {"clock": _clock, "alerts": _alerts, "plan": _plan, "demands": _demands, "stock": _stock,
              "trips": _trips, "donations": _donations}


@page(*HQ)
async def acknowledge(request: Request, viewer: Viewer) -> Response:
    form = request.state.form
    alert_id = request.path_params["alert_id"]
    note = str(form.get("note", "")).strip()
    _ = gettext_of(request)
    try:
        await act(request, viewer, "acknowledge_alert", alert_id, "monitoring", "AcknowledgeAlert",
                  mpb.AcknowledgeAlertRequest(idempotency_key=str(form.get("idempotency_key") or new_key()),
                                              alert_id=alert_id, note=note))
    except ServiceError as exc:
        if exc.unavailable:
            raise
        return render(request, "hq/ack_result.html", status=422, ok=False, message=exc.message, alert_id=alert_id)
    return render(request, "hq/ack_result.html", ok=True, message=_("Acknowledged"), alert_id=alert_id)


# ---- the plan ------------------------------------------------------------------------------
@page(*HQ, "auditor")
async def plan_page(request: Request, viewer: Viewer) -> Response:
    return await _plan_view(request, viewer)


async def _plan_view(request: Request, viewer: Viewer, errors: dict | None = None, reason: str = "",
                     status: int = 200) -> Response:
    """The plan of the day with one page of its lines; `errors` beside the approve/reject form."""
    day = day_param(request)
    services = console_of(request).services
    tier = request.query_params.get("tier", "")
    page_token = request.query_params.get("page", "")[:200]
    found = await latest_plan(request, viewer, day, lines=1)
    lines, next_token, versions, names = [], "", [], {}
    if found:
        got = await services.call(viewer.person, "allocation", "GetPlan", apb.GetPlanRequest(
            plan_id=found.plan.plan_id, lines_page=cpb.PageRequest(page_size=50, page_token=page_token)))
        lines = [ln for ln in got.lines if not tier or str(int(ln.tier)) == tier]
        next_token = got.page.next_page_token
        versions = (await services.call(viewer.person, "allocation", "ListPlans",
                                        apb.ListPlansRequest(delivery_day=day.isoformat()))).plans
        catalogue = await services.call(viewer.person, "intake", "ListCatalogueItems", ipb.ListCatalogueItemsRequest())
        names = {i.item_code: i for i in catalogue.items}
    plan = found.plan if found else None
    return render(request, "hq/plan.html", status=status, day=day, plan=plan, lines=lines,
                  next_token=next_token, versions=versions, plan_status=PLAN_STATUS, tiers=TIER_NAMES,
                  tier=tier, items=names, tier_rows=tier_rows(plan) if plan else [], key=new_key(),
                  errors=errors or {}, reason=reason)


@page(*HQ, "auditor")
async def explain(request: Request, viewer: Viewer) -> Response:
    e = await console_of(request).services.call(viewer.person, "allocation", "ExplainLine", apb.ExplainLineRequest(
        plan_id=request.path_params["plan_id"], plan_line_id=request.path_params["line_id"]))
    return render(request, "hq/explain.html", e=e, tiers=TIER_NAMES)


async def _decide(request: Request, viewer: Viewer, approve: bool) -> Response:
    form = request.state.form
    plan_id = request.path_params["plan_id"]
    reason = str(form.get("reason", "")).strip()
    key = str(form.get("idempotency_key") or new_key())[:200]
    _ = gettext_of(request)
    if not approve and not reason:
        return await _plan_view(request, viewer, {"reason": _("Say why the plan is rejected")}, reason, 422)
    try:
        if approve:
            await act(request, viewer, "approve_plan", plan_id, "allocation", "ApprovePlan",
                      apb.ApprovePlanRequest(idempotency_key=key, plan_id=plan_id))
        else:
            await act(request, viewer, "reject_plan", plan_id, "allocation", "RejectPlan",
                      apb.RejectPlanRequest(idempotency_key=key, plan_id=plan_id, reason=reason))
    except ServiceError as exc:
        if exc.unavailable:
            raise
        return await _plan_view(request, viewer, {"reason" if exc.field == "reason" else "plan": exc.message},
                                reason, 422)
    return _see_other(request, f"/hq/plan?day={request.query_params.get('day', '')}")


def _see_other(request: Request, url: str) -> Response:
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return Response(status_code=303, headers={"location": url})


@page(*HQ)
async def approve(request: Request, viewer: Viewer) -> Response:
    return await _decide(request, viewer, True)


@page(*HQ)
async def reject(request: Request, viewer: Viewer) -> Response:
    return await _decide(request, viewer, False)


@page(*HQ)
async def run_allocation(request: Request, viewer: Viewer) -> Response:
    form = request.state.form
    day = str(form.get("day", ""))[:10]
    try:
        await act(request, viewer, "run_allocation", day, "allocation", "RunAllocation", apb.RunAllocationRequest(
            idempotency_key=str(form.get("idempotency_key") or new_key())[:200], delivery_day=day))
    except ServiceError as exc:
        if exc.unavailable:
            raise
        return await _plan_view(request, viewer, {"run": exc.message}, status=422)
    return _see_other(request, f"/hq/plan?day={day}")


# ---- stock, trips, reports, policy, audit ---------------------------------------------------
@page(*HQ, "auditor", "department")
async def stock_page(request: Request, viewer: Viewer) -> Response:
    return render(request, "hq/stock.html", day=day_param(request))


@page(*HQ)
async def trips_page(request: Request, viewer: Viewer) -> Response:
    services = console_of(request).services
    day = day_param(request)
    trips, depots, requesters = await asyncio.gather(
        services.call(viewer.person, "logistics", "ListTrips", lpb.ListTripsRequest(delivery_day=day.isoformat())),
        services.call(viewer.person, "logistics", "ListDepots", lpb.ListDepotsRequest()),
        services.all_pages(viewer.person, "intake", "ListRequesters", ipb.ListRequestersRequest(), "requesters"))
    points = {}
    for r in requesters:
        points[(r.id, "")] = (r.location.lat, r.location.lon, r.name)
        for dp in r.drop_points:
            points[(r.id, dp.id)] = (dp.location.lat, dp.location.lon, f"{r.name} · {dp.name}")
    depot_at = {d.depot.id: (d.depot.location.lat, d.depot.location.lon, d.depot.name) for d in depots.depots}
    routes = []
    for t in trips.trips:
        start = depot_at.get(t.depot_id)
        stops = [{"seq": s.seq, "at": points.get((s.requester_id, s.drop_point_id)) or points.get((s.requester_id, "")),
                  "requester": s.requester_id, "delivered": s.delivered} for s in t.stops]
        routes.append({"trip": t.trip_id, "vehicle": t.vehicle_id, "status": t.status,
                       "depot": start, "stops": [s for s in stops if s["at"]]})
    map_data = {"tiles": console_of(request).settings.tile_url, "depots": list(depot_at.values()), "routes": routes}
    return render(request, "hq/trips.html", day=day, trips=trips.trips,
                  map_data=map_data)


@page(*READERS)
async def reports_page(request: Request, viewer: Viewer) -> Response:
    return render(request, "hq/reports.html", day=day_param(request))


FORMATS = {"md": apb.REPORT_FORMAT_MARKDOWN, "xlsx": apb.REPORT_FORMAT_XLSX}


@page(*HQ, "auditor")
async def report_file(request: Request, viewer: Viewer) -> Response:
    fmt = request.path_params["fmt"]
    try:
        day = date.fromisoformat(request.path_params["day"])
    except ValueError:
        return Response("bad day", status_code=400)
    if fmt not in FORMATS:
        return Response("unknown format", status_code=404)
    report = await console_of(request).services.call(
        viewer.person, "allocation", "GetDailyReport",
        apb.GetDailyReportRequest(day=day.isoformat(), format=FORMATS[fmt]), timeout=120)
    filename = f"daily-report-{day.isoformat()}.{fmt}"
    return Response(report.content, media_type=report.content_type or "application/octet-stream",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


POLICY_FIELDS = ("cutoff", "dispatch_deadline", "tier_order", "reserve_days", "reserve_floors")


@page(*HQ)
async def policy_page(request: Request, viewer: Viewer) -> Response:
    services = console_of(request).services
    policy, history, supply, catalogue = await asyncio.gather(
        services.call(viewer.person, "allocation", "GetPolicy", apb.GetPolicyRequest()),
        services.call(viewer.person, "allocation", "ListPolicyVersions", apb.ListPolicyVersionsRequest()),
        services.call(viewer.person, "logistics", "GetDaysOfSupply", lpb.GetDaysOfSupplyRequest()),
        services.call(viewer.person, "intake", "ListCatalogueItems", ipb.ListCatalogueItemsRequest()))
    # every item group with a reserve floor: the policy holds only the groups HQ has overridden
    floors = [(g.group, g.name_zh if lang_of(request) == "zh_CN" else g.name_en,
               policy.reserve_days.get(g.group, g.reserve_days))
              for g in supply.groups if g.group in policy.reserve_days or g.HasField("reserve_days")]
    # absolute floors in units (issue #15 item 8): every group counted in one unit, and any
    # item code's floor the policy holds (the form replaces them as a whole)
    floor_names = policy_form.floor_names(catalogue.items)
    absolute = policy_form.floor_rows(floor_names, policy.reserve_floors)
    shown = {f"policy.{f}" for f in ("cutoff", "dispatch_deadline", "tier_order")}
    shown |= {f"policy.reserve_days.{g}" for g, _, _ in floors}
    shown |= {f"policy.reserve_floors.{r.key}" for r in absolute}

    def again(status: int, errors: dict[str, str], values: dict[str, str], key: str) -> Response:
        return render(request, "hq/policy.html", status=status, policy=policy, versions=history.versions,
                      tiers=TIER_NAMES, floors=floors, absolute=absolute, floor_names=floor_names,
                      errors=errors, values=values, key=key, saved=request.query_params.get("saved") == "1")

    if request.method == "GET":
        return again(200, {}, {}, new_key())
    form = request.state.form
    values = {k: str(form.get(k, "")).strip() for k in ("cutoff", "dispatch_deadline", "tier_order")}
    values.update({k: str(v).strip() for k, v in form.multi_items()
                   if k.startswith(("reserve_days.", policy_form.FLOOR_FIELD))})
    _ = gettext_of(request)
    errors: dict[str, str] = {}
    new = apb.AllocationPolicy(cutoff=values["cutoff"], dispatch_deadline=values["dispatch_deadline"])
    try:
        new.tier_order.extend(int(x) for x in values["tier_order"].replace("，", ",").split(",") if x.strip())
    except ValueError:
        errors["policy.tier_order"] = _("Tiers as numbers 1-5 separated by commas, e.g. 1,2,3,4,5")
    for k, v in values.items():
        if k.startswith("reserve_days."):
            try:
                new.reserve_days[k.removeprefix("reserve_days.")] = float(v)
            except ValueError:
                errors[f"policy.{k}"] = _("A number of days")
    absolute_floors, bad = policy_form.parse_floors(values)
    new.reserve_floors.update(absolute_floors)
    for k in bad:
        errors[f"policy.reserve_floors.{k}"] = _("A whole number of units, 0 to 100,000,000; empty for no floor")
    if not errors:
        try:
            await act(request, viewer, "set_policy", f"policy v{policy.version}", "allocation", "SetPolicy",
                      apb.SetPolicyRequest(idempotency_key=str(form.get("idempotency_key") or new_key())[:200],
                                           policy=new, expected_version=policy.version,
                                           update_mask=field_mask_pb2.FieldMask(paths=list(POLICY_FIELDS))))
            return _see_other(request, "/hq/policy?saved=1")  # the page forgets what was typed
        except ServiceError as exc:
            if exc.unavailable:
                raise
            errors[policy_form.error_field(exc.field, shown)] = exc.message
    return again(422, errors, values, str(form.get("idempotency_key", "")))


@page(*HQ, "auditor")
async def audit_page(request: Request, viewer: Viewer) -> Response:
    from starlette.concurrency import run_in_threadpool

    who = request.query_params.get("user", "")[:40]
    lines = await run_in_threadpool(console_of(request).store.audit_lines, 300, who)
    return render(request, "hq/audit.html", lines=lines, who=who)


routes = [
    Route("/hq", board_page),
    Route("/hq/panel/clock", _panel_endpoint("clock")),
    Route("/hq/panel/demands", _panel_endpoint("demands")),
    Route("/hq/panel/demand-list", panel_demand_list),
    Route("/hq/panel/plan", _panel_endpoint("plan")),
    Route("/hq/panel/stock", _panel_endpoint("stock")),
    Route("/hq/panel/alerts", _panel_endpoint("alerts")),
    Route("/hq/panel/trips", _panel_endpoint("trips")),
    Route("/hq/panel/donations", _panel_endpoint("donations")),
    Route("/hq/alerts/{alert_id}/ack", acknowledge, methods=["POST"]),
    Route("/hq/plan", plan_page),
    Route("/hq/plan/run", run_allocation, methods=["POST"]),
    Route("/hq/plan/{plan_id}/lines/{line_id}/explain", explain),
    Route("/hq/plan/{plan_id}/approve", approve, methods=["POST"]),
    Route("/hq/plan/{plan_id}/reject", reject, methods=["POST"]),
    Route("/hq/stock", stock_page),
    Route("/hq/trips", trips_page),
    Route("/hq/reports", reports_page),
    Route("/hq/reports/{day}.{fmt}", report_file),
    Route("/hq/policy", policy_page, methods=["GET", "POST"]),
    Route("/hq/audit", audit_page),
]
