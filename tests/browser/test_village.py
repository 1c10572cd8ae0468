"""The village and grid worker pages (村居专班 / 网格员) in a real browser against the whole county
stack: the demand form (two lines, a refused baijiu line, a demand of baijiu alone, bad
quantities), the offline queue with its service worker, isolation between villages and from
HQ's pages, special needs (masked), the spreadsheet import's row errors, the receipt page;
screenshots of every page in both languages.

The county clock starts at 10:50 and runs ×10, so by the time these tests run the day's 11:00
cut-off has passed and a new demand is for the next day (intake rolls it forward)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC

import grpc
import pytest
import requests
from playwright.sync_api import Page, expect
from supply.v1 import allocation_pb2 as apb
from supply.v1 import allocation_pb2_grpc as arpc
from supply.v1 import common_pb2 as cpb
from supply.v1 import intake_pb2 as ipb
from supply.v1 import intake_pb2_grpc as irpc
from supply.v1 import logistics_pb2 as lpb
from supply.v1 import logistics_pb2_grpc as lrpc

from simulators import county_day as demo
from tests.browser.conftest import login, set_language, shoot
from tests.support.polling import eventually

PHONE = {"width": 390, "height": 844}
ADMIN = (("authorization", f"Bearer {demo.TOKEN}"),)


# ---- helpers ---------------------------------------------------------------------------------
def intake(county):
    return irpc.IntakeServiceStub(grpc.insecure_channel(county.targets["intake"]))


def demands_of(county, requester: str) -> list[ipb.Demand]:
    answer = intake(county).ListDemands(ipb.ListDemandsRequest(
        requester_id=requester, page=cpb.PageRequest(page_size=500)), metadata=ADMIN, timeout=10)
    return list(answer.demands)


def with_lines(county, requester: str, lines: dict[str, int]) -> list[ipb.Demand]:
    """The requester's demands holding exactly these lines (item → quantity)."""
    return [d for d in demands_of(county, requester) if {ln.item_code: ln.quantity for ln in d.lines} == lines]


def open_form(page: Page, base_url: str, user: str = "village1") -> None:
    page.set_viewport_size(PHONE)
    login(page, base_url, user)
    page.goto(f"{base_url}/village/demand/new")
    expect(page.locator("#demand-form")).to_be_visible()


def fill_line(page: Page, i: int, item: str, quantity: str, note: str = "") -> None:
    while page.locator(f"#lines-{i}-item").count() == 0:
        page.click("[data-add-line]")
    page.fill(f"#lines-{i}-item", item)
    page.fill(f"#lines-{i}-quantity", quantity)
    if note:
        page.fill(f"#lines-{i}-note", note)


def in_both_languages(page: Page, base_url: str, path: str, name: str) -> None:
    """Screenshots of `path` in Chinese, then in English (the page is left in Chinese)."""
    page.goto(f"{base_url}{path}")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    shoot(page, name)
    set_language(page, base_url, "en")
    page.goto(f"{base_url}{path}")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    shoot(page, name)
    set_language(page, base_url, "zh_CN")


# ---- the demand form ---------------------------------------------------------------------------
def test_a_demand_with_two_lines_is_accepted_once_and_shows_on_the_village_page(page, base_url, county):
    lines = {"RICE-10KG": 37, "EGG-30": 13}
    open_form(page, base_url)
    in_both_languages(page, base_url, "/village/demand/new", "village-demand-form")
    page.goto(f"{base_url}/village/demand/new")
    page.fill("#cat-q", "大米")  # the catalogue narrows as the worker types, without a round trip
    expect(page.locator("#catalogue li:has([data-add-item='RICE-10KG'])")).to_be_visible()
    expect(page.locator("#catalogue li:has([data-add-item='EGG-30'])")).to_be_hidden()
    page.fill("#cat-q", "")
    expect(page.locator("#catalogue li:has([data-add-item='EGG-30'])")).to_be_visible()
    fill_line(page, 0, "RICE-10KG", "37")
    fill_line(page, 1, "EGG-30", "13", "二楼仓库")
    page.click("button[data-submit]")
    expect(page.locator("section.accepted h1")).to_have_text("需求已受理")
    demand_id = re.search(r"/village/demands/(D-[0-9a-f]+)", page.url).group(1)
    shoot(page, "village-demand-accepted")
    # intake holds it exactly once, for V-001, with the two lines as typed
    found = with_lines(county, "V-001", lines)
    assert [d.id for d in found] == [demand_id]
    assert found[0].lines[1].note == "二楼仓库"
    # … and today's page shows it with where it stands and the item names in the page's language
    page.goto(f"{base_url}/village")
    card = page.locator(f"#demand-{demand_id}")
    expect(card).to_be_visible()
    expect(card.locator("[data-standing]")).to_have_attribute("data-standing", re.compile("submitted|closed"))
    expect(card).to_contain_text("大米")
    in_both_languages(page, base_url, "/village", "village-home")
    in_both_languages(page, base_url, f"/village/demands/{demand_id}", "village-demand")


