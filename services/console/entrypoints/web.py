"""The console's web app (Starlette, Jinja2, htmx): sign-in, sessions, CSRF, languages, the
role check of every page and action on the server, and the pages of each role (pages_*.py).

Entrypoint only: accounts rules live in domain/, storage and the services' gRPC APIs in adapters/.
Every page handler is wrapped by `page(...)`, which loads the person from the session cookie,
refuses a role that may not open it (403), checks the CSRF token of every POST, and turns a
service that does not answer into a banner naming it — never a stack trace."""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from services.common.db import make_engine
from services.common.logs import correlation_id
from services.console import i18n
from services.console.adapters.services import (
    SERVICE_NAMES,
    Person,
    ServiceError,
    Services,
    new_console_correlation_id,
)
from services.console.adapters.store import AccountStore, AuditLine
from services.console.config import ConsoleSettings
from services.console.domain.accounts import HOME, ROLE_NAMES

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parents[1]
SESSION_COOKIE = "console_session"
LOGIN_CSRF_COOKIE = "console_login_csrf"
LANG_COOKIE = "console_lang"
MAX_BODY = 12 * 1024 * 1024  # the largest spreadsheet intake takes, with room for the form around it
MAX_FIELD = 10_000  # characters in one form field (a note, a comment)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person as a page sees them."""

    username: str
    role: str
    scope: str
    display_name: str
    csrf_token: str

    @property
    def person(self) -> Person:
        return Person(self.username, self.role, self.scope)

    @property
    def home(self) -> str:
        return HOME[self.role]


class Console:
    """What every request needs: settings, the account store, the services, templates."""

    def __init__(self, settings: ConsoleSettings, store: AccountStore, services: Services):
        self.settings = settings
        self.store = store
        self.services = services
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(default=True),
                                     extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
        self.templates.globals.update(role_names=ROLE_NAMES, languages=i18n.LANGUAGES,
                                      service_names=SERVICE_NAMES, tile_url=settings.tile_url)
        self.login_attempts: dict[str, deque] = defaultdict(deque)
        self.alerts = None  # AlertHub, started with the app (pages_alerts)

    def now(self) -> datetime:
        return self.settings.common.clock().now()


def console_of(request: Request) -> Console:
    return request.app.state.console


# ---- languages ---------------------------------------------------------------------------
def lang_of(request: Request) -> str:
    return i18n.pick(request.cookies.get(LANG_COOKIE))


def gettext_of(request: Request) -> Callable[..., str]:
    t = i18n.translations(lang_of(request))

    def gettext(message: str, **values: Any) -> str:
        text = t.gettext(message)
        return text % values if values else text
    return gettext


# ---- rendering ---------------------------------------------------------------------------
def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render_html(request, template, **context), status_code=status)


def render_html(request: Request, template: str, **context: Any) -> str:
    console = console_of(request)
    _ = gettext_of(request)
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    values = {"request": request, "viewer": viewer, "lang": lang_of(request), "gettext": _, "_": _,
              "ngettext": i18n.translations(lang_of(request)).ngettext,
              "csrf_token": viewer.csrf_token if viewer else getattr(request.state, "login_csrf", ""),
              "now": console.now(), **context}
    return console.templates.get_template(template).render(values)


def error_page(request: Request, status: int, title: str, detail: str = "", service: str = "") -> HTMLResponse:
    template = "fragments/problem.html" if request.headers.get("hx-request") else "problem.html"
    return render(request, template, status=status, title=title, detail=detail, service=service)


def _problem(request: Request, exc: ServiceError) -> tuple[int, str, str]:
    """(status, title, detail) of a service that refused or did not answer."""
    _ = gettext_of(request)
    zh, en = SERVICE_NAMES.get(exc.service, (exc.service, exc.service))
    name = zh if lang_of(request) == "zh_CN" else en
    if exc.unavailable:
        return (503, _("%(service)s is not answering", service=name),
                _("What you typed is kept: try again in a minute. If it lasts, call county IT."))
    status = {"PERMISSION_DENIED": 403, "NOT_FOUND": 404, "UNAUTHENTICATED": 401}.get(exc.code.name, 400)
    return status, _("The %(service)s service refused this", service=name), exc.message[:300]


def service_problem(request: Request, exc: ServiceError) -> HTMLResponse:
    """A service that refused or did not answer, as a page (or a banner fragment for htmx)."""
    status, title, detail = _problem(request, exc)
    return error_page(request, status, title, detail, service=exc.service)


def problem_html(request: Request, exc: ServiceError) -> str:
    """The same as a fragment, for a part of a page (a board panel)."""
    _status, title, detail = _problem(request, exc)
    return render_html(request, "fragments/problem.html", title=title, detail=detail, service=exc.service)


# ---- the person --------------------------------------------------------------------------
async def load_viewer(request: Request) -> Viewer | None:
    sid = request.cookies.get(SESSION_COOKIE, "")
    if not sid:
        return None
    found = await run_in_threadpool(console_of(request).store.session_and_user, sid)
    if found is None:
        return None
    session, user = found
    if user.disabled:
        return None
    return Viewer(user.username, user.role, user.scope, user.display_name or user.username, session.csrf_token)


