"""The village pages' pure parts: the demand form's lines and where a service's refusal goes on
it, where a demand stands, and the public disclosure read back from allocation's HTML."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.console.domain import disclosure
from services.console.domain import village as dv
from services.reports import render
from tests.unit.reports.test_render import facts

CAT = {"RICE-10KG": dv.CatalogueEntry("RICE-10KG", "大米(10公斤袋)", "rice 10 kg bag", "bag"),
       "EGG-30": dv.CatalogueEntry("EGG-30", "鸡蛋(30枚)", "eggs 30", "tray")}


def test_form_lines_are_read_in_index_order_with_gaps():
    form = {"lines-3-item": "EGG-30", "lines-3-quantity": "2", "lines-0-item": "RICE-10KG",
            "lines-0-quantity": "5", "lines-0-note": "n", "lines-999-item": "x", "other": "y"}
    assert dv.form_lines(form) == [dv.FormLine("RICE-10KG", "5", "n"), dv.FormLine("EGG-30", "2", "")]


def test_a_draft_skips_blank_lines_and_remembers_where_each_request_line_came_from():
    draft = dv.demand_draft([dv.FormLine(), dv.FormLine("大米(10公斤袋)", "1,200"), dv.FormLine("egg-30", "3", " x ")], CAT)
    assert draft.lines == [("RICE-10KG", 1200, ""), ("EGG-30", 3, "x")]
    assert draft.origin == [1, 2] and draft.errors == {}


def test_a_draft_finds_its_own_errors_but_leaves_the_rules_to_intake():
    draft = dv.demand_draft([dv.FormLine("", "3"), dv.FormLine("EGG-30", "two"), dv.FormLine("BAIJIU-500ML", "0")], CAT)
    assert draft.errors == {"lines-0-item": "required", "lines-1-quantity": "whole_number"}
    assert draft.lines[-1] == ("BAIJIU-500ML", 0, "")  # intake refuses the item and the 0
    assert dv.demand_draft([dv.FormLine()], CAT).errors == {"lines": "no_lines"}


def test_a_rule_refusal_lands_on_the_form_line_it_names_in_the_page_language():
    msg = ("[NON_ESSENTIAL] lines[1].item_code: 白酒(BAIJIU-500ML)为非必需品, 烟酒等非必须品除外, 不予受理(篇5)"
           " / baijiu 500 ml (BAIJIU-500ML) is non-essential")
    zh = dv.refusal("", "NON_ESSENTIAL", msg, origin=[0, 2], lang="zh_CN")
    assert zh == dv.Refusal("lines-2-item", "NON_ESSENTIAL", "白酒(BAIJIU-500ML)为非必需品, 烟酒等非必须品除外, 不予受理(篇5)")
    assert dv.refusal("", "", msg, [0, 2], "en").text == "baijiu 500 ml (BAIJIU-500ML) is non-essential"


def test_field_errors_map_to_form_fields():
    r = dv.refusal("lines[0].quantity", "", "lines[0].quantity: must be >= 1, got 0", [4], "en")
    assert (r.field, r.text) == ("lines-4-quantity", "must be >= 1, got 0")
    assert dv.form_field("lines", [0]) == "lines"
    assert dv.form_field("beneficiary.phone", [], fields={"beneficiary.phone": "beneficiary-phone"}) == "beneficiary-phone"
    assert dv.form_field("lines[1].discrepancies[0].reason", [0, 1], "l", parts={"discrepancies": "reason"},
                         default_part="received") == "l-1-reason"
    assert dv.explain("must be <= 1000000, got 5000000") == ("at_most", {"n": "1000000", "got": "5000000"})
    assert dv.explain("something new") == ("", {})


def test_where_a_demand_stands():
    now = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    later, earlier = now + timedelta(hours=1), now - timedelta(hours=1)
    ship = dv.Shipment("T-1", "V1", None, "RICE-10KG", 5, delivered=False)
    assert dv.standing("open", "", later, now, []).code == "submitted"
    assert dv.standing("open", "", earlier, now, []).code == "closed"
    assert dv.standing("open", "", earlier, now, [ship]).code == "on_trip"
    assert dv.standing("open", "", earlier, now, [replace(ship, delivered=True)]).code == "received"
    assert dv.standing("partly_fulfilled", "D-2", earlier, now, [ship]) == dv.Standing("short", "warn", "D-2")
    assert dv.standing("rolled", "D-3", earlier, now, []).carry_over == "D-3"
    assert dv.standing("fulfilled", "", earlier, now, []).code == "delivered"
    assert dv.standing("open", "", earlier, now, [], allocated=5).code == "allocated"  # the plan is approved
    assert dv.standing("open", "", earlier, now, [], allocated=0) == dv.Standing("not_allocated", "bad")
    assert dv.standing("open", "", earlier, now, [ship], allocated=5).code == "on_trip"  # the trip says more
    assert dv.minutes_until(later, now) == 60 and dv.minutes_until(None, now) is None


def test_the_disclosure_reads_back_as_text_tables():
    html = render.disclosure_html(facts())
    d = disclosure.without_day_column(disclosure.parse(html), "2026-12-01")
    assert [disclosure.title_in(s.title, "en") for s in d.sections] == [
        "Procurement and allocations received", "Allocation (approved plan)", "Stock", "Donations (一日一汇总)"]
    procurement = d.sections[0].tables[0]
    assert procurement.headers[0] == "入库单 Receipt" and procurement.rows[0][0] == "RC-1"
    assert disclosure.header_in("入库单 Receipt", "en") == "Receipt"
    assert disclosure.header_in("入库单 Receipt", "zh_CN") == "入库单"
    donors = d.sections[3].tables[1]
    assert disclosure.title_in(donors.caption, "en").startswith("Donors")
    assert donors.rows[0][0] == "王**"


def test_an_empty_list_and_a_note_are_kept_apart():
    d = disclosure.parse(render.disclosure_html(facts(approved=False)))
    allocation = d.sections[1]
    assert allocation.notes == ["当日调配方案尚未批准 / The day's plan is not approved yet."]
    assert len(allocation.tables) == 1 and allocation.tables[0].rows == []


def test_markup_in_a_cell_stays_text():
    html = "<h2>一、采购 / Procurement</h2><table><thead><tr><th>名称 Name</th></tr></thead>" \
           "<tbody><tr><td>&lt;script&gt;x&lt;/script&gt;</td></tr></tbody></table>"
    assert disclosure.parse(html).sections[0].tables[0].rows == [["<script>x</script>"]]
