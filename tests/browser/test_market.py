"""The supermarket channel's pages (商超保供) in a real browser against the real county stack:
the supermarket publishes its list (a bad price refused next to its line), the grid worker
enters household orders (one on account) and closes the day, the supermarket confirms with one
line out of stock, packs and prints the labels; the grid worker records payments, confirms the
parcels at the drop point (one refused with a reason) and settles; a grid worker of another
community is refused on a foreign order; HQ sees the channel's day and the settlement."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from playwright.sync_api import expect
from supply.v1 import market_pb2 as mpb
from supply.v1 import market_pb2_grpc as mrpc

from simulators import county_day as demo
from simulators.county_day import TOKEN
from tests.browser.conftest import login, set_language, shoot
from tests.support.county_stack import PASSWORD
from tests.support.polling import eventually

MD = [("authorization", f"Bearer {TOKEN}")]
OUTLET = "SM-CG-01"  # the scenario's first supermarket: the county's demo users hold its account shop1


def market(county) -> mrpc.MarketServiceStub:
    return mrpc.MarketServiceStub(grpc.insecure_channel(county.targets["market"]))


@pytest.fixture(scope="module")
def channel(county):
    """An active supermarket serving the demo villages (the nearest one), its account and a grid
    worker of the second village; orders are for the day after tomorrow (before its cut-off,
    whatever the county clock reads while the browser tests run)."""
    if "market" not in county.targets:
        pytest.fail("the market service is not in the county stack")
    m = market(county)
    m.RegisterOutlet(mpb.RegisterOutletRequest(idempotency_key=f"outlet-{OUTLET}", outlet=mpb.Outlet(
        outlet_id=OUTLET, name="城关定点超市", kind="supermarket", township="城关镇",
        location={"lat": 30.0, "lon": 114.0}, active=True)), metadata=MD, timeout=20)
    first, second = (v["id"] for v in demo.villages(county.scenario)[:2])  # grid1 acts for the first

    def served():
        found = m.ListCommunities(mpb.ListCommunitiesRequest(outlet_id=OUTLET), metadata=MD, timeout=10)
        return {c.community_id for c in found.communities} >= {first, second}
    eventually(served, timeout=60, what="the demo villages in the market, served by the test supermarket")
    store = county.account_store()
    for username, role, scope in (("grid2", "grid_worker", second),):
        try:
            store.add_user(username, role, scope, PASSWORD, username)
        except Exception:  # noqa: BLE001 - already there from an earlier run of this module
            pass
    return {"day": (county.local_now().date() + timedelta(days=2)).isoformat(), "village": first, "other": second}


def accept_confirmations(page) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def test_the_supermarket_publishes_its_list_with_a_bad_price_refused_on_its_line(page, base_url, channel, county):
    day = channel["day"]
    login(page, base_url, "shop1")
    assert page.url.endswith("/market/outlet")  # the supermarket's home
    for other in ("/market/community", "/hq/market", "/village"):  # other roles' pages: refused on the server
        assert page.goto(f"{base_url}{other}").status == 403, other
    page.goto(f"{base_url}/market/outlet/list?day={day}")
    row = {code: page.locator(f"tr[data-item='{code}'] input[name=price]") for code in ("RICE-10KG", "OIL-5L", "EGG-30")}
    row["RICE-10KG"].fill("68.50")
    row["OIL-5L"].fill("2000")  # 200 000 fen: above the channel's 100 000 fen cap
    row["EGG-30"].fill("abc")
    page.click("form button.primary")
    egg_error = page.locator("tr[data-item='EGG-30'] .field-error")
    expect(egg_error).to_be_visible()
    expect(row["RICE-10KG"]).to_have_value("68.50")  # nothing typed is lost
    shoot(page, "market_list_refused")
    row["EGG-30"].fill("15")
    page.click("form button.primary")
    oil_error = page.locator("tr[data-item='OIL-5L'] .field-error")
    expect(oil_error).to_be_visible()  # the service's refusal names lines[i].price_fen: on the oil row
    expect(page.locator("tr[data-item='EGG-30'] input[name=price]")).to_have_value("15")
    page.locator("tr[data-item='OIL-5L'] input[name=price]").fill("59.90")
    page.click("form button.primary")
    expect(page.locator("#published")).to_be_visible()
    current = market(county).GetSellableList(mpb.GetSellableListRequest(outlet_id=OUTLET, day=day),
                                             metadata=MD, timeout=10)
    assert {ln.item_code: ln.price_fen for ln in current.lines} == {"RICE-10KG": 6850, "OIL-5L": 5990, "EGG-30": 1500}
    shoot(page, "market_list_published")


def test_the_grid_worker_enters_orders_and_closes_the_day(page, base_url, channel, county):
    day = channel["day"]
    accept_confirmations(page)
    login(page, base_url, "grid1")
    page.goto(f"{base_url}/market/community/order/new?day={day}")

    def order(address: str, mode: str, quantities: dict[str, str]) -> None:
        page.goto(f"{base_url}/market/community/order/new?day={day}")
        page.fill("#address", address)
        page.check(f"input[name=payment_mode][value={mode}]")
        for code, q in quantities.items():
            page.locator(f"tr[data-item='{code}'] input[name=quantity]").fill(q)
        page.click("#order-form button.primary")
        expect(page.locator("#placed-note")).to_be_visible()

    # a bad quantity: the error next to its line, the address and the mode kept
    page.fill("#address", "1栋101")
    page.check("input[name=payment_mode][value=online]")
    page.locator("tr[data-item='RICE-10KG'] input[name=quantity]").fill("2")
    page.locator("tr[data-item='OIL-5L'] input[name=quantity]").fill("1")
    expect(page.locator("#amount-shown")).to_have_text("196.90")  # the script's sum as typed
    page.locator("tr[data-item='RICE-10KG'] input[name=quantity]").fill("200")
    page.click("#order-form button.primary")
    expect(page.locator("tr[data-item='RICE-10KG'] .field-error")).to_be_visible()
    expect(page.locator("#address")).to_have_value("1栋101")
    expect(page.locator("input[name=payment_mode][value=online]")).to_be_checked()
    shoot(page, "market_order_refused")
    page.locator("tr[data-item='RICE-10KG'] input[name=quantity]").fill("2")
    page.click("#order-form button.primary")
    expect(page.locator("#placed-note")).to_be_visible()
    order("2栋202", "on_account", {"RICE-10KG": "1", "EGG-30": "1"})  # an elderly resident: 代付
    order("3栋303", "collected", {"OIL-5L": "1", "EGG-30": "2"})
    orders = page.locator("article.order")
    expect(orders).to_have_count(3)
    expect(page.locator("#orders")).to_contain_text("代付")
    expect(page.locator("#orders")).not_to_contain_text("2栋202")  # the address stays in the market service
    shoot(page, "market_community_orders")
    page.click("#aggregate button.primary")
    expect(page.locator("#done-note")).to_be_visible()
    expect(page.locator("section.community-order")).to_have_count(1)
    found = market(county).ListHouseholdOrders(mpb.ListHouseholdOrdersRequest(
        community_id=channel["village"], day=day), metadata=MD, timeout=10).orders
    assert sorted(o.payment_mode for o in found) == ["collected", "on_account", "online"]
    assert {o.status for o in found} == {"sent"}
    assert sorted(o.amount_fen for o in found) == [8350, 8990, 19690]  # rice 68.50, oil 59.90, eggs 15.00


def test_the_supermarket_confirms_one_line_out_of_stock_and_prints_labels(page, base_url, channel, county):
    day = channel["day"]
    accept_confirmations(page)
    login(page, base_url, "shop1")
    page.goto(f"{base_url}/market/outlet?day={day}")
    page.locator("#orders tbody tr a.button").first.click()
    form = page.locator("#confirm-form")
    expect(form).to_be_visible()
    shoot(page, "market_confirm")
    form.locator("tr[data-item='EGG-30'] input[value=out_of_stock]").check()
    form.locator("button.primary").click()
    expect(page.locator("#confirmed-note")).to_be_visible()
    expect(page.locator("tr[data-item='EGG-30'] [data-status=out_of_stock]")).to_be_visible()
    page.click("#pack-form button.primary")
    expect(page.locator("#packing")).to_be_visible()
    shoot(page, "market_packed")
    with page.expect_popup() as popup:
        page.click("#labels-link")
    labels = popup.value
    labels.wait_for_load_state()
    text = labels.content()
    assert "MKT-" in text and "@media print" in text
    assert "2栋202" in text  # the label is where the address is printed
    assert "<svg" in text  # the payment code
    shoot(labels, "market_labels")
    labels.close()
    found = market(county).ListHouseholdOrders(mpb.ListHouseholdOrdersRequest(
        community_id=channel["village"], day=day), metadata=MD, timeout=10).orders
    assert {o.status for o in found} == {"packed"}
    assert all(ln.confirmed == 0 for o in found for ln in o.lines if ln.item_code == "EGG-30")
    page.goto(f"{base_url}/market/outlet?day={day}")
    expect(page.locator("#orders td.deliveries")).to_contain_text("3")
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/market/outlet?day={day}")
    expect(page.locator("h1")).to_contain_text("Community orders")
    shoot(page, "market_outlet_home")
    set_language(page, base_url, "zh_CN")


def test_a_grid_worker_of_another_community_is_refused_on_a_foreign_order(page, base_url, channel, county):
    found = market(county).ListHouseholdOrders(mpb.ListHouseholdOrdersRequest(
        community_id=channel["village"], day=channel["day"]), metadata=MD, timeout=10).orders
    target = found[0]
    login(page, base_url, "grid2")
    page.goto(f"{base_url}/market/community?day={channel['day']}")
    csrf = page.locator("body").get_attribute("data-csrf")
    for path, form in (("/market/community/parcel", {"order_id": target.order_id, "outcome": "refused",
                                                      "reason": "不是本社区", "day": channel["day"]}),
                       ("/market/community/payment", {"order_id": target.order_id, "mode": "collected",
                                                       "amount": "1", "day": channel["day"]})):
        answer = page.request.post(f"{base_url}{path}", headers={"x-csrf-token": csrf}, form=form, max_redirects=0)
        assert answer.status == 404, (path, answer.status)
    again = market(county).ListHouseholdOrders(mpb.ListHouseholdOrdersRequest(
        community_id=channel["village"], day=channel["day"]), metadata=MD, timeout=10).orders
    assert {o.order_id: o.status for o in again}[target.order_id] == "packed"


def test_the_grid_worker_pays_confirms_a_refused_parcel_and_settles(page, base_url, channel, county):
    day = channel["day"]
    accept_confirmations(page)
    login(page, base_url, "grid1")
    page.goto(f"{base_url}/market/community?day={day}")
    online = page.locator("article.order[data-mode=online]")
    online.locator("summary").click()
    online.locator("button").click()  # online without its reference: refused next to the field
    expect(online.locator(".field-error")).to_be_visible()
    expect(online.locator("details")).to_have_attribute("open", "")
    online.locator("input[name=reference]").fill("WX-20260001")
    online.locator("button").click()
    expect(page.locator("#done-note")).to_be_visible()
    collected = page.locator("article.order[data-mode=collected]")
    collected.locator("summary").click()
    collected.locator("button").click()
    expect(page.locator("#done-note")).to_be_visible()
    for mode in ("online", "collected"):  # each order says what was paid, whichever way
        expect(page.locator(f"article.order[data-mode={mode}] strong.paid")).to_be_visible()
    expect(page.locator("article.order[data-mode=on_account] strong.paid")).to_have_count(0)
    parcels = page.locator("div.parcel")
    expect(parcels).to_have_count(3)
    shoot(page, "market_drop_point")
    page.set_viewport_size({"width": 390, "height": 844})  # the grid worker's phone
    shoot(page, "market_drop_point_phone")
    page.set_viewport_size({"width": 1280, "height": 900})
    refs = {o.payment_mode: o.household_ref for o in market(county).ListHouseholdOrders(
        mpb.ListHouseholdOrdersRequest(community_id=channel["village"], day=day), metadata=MD, timeout=10).orders}
    refused = page.locator(f"div.parcel[data-ref='{refs['collected']}']")
    refused.locator("input[value=refused]").check()
    refused.locator("button").click()  # refused without a reason: the error next to it
    refused = page.locator(f"div.parcel[data-ref='{refs['collected']}']")
    expect(refused.locator(".field-error")).to_be_visible()
    refused.locator("input[name=reason]").fill("居民已自行购买")
    refused.locator("button").click()
    expect(page.locator(f"div.parcel[data-ref='{refs['collected']}'] [data-status=refused]")).to_be_visible()
    for mode in ("online", "on_account"):
        page.locator(f"div.parcel[data-ref='{refs[mode]}'] button").click()
        expect(page.locator(f"div.parcel[data-ref='{refs[mode]}'] [data-status=received]")).to_be_visible()
    page.click("section.community-order form[action='/market/community/settle'] button")
    expect(page.locator("#settlement")).to_contain_text(refs["collected"])
    expect(page.locator("#settlement")).to_contain_text("拒收")
    shoot(page, "market_settled")
    page.goto(f"{base_url}/market/community/books")
    expect(page.locator(f"#account-ledger tr[data-ref='{refs['on_account']}']")).to_contain_text("68.50")
    shoot(page, "market_books")
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/market/community/books")
    shoot(page, "market_books")
    set_language(page, base_url, "zh_CN")
    found = {o.payment_mode: o for o in market(county).ListHouseholdOrders(
        mpb.ListHouseholdOrdersRequest(community_id=channel["village"], day=day), metadata=MD, timeout=10).orders}
    assert found["collected"].status == "refused" and found["collected"].due_fen == 0
    assert found["on_account"].status == "delivered" and found["on_account"].due_fen == 6850


def test_hq_sees_the_channel_day_and_the_settlement(page, base_url, channel):
    login(page, base_url, "hq")
    page.goto(f"{base_url}/hq/market?day={channel['day']}")
    expect(page.locator("#outlets")).to_contain_text(OUTLET)
    expect(page.locator("#summary .kpi").first).to_contain_text("3")
    expect(page.locator("#settlement-total")).to_be_visible()
    expect(page.locator("#assignments")).to_contain_text(channel["village"])
    shoot(page, "market_hq")
    accept_confirmations(page)
    page.click("#close-accounts button")  # the lockdown's end: the report kept, the accounts closed
    expect(page.locator("#close-accounts")).to_have_count(0)
    expect(page.locator("#settlement")).to_contain_text("关闭")
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/hq/market?day={channel['day']}")
    shoot(page, "market_hq")
    set_language(page, base_url, "zh_CN")


FARTHER = "SM-CG-02"  # a second designated supermarket, farther from the demo villages


def test_hq_assigns_a_community_to_the_farther_supermarket(page, base_url, channel, county):
    m = market(county)
    m.RegisterOutlet(mpb.RegisterOutletRequest(idempotency_key=f"outlet-{FARTHER}", outlet=mpb.Outlet(
        outlet_id=FARTHER, name="城东定点超市", kind="supermarket", township="城关镇",
        location={"lat": 30.0, "lon": 113.0}, active=True)), metadata=MD, timeout=20)  # farther than OUTLET
    village = channel["village"]
    login(page, base_url, "hq")
    page.goto(f"{base_url}/hq/market")
    row = page.locator(f"#assignments tr[data-community='{village}']")
    expect(row.locator("td.supermarket")).to_contain_text(OUTLET)
    row.locator("button").click()  # nothing chosen: the error next to the choice
    row = page.locator(f"#assignments tr[data-community='{village}']")
    expect(row.locator(".field-error")).to_be_visible()
    csrf = page.locator("body").get_attribute("data-csrf")
    unknown = page.request.post(f"{base_url}/hq/market/assign", headers={"x-csrf-token": csrf}, form={
        "community_id": village, "outlet_id": "SM-NONE"}, max_redirects=0)
    assert unknown.status == 422 and "field-error" in unknown.text()  # the service's refusal, on the row
    assert "Traceback" not in unknown.text()
    row.locator("select[name=outlet_id]").select_option(FARTHER)
    row.locator("button").click()
    expect(page.locator("#assigned-note")).to_be_visible()
    row = page.locator(f"#assignments tr[data-community='{village}']")
    expect(row.locator("td.supermarket")).to_contain_text(FARTHER)
    expect(row.locator("td.supermarket")).to_contain_text("指挥部指定")
    other = page.locator(f"#assignments tr[data-community='{channel['other']}'] td.supermarket")
    expect(other).to_contain_text(OUTLET)
    expect(other).to_contain_text("就近")  # the nearest stays the default for the others
    served = {c.community_id: c for c in m.ListCommunities(mpb.ListCommunitiesRequest(), metadata=MD,
                                                           timeout=10).communities}
    assert served[village].supermarket_id == FARTHER and served[village].supermarket_assigned
    assert served[channel["other"]].supermarket_id == OUTLET and not served[channel["other"]].supermarket_assigned
    shoot(page, "market_hq_assigned")
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/hq/market")
    expect(page.locator(f"#assignments tr[data-community='{village}'] td.supermarket")).to_contain_text(
        "assigned by HQ")
    shoot(page, "market_hq_assigned")
    set_language(page, base_url, "zh_CN")
    # back to the nearest supermarket for whatever runs after
    m.AssignCommunity(mpb.AssignCommunityRequest(idempotency_key=f"assign-back-{village}", community_id=village,
                                                 outlet_id=OUTLET), metadata=MD, timeout=10)


# ---- purchase on behalf (代买, 篇12) -----------------------------------------------------------
SUPPLY_POINT = "SP-CG-01"


@pytest.fixture(scope="module")
def purchase(county, channel):
    """A supply point nearest to the demo villages, its account sp1, and the first village's
    purchase slot 09:00–11:00 every day; the pickup day is the channel's day (its list is due by
    18:00 the day before)."""
    m = market(county)
    m.RegisterOutlet(mpb.RegisterOutletRequest(idempotency_key=f"outlet-{SUPPLY_POINT}", outlet=mpb.Outlet(
        outlet_id=SUPPLY_POINT, name="城关保供点", kind="supply_point", township="城关镇",
        location={"lat": 30.0, "lon": 114.0}, active=True)), metadata=MD, timeout=20)
    m.SetPurchaseSlots(mpb.SetPurchaseSlotsRequest(
        idempotency_key=f"slots-{channel['village']}", village_id=channel["village"],
        slots=[mpb.PurchaseSlot(window={"start": "09:00", "end": "11:00"})]), metadata=MD, timeout=10)

    def served():
        found = m.ListCommunities(mpb.ListCommunitiesRequest(outlet_id=SUPPLY_POINT), metadata=MD, timeout=10)
        return channel["village"] in {c.community_id for c in found.communities}
    eventually(served, timeout=30, what="the first village served by the supply point")
    try:
        county.account_store().add_user("sp1", "supermarket", SUPPLY_POINT, PASSWORD, "sp1")
    except Exception:  # noqa: BLE001 - already there from an earlier run of this module
        pass
    return {"day": channel["day"], "village": channel["village"]}


def lists_of(county, village: str) -> list:
    return list(market(county).ListPurchaseLists(mpb.ListPurchaseListsRequest(village_id=village),
                                                 metadata=MD, timeout=10).purchase_lists)


def test_a_village_sends_its_purchase_list_with_a_non_essential_line_refused_on_it(page, base_url, purchase, county):
    login(page, base_url, "grid1")
    page.goto(f"{base_url}/market/purchase")
    form = page.locator("#purchase-form")
    form.locator("#pickup_day").fill(purchase["day"])
    rice, eggs, soap = (form.locator(f"tr[data-item='{code}']") for code in ("RICE-10KG", "EGG-30", "SOAP-BAR"))
    form.locator("#purchase-q").fill("大米")  # ~40 necessities: on a phone the worker finds them by name
    expect(soap).to_be_hidden()
    rice.locator("input[name=quantity]").fill("20")
    form.locator("#purchase-q").fill("egg")
    expect(rice).to_be_visible()  # a line with a quantity typed stays in sight
    expect(soap).to_be_hidden()
    eggs.locator("input[name=quantity]").fill("10")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "market_purchase_filtered")
    page.set_viewport_size({"width": 1280, "height": 900})
    form.locator("#purchase-q").fill("")
    expect(soap).to_be_visible()
    other = form.locator("tr:has(select[name=item_code])").first
    other.locator("select").select_option("BAIJIU-500ML")
    other.locator("input[name=quantity]").fill("2")
    form.locator("button.primary").click()
    other = page.locator("#purchase-form tr[data-item='BAIJIU-500ML']")
    expect(other.locator(".field-error")).to_be_visible()  # refused by the service, next to its line
    expect(other.locator(".field-error")).to_contain_text("必需品")
    expect(page.locator("#purchase-form tr[data-item='RICE-10KG'] input[name=quantity]")).to_have_value("20")
    expect(page.locator("#pickup_day")).to_have_value(purchase["day"])  # nothing typed is lost
    assert "Traceback" not in page.content()
    shoot(page, "market_purchase_refused")
    assert not lists_of(county, purchase["village"])
    other.locator("select").select_option("")
    other.locator("input[name=quantity]").fill("")
    page.locator("#purchase-form button.primary").click()
    expect(page.locator("#sent-note")).to_be_visible()
    expect(page.locator("article.purchase-list [data-status=sent]")).to_be_visible()
    [sent] = lists_of(county, purchase["village"])
    assert (sent.pickup_day, sent.supply_point_id, sent.status) == (purchase["day"], SUPPLY_POINT, "sent")
    assert {ln.item_code: ln.quantity for ln in sent.lines} == {"RICE-10KG": 20, "EGG-30": 10}


def test_the_supply_point_answers_readiness_per_line(page, base_url, purchase, county):
    login(page, base_url, "sp1")
    for other in ("/market/purchase", "/hq/market"):  # the village's and HQ's pages: refused on the server
        assert page.goto(f"{base_url}{other}").status == 403, other
    page.goto(f"{base_url}/market/purchase/supply")
    article = page.locator(f"article[data-village='{purchase['village']}']")
    egg = article.locator("tr[data-item='EGG-30'] input")
    expect(egg).to_have_value("10")  # all asked, unless the supply point says less
    egg.fill("11")  # more than asked: refused next to the line
    article.locator("button.primary").click()
    article = page.locator(f"article[data-village='{purchase['village']}']")
    expect(article.locator("tr[data-item='EGG-30'] .field-error")).to_be_visible()
    expect(article.locator("tr[data-item='EGG-30'] input")).to_have_value("11")
    article.locator("tr[data-item='EGG-30'] input").fill("6")
    article.locator("button.primary").click()
    expect(page.locator("#answered-note")).to_be_visible()
    expect(page.locator(f"article[data-village='{purchase['village']}'] [data-status=ready]")).to_be_visible()
    shoot(page, "market_purchase_supply")
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/market/purchase/supply")
    expect(page.locator("h1")).to_contain_text("Purchase lists")
    shoot(page, "market_purchase_supply")
    set_language(page, base_url, "zh_CN")
    [ready] = lists_of(county, purchase["village"])
    assert ready.status == "ready" and {ln.item_code: ln.ready for ln in ready.lines} == {"RICE-10KG": 20, "EGG-30": 6}


def test_the_village_books_the_pickup_with_two_different_people(page, base_url, purchase, county):
    login(page, base_url, "grid1")
    page.goto(f"{base_url}/market/purchase")
    booking = page.locator("form.booking")
    expect(page.locator("article.purchase-list tr[data-item='EGG-30'] td.ready")).to_have_text("6")
    booking.locator("input[name=driver]").fill("李建国")
    booking.locator("input[name=clerk]").fill("李建国")  # the same person twice: refused next to the clerk
    booking.locator("button.primary").click()
    booking = page.locator("form.booking")
    expect(booking.locator("input[name=clerk] + .field-error")).to_be_visible()
    expect(booking.locator("input[name=driver]")).to_have_value("李建国")
    shoot(page, "market_purchase_same_person")
    assert lists_of(county, purchase["village"])[0].status == "ready"
    booking.locator("input[name=clerk]").fill("张小红")
    booking.locator("button.primary").click()
    expect(page.locator("#booked-note")).to_be_visible()
    expect(page.locator("article.purchase-list p.pickup")).to_contain_text("张小红")
    shoot(page, "market_purchase_booked")
    set_language(page, base_url, "en")
    page.goto(f"{base_url}/market/purchase")
    expect(page.locator("article.purchase-list [data-status=booked]")).to_contain_text("pickup booked")
    shoot(page, "market_purchase_booked")
    set_language(page, base_url, "zh_CN")
    [booked] = lists_of(county, purchase["village"])
    assert (booked.status, booked.driver, booked.clerk) == ("booked", "李建国", "张小红")