def test_a_baijiu_line_is_refused_and_the_rest_of_the_demand_accepted(page, base_url, county):
    """RULES §6: the baijiu line alone is refused; the demand page says so."""
    open_form(page, base_url)
    fill_line(page, 0, "CABBAGE-KG", "21", "少要菜叶")
    fill_line(page, 1, "BAIJIU-500ML", "2")
    page.click("button[data-submit]")
    expect(page).to_have_url(re.compile(r"/village/demands/[^/?#]+\?accepted=1"))
    expect(page.locator("p.notice")).to_contain_text("烟酒等非必须品除外")
    accepted = with_lines(county, "V-001", {"CABBAGE-KG": 21})
    assert len(accepted) == 1 and [r.item_code for r in accepted[0].refused_lines] == ["BAIJIU-500ML"]
    shoot(page, "village-demand-line-refused")


def test_a_demand_of_baijiu_alone_is_refused_next_to_it_and_everything_typed_stays(page, base_url,
                                                                                  county):
    open_form(page, base_url)
    fill_line(page, 0, "BAIJIU-500ML", "2", "过年")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("button[data-submit]")
    assert answer.value.status == 422
    error = page.locator("#err-lines-0-item")
    expect(error).to_contain_text("烟酒等非必须品除外")
    expect(page.locator("#lines-0-item")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#lines-0-item")).to_have_attribute("aria-describedby", "err-lines-0-item")
    # what was typed is still in the form
    expect(page.locator("#lines-0-item")).to_have_value("BAIJIU-500ML")
    expect(page.locator("#lines-0-quantity")).to_have_value("2")
    expect(page.locator("#lines-0-note")).to_have_value("过年")
    shoot(page, "village-demand-refused")
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/village/demand/new")
    fill_line(page, 0, "BAIJIU-500ML", "2")
    page.click("button[data-submit]")
    expect(page.locator("#err-lines-0-item")).to_contain_text("non-essential")
    shoot(page, "village-demand-refused")


@pytest.mark.parametrize("quantity, says", [("0", "不能小于 1"), ("5000000", "不能大于"), ("两箱", "请填写整数")])
def test_a_bad_quantity_is_shown_next_to_the_quantity(page, base_url, county, quantity, says):
    open_form(page, base_url)
    fill_line(page, 0, "OIL-5L", "4")
    fill_line(page, 1, "MILK-1L", quantity)
    page.click("button[data-submit]")
    expect(page.locator("#err-lines-1-quantity")).to_contain_text(says)
    expect(page.locator("#lines-1-quantity")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#lines-1-quantity")).to_have_value(quantity)
    expect(page.locator("#lines-0-quantity")).to_have_value("4")
    assert page.locator("#err-lines-0-quantity").count() == 0
    if quantity == "0":
        shoot(page, "village-demand-bad-quantity")


# ---- offline -----------------------------------------------------------------------------------
def queue_length(page: Page) -> int:
    return page.evaluate("JSON.parse(localStorage.getItem('village-queue:v1') || '[]').length")


def test_offline_a_demand_waits_on_the_phone_and_is_sent_once_when_the_network_returns(page, base_url, county):
    lines = {"POTATO-KG": 41, "MILK-1L": 59}
    open_form(page, base_url)
    # the service worker has cached the form, its catalogue and the assets
    assert page.evaluate("navigator.serviceWorker.ready.then(r => r.active.scriptURL)").endswith("/sw.js")
    eventually(lambda: page.evaluate("""Promise.all(['/village/demand/new', '/static/village.js', '/static/app.css']
        .map(u => caches.match(u))).then(hits => hits.every(Boolean))"""), what="the offline cache")
    page.context.set_offline(True)
    page.goto(f"{base_url}/village/demand/new")  # from the service worker's cache
    expect(page.locator("#offline")).to_be_visible()
    expect(page.locator("#catalogue li").first).to_be_visible()
    fill_line(page, 0, "POTATO-KG", "41")
    fill_line(page, 1, "MILK-1L", "59")
    page.click("button[data-submit]")
    expect(page.locator("#queue-title")).to_have_text("等待发送（1）")
    expect(page.locator("#queue-list li")).to_contain_text("POTATO-KG × 41")
    expect(page.locator("#lines-0-item")).to_have_value("")  # the form is free for the next one
    entry = page.evaluate("localStorage.getItem('village-queue:v1')")
    assert '"requester":"V-001"' in entry and re.search(r'"key":"[0-9a-f]{32}"', entry)
    shoot(page, "village-offline-waiting")
    assert with_lines(county, "V-001", lines) == []  # nothing left the phone
    page.context.set_offline(False)
    expect(page.locator("#sent-list li")).to_contain_text("已发送")
    eventually(lambda: queue_length(page) == 0, what="the queue sent")
    sent = with_lines(county, "V-001", lines)
    assert len(sent) == 1
    expect(page.locator("#sent-list li a")).to_have_attribute("href", f"/village/demands/{sent[0].id}")
    shoot(page, "village-offline-sent")
    # the answer was lost, say, and the phone sends the same submission twice more: one demand
    page.evaluate("e => localStorage.setItem('village-queue:v1', e)", entry)
    page.evaluate("Promise.all([window.villageQueue.flush(), window.villageQueue.flush()])")
    page.reload()
    eventually(lambda: queue_length(page) == 0, what="the resend")
    assert [d.id for d in with_lines(county, "V-001", lines)] == [sent[0].id]


def test_a_queued_demand_refused_by_intake_is_kept_and_shown(page, base_url, county):
    open_form(page, base_url)
    page.context.set_offline(True)
    fill_line(page, 0, "BAIJIU-500ML", "6")
    page.click("button[data-submit]")
    expect(page.locator("#queue-title")).to_have_text("等待发送（1）")
    page.context.set_offline(False)
    refused = page.locator("#queue-list li.refused")
    expect(refused).to_contain_text("烟酒等非必须品除外")
    assert queue_length(page) == 1  # kept, not dropped
    shoot(page, "village-offline-refused")
    refused.get_by_role("button", name="放回表单修改").click()
    expect(page.locator("#lines-0-item")).to_have_value("BAIJIU-500ML")
    assert queue_length(page) == 0


# ---- isolation ---------------------------------------------------------------------------------
def test_a_village_worker_sees_neither_hq_nor_another_villages_demand(page, base_url, county):
    other = intake(county).SubmitDemand(ipb.SubmitDemandRequest(
        idempotency_key=f"test-v2-{uuid.uuid4().hex}", requester_id="V-002",
        lines=[cpb.ItemLine(item_code="RICE-10KG", quantity=3)]), metadata=ADMIN, timeout=10)
    login(page, base_url, "village1")
    assert page.request.get(f"{base_url}/hq", max_redirects=0).status == 403
    assert page.request.get(f"{base_url}/hq/plan", max_redirects=0).status == 403
    assert page.request.get(f"{base_url}/village/demands/{other.id}", max_redirects=0).status in (403, 404)
    page.goto(f"{base_url}/village/demands/{other.id}")
    expect(page.locator("body")).not_to_contain_text("RICE-10KG")
    csrf = page.locator("body").get_attribute("data-csrf")
    cancel = page.request.post(f"{base_url}/village/demands/{other.id}", headers={"x-csrf-token": csrf},
                               form={"idempotency_key": uuid.uuid4().hex})
    assert cancel.status in (403, 404)
    sent = page.request.post(f"{base_url}/village/demand.json", headers={"x-csrf-token": csrf}, form={
        "idempotency_key": uuid.uuid4().hex, "requester_id": "V-002", "lines-0-item": "RICE-10KG",
        "lines-0-quantity": "1"})
    assert sent.status == 403
    still = intake(county).GetDemand(ipb.GetDemandRequest(demand_id=other.id), metadata=ADMIN, timeout=10)
    assert still.status == ipb.DEMAND_STATUS_OPEN
    page.goto(f"{base_url}/village")
    expect(page.locator(f"#demand-{other.id}")).to_have_count(0)
    # without a session nothing of the village is served
    anonymous = requests.get(f"{base_url}/village", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


# ---- special needs -----------------------------------------------------------------------------
def test_a_special_need_is_shown_masked_and_its_name_and_phone_never_come_back(page, base_url, county):
    name, phone = "欧阳秀兰", "13566668888"
    page.set_viewport_size(PHONE)
    login(page, base_url, "grid1")
    page.goto(f"{base_url}/village/special-needs")
    page.fill("#beneficiary-name", name)
    page.fill("#beneficiary-phone", phone)
    page.select_option("#category", "chronic_medicine")
    fill_line(page, 0, "MED-INSULIN-PEN", "0")
    fill_line(page, 1, "BAIJIU-500ML", "1")  # left out alone once the rest is right (RULES §6)
    page.fill("#period_days", "7")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("#need-form button.primary")
    refused = answer.value
    assert refused.status == 422
    assert phone not in refused.text() and name not in refused.text()  # not echoed by the server
    expect(page.locator("#err-lines-0-quantity")).to_be_visible()
    expect(page.locator("#beneficiary-phone")).to_have_value(phone)  # put back by the page itself
    page.fill("#lines-0-quantity", "3")
    with page.expect_response(lambda r: r.request.method == "GET" and "registered=" in r.url) as answer:
        page.click("#need-form button.primary")
    body = answer.value.text()
    assert phone not in body and name not in body
    expect(page.locator("section.accepted .masked-phone")).to_have_text("135****8888")
    expect(page.locator("section.accepted .masked-name")).to_have_text("欧***")
    expect(page.locator("#needs")).to_contain_text("135****8888")
    expect(page.locator("#need-refused p.notice")).to_have_count(1)
    expect(page.locator("#need-refused p.notice[data-rule=NON_ESSENTIAL]")).to_contain_text("烟酒等非必须品除外")
    assert page.evaluate("sessionStorage.getItem('village-personal')") is None
    assert phone not in page.evaluate("JSON.stringify(localStorage)")
    shoot(page, "village-special-needs")
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/village/special-needs")
    expect(page.locator("h1")).to_contain_text("Special needs")
    shoot(page, "village-special-needs")


# ---- the spreadsheet ---------------------------------------------------------------------------
def test_the_spreadsheet_import_lists_the_bad_row_and_imports_nothing_unless_told(page, base_url, county):
    csv = "村居编号,物资编码,数量,配送日期,备注\nV-001,OIL-5L,17,,\nV-001,POTATO-KG,很多,,\n".encode()
    page.set_viewport_size(PHONE)
    login(page, base_url, "village1")
    page.goto(f"{base_url}/village/import")
    page.set_input_files("#file", files=[{"name": "微信群.csv", "mimeType": "text/csv", "buffer": csv}])
    page.click("#import-form button.primary")
    errors = page.locator("#row-errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first.locator("td").nth(0)).to_have_text("3")
    expect(errors.first.locator("td").nth(1)).to_have_text("数量")
    expect(page.locator("[data-committed]")).to_have_attribute("data-committed", "0")
    assert with_lines(county, "V-001", {"OIL-5L": 17}) == []  # all or nothing: nothing
    shoot(page, "village-import")
    page.set_input_files("#file", files=[{"name": "微信群.csv", "mimeType": "text/csv", "buffer": csv}])
    page.check("input[name=mode][value=partial]")
    page.click("#import-form button.primary")
    expect(page.locator("[data-committed]")).to_have_attribute("data-committed", "1")
    expect(page.locator("#row-errors tbody tr")).to_have_count(1)
    assert len(with_lines(county, "V-001", {"OIL-5L": 17})) == 1
    in_both_languages(page, base_url, "/village/import", "village-import-form")
    # the template is the village's own
    template = page.request.get(f"{base_url}/village/import/template.csv")
    assert "attachment" in template.headers["content-disposition"] and "V-001" in template.text()


# ---- receipt at the drop point -----------------------------------------------------------------
RECEIPT_VILLAGE = "V-002"  # its demand is sent before the cut-off by the day test (which signs V-001's stop itself)

def village_stops(county, day: str) -> list[tuple[lpb.Trip, lpb.TripStop]]:
    stub = lrpc.LogisticsServiceStub(grpc.insecure_channel(county.targets["logistics"]))
    trips = stub.ListTrips(lpb.ListTripsRequest(delivery_day=day), metadata=ADMIN, timeout=10).trips
    return [(t, s) for t in trips for s in t.stops if s.requester_id == RECEIPT_VILLAGE and not s.delivered]


def trip_to_village(county, day: str) -> bool:
    """A trip stopping at V-002 today: there is one when a V-002 demand of today made it before
    the 11:00 cut-off (the day test sends one);
    then the cut-off's plan is approved here as HQ would (admin token) and logistics builds the
    trips. False when no V-002 demand of today made the cut-off in this run."""
    if village_stops(county, day):
        return True
    if not [d for d in demands_of(county, RECEIPT_VILLAGE) if d.delivery_day == day and d.status == ipb.DEMAND_STATUS_OPEN
            and d.cutoff_at.ToDatetime(tzinfo=UTC) > d.submitted_at.ToDatetime(tzinfo=UTC)]:
        return False
    alloc = arpc.AllocationServiceStub(grpc.insecure_channel(county.targets["allocation"]))

    def plan():
        plans = alloc.ListPlans(apb.ListPlansRequest(delivery_day=day), metadata=ADMIN, timeout=10).plans
        return plans[-1] if plans else None
    latest = eventually(plan, timeout=120, interval=0.5, what="the cut-off's plan")
    if latest.status == apb.PLAN_STATUS_PROPOSED:
        alloc.ApprovePlan(apb.ApprovePlanRequest(idempotency_key=f"test-village-{latest.plan_id}",
                                                 plan_id=latest.plan_id), metadata=ADMIN, timeout=30)
    try:
        return bool(eventually(lambda: village_stops(county, day), timeout=60, interval=0.5, what="trips"))
    except AssertionError:
        return False


def test_the_receipt_page_confirms_a_stop_with_a_damaged_line_and_the_rest_is_carried_over(page, base_url, county):
    page.set_viewport_size(PHONE)
    login(page, base_url, "village2")
    day = county.local_now().date().isoformat()
    if not trip_to_village(county, day):
        in_both_languages(page, base_url, "/village/receive", "village-receive")
        expect(page.locator("#no-trips")).to_be_visible()
        pytest.skip("no V-002 demand of today made the 11:00 cut-off in this run, so no trip stops there")
    in_both_languages(page, base_url, "/village/receive", "village-receive")
    stops = village_stops(county, day)
    page.goto(f"{base_url}/village/receive")

    def section(trip, stop):
        return page.locator(f"section.stop[data-trip='{trip.trip_id}'][data-drop='{stop.drop_point_id}']")

    trip, stop = stops[0]
    first = section(trip, stop).locator("input[name='l-0-received']")
    shipped = int(first.get_attribute("data-shipped"))
    first.fill(str(shipped + 1))  # more than shipped: refused next to the field
    section(trip, stop).get_by_role("button", name="签收").click()
    expect(section(trip, stop).locator("p.field-error").first).to_contain_text("超过发货数量")
    section(trip, stop).locator("input[name='l-0-received']").fill(str(shipped - 1))
    section(trip, stop).locator("select[name='l-0-reason']").select_option("damaged")
    section(trip, stop).locator("input[name='l-0-note']").fill("纸箱破损")
    section(trip, stop).get_by_role("button", name="签收").click()
    expect(page.locator("#confirmed")).to_be_visible()
    expect(page.locator("#confirmed tbody tr").first.locator("td").nth(2)).to_have_text(str(shipped - 1))
    shoot(page, "village-receive-confirmed")
    for other_trip, other_stop in stops[1:]:  # the other stops as shipped
        section(other_trip, other_stop).get_by_role("button", name="签收").click()
        expect(page.locator("#confirmed")).to_contain_text(other_trip.trip_id)
    assert village_stops(county, day) == []  # logistics recorded every stop as delivered
    expect(section(trip, stop).locator("[data-delivered]")).to_be_visible()
    # intake closes the demand from the receipts; the damaged unit is carried over and shown so
    demand_id = stop.lines[0].demand_id
    demand = intake(county).GetDemand(ipb.GetDemandRequest(demand_id=demand_id), metadata=ADMIN, timeout=10)
    on_trips = {ln.item_code for _t, s in stops for ln in s.lines if ln.demand_id == demand_id}
    if {ln.item_code for ln in demand.lines} <= on_trips:
        closed = eventually(lambda: (d := intake(county).GetDemand(
            ipb.GetDemandRequest(demand_id=demand_id), metadata=ADMIN, timeout=10)).carry_over_demand_id and d,
            timeout=60, interval=0.5, what="the demand closed with a carry-over")
        page.goto(f"{base_url}/village/demands/{demand_id}")
        expect(page.locator("[data-carry-over]")).to_have_text(closed.carry_over_demand_id)
        expect(page.locator("[data-standing]").first).to_have_attribute("data-standing", "short")
        shoot(page, "village-demand-carried-over")
