"""Signing in and out, languages, and the server-side checks behind them."""

from __future__ import annotations

import re

import requests

from tests.browser.conftest import login, shoot


def test_each_role_lands_on_its_own_home_page(page, base_url):
    for user, home in (("hq", "/hq"), ("village1", "/village"), ("keeper", "/depot"),
                       ("inspector", "/inspect"), ("unit1", "/unit")):
        page.context.clear_cookies()
        login(page, base_url, user)
        assert page.url.endswith(home), (user, page.url)


def test_the_login_page_in_both_languages(page, base_url):
    page.goto(f"{base_url}/login")
    assert page.locator("h1").inner_text() == "登录"
    shoot(page, "login")
    page.click("a.lang")
    assert page.locator("h1").inner_text() == "Sign in"
    shoot(page, "login")


def test_a_wrong_password_five_times_locks_the_account(page, base_url, county):
    county.account_store().add_user("locktest", "hq", "", "right-password-1", "锁定测试")
    for _ in range(5):
        login(page, base_url, "locktest", "wrong-password-x")
    assert "锁定" in page.locator("#form-error").inner_text() or "locked" in page.locator("#form-error").inner_text()
    login(page, base_url, "locktest", "right-password-1")  # the right password no longer opens it
    assert page.url.rstrip("/").endswith("/login")


def test_a_post_without_the_csrf_token_is_refused(base_url):
    s = requests.Session()
    form = s.get(f"{base_url}/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    assert s.post(f"{base_url}/login", data={"username": "hq", "password": "county-demo-2026"},
                  allow_redirects=False).status_code == 403
    r = s.post(f"{base_url}/login", data={"username": "hq", "password": "county-demo-2026", "csrf_token": token},
               allow_redirects=False)
    assert r.status_code == 303
    assert s.post(f"{base_url}/logout", allow_redirects=False).status_code == 403  # signed in, no token
    assert s.get(f"{base_url}/hq", allow_redirects=False).status_code == 200  # still signed in


def test_the_session_cookie_is_httponly_and_strict(base_url):
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(f"{base_url}/login").text).group(1)
    r = s.post(f"{base_url}/login", data={"username": "hq", "password": "county-demo-2026", "csrf_token": token},
               allow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_an_open_redirect_after_login_is_refused(page, base_url):
    page.goto(f"{base_url}/login?next=//evil.example/x")
    page.fill("#username", "hq")
    page.fill("#password", "county-demo-2026")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url.startswith(base_url)
