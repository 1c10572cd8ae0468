"""The daily report and the disclosure lists from a hand-built county day: totals, the Chinese
headings, the workbook read back, the CSV headers, and no personal data in what is published."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook

from services.reports import render
from services.reports.domain.facts import (
    AlertFact,
    DayFacts,
    DemandFact,
    DemandLineFact,
    DonationFacts,
    DonationItem,
    DonorFact,
    GroupSupplyFact,
    ItemInfo,
    MaterialClassFact,
    PlanFact,
    PlanLineFact,
    PlanTierFact,
    ReasonFact,
    ReceiptFact,
    ReceiptLine,
    ReconcileFact,
    RequesterFact,
    StockFact,
    StopFact,
    TripFact,
)

DAY = date(2026, 12, 1)
AT = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)  # 09:30 county time
PHONES = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)|(?<!\d)0\d{2,3}-\d{7,8}(?!\d)")
KEEPER, HQ_PERSON, DRIVER = "张三丰", "李主任", "赵师傅"
FAIR = ReasonFact("FAIR_SHARE", "同级按比例分配", "fair share within the tier")
NO_STOCK = ReasonFact("NO_STOCK", "库存不足，未满足部分结转", "not enough stock; the rest rolls over")


def facts(*, approved: bool = True, alerts: list | None = None) -> DayFacts:
    items = {"RICE-10KG": ItemInfo("大米10kg", "rice 10 kg", "bag", "grain_oil"),
             "MASK-N95": ItemInfo("N95口罩", "N95 mask", "piece", "ppe"),
             "FORMULA-900G": ItemInfo("婴幼儿奶粉900g", "infant formula 900 g", "can",
                                      "infant_formula")}
    demands = [
        DemandFact("DM-H", "H1", "fulfilled", (DemandLineFact(0, "MASK-N95", 1, 100, 100),)),
        DemandFact("DM-V", "V1", "partly_fulfilled", (
            DemandLineFact(0, "RICE-10KG", 3, 150, 90),
            DemandLineFact(1, "FORMULA-900G", 2, 4, 4, special_need=True))),
        DemandFact("DM-X", "V1", "cancelled", (DemandLineFact(0, "RICE-10KG", 3, 999),)),
        DemandFact("DM-O", "V2", "open", (DemandLineFact(0, "RICE-10KG", 4, 50),),
                   rolled_over=True),
    ]
    plan_lines = (
        PlanLineFact("P-1-00001", "DM-H", 0, "H1", "MASK-N95", 1, 100, 100, 0, (FAIR,),
                     depots=("D1",)),
        PlanLineFact("P-1-00002", "DM-V", 0, "V1", "RICE-10KG", 3, 150, 90, 60, (FAIR, NO_STOCK),
                     depots=("D1",)),
        PlanLineFact("P-1-00003", "DM-V", 1, "V1", "FORMULA-900G", 2, 4, 4, 0, (FAIR,)),
        PlanLineFact("P-1-00004", "DM-O", 0, "V2", "RICE-10KG", 4, 50, 0, 50, (NO_STOCK,)),
    )
    plan = PlanFact("P-1", 2, "approved" if approved else "proposed", lines_total=4, asked=304,
                    allocated=194, unmet=110, unmet_lines=2, decided_by=HQ_PERSON,
                    decided_at=AT if approved else None,
                    tiers=(PlanTierFact(1, 1, 100, 100, 0), PlanTierFact(2, 1, 4, 4, 0),
                           PlanTierFact(3, 1, 150, 90, 60), PlanTierFact(4, 1, 50, 0, 50)),
                    lines=plan_lines)
    return DayFacts(
        day=DAY, generated_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        receipts=[
            ReceiptFact("RC-1", "purchase", "D1", AT, origin_ref="PO-7", received_by=KEEPER,
                        lines=(ReceiptLine("RC-1/1", "RICE-10KG", 200, "B-1", "2027-06-01"),
                               ReceiptLine("RC-1/2", "MASK-N95", 1000, "M-1", "2028-01-01"))),
            ReceiptFact("RC-2", "donation", "D1", AT, origin_ref="DON-1#0", received_by=KEEPER,
                        lines=(ReceiptLine("RC-2/1", "MASK-N95", 500, "M-2", "2028-02-01"),)),
            ReceiptFact("RC-3", "donation", "", AT, status="refused", origin_ref="DON-2#0",
                        rule_code="NO_FITTING_ZONE", message="没有合适库区 / no fitting zone"),
        ],
        donations=DonationFacts(2, (DonationItem("MASK-N95", 800, 500, 100, 200, 3),), (
            DonorFact("DON-1", "王**", "person", True, "发热门诊 请联系13812345678",
                      (("MASK-N95", 500),)),
            DonorFact("DON-3", "爱心商会", "organization"))),
        stock=[StockFact("D1", "RICE-10KG", 110, 60, reserved=50),
               StockFact("D2", "RICE-10KG", 40, 30, quarantined=10),
               StockFact("D1", "MASK-N95", 1400, 1400)],
        stock_ledger_seq=42, supply_population=12000,
        supply=[GroupSupplyFact("grain_oil", "成品粮油", "grain and oil", 1500.0, 250.0, 6.0, 15.0,
                                True),
                GroupSupplyFact("ppe", "防护用品", "protective supplies", 10.0, 0.2, 50.0, 30.0)],
        demands=demands, plan=plan,
        trips=[TripFact("TR-1", "P-1", "D1", "T-07", "scheduled", "通-07", True, False, AT, None,
                        12_300, 950.0, (StopFact(1, "V1", "DP1", AT, True, (
                            ("P-1-00002/1", "DM-V", "RICE-10KG", 90),)),))],
        alerts=alerts if alerts is not None else [
            AlertFact("A-1", "alarm", "critical", "open", "CHL_WARM_30M", AT, "冷藏温度持续30分钟高于4°C",
                      "chilled above 4 °C for 30 min", "D1", "D1-CHL")],
        reconciliation=ReconcileFact(True, 42, 5, 42),
        requesters={"H1": RequesterFact("H1", "县人民医院", "城关镇", "unit"),
                    "V1": RequesterFact("V1", "东风村", "河西镇", "village"),
                    "V2": RequesterFact("V2", "西湖社区", "城关镇", "community")},
        items=items)


def row_of(md: str, first_cell: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r}")


def test_markdown_has_every_section_with_chinese_and_english_headings():
    md = render.markdown(facts())
    assert md.startswith("# 疫情保供物资日报 / Daily supply report — 2026-12-01")
    for heading in ("## 一、当日接收与采购 / Receipts and purchases",
                    "## 二、捐赠接收与处理 / Donations",
                    "## 三、库存与保障天数 / Stock and days of supply",
                    "## 四、需求与满足率 / Demands and fill rates",
                    "## 五、调配方案 / Allocation plan",
                    "## 六、配送与签收 / Trips and deliveries",
                    "## 七、预警 / Alerts",
                    "## 八、台账核对 / Ledger reconciliation"):
        assert heading in md.splitlines()
    assert md.index("一、当日接收") < md.index("二、捐赠") < md.index("八、台账核对")


def test_markdown_totals_leave_cancelled_demands_out():
    md = render.markdown(facts())
    # live demands: DM-H, DM-V, DM-O; asked 100 + 150 + 4 + 50; delivered 100 + 90 + 4
    assert row_of(md, "需求 Demands")[1] == "3"
    assert row_of(md, "申请数量 Units asked")[1] == "304"
    assert row_of(md, "送达数量 Units delivered")[1] == "194"
    assert row_of(md, "满足率 Fill rate")[1] == "63.8%"
    assert row_of(md, "合计 / Total") == ["合计 / Total", "3", "4", "304", "194", "194", "63.8%"]
    sealed = "3 封控/高风险区 / sealed / high-risk area"
    assert row_of(md, sealed) == [sealed, "1", "1", "150", "90", "90", "60.0%"]
    assert row_of(md, "4 管控/中风险区 / controlled / medium-risk area")[-1] == "0.0%"
    assert row_of(md, "入库单 Receipts")[1] == "2"  # the refused donation line is not a receipt
    assert row_of(md, "入库数量 Units received")[1] == "1700"
    assert row_of(md, "采购 / purchase") == ["采购 / purchase", "1", "2", "1200"]
    assert row_of(md, "RICE-10KG")[:4] == ["RICE-10KG", "大米10kg", "bag", "200"]
    assert "已取消 / cancelled 1" in md and "截止后顺延至本日 1" in md


def test_markdown_plan_unmet_lines_carry_their_reasons_and_the_stock_warns_below_reserve():
    md = render.markdown(facts())
    unmet = row_of(md, "P-1-00004")
    assert unmet[2] == "西湖社区" and unmet[8] == "50"
    assert "库存不足，未满足部分结转 / not enough stock; the rest rolls over" in unmet[-1]
    assert row_of(md, "NO_STOCK") == ["NO_STOCK", "2"]
    assert "方案 P-1 第 2 版，已批准 / approved" in md
    assert row_of(md, "grain_oil")[-1] == "低于储备 / BELOW"
    assert "成品粮油 6.0 < 15.0 天 days" in md
    stock = row_of(md, "RICE-10KG")  # first RICE-10KG row is the receipt-by-item row
    assert stock[0] == "RICE-10KG"
    assert "| RICE-10KG | 大米10kg | bag | 150 | 50 | 10 | 90 | 0 | D1, D2 |" in md
    assert "CHL_WARM_30M" in md and "一致 / OK" in md


def test_monitoring_unavailable_marks_the_alerts_section():
    f = facts()
    f.alerts = None
    f.notes.append("alerts: monitoring unavailable (UNAVAILABLE)")
    md = render.markdown(f)
    section = md.split("## 七、预警 / Alerts")[1].split("## 八、")[0]
    assert "unavailable" in section and "UNAVAILABLE" in section
    assert row_of(md, "预警 Alerts")[1] == "不可用 / unavailable"


def test_xlsx_reads_back_one_sheet_per_table_with_bilingual_headers():
    wb = load_workbook(io.BytesIO(render.xlsx(facts())))
    assert wb.sheetnames[0] == "摘要 Summary"
    for name in ("1 入库明细 Receipt lines", "2 捐赠汇总 Donations", "3 保障天数 Days of supply",
                 "4 需求按优先级 Demands by tier", "5 分配明细 Allocations", "6 车次 Trips",
                 "7 预警 Alerts", "8 台账核对 Ledger"):
        assert name in wb.sheetnames
    tiers = [list(r) for r in wb["4 需求按优先级 Demands by tier"].iter_rows(values_only=True)]
    assert tiers[0] == ["优先级 Tier", "需求 Demands", "需求行 Lines", "申请 Asked", "分配 Allocated",
                        "送达 Delivered", "满足率 Fill rate"]
    assert tiers[-1] == ["合计 / Total", 3, 4, 304, 194, 194, "63.8%"]
    lines = list(wb["1 入库明细 Receipt lines"].iter_rows(values_only=True))
    assert len(lines) == 1 + 3 and sum(r[8] for r in lines[1:]) == 1700
    allocations = list(wb["5 分配明细 Allocations"].iter_rows(values_only=True))
    assert len(allocations) == 1 + 4  # every plan line, not only the Markdown's first rows
    summary = dict(wb["摘要 Summary"].iter_rows(values_only=True))
    assert summary["申请数量 Units asked"] == 304


def test_render_dispatch_names_the_content():
    f = facts()
    content, ctype, name = render.render(f, "xlsx")
    assert ctype == render.XLSX_TYPE and name == "daily-report-2026-12-01.xlsx"
    assert content[:2] == b"PK"
    content, ctype, name = render.render(f, "markdown")
    assert ctype.startswith("text/markdown") and content.decode().startswith("# 疫情保供物资日报")
    content, ctype, name = render.render(f, "disclosure_html")
    assert ctype.startswith("text/html") and name == "disclosure-2026-12-01.html"


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_disclosure_csvs_one_per_list_with_their_headers_and_totals():
    csvs = render.disclosure_csvs(facts())
    assert sorted(csvs) == ["disclosure-allocation.csv", "disclosure-donations.csv",
                            "disclosure-procurement.csv", "disclosure-stock.csv"]
    procurement = read_csv(csvs["disclosure-procurement.csv"])
    assert procurement[0][:5] == ["日期 Day", "入库单 Receipt", "类型 Kind", "仓库 Depot",
                                  "物资编码 Item code"]
    assert [(r[4], r[7]) for r in procurement[1:]] == [("RICE-10KG", "200"), ("MASK-N95", "1000")]
    allocation = read_csv(csvs["disclosure-allocation.csv"])
    assert allocation[0][:3] == ["日期 Day", "村居/单位 Requester", "乡镇 Township"]
    rice_v1 = next(r for r in allocation if r[1] == "东风村" and r[3] == "RICE-10KG")
    assert rice_v1[7:12] == ["150", "90", "0", "60", "90"]
    assert {r[1] for r in allocation[1:]} == {"县人民医院", "东风村", "西湖社区"}
    stock = read_csv(csvs["disclosure-stock.csv"])
    assert stock[0][1:3] == ["物资编码 Item code", "物资名称 Item"]
    rice = next(r for r in stock if r[1] == "RICE-10KG")
    assert rice[5:8] == ["150", "90", "10"] and rice[8:] == ["6.0", "15.0"]
    donations = read_csv(csvs["disclosure-donations.csv"])
    assert donations[0][4:] == ["登记 Received", "接受入库 Accepted", "转用 Redirected",
                                "退回 Returned"]
    assert donations[1][1] == "MASK-N95" and donations[1][4:] == ["800", "500", "100", "200"]


def test_an_unapproved_plan_is_not_disclosed():
    f = facts(approved=False)
    assert read_csv(render.disclosure_csvs(f)["disclosure-allocation.csv"])[1:] == []
    assert "尚未批准" in render.disclosure_html(f)


@pytest.mark.parametrize("approved", [True, False])
def test_disclosure_holds_no_personal_data(approved):
    f = facts(approved=approved)
    f.requesters["V2"] = RequesterFact("V2", "西湖社区 联系人电话 0571-87654321", "城关镇")
    f.trips[0] = TripFact("TR-1", "P-1", "D1", "T-07", "scheduled", "通-07", True)
    published = [render.disclosure_html(f), *render.disclosure_csvs(f).values()]
    for text in published:
        assert not PHONES.search(text), PHONES.search(text)
        for person in (KEEPER, HQ_PERSON, DRIVER, "PO-7"):
            assert person not in text
    page = published[0]
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "王**" in page and "爱心商会" in page  # person donors only as intake masks them
    assert "发热门诊 请联系***" in page
    # the internal report may say who verified a receipt; the public lists never do
    assert KEEPER in render.markdown(f)


def test_scrub_keeps_ids_and_dates_and_removes_phone_numbers():
    assert render.scrub("RC-139123456781abc") == "RC-139123456781abc"
    assert render.scrub("2026-12-01") == "2026-12-01"
    assert render.scrub("电话 138-1234-5678 或 +86 13912345678") == "电话 *** 或 ***"
    assert render.scrub(42) == 42


# ---- user text in the files we write (issue #14, finding 2) ---------------------------------
EVIL = '=HYPERLINK("http://evil.example/","x")'


def hostile_facts() -> DayFacts:
    f = facts()
    f.requesters["V1"] = RequesterFact("V1", EVIL, "@SUM(1+1)", "village")
    f.requesters["V2"] = RequesterFact("V2", "<script>alert(1)</script>西湖", "-2+3", "community")
    return f


def test_no_cell_of_the_xlsx_is_a_formula_made_of_user_text():
    wb = load_workbook(io.BytesIO(render.xlsx(hostile_facts())))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert any(v == "'" + EVIL for v in texts) and not any(v.startswith(("=", "+", "@")) for v in texts)
    assert any(isinstance(c.value, int) for c in cells)  # numbers stay numbers


def test_no_cell_of_the_public_csvs_starts_a_formula():
    for text in render.disclosure_csvs(hostile_facts()).values():
        for row in read_csv(text):
            assert not [v for v in row if v[:1] in ("=", "+", "@", "\t", "\r") or (v[:1] == "-" and not _number(v))]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_the_markdown_carries_no_raw_html_from_user_text():
    md = render.markdown(hostile_facts())
    assert "<script" not in md and "</script" not in md and "&lt;script>alert(1)&lt;/script>西湖" in md


def test_the_plan_shows_each_items_material_class_and_why():
    day = facts()
    why = ReasonFact("CLASS_I_RATIO", "疫情期需求为常态的3.75倍（≥2）", "epidemic demand is 3.75× normal (≥ 2)")
    day = replace(day, plan=replace(day.plan, material_classes=(
        MaterialClassFact("RICE-10KG", "I", "II", 300, 80.0, 3.75, (why,)),
        MaterialClassFact("EGG-30", "", "", 4, 0.0, None, ()))))
    md = render.markdown(day)
    assert "### 物资分级 / Material classes I, II (RULES §5)" in md
    assert ("| RICE-10KG | 大米10kg | I | II | 300 | 80.0 | 3.75 | 疫情期需求为常态的3.75倍（≥2） / "
            "epidemic demand is 3.75× normal (≥ 2) |") in md
    assert "| EGG-30 |" in md.split("Material classes")[1].split("###")[0]
    assert "5 物资分级 Classes" in load_workbook(io.BytesIO(render.xlsx(day))).sheetnames


def test_the_supermarket_channel_section_gives_counts_and_yuan_and_no_household():
    from services.reports.domain.facts import ChannelFact

    f = facts()
    f.channel = ChannelFact(household_orders=12, online_orders=7, collected_orders=3, on_account_orders=2,
                            community_orders=2, parcels=11, parcels_received=9, parcels_short=1,
                            parcels_refused=1, ordered_fen=123456, confirmed_fen=120005, delivered_fen=110000,
                            paid_online_fen=70000, collected_fen=30000, on_account_owed_fen=9950,
                            settled_community_orders=1)
    md = render.markdown(f)
    section = md.split("## 九、商超保供 / Supermarket channel")[1]
    assert "1234.56" in section and "1200.05" in section and "99.50" in section
    assert row_of(md, "签收 / 短少 / 拒收 Received / short / refused")[1] == "9 / 1 / 1"
    wb = load_workbook(io.BytesIO(render.xlsx(f)))
    rows = dict(wb["9 商超保供 Channel"].iter_rows(values_only=True))
    assert rows["居民订单 Household orders"] == 12 and rows["代付待结（元）On account owed (yuan)"] == "99.50"


def test_without_the_market_service_the_channel_section_says_so():
    f = facts()
    f.notes.append("channel: market unavailable (UNAVAILABLE)")
    section = render.markdown(f).split("## 九、商超保供 / Supermarket channel")[1]
    assert "not there" in section and "UNAVAILABLE" in section
