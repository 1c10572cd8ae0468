"""The donation inspector's page (捐赠检验) in a real browser against the real county stack: a
donation registered on arrival (through intake's API, as the depot's own tool would) waits for
inspection; the inspector accepts one line for medical use, redirects one to another department
and returns one to the donor, each with its reason, and the day's summary counts them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
from playwright.sync_api import expect
from supply.v1 import intake_pb2 as ipb
from supply.v1 import intake_pb2_grpc as irpc

from simulators.county_day import TOKEN
from tests.browser.conftest import login, set_language, shoot

MD = [("authorization", f"Bearer {TOKEN}")]


def intake(county) -> irpc.IntakeServiceStub:
    return irpc.IntakeServiceStub(grpc.insecure_channel(county.targets["intake"]))


def register_donation(county) -> ipb.Donation:
    today = county.local_now().date()
    tag = uuid.uuid4().hex[:6]

    def line(item: str, quantity: int, days: int) -> ipb.DonationLineSpec:
        return ipb.DonationLineSpec(item_code=item, quantity=quantity, lot=f"DN-{item[:4]}-{tag}",
                                    expiry=(today + timedelta(days=days)).isoformat(), certificates=[f"CERT-{tag}"])

    return intake(county).RegisterDonation(ipb.RegisterDonationRequest(
        idempotency_key=f"test-donation-{tag}",
        donor=ipb.Donor(name=f"清河商会{tag}", contact="0571-88886666", kind=ipb.DONOR_KIND_ORGANIZATION),
        lines=[line("MASK-N95", 2000, 700), line("GLOVE-NITRILE-100", 100, 500), line("ANTIGEN-TEST-20", 300, 20)],
        note="商会统一采购"), metadata=MD, timeout=20)


def decide(page, donation_id: str, line_no: int, decision: str, reason: str = "", **extra: str):
    """Fill one line's inspection form and send it; returns the response of the POST."""
    form = page.locator(f"#line-{donation_id}-{line_no} form")
    form.locator("select[name=decision]").select_option(decision)
    form.locator("textarea[name=reason]").fill(reason)
    for name, value in extra.items():
        field = form.locator(f"[name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    with page.expect_response(lambda r: r.url.endswith("/inspect/line")) as sent:
        form.locator("button[type=submit]").click()
    page.wait_for_load_state("domcontentloaded")
    return sent.value


def test_the_inspector_accepts_redirects_and_returns_donation_lines_with_reasons(page, base_url, county):
    donation = register_donation(county)
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, base_url, "inspector")
    assert page.url.endswith("/inspect")
    card = page.locator(f"#d-{donation.id}")
    expect(card).to_contain_text(donation.donor_name)
    expect(card).to_contain_text("057******666")  # the donor's contact, at most half of it shown
    expect(card).not_to_contain_text("8888")
    shoot(page, "inspect_waiting")

    assert decide(page, donation.id, 0, "accept", "符合GB 2626-2019，检测报告齐全", medical_grade="yes").status == 303
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator(f"#line-{donation.id}-0 .pill[data-status=accept]")).to_be_visible()

    # a redirect needs its target: refused next to the field, what was typed stays
    assert decide(page, donation.id, 1, "redirect", "非医用级，可作社区防控使用").status == 422
    line = page.locator(f"#line-{donation.id}-1")
    target = line.locator("input[name=redirect_to]")
    expect(target).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#" + target.get_attribute("aria-describedby"))).to_be_visible()
    expect(line.locator("textarea[name=reason]")).to_have_value("非医用级，可作社区防控使用")
    shoot(page, "inspect_redirect_needs_target")
    assert decide(page, donation.id, 1, "redirect", "非医用级，可作社区防控使用",
                  redirect_to="社区防控 / community prevention").status == 303

    # a return needs its reason
    assert decide(page, donation.id, 2, "return", "").status == 422
    expect(page.locator(f"#line-{donation.id}-2 textarea[name=reason]")).to_have_attribute("aria-invalid", "true")
    assert decide(page, donation.id, 2, "return", "无医疗器械注册证 / no registration certificate").status == 303
    expect(page.locator(f"#d-{donation.id}")).to_have_count(0)  # every line decided: off the queue
    expect(page.locator("#inspected-today")).to_contain_text(donation.donor_name)
    summary = page.locator("#summary")
    expect(summary.locator("tr[data-item=ANTIGEN-TEST-20]")).to_be_visible()
    shoot(page, "inspect_done")

    got = intake(county).GetDonation(ipb.GetDonationRequest(donation_id=donation.id), metadata=MD)
    decisions = [(ln.inspection.decision, ln.inspection.inspector, ln.inspection.reason) for ln in got.lines]
    assert decisions[0] == (ipb.INSPECTION_DECISION_ACCEPT, "inspector", "符合GB 2626-2019，检测报告齐全")
    assert got.lines[0].inspection.medical_grade is True
    assert decisions[1][0] == ipb.INSPECTION_DECISION_REDIRECT
    assert got.lines[1].inspection.redirect_to == "社区防控 / community prevention"
    assert decisions[2] == (ipb.INSPECTION_DECISION_RETURN, "inspector", "无医疗器械注册证 / no registration certificate")
    trail = [(a.action, a.target) for a in county.account_store().audit_lines(username="inspector")]
    assert ("donation_accept", f"{donation.id}#0") in trail and ("donation_return", f"{donation.id}#2") in trail

    register_donation(county)  # something waiting, for the English screenshot
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/inspect")
    expect(page.locator("h1")).to_contain_text("Donation inspection")
    shoot(page, "inspect_waiting")


def test_a_keeper_or_a_unit_may_not_open_the_inspection_page(page, base_url):
    for user in ("keeper", "unit1"):
        page.context.clear_cookies()
        login(page, base_url, user)
        assert page.goto(f"{base_url}/inspect").status == 403
