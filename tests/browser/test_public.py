"""The public disclosure page (定期公开) in a real browser against the whole county stack: served
without signing in, the four lists in the console's own layout, a bad day refused next to its
field, the file offered as a download, and no personal data — the names and phones of the demo
county's special needs, registered here, appear nowhere."""

from __future__ import annotations

import uuid

import grpc
import requests
from playwright.sync_api import expect
from supply.v1 import common_pb2 as cpb
from supply.v1 import intake_pb2 as ipb
from supply.v1 import intake_pb2_grpc as irpc

from simulators import county_day as demo
from tests.browser.conftest import set_language, shoot

ADMIN = (("authorization", f"Bearer {demo.TOKEN}"),)
CATEGORY = {"infant_formula": ipb.SPECIAL_NEED_CATEGORY_INFANT_FORMULA,
            "chronic_medicine": ipb.SPECIAL_NEED_CATEGORY_CHRONIC_MEDICINE,
            "elderly_alone": ipb.SPECIAL_NEED_CATEGORY_ELDERLY_ALONE}


def seed_special_needs(county) -> list[str]:
    """The demo scenario's special needs (names and phones of real-looking people), in the first
    villages; returns every name and phone that must never be disclosed."""
    stub = irpc.IntakeServiceStub(grpc.insecure_channel(county.targets["intake"]))
    villages = [r.id for r in stub.ListRequesters(ipb.ListRequestersRequest(
        kind=ipb.REQUESTER_KIND_VILLAGE, page=cpb.PageRequest(page_size=50)), metadata=ADMIN, timeout=10).requesters]
    secrets = []
    for n in county.scenario["morning"]["special_needs"]:
        stub.RegisterSpecialNeed(ipb.RegisterSpecialNeedRequest(
            idempotency_key=f"test-public-{uuid.uuid4().hex}", requester_id=villages[n["village"] % len(villages)],
            beneficiary=ipb.Beneficiary(name=n["name"], phone=n["phone"]), category=CATEGORY[n["category"]],
            lines=[cpb.ItemLine(item_code=code, quantity=q) for code, q in n["lines"].items()],
            period_days=n.get("period_days", 0)), metadata=ADMIN, timeout=10)
        secrets += [n["name"], n["phone"], n["phone"][:3] + " " + n["phone"][3:7] + " " + n["phone"][7:]]
    return secrets


def test_the_public_lists_open_without_sign_in_and_hold_no_personal_data(page, base_url, county):
    secrets = seed_special_needs(county)
    day = county.local_now().date().isoformat()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base_url}/public")
    assert page.url.endswith("/public")  # no redirect to the sign-in page
    expect(page.locator("h1")).to_have_text("疫情保供物资信息公开")
    expect(page.locator("section.disclosure-list")).to_have_count(4)
    expect(page.locator("section.disclosure-list h2").first).to_contain_text("采购")
    expect(page.locator("#day")).to_have_value(day)
    html = page.content()
    assert not [s for s in secrets if s in html]
    assert "<style" not in html.split("</head>", 1)[1]  # allocation's page is not pasted in
    shoot(page, "public-disclosure")
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/public?day={day}")
    expect(page.locator("h1")).to_have_text("Public disclosure of epidemic supplies")
    expect(page.locator("section.disclosure-list h2").nth(2)).to_have_text("Stock")
    assert not [s for s in secrets if s in page.content()]
    shoot(page, "public-disclosure")


def test_a_bad_day_is_refused_next_to_the_field(page, base_url, county):
    for bad, says in (("2026-13-45", "YYYY-MM-DD"), ("2099-01-01", "今天及以前")):
        page.goto(f"{base_url}/public?day={bad}")
        expect(page.locator("#err-day")).to_contain_text(says)
        expect(page.locator("#day")).to_have_attribute("aria-invalid", "true")
    assert requests.get(f"{base_url}/public?day=yesterday", timeout=10).status_code == 400
    shoot(page, "public-bad-day")


def test_the_lists_download_as_a_file_without_personal_data(base_url, county):
    secrets = seed_special_needs(county)
    day = county.local_now().date().isoformat()
    r = requests.get(f"{base_url}/public/disclosure-{day}.html", timeout=60)
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="disclosure-{day}.html"'
    text = r.content.decode("utf-8")
    assert "物资信息公开" in text and not [s for s in secrets if s in text]
    assert requests.get(f"{base_url}/public/disclosure-20261129.html", timeout=10).status_code == 400
