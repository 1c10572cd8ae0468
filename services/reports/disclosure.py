"""The public disclosure (定期公开, RULES §11): the four lists (采购、分配、库存、捐赠) as CSV and
one HTML page. No person names, no phone numbers, no receiver or crew names, no staff
identities: villages and units by name, person donors only as intake masks them, and every cell
passes a phone-number scrub as well. Pure: no I/O, no clock."""

from __future__ import annotations

import csv
import html
import io

from services.common.cells import spreadsheet_cell
from services.reports.domain.facts import DayFacts
from services.reports.sections import (
    RECEIPT_KINDS,
    Table,
    donor_rows,
    item_name,
    local_time,
    num,
    pair,
    scrub,
    stock_by_item,
    tier_label,
)

DISCLOSURE_LISTS = ("procurement", "allocation", "stock", "donations")


def disclosure_tables(facts: DayFacts) -> dict[str, Table]:
    """The four public lists (采购、分配、库存、捐赠), personal data removed, every cell scrubbed."""
    day = facts.day.isoformat()
    procurement = [[day, r.receipt_id, pair(RECEIPT_KINDS, r.kind), r.depot_id, ln.item_code,
                    item_name(facts, ln.item_code), facts.item(ln.item_code).unit, ln.quantity,
                    ln.lot_number, ln.expiry]
                   for r in facts.receipts if r.status == "accepted" and r.kind != "donation"
                   for ln in r.lines]
    allocation: list[list] = []
    if facts.plan is not None and facts.plan.approved:
        delivered = facts.delivered_by_line()
        acc: dict[tuple[str, str, int], dict] = {}
        for ln in facts.plan.lines:
            a = acc.setdefault((ln.requester_id, ln.item_code, ln.tier),
                               {"asked": 0, "allocated": 0, "packages": 0, "unmet": 0,
                                "delivered": 0, "rules": set()})
            a["asked"] += ln.asked
            a["allocated"] += ln.allocated
            a["packages"] += ln.packages
            a["unmet"] += ln.unmet
            a["delivered"] += delivered.get((ln.demand_id, ln.demand_line_no), 0)
            a["rules"].update(r.code for r in ln.reasons)
        for (rid, code, tier), a in sorted(acc.items(), key=lambda kv: (
                facts.requester(kv[0][0]).township, facts.requester(kv[0][0]).name, kv[0][1],
                kv[0][2])):
            rq = facts.requester(rid)
            allocation.append([day, rq.name, rq.township, code, item_name(facts, code),
                               facts.item(code).unit, tier_label(tier), a["asked"], a["allocated"],
                               a["packages"], a["unmet"], a["delivered"],
                               " ".join(sorted(a["rules"]))])
    groups = {g.group: g for g in facts.supply}
    stock = []
    for code, c, _ in stock_by_item(facts):
        info = facts.item(code)
        g = groups.get(info.group)
        stock.append([day, code, info.name_zh, info.unit, g.name_zh if g else info.group,
                      c["on_hand"], c["available"], c["quarantined"],
                      num(g.days if g else None), num(g.reserve_days if g else None)])
    donations = [[day, x.item_code, item_name(facts, x.item_code), facts.item(x.item_code).unit,
                  x.received, x.accepted, x.redirected, x.returned]
                 for x in facts.donations.items]
    tables = {
        "procurement": Table("采购 Procurement", "采购与调入 / Procurement and allocations received",
                             ["日期 Day", "入库单 Receipt", "类型 Kind", "仓库 Depot",
                              "物资编码 Item code", "物资名称 Item", "单位 Unit", "数量 Quantity",
                              "批号 Lot number", "有效期 Expiry"], procurement),
        "allocation": Table("分配 Allocation", "物资分配 / Allocation (approved plan)",
                            ["日期 Day", "村居/单位 Requester", "乡镇 Township", "物资编码 Item code",
                             "物资名称 Item", "单位 Unit", "优先级 Tier", "申请 Asked",
                             "分配 Allocated", "物资包 Packages", "未满足 Unmet", "送达 Delivered",
                             "依据 Rules"], allocation),
        "stock": Table("库存 Stock", "库存 / Stock",
                       ["日期 Day", "物资编码 Item code", "物资名称 Item", "单位 Unit", "类别 Group",
                        "在库 On hand", "可用 Available", "隔离 Quarantined",
                        "类别保障天数 Group days of supply", "储备底线 Reserve days"], stock),
        "donations": Table("捐赠 Donations", "捐赠 / Donations (一日一汇总)",
                           ["日期 Day", "物资编码 Item code", "物资名称 Item", "单位 Unit",
                            "登记 Received", "接受入库 Accepted", "转用 Redirected", "退回 Returned"],
                           donations),
    }
    for t in tables.values():
        t.rows = [[scrub(v) for v in row] for row in t.rows]
    return tables


def disclosure_csvs(facts: DayFacts) -> dict[str, str]:
    """File name → CSV text (write it as utf-8-sig so that Excel reads the Chinese right)."""
    out = {}
    for name, t in disclosure_tables(facts).items():
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([spreadsheet_cell(h) for h in t.headers])
        w.writerows([spreadsheet_cell(v) for v in row] for row in t.rows)
        out[f"disclosure-{name}.csv"] = buf.getvalue()
    return out


def _html_table(headers: list[str], rows: list[list]) -> str:
    if not rows:
        return "<p class=none>无 / none</p>"
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f"<td{' class=n' if isinstance(v, int | float) else ''}>{html.escape(str(v))}</td>"
        for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = ("body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:2em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:14px}"
       "th,td{border:1px solid #999;padding:3px 8px}th{background:#eee}td.n{text-align:right}"
       "p.none{color:#666}footer{color:#666;font-size:12px}")


def disclosure_html(facts: DayFacts) -> str:
    day = facts.day.isoformat()
    tables = disclosure_tables(facts)
    parts = [f"<!DOCTYPE html><html lang=zh-CN><head><meta charset=utf-8>"
             f"<title>物资信息公开 {day} / Public disclosure</title><style>{CSS}</style></head><body>",
             f"<h1>疫情保供物资信息公开 / Public disclosure of epidemic supplies — {day}</h1>",
             "<p>采购、分配、库存、捐赠情况定期公开，接受社会监督；个人信息已去除。/ Procurement, "
             "allocation, stock and donations, published for public oversight; personal data "
             "removed.</p>"]
    numerals = ("一", "二", "三", "四")
    for i, name in enumerate(DISCLOSURE_LISTS):
        t = tables[name]
        parts.append(f"<h2>{numerals[i]}、{html.escape(t.title)}</h2>")
        if name == "allocation" and not (facts.plan and facts.plan.approved):
            parts.append("<p>当日调配方案尚未批准 / The day's plan is not approved yet.</p>")
        parts.append(_html_table(t.headers, t.rows))
        if name == "donations":
            donors = [[scrub(v) for v in row[1:]] for row in donor_rows(facts)]
            parts.append("<h3>当日入库捐赠方（致谢）/ Donors of stock received (with thanks)</h3>")
            parts.append(_html_table(["捐赠方 Donor", "类型 Kind", "定向 Targeted",
                                      "用途 Target use", "入库物资 Items"], donors))
    generated = local_time(facts.generated_at, facts.timezone)
    r = facts.reconciliation
    head = (f"<br>台账链头 / Ledger chain head: {r.head_seq}:{html.escape(r.head_hash)}"
            if r is not None and r.head_hash else "")
    parts.append(f"<footer>生成时间 / Generated {html.escape(generated)} ({facts.timezone}){head}"
                 f"</footer></body></html>")
    return "".join(parts)