def csrf_ok(expected: str, got: str) -> bool:
    return bool(expected) and bool(got) and hmac.compare_digest(expected.encode(), got.encode())


async def read_form(request: Request) -> FormData:
    """The posted form, with limits on fields and on each field's length."""
    form = await request.form(max_files=1, max_fields=2000, max_part_size=MAX_BODY)
    for key, value in form.multi_items():
        if isinstance(value, str) and len(value) > MAX_FIELD:
            raise HTTPException(413, f"field {key[:40]!r} is longer than {MAX_FIELD} characters")
    return form


def page(*roles: str):
    """Guard a page or action: signed in, one of `roles` (empty: any signed-in role), CSRF on
    POST; ServiceError → banner. The handler receives (request, viewer)."""

    def decorate(handler: Callable[[Request, Viewer], Awaitable[Response]]):
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            viewer = await load_viewer(request)
            if viewer is None:
                if request.method == "GET" and not request.headers.get("hx-request"):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
                return error_page(request, 401, gettext_of(request)("Please sign in again"))
            request.state.viewer = viewer
            _ = gettext_of(request)
            if roles and viewer.role not in roles:
                return error_page(request, 403, _("This page is not for your role"),
                                  _("Your home page is %(home)s", home=viewer.home))
            if request.method == "POST":
                form = await read_form(request)
                got = request.headers.get("x-csrf-token") or str(form.get("csrf_token", ""))
                if not csrf_ok(viewer.csrf_token, got):
                    return error_page(request, 403, _("This form has expired"),
                                      _("Reload the page and send it again."))
                request.state.form = form
            try:
                return await handler(request, viewer)
            except ServiceError as exc:
                return service_problem(request, exc)
        return endpoint
    return decorate


async def audit(request: Request, viewer: Viewer, action: str, target: str, outcome: str = "ok",
                detail: str = "", correlation_id: str = "") -> None:
    """Who did what through the console (the services record the same identity, from the token)."""
    line = AuditLine(at=datetime.now(UTC), username=viewer.username, role=viewer.role, action=action,
                     target=target[:200], outcome=outcome, detail=detail[:1000],
                     correlation_id=correlation_id)
    await run_in_threadpool(console_of(request).store.record, line)


async def act(request: Request, viewer: Viewer, action: str, target: str, service: str, method: str,
              message) -> Any:
    """Call a write `method` of `service` as the viewer, and put the outcome in the audit trail."""
    try:
        answer = await console_of(request).services.call(viewer.person, service, method, message)
    except ServiceError as exc:
        await audit(request, viewer, action, target, "refused", f"{exc.code.name}: {exc.message}",
                    exc.correlation_id)
        raise
    await audit(request, viewer, action, target)
    return answer


def new_key() -> str:
    return uuid.uuid4().hex


# ---- sign in and out ---------------------------------------------------------------------
def safe_next(target: str, fallback: str) -> str:
    """Only a path on this site (no //host, no scheme): an open redirect is a phishing tool."""
    parsed = urlparse(target or "")
    if not target or parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


def _rate_limited(console: Console, client: str) -> bool:
    window = console.login_attempts[client]
    now = time.monotonic()
    while window and now - window[0] > 60:
        window.popleft()
    if len(window) >= console.settings.login_attempts_per_minute:
        return True
    window.append(now)
    if len(console.login_attempts) > 10_000:
        console.login_attempts.clear()
    return False


async def login(request: Request) -> Response:
    console = console_of(request)
    _ = gettext_of(request)
    if request.method == "GET":
        viewer = await load_viewer(request)
        if viewer is not None:
            return RedirectResponse(safe_next(request.query_params.get("next", ""), viewer.home), 303)
        token = secrets.token_urlsafe(24)
        request.state.login_csrf = token
        response = render(request, "login.html", next=request.query_params.get("next", ""), errors={})
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                            secure=console.settings.cookie_secure, path="/login")
        return response
    form = await read_form(request)
    username = str(form.get("username", "")).strip().lower()[:40]
    password = str(form.get("password", ""))[:200]
    request.state.login_csrf = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    nxt = str(form.get("next", ""))
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), str(form.get("csrf_token", ""))):
        return error_page(request, 403, _("This form has expired"), _("Reload the page and send it again."))
    client = request.client.host if request.client else "-"
    if _rate_limited(console, client):
        return render(request, "login.html", status=429, next=nxt, username=username,
                      errors={"form": _("Too many attempts from this address; wait a minute.")})
    user, reason = await run_in_threadpool(console.store.authenticate, username, password)
    if user is None:
        message = {"locked": _("Too many wrong passwords: this account is locked for a while. "
                               "Ask HQ or county IT if it is urgent."),
                   "disabled": _("This account is disabled.")}.get(
            reason, _("Wrong user name or password."))
        log.info("login refused", extra={"username": username, "reason": reason, "client": client})
        return render(request, "login.html", status=401 if reason == "bad" else 403, next=nxt,
                      username=username, errors={"form": message})
    sid, _session = await run_in_threadpool(console.store.open_session, user.username)
    log.info("login", extra={"username": user.username, "role": user.role})
    response = RedirectResponse(safe_next(nxt, user.home), status_code=303)
    response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="strict",
                        secure=console.settings.cookie_secure, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@page()
