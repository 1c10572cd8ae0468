"""Browser tests: Playwright driving Debian's Chromium (`apt-get install chromium`; Playwright's
own browser download cannot be reached from these machines) against the whole county stack,
real processes on the real servers (tests/support/county_stack.py). Screenshots of every page
go to var/screenshots/<lang>/ (look at them before calling a page done)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support.county_stack import PASSWORD, CountyStack
from tests.support.processes import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "var" / "screenshots"
FIRST = ("test_day_through_the_browser.py",)  # it needs the county clock before the 11:00 cut-off


def pytest_collection_modifyitems(items):
    """Browser tests last (their stack lives for all of them), the day test first among them."""
    def order(item) -> int:
        path = Path(str(item.fspath))
        if path.parent.name != "browser":
            return 0
        return 1 if path.name in FIRST else 2
    items.sort(key=order)


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `apt-get install chromium` (make test installs it)")
    return {"executable_path": CHROMIUM, "args": ["--no-sandbox", "--disable-dev-shm-usage"]}


@pytest.fixture(scope="session")
def county(tmp_path_factory, run_id, influx_db):
    """One county stack for every browser test: the county clock runs ×20 and reads 10:50 on the
    demo day a minute after start, so the 11:00 cut-off falls 90 s after start (the day test,
    which runs first, submits before it and waits for it)."""
    from tests.support.infra import RabbitVhost

    vhost = RabbitVhost(f"supply-{run_id}-browser")
    stack = CountyStack(tmp_path_factory.mktemp("county"), vhost.create(), influx_db)
    try:
        stack.start()
    except BaseException:
        stack.stop()
        vhost.drop()
        raise
    yield stack
    stack.stop()
    vhost.drop()


@pytest.fixture(scope="session")
def base_url(county) -> str:
    return county.url


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "zh-CN", "viewport": {"width": 1280, "height": 900}}


def login(page, base_url: str, username: str, password: str = PASSWORD):
    """Sign in through the login form; returns the page on the person's home page."""
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def shoot(page, name: str) -> Path:
    """A full-page screenshot under var/screenshots/<lang>/<name>.png (lang from the page)."""
    lang = page.evaluate("document.documentElement.lang") or "zh-CN"
    path = SCREENSHOTS / lang / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def set_language(page, base_url: str, lang: str) -> None:
    page.goto(f"{base_url}/lang/{lang}?next=/")
