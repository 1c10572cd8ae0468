"""The unit's and the unit head's pages (单位 / 单位一把手) and HQ's second approval, in a real browser
against the real county stack: the hospital files a requisition, its head approves first
(一把手审核), HQ approves second (指挥部审批) and a demand is created; the unit cannot approve
(the server refuses, 403); a rejection needs its reason and the unit sees it."""

from __future__ import annotations

import re

import grpc
from playwright.sync_api import expect
from supply.v1 import intake_pb2 as ipb
from supply.v1 import intake_pb2_grpc as irpc

from simulators.county_day import TOKEN
from tests.browser.conftest import login, set_language, shoot

MD = [("authorization", f"Bearer {TOKEN}")]
HOSPITAL = "U-HOSP-1"


def requisition(county, rid: str) -> ipb.Requisition:
    stub = irpc.IntakeServiceStub(grpc.insecure_channel(county.targets["intake"]))
    return stub.GetRequisition(ipb.GetRequisitionRequest(requisition_id=rid), metadata=MD, timeout=20)


def as_user(page, base_url: str, user: str) -> None:
    page.context.clear_cookies()
    login(page, base_url, user)


def choose_item(page, selector: str, code: str) -> None:
    """The item field is a list of the catalogue's items (a text field when intake's catalogue
    cannot be read)."""
    field = page.locator(selector)
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(code)
    else:
        field.fill(code)


def file_requisition(page, base_url: str, purpose: str, lines: list[tuple[str, str]]) -> str:
    page.goto(f"{base_url}/unit/requisitions/new")
    page.fill("#purpose", purpose)
    for i, (code, quantity) in enumerate(lines):
        choose_item(page, f"#line-{i}-item_code", code)
        page.fill(f"#line-{i}-quantity", quantity)
    page.click("#requisition-form button[type=submit]")
    expect(page.locator("#done")).to_be_visible()
    return re.search(r"/unit/requisitions/([^/?#]+)", page.url).group(1)


def decide(page, decision: str, reason: str = "") -> int:
    form = page.locator(f'form[data-decision-form="{decision}"]')
    form.locator("textarea[name=reason]").fill(reason)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(f"/{decision}")) as sent:
        form.locator("button[type=submit]").click()
    page.wait_for_load_state("domcontentloaded")
    return sent.value.status


def test_unit_files_head_approves_hq_approves_second_and_the_unit_sees_it(page, base_url, county):
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, base_url, "unit1")
    assert page.url.endswith("/unit")
    page.click("#file-new")
    expect(page.locator("#headcount_basis")).to_have_value("1100")  # 620 staff + 480 beds, as registered
    shoot(page, "unit_new")
    rid = file_requisition(page, base_url, "发热门诊扩容防护物资 / fever clinic expansion",
                           [("FACE-SHIELD", "200"), ("GLOVE-NITRILE-100", "50")])
    expect(page.locator("h1 .pill[data-status=submitted]")).to_be_visible()
    expect(page.locator("#decide")).to_have_count(0)  # nothing for the unit's staff to decide
    shoot(page, "unit_filed")

    # the unit's staff cannot approve: the server refuses, whatever the page shows
    token = page.locator("body").get_attribute("data-csrf")
    refused = page.request.post(f"{base_url}/unit/requisitions/{rid}/approve",
                                form={"csrf_token": token, "reason": "", "idempotency_key": "x1"})
    assert refused.status == 403
    assert requisition(county, rid).status == ipb.REQUISITION_STATUS_SUBMITTED

    as_user(page, base_url, "head1")
    page.goto(f"{base_url}/unit")
    expect(page.locator("#waiting-for-me")).to_contain_text(rid)
    page.goto(f"{base_url}/unit/requisitions/{rid}")
    shoot(page, "unit_head_decides")
    assert decide(page, "approve", "同意，按实际需要申领") == 303
    expect(page.locator("h1 .pill[data-status=head_approved]")).to_be_visible()
    expect(page.locator("#decide")).to_have_count(0)  # HQ's step now

    as_user(page, base_url, "hq")
    page.goto(f"{base_url}/unit/requisitions")
    expect(page.locator(f'tr[data-requisition="{rid}"]')).to_be_visible()  # HQ's queue
    shoot(page, "unit_hq_queue")
    page.goto(f"{base_url}/unit/requisitions/{rid}")
    assert decide(page, "approve") == 303
    expect(page.locator("h1 .pill[data-status=hq_approved]")).to_be_visible()
    approved = requisition(county, rid)
    assert approved.status == ipb.REQUISITION_STATUS_HQ_APPROVED and approved.demand_id
    assert [(a.actor_id, a.role) for a in approved.approvals][1:] == [("head1", "unit_head"), ("hq", "hq")]

    as_user(page, base_url, "unit1")
    row = page.locator(f'tr[data-requisition="{rid}"]')
    expect(row.locator(".pill[data-status=hq_approved]")).to_be_visible()
    page.goto(f"{base_url}/unit/requisitions/{rid}")
    expect(page.locator("#trail li")).to_have_count(3)
    expect(page.locator(".facts")).to_contain_text(approved.demand_id)
    shoot(page, "unit_approved")
    set_language(page, base_url, "en")
    for path, name in ((f"/unit/requisitions/{rid}", "unit_approved"), ("/unit", "unit_home"),
                       ("/unit/requisitions/new", "unit_new")):
        page.goto(base_url + path)
        shoot(page, name)
    expect(page.locator("h1")).to_contain_text("File a requisition")