async def logout(request: Request, viewer: Viewer) -> Response:
    await run_in_threadpool(console_of(request).store.close_session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def set_language(request: Request) -> Response:
    lang = i18n.pick(request.path_params["lang"])
    back = safe_next(request.query_params.get("next", ""), "/")
    response = RedirectResponse(back, status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", httponly=True,
                        secure=console_of(request).settings.cookie_secure)
    return response


async def home(request: Request) -> Response:
    viewer = await load_viewer(request)
    return RedirectResponse(viewer.home if viewer else "/login", status_code=303)


async def healthz(request: Request) -> Response:
    """HTTP probe: the console answers and its account database does."""
    try:
        await run_in_threadpool(console_of(request).store.get_user, "-")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return JSONResponse({"status": "NOT_SERVING", "error": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "SERVING"})


# ---- the app -----------------------------------------------------------------------------
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def _csp(tile_url: str) -> str:
    tiles = ""
    if tile_url:
        u = urlparse(tile_url.replace("{s}", "*"))  # {s}.tile.example: any subdomain of it
        tiles = f" {u.scheme}://{u.netloc}"
    return ("default-src 'self'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data: blob:{tiles}; connect-src 'self'; font-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; "
            "worker-src 'self'; manifest-src 'self'")


class Hardening:
    """ASGI middleware: a body size limit before anything reads the body, security headers and
    no-store on every page (pages carry names of villages and lots, not for shared caches)."""

    def __init__(self, app, tile_url: str):
        self.app = app
        self.csp = _csp(tile_url).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope["path"].startswith("/static/")
        if not static:  # each request runs in a task of its own: nothing to reset
            correlation_id.set(new_console_correlation_id())

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                if not any(k.lower() == b"content-security-policy" for k, _v in message.get("headers", [])):
                    extra.append((b"content-security-policy", self.csp))  # else a document's own (labels)
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > MAX_BODY:
            await HTMLResponse("request too large / 请求过大", status_code=413)(scope, receive, send_with_headers)
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY:
                raise HTTPException(413, "request too large")
            return message

        await self.app(scope, limited_receive, send_with_headers)


async def _not_found(request: Request, exc: HTTPException) -> Response:
    _ = gettext_of(request)
    if exc.status_code == 404:
        return error_page(request, 404, _("No such page"))
    if exc.status_code == 413:
        return error_page(request, 413, _("What you sent is too large"), str(exc.detail)[:200])
    return error_page(request, exc.status_code, _("This request cannot be served"))


async def _crashed(request: Request, exc: Exception) -> Response:
    cid = correlation_id.get() or uuid.uuid4().hex[:12]
    log.error("page failed", extra={"path": request.url.path, "correlation_id": cid}, exc_info=exc)
    _ = gettext_of(request)
    response = error_page(request, 500, _("Something went wrong on our side"),
                          _("Quote this number to county IT: %(cid)s", cid=cid))
    # Starlette answers this one outside the Hardening middleware: the same headers, set here
    response.headers.update({**SECURITY_HEADERS, "cache-control": "no-store",
                             "content-security-policy": _csp(console_of(request).settings.tile_url)})
    return response


def create_app(settings: ConsoleSettings, *, store: AccountStore | None = None,
               services: Services | None = None) -> Starlette:
    from services.console.entrypoints import (
        market_community,
        market_purchase,
        pages_admin,
        pages_alerts,
        pages_depot,
        pages_hq,
        pages_inspect,
        pages_market,
        pages_public,
        pages_unit,
        pages_village,
    )

    common = settings.common
    if store is None:
        from services.common.migrate import check_at_head

        engine = make_engine(common.database_url)
        check_at_head("console", engine)
        store = AccountStore(engine, lambda: datetime.now(UTC), settings.lockout, settings.session)
    services = services or Services(settings.targets, common.jwt_key, token_ttl_s=settings.session.token_ttl_s,
                                   tls=common.grpc_tls)
    console = Console(settings, store, services)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await pages_alerts.start(console)
        try:
            yield
        finally:
            await pages_alerts.stop(console)
            await services.close()

    routes = [
        Route("/", home),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang/{lang}", set_language),
        Route("/healthz", healthz),
        *pages_public.routes, *pages_alerts.routes, *pages_hq.routes, *pages_village.routes,
        *pages_unit.routes, *pages_inspect.routes, *pages_depot.routes, *pages_admin.routes,
        *pages_market.routes, *market_community.routes, *market_purchase.routes,
        Route("/sw.js", pages_village.service_worker),  # at the root, so it may serve /village/…
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: _not_found, Exception: _crashed})
    app.state.console = console
    app.add_middleware(Hardening, tile_url=settings.tile_url)
    return app


def run(settings: ConsoleSettings) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False, server_header=False, proxy_headers=False, timeout_graceful_shutdown=10)
