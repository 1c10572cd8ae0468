"""The console's server-side checks (services/console/entrypoints/web.py), through the Starlette
app with a hand-written fake of the services: only same-site redirects, the body limit before the
body is read, security headers on every response, CSRF on sign-out, the role check of a page
whatever the UI shows, and a crash shown as a page with a number to quote, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlparse

import grpc
import pytest
from starlette.testclient import TestClient
from supply.v1 import allocation_pb2 as apb

from services.common.db import make_engine
from services.console.adapters.services import ServiceError
from services.console.adapters.store import AccountStore
from services.console.config import load_console_settings
from services.console.entrypoints.web import (
    MAX_BODY,
    SESSION_COOKIE,
    Hardening,
    create_app,
    safe_next,
)

PASSWORD = "correct-horse-9"


class QuietStream:
    """A server-streaming call that never says anything (monitoring with no alert transitions)."""

    def __init__(self):
        self.cancelled = False

    async def initial_metadata(self):
        await asyncio.get_running_loop().create_future()  # until cancelled

    def cancel(self) -> None:
        self.cancelled = True

    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.get_running_loop().create_future()


class FakeServices:
    """Stands in for adapters.services.Services (call, all_pages, stream, close). `answers` maps
    (service, method) to the answer, or to an exception to raise; every call is recorded."""

    def __init__(self, answers: dict | None = None):
        self.answers = dict(answers or {})
        self.calls: list[tuple[str, str, str]] = []  # (username, service, method)
        self.streams: list[QuietStream] = []
        self.closed = False

    async def call(self, person, service, method, request, *, timeout=None):
        self.calls.append((person.username, service, method))
        answer = self.answers.get((service, method))
        if answer is None:
            raise ServiceError(service, grpc.StatusCode.UNIMPLEMENTED, f"{method} is not faked")
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def all_pages(self, person, service, method, request, field, *, page_size=500, limit=20_000):
        return list(getattr(await self.call(person, service, method, request), field))[:limit]

    def stream(self, person, service, method, request, *, timeout=None):
        self.calls.append((person.username, service, method))
        self.streams.append(QuietStream())
        return self.streams[-1]

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def store(console_db_url):
    engine = make_engine(console_db_url)
    store = AccountStore(engine, lambda: datetime.now(UTC))
    store.add_user("zhang", "hq", "", PASSWORD, "张三")
    store.add_user("wang", "village", "V1", PASSWORD, "王五")
    store.add_user("admin", "admin", "", PASSWORD)
    yield store
    engine.dispose()


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
def client(tmp_path, store, services):
    settings = load_console_settings({"SUPPLY_VAR_DIR": str(tmp_path / "var")})
    app = create_app(settings, store=store, services=services)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, store: AccountStore, username: str) -> str:
    """Open a session for `username` straight in the store, set its cookie; the CSRF token."""
    sid, session = store.open_session(username)
    client.cookies.set(SESSION_COOKIE, sid)
    return session.csrf_token


# ---- the app takes the fake ------------------------------------------------------------------
def test_the_app_runs_on_the_fake_its_alert_hub_watches_and_stops_with_it(tmp_path, store):
    services = FakeServices()
    app = create_app(load_console_settings({"SUPPLY_VAR_DIR": str(tmp_path)}), store=store, services=services)
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "SERVING"}
        assert ("console-alerts", "monitoring", "WatchAlerts") in services.calls
    assert services.closed and services.streams[0].cancelled


# ---- same-site redirects only ----------------------------------------------------------------
@pytest.mark.parametrize("target", ["//evil.example/hq", "///evil.example", "https://evil.example/hq",
                                    "http:/evil.example", "javascript:alert(1)", "data:text/html,x",
                                    "evil.example/hq", "hq", "", " //evil.example"])
def test_safe_next_refuses_other_hosts_and_schemes(target):
    assert safe_next(target, "/home") == "/home"


@pytest.mark.parametrize("target", ["/hq", "/hq/plan?day=2026-11-28", "/village/demand/new#lines", "/"])
def test_safe_next_keeps_a_path_of_this_site(target):
    assert safe_next(target, "/home") == target


def browser_reading(location: str) -> str:
    """What a browser makes of a Location: tabs and newlines dropped, backslashes as slashes."""
    return re.sub(r"[\t\n\r]", "", location).replace("\\", "/")


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example", "/\\evil.example",
                                    "/\t/evil.example", "\\\\evil.example"])
def test_the_language_switch_never_redirects_off_site(client, target):
    r = client.get("/lang/en", params={"next": target})
    assert r.status_code == 303
    location = browser_reading(r.headers["location"])
    assert location.startswith("/") and not location.startswith("//")
    assert urlparse(location).netloc == ""


def test_signing_in_with_a_foreign_next_lands_on_the_home_page(client):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"csrf_token": token, "username": "zhang", "password": PASSWORD,
                                    "next": "//evil.example/phish"})
    assert r.status_code == 303 and r.headers["location"] == "/hq"


# ---- body limit ------------------------------------------------------------------------------
def test_hardening_answers_413_from_content_length_before_reading_the_body():
    seen = {"app": False, "receive": False, "sent": []}

    async def app(scope, receive, send):
        seen["app"] = True

    async def receive():
        seen["receive"] = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        seen["sent"].append(message)

    scope = {"type": "http", "method": "POST", "path": "/village/import", "query_string": b"",
             "headers": [(b"content-length", str(MAX_BODY + 1).encode())]}
    asyncio.run(Hardening(app, "")(scope, receive, send))
    assert seen["sent"][0]["status"] == 413
    assert not seen["app"] and not seen["receive"]


@pytest.mark.parametrize("length", [str(MAX_BODY + 1), "99999999999999999999", "-1", "12 MB"])
def test_an_oversized_or_malformed_content_length_is_413(client, length):
    r = client.post("/login", content=b"username=zhang", headers={"content-length": length})
    assert r.status_code == 413


def test_a_body_larger_than_its_content_length_said_is_cut_off_at_the_limit(client):
    def chunks():  # no content-length: the limit is counted as the body arrives
        for _ in range(MAX_BODY // (1024 * 1024) + 1):
            yield b"x" * (1024 * 1024)

    r = client.post("/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413 and "提交的内容过大" in r.text


# ---- security headers ------------------------------------------------------------------------
def security_headers_of(r) -> dict[str, str]:
    return {k: r.headers.get(k, "") for k in ("content-security-policy", "x-content-type-options",
                                              "x-frame-options")}


def check_security_headers(r) -> None:
    h = security_headers_of(r)
    assert h["x-content-type-options"] == "nosniff", (r.status_code, r.headers)
    assert "default-src 'self'" in h["content-security-policy"] and "script-src 'self'" in h[
        "content-security-policy"] and "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY"


@pytest.mark.parametrize("request_", [
    ("GET", "/login"),  # a page
    ("GET", "/"),  # a redirect
    ("GET", "/no/such/page"),  # 404
    ("GET", "/static/app.css"),  # a static file
    ("GET", "/healthz"),  # JSON
    ("POST", "/logout"),  # 401: not signed in (htmx-less POST)
])
def test_every_response_carries_the_csp_and_nosniff(client, request_):
    method, path = request_
    check_security_headers(client.request(method, path))


def test_a_page_is_not_stored_by_caches_a_static_file_may_be(client):
    assert client.get("/login").headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/static/app.css").headers.get("cache-control", "")


def test_the_early_413_carries_the_security_headers_too(client):
    r = client.post("/login", content=b"x", headers={"content-length": str(MAX_BODY + 1)})
    assert r.status_code == 413
    check_security_headers(r)


def test_the_500_page_carries_the_security_headers_too(client, store, services):
    services.answers[("allocation", "GetPolicy")] = RuntimeError("boom")
    sign_in(client, store, "zhang")
    r = client.get("/hq/panel/clock")
    assert r.status_code == 500
    check_security_headers(r)


# ---- CSRF ------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_sign_out_without_the_csrf_token_is_403_and_the_session_survives(client, store, token):
    sign_in(client, store, "zhang")
    sid = client.cookies[SESSION_COOKIE]
    data = {} if token is None else {"csrf_token": token}
    r = client.post("/logout", data=data)
    assert r.status_code == 403 and "此表单已过期" in r.text
    assert store.session(sid) is not None
    assert client.get("/hq").status_code == 200


def test_sign_out_with_the_token_ends_the_session(client, store):
    csrf = sign_in(client, store, "zhang")
    sid = client.cookies[SESSION_COOKIE]
    r = client.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert store.session(sid) is None
    assert client.post("/logout", headers={"x-csrf-token": csrf}).status_code == 401


# ---- roles -----------------------------------------------------------------------------------
def test_a_village_worker_cannot_open_hq_pages(client, store, services):
    sign_in(client, store, "wang")
    for path in ("/hq", "/hq/plan", "/hq/panel/clock", "/hq/policy", "/hq/audit", "/admin/users"):
        r = client.get(path)
        assert r.status_code == 403, path
        assert "您的角色不能打开此页面" in r.text and "/village" in r.text
    assert services.calls == [("console-alerts", "monitoring", "WatchAlerts")]  # nothing on wang's behalf


def test_a_village_worker_with_a_valid_csrf_token_still_cannot_approve_a_plan(client, store, services):
    csrf = sign_in(client, store, "wang")
    r = client.post("/hq/plan/plan-1/approve", data={"csrf_token": csrf, "idempotency_key": "k1"})
    assert r.status_code == 403
    r = client.post("/admin/users/add", data={"csrf_token": csrf, "username": "mallory", "role": "admin",
                                              "password": PASSWORD})
    assert r.status_code == 403
    assert not [c for c in services.calls if c[0] == "wang"]
    assert store.get_user("mallory") is None


def test_hq_may_not_manage_accounts_but_the_administrator_may(client, store):
    sign_in(client, store, "zhang")
    assert client.get("/admin/users").status_code == 403
    sign_in(client, store, "admin")
    assert client.get("/admin/users").status_code == 200


def test_the_right_role_opens_the_page(client, store):
    sign_in(client, store, "zhang")
    r = client.get("/hq")
    assert r.status_code == 200 and 'data-role="hq"' in r.text


def test_without_a_session_a_page_sends_to_sign_in_and_htmx_gets_401(client):
    r = client.get("/hq/plan", params={"day": "2026-11-28"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/hq/plan%3Fday%3D2026-11-28"
    assert client.get("/hq/panel/clock", headers={"hx-request": "true"}).status_code == 401


# ---- failures --------------------------------------------------------------------------------
def test_an_unexpected_exception_is_a_500_page_with_a_number_to_quote_and_no_traceback(
        client, store, services, caplog):
    services.answers[("allocation", "GetPolicy")] = RuntimeError("boom: secret internals")
    sign_in(client, store, "zhang")
    with caplog.at_level(logging.ERROR, logger="services.console.entrypoints.web"):
        r = client.get("/hq/panel/clock")
    assert r.status_code == 500
    # the click's id, the one every service call of the request carried
    cid = re.search(r"请向县信息技术保障人员报告此编号：(console-[0-9a-f]{16})", r.text).group(1)
    for leak in ("Traceback", "RuntimeError", "secret internals", "pages_hq.py", 'File "'):
        assert leak not in r.text
    logged = [rec for rec in caplog.records if getattr(rec, "correlation_id", "") == cid]
    assert logged and logged[0].exc_info is not None  # the traceback goes to the log, with the number


def test_a_service_that_does_not_answer_is_a_banner_naming_it(client, store, services):
    services.answers[("allocation", "GetPolicy")] = ServiceError(
        "allocation", grpc.StatusCode.UNAVAILABLE, "not answering")
    sign_in(client, store, "zhang")
    r = client.get("/hq/panel/clock", headers={"hx-request": "true"})
    assert r.status_code == 503
    assert 'data-service="allocation"' in r.text and "调配服务暂无响应" in r.text
    assert "<html" not in r.text  # a fragment for the panel, not a page


def test_the_clock_panel_renders_from_the_policy(client, store, services):
    services.answers[("allocation", "GetPolicy")] = apb.AllocationPolicy(cutoff="11:00", dispatch_deadline="17:00")
    sign_in(client, store, "zhang")
    r = client.get("/hq/panel/clock", headers={"hx-request": "true"})
    assert r.status_code == 200
    assert r.text.count("data-deadline=") == 3 and "需求截止" in r.text

