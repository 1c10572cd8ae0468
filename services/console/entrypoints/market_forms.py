"""What the supermarket channel's pages share (商超保供): the market service's reads the pages
need, the day a page is about, names of items and drop points, a printable document the market
service made, and a refusal put next to the input it is about."""

from __future__ import annotations

import re
from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import Response
from supply.v1 import common_pb2 as cpb
from supply.v1 import market_pb2 as mpb

from services.console.adapters.services import ServiceError
from services.console.domain.forms import Lines
from services.console.domain.market import yuan
from services.console.entrypoints.lookups import county_today, page_context
from services.console.entrypoints.web import Viewer, console_of, lang_of

# The label page is the market service's own self-contained HTML (its print CSS in a <style>,
# the QR codes inline SVG): it may use inline styles and nothing else.
DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


CJK = re.compile(r"[\u4e00-\u9fff]")


def say(message: str, lang: str) -> str:
    """A market refusal ("[rule] …", "field: …"; "中文 / English" in either order) in the page's
    language, without its rule code or field prefix."""
    text = re.sub(r"^\[[\w.]+\]\s*", "", message)
    head, sep, rest = text.partition(": ")
    if sep and " " not in head and not CJK.search(head):
        text = rest
    parts = [p.strip() for p in text.split(" / ") if p.strip()]
    if len(parts) < 2:
        return text
    zh = [p for p in parts if CJK.search(p)]
    en = [p for p in parts if not CJK.search(p)]
    return " / ".join((zh if lang == "zh_CN" else en) or parts)


def svc(request: Request):
    return console_of(request).services


def delivery_day(request: Request) -> date:
    """?day=YYYY-MM-DD, else tomorrow on the county clock (orders are for the next day: they
    close at the outlet's cut-off the evening before)."""
    raw = request.query_params.get("day", "") or str(getattr(request.state, "form", {}).get("day", "") or "")
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return county_today(request) + timedelta(days=1)


async def community_orders(request: Request, viewer: Viewer, day: date, *, outlet_id: str = "",
                           community_id: str = "") -> list[mpb.CommunityOrder]:
    """The community orders of a day for an outlet or a community (ListCommunityOrders)."""
    answer = await svc(request).call(viewer.person, "market", "ListCommunityOrders", mpb.ListCommunityOrdersRequest(
        outlet_id=outlet_id, community_id=community_id, day=day.isoformat()))
    return list(answer.community_orders)


async def household_orders(request: Request, viewer: Viewer, community_id: str, day: date) -> list[mpb.HouseholdOrder]:
    return await svc(request).all_pages(viewer.person, "market", "ListHouseholdOrders", mpb.ListHouseholdOrdersRequest(
        community_id=community_id, day=day.isoformat(), page=cpb.PageRequest(page_size=500)), "orders")


async def communities(request: Request, viewer: Viewer, outlet_id: str = "") -> dict[str, mpb.Community]:
    answer = await svc(request).call(viewer.person, "market", "ListCommunities",
                                     mpb.ListCommunitiesRequest(outlet_id=outlet_id))
    return {c.community_id: c for c in answer.communities}


async def sellable_list(request: Request, viewer: Viewer, day: date, *, outlet_id: str = "",
                        community_id: str = "") -> mpb.SellableList | None:
    """The current list of the day (None when none is published yet)."""
    try:
        return await svc(request).call(viewer.person, "market", "GetSellableList", mpb.GetSellableListRequest(
            outlet_id=outlet_id, community_id=community_id, day=day.isoformat()))
    except ServiceError as exc:
        if exc.code.name == "NOT_FOUND":
            return None
        raise


def drop_point_name(community: mpb.Community | None, drop_point_id: str) -> str:
    if community:
        for dp in community.drop_points:
            if dp.drop_point_id == drop_point_id:
                return dp.name or drop_point_id
    return drop_point_id


def market_context(request: Request, items) -> dict:
    return {**page_context(request, items), "yuan": yuan}


def document(doc: mpb.Document) -> Response:
    """A printable page the market service made, shown as it is (opened in a tab of its own)."""
    name = "".join(ch for ch in doc.filename if ch.isalnum() or ch in "._-")[:100] or "document.html"
    return Response(bytes(doc.content), media_type=doc.content_type or "text/html; charset=utf-8", headers={
        "content-security-policy": DOCUMENT_CSP, "content-disposition": f'inline; filename="{name}"'})


def refusal(request: Request, exc: ServiceError, lines: Lines | None = None, fields: tuple[str, ...] = (),
            rename: dict[str, str] | None = None) -> dict[str, str] | None:
    """A refusal as {input id: text}: a line's field on its row, a named form field on its
    input, else the form's error; None when it is not about what was typed (banner then)."""
    lang = lang_of(request)
    if exc.unavailable or exc.code.name not in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "ALREADY_EXISTS",
                                                "NOT_FOUND"):
        return None
    text = say(exc.message, lang)
    if exc.code.name == "FAILED_PRECONDITION":
        text = f"{text} [{exc.rule or 'rule'}]"
    field = exc.field or exc.message.split(":", 1)[0]
    target = lines.input_id(field, rename) if lines is not None else None
    if target is None:
        target = field if field in fields else "form"
    return {target: text}
