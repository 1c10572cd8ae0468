"""The county day through the browser alone: a village worker submits a demand on the form; HQ
sees it on the board, waits for the plan proposed at the 11:00 cut-off and approves it; the depot
keeper signs the village's stop with a short line; the village worker sees the demand delivered
short and the rest carried over. Runs first among the browser tests: the stack's county clock
runs ×20 and passes the 11:00 cut-off 90 s after the stack started (tests/browser/conftest.py)."""

from __future__ import annotations

from urllib.parse import quote

import grpc
from playwright.sync_api import expect
from supply.v1 import common_pb2 as cpb
from supply.v1 import intake_pb2 as ipb
from supply.v1 import intake_pb2_grpc as irpc
from supply.v1 import logistics_pb2 as lpb
from supply.v1 import logistics_pb2_grpc as lrpc

from simulators import county_day as demo
from tests.browser.conftest import login, shoot
from tests.support.polling import eventually

VILLAGE = "V-001"
SECOND_VILLAGE = "V-002"  # its stop is left for the village worker's own receipt (tests/browser/test_village.py)


def send_second_village_demand(county) -> None:
    """V-002's demand of the day, before the cut-off, as its own tool would send it."""
    with grpc.insecure_channel(county.targets["intake"]) as ch:
        irpc.IntakeServiceStub(ch).SubmitDemand(ipb.SubmitDemandRequest(
            idempotency_key="day-test-second-village", requester_id=SECOND_VILLAGE,
            lines=[cpb.ItemLine(item_code="RICE-10KG", quantity=4), cpb.ItemLine(item_code="OIL-5L", quantity=2)]),
            metadata=[("authorization", f"Bearer {demo.TOKEN}")], timeout=20)


def test_a_county_day_from_the_browser_alone(browser, base_url, county):
    day = county.day.isoformat()
    village = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})  # a phone
    hq = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    keeper = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})

    # 1. the village worker's demand, on the phone form, before the cut-off
    v = login(village.new_page(), base_url, "village1")
    v.goto(f"{base_url}/village/demand/new")
    v.fill("#lines-0-item", "RICE-10KG")
    v.fill("#lines-0-quantity", "6")
    v.fill("#lines-0-note", "独居老人户优先")
    shoot(v, "day-1-village-demand-form")
    v.click("button[data-submit]")
    v.wait_for_load_state("networkidle")
    assert county.local_now().strftime("%H:%M") < "11:00", "the stack came up too late for the day test"
    send_second_village_demand(county)
    v.goto(f"{base_url}/village")
    card = v.locator("article.demand").filter(has=v.locator("tr[data-item=RICE-10KG]")).first
    expect(card).to_be_visible()
    demand_id = card.get_attribute("data-demand")
    expect(card.locator("[data-standing]")).to_have_attribute("data-standing", "submitted")

    # 2. HQ sees it on the board, then approves the plan the cut-off proposes
    h = login(hq.new_page(), base_url, "hq")
    h.goto(f"{base_url}/hq")
    h.locator("#every-demand summary").click(timeout=20_000)
    expect(h.locator(f"#demand-list tr[data-requester={VILLAGE}]")).to_be_visible(timeout=20_000)
    shoot(h, "day-2-hq-board")

    def proposed() -> bool:
        h.goto(f"{base_url}/hq/plan?day={day}")
        return h.locator("#plan-status").count() > 0 and h.locator("#approve").count() > 0
    eventually(proposed, timeout=150, interval=2, what="the plan proposed at the cut-off")
    shoot(h, "day-3-hq-plan")
    h.click("#approve")
    h.wait_for_load_state("networkidle")
    expect(h.locator("#plan-status")).to_have_text("已批准")

    # the village worker sees what the approved plan gave the demand (before the trip is built, too)
    def allocated() -> str:
        v.goto(f"{base_url}/village")
        cell = v.locator(f"#demand-{demand_id} tr[data-item=RICE-10KG] td[data-allocated]")
        return cell.get_attribute("data-allocated") if cell.count() else ""
    assert int(eventually(allocated, timeout=30, interval=1, what="the allocation shown to the village")) > 0

    # 3. the depot keeper signs the village's stop with one line short
    with grpc.insecure_channel(county.targets["logistics"]) as ch:
        stub = lrpc.LogisticsServiceStub(ch)

        def village_stop():
            trips = stub.ListTrips(lpb.ListTripsRequest(delivery_day=day),
                                   metadata=[("authorization", f"Bearer {demo.TOKEN}")]).trips
            return next(((t.trip_id, s.seq) for t in trips for s in t.stops if s.requester_id == VILLAGE), None)
        trip_id, seq = eventually(village_stop, timeout=150, interval=1, what="a trip stopping at the village")
    k = login(keeper.new_page(), base_url, "keeper")
    k.goto(f"{base_url}/depot/trips")
    expect(k.locator(f'tr[data-trip="{trip_id}"]')).to_be_visible()
    k.goto(f"{base_url}/depot/trip?id={quote(trip_id)}")
    stop = k.locator(f"#stop-{seq}")
    received = stop.locator("input[name=received-0]")
    shipped = int(received.input_value())
    assert shipped >= 1
    received.fill(str(shipped - 1))
    stop.locator("select[name=reason-0]").select_option("short")
    stop.locator("input[name=note-0]").fill("一袋破损未收")
    stop.locator("input[name=receiver]").fill("东风村专班")
    shoot(k, "day-4-keeper-proof-of-delivery")
    k.once("dialog", lambda dialog: dialog.accept())
    stop.locator("button[type=submit]").click()
    k.wait_for_load_state("networkidle")
    expect(k.locator(f"#stop-{seq} .pill[data-status=delivered]")).to_be_visible()

    # 4. the village worker sees it delivered short, the rest carried over to the next day
    def closed() -> bool:
        v.goto(f"{base_url}/village")
        standing = v.locator(f"#demand-{demand_id} [data-standing]")
        return standing.count() > 0 and standing.first.get_attribute("data-standing") not in ("submitted", "on_trip")
    eventually(closed, timeout=60, interval=1, what="the demand closed by the delivery")
    card = v.locator(f"#demand-{demand_id}")
    shoot(v, "day-5-village-delivered-short")
    rice = card.locator("tr[data-item=RICE-10KG]")
    expect(rice).to_be_visible()
    expect(card.locator("[data-standing]").first).to_have_attribute("data-standing", "short")
    expect(card.locator("[data-carry-over]")).to_be_visible()  # the rest goes on to the next day
    for context in (village, hq, keeper):
        context.close()
