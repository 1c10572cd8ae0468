"""The public disclosure page (定期公开: procurement, allocation, stock, donations; RULES §11), for
anyone, without signing in. The lists come from allocation's GetDailyReport (format
DISCLOSURE_HTML), asked with the console's own identity: no viewer, no personal data. Its HTML
is not injected: its tables are read back as text (domain/disclosure.py) and rendered in the
console's escaped templates; the file itself is offered as a download."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from supply.v1 import allocation_pb2 as apb

from services.console.adapters.services import Person, ServiceError
from services.console.domain import disclosure
from services.console.entrypoints.web import console_of, gettext_of, render, service_problem

PUBLIC = Person("console-public", "auditor")  # the console's own identity for public pages
CACHE_S = 60.0  # the report is built from four services on each call: not once per visitor
OLDEST_DAYS = 3 * 366
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_cache: dict[tuple[int, str], tuple[float, apb.DailyReport]] = {}


def county_today(request: Request) -> date:
    console = console_of(request)
    return console.now().astimezone(console.settings.common.timezone).date()


def pick_day(request: Request, raw: str) -> tuple[date, str]:
    """The day asked for and "" or, for a bad value, today and the problem (shown next to the field)."""
    _ = gettext_of(request)
    today = county_today(request)
    if not raw:
        return today, ""
    try:
        day = date.fromisoformat(raw) if DAY.fullmatch(raw) else None
    except ValueError:
        day = None
    if day is None:
        return today, _("Enter a day as YYYY-MM-DD")
    if day > today:
        return today, _("Lists are published for past days and today only")
    if day < today - timedelta(days=OLDEST_DAYS):
        return today, _("Ask the county for lists older than three years")
    return day, ""


async def daily_report(request: Request, day: date) -> apb.DailyReport:
    services = console_of(request).services
    key = (id(services), day.isoformat())
    hit = _cache.get(key)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    report = await services.call(PUBLIC, "allocation", "GetDailyReport", apb.GetDailyReportRequest(
        day=day.isoformat(), format=apb.REPORT_FORMAT_DISCLOSURE_HTML), timeout=60)
    if len(_cache) > 64:
        _cache.clear()
    _cache[key] = (time.monotonic() + CACHE_S, report)
    return report


async def public_page(request: Request) -> Response:
    raw = request.query_params.get("day", "")[:20]
    day, problem = pick_day(request, raw)
    if problem:
        return render(request, "public/disclosure.html", status=400, day=day, typed=raw,
                      errors={"day": problem}, report=None, lists=None, today=county_today(request))
    try:
        report = await daily_report(request, day)
    except ServiceError as exc:
        return service_problem(request, exc)
    lists = disclosure.without_day_column(disclosure.parse(report.content.decode("utf-8", "replace")),
                                          day.isoformat())
    generated = report.generated_at.ToDatetime(tzinfo=console_of(request).settings.common.timezone) \
        if report.HasField("generated_at") else None
    return render(request, "public/disclosure.html", day=day, typed=day.isoformat(), errors={}, report=report,
                  lists=lists, generated=generated, today=county_today(request),
                  header_in=disclosure.header_in, title_in=disclosure.title_in)


async def public_download(request: Request) -> Response:
    """The disclosure file as allocation made it, as a download (never shown inside the console)."""
    day, problem = pick_day(request, request.path_params["day"])
    if problem:
        return render(request, "problem.html", status=400, title=problem)
    try:
        report = await daily_report(request, day)
    except ServiceError as exc:
        return service_problem(request, exc)
    name = f"disclosure-{day.isoformat()}.html"
    return Response(report.content, media_type="application/octet-stream",
                    headers={"content-disposition": f'attachment; filename="{name}"'})


routes = [
    Route("/public", public_page),
    Route("/public/disclosure-{day}.html", public_download),
]