def test_a_rejection_needs_its_reason_and_the_unit_sees_it(page, base_url, county):
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, base_url, "unit1")
    rid = file_requisition(page, base_url, "学生返校储备 / stock for the term", [("MASK-SURGICAL-50", "30000")])
    as_user(page, base_url, "head1")
    page.goto(f"{base_url}/unit/requisitions/{rid}")
    assert decide(page, "reject", "") == 422
    reason = page.locator('form[data-decision-form="reject"] textarea[name=reason]')
    expect(reason).to_have_attribute("aria-invalid", "true")
    shoot(page, "unit_reject_needs_reason")
    assert decide(page, "reject", "数量明显超出实际需要，请按实申领") == 303
    expect(page.locator("h1 .pill[data-status=rejected]")).to_be_visible()

    as_user(page, base_url, "unit1")
    page.goto(f"{base_url}/unit/requisitions/{rid}")
    expect(page.locator("#trail")).to_contain_text("数量明显超出实际需要")
    assert requisition(county, rid).status == ipb.REQUISITION_STATUS_REJECTED
    shoot(page, "unit_rejected")


def test_a_unit_files_only_for_itself_and_sees_only_its_own(page, base_url, county):
    login(page, base_url, "unit1")
    assert page.goto(f"{base_url}/depot").status == 403
    assert page.goto(f"{base_url}/inspect").status == 403
    page.goto(f"{base_url}/unit/requisitions?status=")
    units = page.locator("tr[data-requisition] td:nth-child(2)").all_inner_texts()
    assert units and all(u in ("县人民医院", HOSPITAL) for u in units), units
    # a unit_id in the form is not taken: the console files for the person's own unit
    page.goto(f"{base_url}/unit/requisitions/new")
    token = page.locator("body").get_attribute("data-csrf")
    answer = page.request.post(f"{base_url}/unit/requisitions/new", max_redirects=0, form={
        "csrf_token": token, "unit_id": "U-SCH-1", "purpose": "test", "headcount_basis": "10",
        "item_code": "MASK-N95", "quantity": "1", "note": "", "idempotency_key": "scope-test-1"})
    assert answer.status == 303
    filed = re.search(r"/unit/requisitions/([^/?#]+)", answer.headers["location"]).group(1)
    assert requisition(county, filed).unit_id == HOSPITAL
