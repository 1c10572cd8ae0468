"""HQ's board in a real browser: an alert raised by a sensor reading arrives without a reload,
the panels and pages in both languages, and the server's refusals of other roles."""

from __future__ import annotations

import json
import uuid

import paho.mqtt.client as mqtt
import requests
from playwright.sync_api import expect

from tests.browser.conftest import login, set_language, shoot

HQ_PAGES = ("/hq", "/hq/plan", "/hq/stock", "/hq/trips", "/hq/reports", "/hq/policy", "/hq/audit")


def publish_reading(county, depot: str, zone: str, temp_c: float) -> None:
    """One reading from a gateway, as the cold store's would send it (QoS 1, the stack's topic root)."""
    root = county.env["SUPPLY_MQTT_ROOT"]
    now_ms = int(county.clock.now().timestamp() * 1000)
    doc = {"gateway": "gw-test", "readings": [{"depot": depot, "zone": zone, "sensor": "s-test-1", "ts": now_ms,
                                               "seq": 1, "temp_c": temp_c, "rh": 80.0}]}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        client.publish(f"{root}/{depot}/gw/gw-test/batch", json.dumps(doc), qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def test_an_alert_raised_by_a_sensor_appears_on_the_board_without_a_reload(page, base_url, county):
    login(page, base_url, "hq")
    page.goto(f"{base_url}/hq")
    expect(page.locator("#alerts-live-state")).to_have_class("pill ok", timeout=15_000)  # the stream is open
    before = page.evaluate("performance.getEntriesByType('navigation').length")
    publish_reading(county, "cs01", "cs01-chl2", 12.0)  # a chilled room at 12 °C: above its instant 8 °C
    # other alerts may arrive on the stream meanwhile (logistics re-raises a low reserve on its own beat)
    live = page.locator("#alerts-live li[data-alert-id]").filter(has_text="cs01-chl2")
    expect(live.first).to_be_visible(timeout=30_000)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == before  # no reload
    shoot(page, "hq-board-live-alert")


def test_hq_acknowledges_an_open_alert_and_the_audit_trail_says_who(page, base_url, county):
    login(page, base_url, "hq")
    page.goto(f"{base_url}/hq")
    form = page.locator("#panel-alerts form.ack").first
    expect(form).to_be_visible(timeout=15_000)
    alert_id = form.locator("xpath=..").get_attribute("data-alert-id")
    form.locator("input[name=note]").fill("冷机维修已通知 / compressor repair called")
    form.locator("button").click()
    expect(page.locator("#panel-alerts [role=status]").first).to_be_visible()
    lines = [a for a in county.account_store().audit_lines() if a.action == "acknowledge_alert"]
    assert any(a.username == "hq" and a.target == alert_id and a.outcome == "ok" for a in lines)


def test_every_hq_page_renders_in_both_languages_without_a_server_error(page, base_url):
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    login(page, base_url, "hq")
    for lang in ("zh_CN", "en"):
        set_language(page, base_url, lang)
        for path in HQ_PAGES:
            response = page.goto(f"{base_url}{path}")
            assert response.status == 200, (path, response.status)
            page.wait_for_load_state("networkidle")
            assert "Traceback" not in page.content()
            shoot(page, f"hq{path.replace('/', '-')}")
    assert not errors, errors


def test_the_map_shows_depots_without_any_tiles(page, base_url):
    login(page, base_url, "hq")
    page.goto(f"{base_url}/hq/trips")
    expect(page.locator("#trip-map path.leaflet-interactive").first).to_be_attached(timeout=10_000)


def test_a_village_worker_gets_403_from_the_server_for_every_hq_page(page, base_url):
    login(page, base_url, "village1")
    for path in (*HQ_PAGES, "/hq/panel/demands", "/admin/users", "/events/alerts"):
        assert page.request.get(f"{base_url}{path}").status == 403, path


def test_a_village_worker_cannot_approve_a_plan_even_with_a_valid_form(page, base_url):
    login(page, base_url, "village1")
    csrf = page.locator("body").get_attribute("data-csrf")
    response = page.request.post(f"{base_url}/hq/plan/any-plan/approve",
                                 form={"csrf_token": csrf, "idempotency_key": "x"})
    assert response.status == 403


def test_pages_answer_401_or_redirect_without_a_session(base_url):
    r = requests.get(f"{base_url}/hq", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert requests.get(f"{base_url}/hq/panel/plan", headers={"hx-request": "true"}, timeout=10).status_code == 401


def test_no_serious_accessibility_violation_on_the_main_pages(page, base_url):
    """axe-core (npm, vendored) in the page: no serious or critical violation."""
    for user, path in (("hq", "/hq"), ("hq", "/hq/plan"), ("village1", "/village"), ("keeper", "/depot"),
                       (None, "/login"), (None, "/public")):
        page.context.clear_cookies()
        if user:
            login(page, base_url, user)
        page.goto(f"{base_url}{path}")
        page.wait_for_load_state("networkidle")
        page.add_script_tag(url=f"{base_url}/static/vendor/axe.min.js")
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"][:3]])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, (path, bad)


def test_every_board_panel_answers_for_a_signed_in_hq_session(base_url):
    import re

    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(f"{base_url}/login", timeout=10).text).group(1)
    s.post(f"{base_url}/login", data={"username": "hq", "password": "county-demo-2026", "csrf_token": token},
           timeout=10)
    for panel in ("clock", "demands", "plan", "stock", "alerts", "trips", "donations"):
        r = s.get(f"{base_url}/hq/panel/{panel}", timeout=30)
        assert r.status_code == 200 and "<section" not in r.text[:200], panel  # a fragment, not a page


def test_the_policy_page_offers_every_reserve_floor_even_before_any_override(page, base_url):
    login(page, base_url, "hq")
    page.goto(f"{base_url}/hq/policy")
    expect(page.locator("#rd-grain_oil")).to_have_value("15")  # RULES §4: grain and oil, 15 days
    expect(page.locator("#rd-pork")).to_have_value("3")


def test_hq_sets_an_absolute_reserve_floor_next_to_the_days_and_the_versions_show_it(page, base_url):
    """Issue #15 item 8: absolute floors per item group (SetPolicy's reserve_floors) on the policy
    page; a bad value is refused next to its field and kept, a saved one is a new version."""
    login(page, base_url, "hq")
    page.goto(f"{base_url}/hq/policy")
    floor, submit = page.locator("#rf-pork"), page.locator("form[action='/hq/policy'] button[type=submit]")
    expect(floor).to_have_value("")  # no absolute floor until HQ sets one
    expect(page.locator("#rf-vegetables")).to_be_visible()
    expect(page.locator("#rf-grain_oil")).to_have_count(0)  # bags and bottles: per item code only
    version = int(page.locator("#policy-versions tbody tr").first.get_attribute("data-version") or 0) \
        if page.locator("#policy-versions").count() else 0

    floor.fill("五百")
    submit.click()
    expect(page.locator("#err-policy-reserve_floors-pork")).to_contain_text("整数")
    expect(floor).to_have_attribute("aria-invalid", "true")
    expect(floor).to_have_value("五百")  # what was typed is kept
    shoot(page, "hq-policy-reserve-floor-refused")

    floor.fill("500")
    submit.click()
    expect(page.locator("#done")).to_contain_text(f"第 {version + 1} 版")
    expect(floor).to_have_value("500")
    newest = page.locator("#policy-versions tbody tr").first
    expect(newest).to_have_attribute("data-version", str(version + 1))
    expect(newest.locator("td.floors")).to_contain_text("500 kg")
    shoot(page, "hq-policy-reserve-floors")

    floor.fill("")  # empty: no floor again (the browser test county is shared)
    submit.click()
    expect(page.locator("#done")).to_contain_text(f"第 {version + 2} 版")
    expect(floor).to_have_value("")
    expect(page.locator("#policy-versions tbody tr").first.locator("td.floors")).to_have_text("–")
