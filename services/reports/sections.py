"""The daily report's content as sections of tables (`daily_sections`, `summary_rows`), and the
small formatters and label tables the report and the disclosure share. Pure: no I/O, no clock.
render.py writes these as Markdown or XLSX; disclosure.py builds the public lists."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from services.common.tiers import TIER_NAMES
from services.reports.domain.facts import DayFacts, TierFill

RECEIPT_KINDS = {"purchase": ("采购", "purchase"), "donation": ("捐赠", "donation"),
                 "transfer": ("调拨", "transfer"),
                 "upper_level_allocation": ("上级调拨", "upper-level allocation")}
DEMAND_STATUS = {"open": ("待配送", "open"), "fulfilled": ("已满足", "fulfilled"),
                 "partly_fulfilled": ("部分满足", "partly fulfilled"), "rolled": ("已结转", "rolled"),
                 "cancelled": ("已取消", "cancelled")}
PLAN_STATUS = {"proposed": ("待批准", "proposed"), "approved": ("已批准", "approved"),
               "rejected": ("已驳回", "rejected"), "superseded": ("已替代", "superseded"),
               "unspecified": ("试算", "dry run")}
ALERT_KINDS = {"alarm": "温湿度报警", "sensor_offline": "传感器离线", "spoilage": "变质",
               "mkt": "平均动力学温度", "segregation": "危化品隔离", "reserve_below_floor": "低于储备",
               "near_expiry": "临期", "price_rise": "价格异常",
               "unregistered_sensor": "未登记传感器", "deadline_missed": "逾期"}
SEVERITY = {"info": "提示", "warning": "警告", "critical": "严重"}
ALERT_STATE = {"open": "未处理", "acknowledged": "已确认", "cleared": "已解除"}

PHONE = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d){8}(?![0-9A-Za-z])"  # mobile
    r"|(?<![0-9A-Za-z])0\d{2,3}[-\s]?\d{7,8}(?![0-9A-Za-z])")  # landline with area code
MD_LIMIT = 200



@dataclass
class Table:
    sheet: str  # worksheet name (≤ 31 characters, none of / \ ? * [ ] :)
    title: str
    headers: list[str]
    rows: list[list] = field(default_factory=list)
    md_limit: int | None = None


@dataclass
class Section:
    heading: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


# ---- small formatters ---------------------------------------------------------------------------
def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def num(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def local_time(at: datetime | None, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if at else ""


def tier_label(t: int) -> str:
    zh, en = TIER_NAMES.get(t, (str(t), str(t)))
    return f"{t} {zh} / {en}"


def pair(table: dict, key: str) -> str:
    zh, en = table.get(key, (key, key))
    return f"{zh} / {en}"


def item_name(facts: DayFacts, code: str) -> str:
    return facts.item(code).name_zh


def _requester(facts: DayFacts, rid: str) -> str:
    return facts.requester(rid).name


def scrub(value):
    """Phone numbers out of a disclosed value (defence in depth: the facts should hold none)."""
    return PHONE.sub("***", value) if isinstance(value, str) else value


# ---- the daily report as sections ---------------------------------------------------------------
def fill_row(label: str, f: TierFill) -> list:
    return [label, f.demands, f.lines, f.asked, f.allocated, f.delivered, _pct(f.fill_rate)]


def summary_rows(facts: DayFacts) -> list[list]:
    total = facts.total_fill()
    if facts.alerts is None:
        alerts = "不可用 / unavailable"
    else:
        alerts = str(len(facts.alerts))
    r = facts.reconciliation
    ledger = ("未核对 / not checked" if r is None else "一致 / OK" if r.ok
              else "不一致 / MISMATCH")
    plan = ("无 / none" if facts.plan is None else
            f"{facts.plan.plan_id} v{facts.plan.version} {pair(PLAN_STATUS, facts.plan.status)}")
    accepted = [r for r in facts.receipts if r.status == "accepted"]
    return [
        ["日期 Day", facts.day.isoformat()],
        ["入库单 Receipts", len(accepted)],
        ["入库数量 Units received", sum(ln.quantity for r in accepted for ln in r.lines)],
        ["登记捐赠 Donations registered", facts.donations.donations_received],
        ["需求 Demands", total.demands],
        ["需求行 Demand lines", total.lines],
        ["申请数量 Units asked", total.asked],
        ["分配数量 Units allocated", total.allocated],
        ["送达数量 Units delivered", total.delivered],
        ["满足率 Fill rate", _pct(total.fill_rate)],
        ["调配方案 Plan", plan],
        ["车次 Trips", len(facts.trips)],
        ["低于储备的类别 Groups below reserve",
         ", ".join(g.name_zh for g in facts.supply if g.below_floor) or "无 / none"],
        ["预警 Alerts", alerts],
        ["台账核对 Ledger", ledger],
    ]


def _receipts(facts: DayFacts) -> Section:
    tz = facts.timezone
    accepted = [r for r in facts.receipts if r.status == "accepted"]
    refused = [r for r in facts.receipts if r.status != "accepted"]
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_item: dict[str, Counter] = defaultdict(Counter)
    for r in accepted:
        k = by_kind[r.kind]
        k[0] += 1
        for ln in r.lines:
            k[1] += 1
            k[2] += ln.quantity
            by_item[ln.item_code][r.kind] += ln.quantity
    kinds = list(RECEIPT_KINDS)
    text = [f"当日入库单 {len(accepted)} 张，拒收 {len(refused)} 张 / {len(accepted)} receipts "
            f"accepted, {len(refused)} refused on the day."]
    if facts.receipt_quantities != "ledger":
        text.append("注意：台账不可读，数量为当前在库数 / Note: the ledger was not readable; "
                    "quantities are what the lots hold now, not what they received.")
    return Section("一、当日接收与采购 / Receipts and purchases", text, [
        Table("1 接收汇总 Receipts by kind", "按类型汇总 / By kind",
              ["类型 Kind", "入库单 Receipts", "物资行 Lines", "数量 Units"],
              [[pair(RECEIPT_KINDS, k), *v] for k, v in sorted(by_kind.items())]),
        Table("1 接收按物资 Receipts by item", "按物资汇总 / By item",
              ["物资编码 Item code", "物资名称 Item", "单位 Unit", "采购 Purchase", "捐赠 Donation",
               "调拨 Transfer", "上级调拨 Upper level", "合计 Total"],
              [[code, item_name(facts, code), facts.item(code).unit, *(c[k] for k in kinds),
                sum(c.values())] for code, c in sorted(by_item.items())]),
        Table("1 入库明细 Receipt lines", "入库明细 / Receipt lines",
              ["时间 Time", "入库单 Receipt", "类型 Kind", "仓库 Depot", "物资编码 Item code",
               "物资名称 Item", "批号 Lot number", "有效期 Expiry", "数量 Quantity", "单位 Unit",
               "来源单据 Origin document", "验收人 Received by"],
              [[local_time(r.received_at, tz), r.receipt_id, pair(RECEIPT_KINDS, r.kind), r.depot_id,
                ln.item_code, item_name(facts, ln.item_code), ln.lot_number, ln.expiry, ln.quantity,
                facts.item(ln.item_code).unit, r.origin_ref, r.received_by]
               for r in accepted for ln in r.lines], MD_LIMIT),
        Table("1 拒收 Refused", "拒收 / Refused at put-away",
              ["时间 Time", "入库单 Receipt", "类型 Kind", "来源单据 Origin document", "规则 Rule",
               "说明 Message"],
              [[local_time(r.received_at, tz), r.receipt_id, pair(RECEIPT_KINDS, r.kind),
                r.origin_ref, r.rule_code, r.message] for r in refused]),
    ])


def _donations(facts: DayFacts) -> Section:
    d = facts.donations
    return Section("二、捐赠接收与处理 / Donations", [
        f"当日登记捐赠 {d.donations_received} 批 / {d.donations_received} donations registered "
        f"on the day (一日一汇总)."], [
        Table("2 捐赠汇总 Donations", "按物资汇总 / By item",
              ["物资编码 Item code", "物资名称 Item", "单位 Unit", "登记 Received", "接受入库 Accepted",
               "转用 Redirected", "退回 Returned"],
              [[x.item_code, item_name(facts, x.item_code), facts.item(x.item_code).unit, x.received,
                x.accepted, x.redirected, x.returned] for x in d.items]),
        Table("2 捐赠方 Donors", "当日入库捐赠方 / Donors of stock received",
              ["捐赠编号 Donation", "捐赠方 Donor", "类型 Kind", "定向 Targeted", "用途 Target use",
               "入库物资 Items"], donor_rows(facts)),
    ])


def donor_rows(facts: DayFacts) -> list[list]:
    kinds = {"organization": "单位 organization", "person": "个人 person"}
    return [[x.donation_id, x.donor_name, kinds.get(x.donor_kind, x.donor_kind),
             "是 yes" if x.targeted else "否 no", x.target_use,
             "; ".join(f"{item_name(facts, c)} {c} ×{q}" for c, q in x.items)]
            for x in facts.donations.donors]


def stock_by_item(facts: DayFacts) -> list[tuple[str, Counter, list[str]]]:
    acc: dict[str, Counter] = defaultdict(Counter)
    depots: dict[str, set[str]] = defaultdict(set)
    for s in facts.stock:
        c = acc[s.item_code]
        for f in ("on_hand", "reserved", "quarantined", "available", "expired"):
            c[f] += getattr(s, f)
        depots[s.item_code].add(s.depot_id)
    return [(code, acc[code], sorted(depots[code])) for code in sorted(acc)]


def _stock(facts: DayFacts) -> Section:
    below = [g for g in facts.supply if g.below_floor]
    text = [f"服务人口 {facts.supply_population} 人；台账序号 {facts.stock_ledger_seq} / population "
            f"{facts.supply_population}; ledger position {facts.stock_ledger_seq}."]
    if below:
        text.append("低于储备底线 / Below the reserve floor: " + ", ".join(
            f"{g.name_zh} {num(g.days)} < {num(g.reserve_days)} 天 days" for g in below))
    return Section("三、库存与保障天数 / Stock and days of supply", text, [
        Table("3 保障天数 Days of supply", "保障天数 / Days of supply (RULES §4)",
              ["类别 Group", "名称 Name", "可用 Usable (kg)", "日消耗 Daily (kg)", "保障天数 Days",
               "储备底线 Reserve (days)", "状态 Status"],
              [[g.group, f"{g.name_zh} / {g.name_en}", round(g.usable_kg, 1), round(g.daily_kg, 1),
                num(g.days), num(g.reserve_days),
                "低于储备 / BELOW" if g.below_floor else "正常 / OK"] for g in facts.supply]),
        Table("3 库存 Stock", "库存 / Stock by item",
              ["物资编码 Item code", "物资名称 Item", "单位 Unit", "在库 On hand", "预留 Reserved",
               "隔离 Quarantined", "可用 Available", "过期 Expired", "仓库 Depots"],
              [[code, item_name(facts, code), facts.item(code).unit, c["on_hand"], c["reserved"],
                c["quarantined"], c["available"], c["expired"], ", ".join(depots)]
               for code, c, depots in stock_by_item(facts)]),
    ])


def _demands(facts: DayFacts) -> Section:
    counts = facts.status_counts()
    rolled_in = sum(1 for d in facts.demands if d.rolled_over)
    carried_in = sum(1 for d in facts.demands if d.origin == "carry_over")
    flagged = sum(1 for d in facts.demands if d.flagged)
    text = ["需求状态 / Demand status: " + "，".join(
        f"{pair(DEMAND_STATUS, k)} {n}" for k, n in counts.items()),
        f"截止后顺延至本日 {rolled_in}，上日结转而来 {carried_in}，超定额标记 {flagged} / rolled "
        f"over past a cut-off into this day {rolled_in}, carried over from earlier days "
        f"{carried_in}, flagged over the norm {flagged}."]
    rows = [fill_row(tier_label(f.tier), f) for f in facts.tier_fills()]
    rows.append(fill_row("合计 / Total", facts.total_fill()))
    return Section("四、需求与满足率 / Demands and fill rates", text, [
        Table("4 需求按优先级 Demands by tier", "按优先级 / By tier (满足率 = 送达 ÷ 申请)",
              ["优先级 Tier", "需求 Demands", "需求行 Lines", "申请 Asked", "分配 Allocated",
               "送达 Delivered", "满足率 Fill rate"], rows),
        Table("4 需求明细 Demand lines", "需求明细 / Demand lines",
              ["需求 Demand", "村居/单位 Requester", "状态 Status", "来源 Origin", "行 Line",
               "物资编码 Item code", "物资名称 Item", "优先级 Tier", "申请 Asked", "送达 Delivered"],
              [[d.demand_id, _requester(facts, d.requester_id), pair(DEMAND_STATUS, d.status),
                d.origin, ln.line_no, ln.item_code, item_name(facts, ln.item_code), tier_label(ln.tier),
                ln.quantity, "" if ln.delivered is None else ln.delivered]
               for d in facts.demands for ln in d.lines], MD_LIMIT),
    ])


def _reasons(line) -> str:
    return "; ".join(f"{r.zh} / {r.en}" if (r.zh or r.en) else r.code for r in line.reasons)


def _plan(facts: DayFacts) -> Section:
    p = facts.plan
    if p is None:
        return Section("五、调配方案 / Allocation plan", ["当日无调配方案 / No plan for the day."], [])
    tz = facts.timezone
    text = [f"方案 {p.plan_id} 第 {p.version} 版，{pair(PLAN_STATUS, p.status)}"
            + (f"，{p.decided_by} {local_time(p.decided_at, tz)}" if p.decided_by else "")
            + ("，晚于调度截止 / approved after the dispatch deadline" if p.late else "")]
    if p.rejection_reason:
        text.append(f"驳回理由 / Rejection reason: {p.rejection_reason}")
    if len(facts.plan_versions) > 1:
        text.append("各版本 / Versions: " + ", ".join(
            f"v{v.version} {pair(PLAN_STATUS, v.status)}" for v in facts.plan_versions))
    text.append(f"合计 / Totals: 行 lines {p.lines_total}，申请 asked {p.asked}，分配 allocated "
                f"{p.allocated}，物资包 packages {p.substituted_packages}，未满足 unmet {p.unmet}"
                f"（{p.unmet_lines} 行 lines），异常申领 flagged {p.flagged_lines}.")
    text.extend(f"提示 / Warning [{w.code}] {w.zh} / {w.en}" for w in p.warnings)
    rules = Counter(r.code for ln in p.lines for r in ln.reasons)
    unmet = [ln for ln in p.lines if ln.unmet > 0]
    return Section("五、调配方案 / Allocation plan", text, [
        Table("5 方案按优先级 Plan by tier", "按优先级 / By tier",
              ["优先级 Tier", "行 Lines", "申请 Asked", "分配 Allocated", "物资包 Packages",
               "未满足 Unmet"],
              [[tier_label(t.tier), t.lines, t.asked, t.allocated, t.substituted_packages, t.unmet]
               for t in p.tiers]),
        Table("5 物资分级 Classes", "物资分级 / Material classes I, II (RULES §5)",
              ["物资编码 Item code", "物资名称 Item", "分级 Class", "目录分级 Catalogue class",
               "申请 Asked", "常态日用量 Normal daily", "倍数 Ratio", "依据 Reasons"],
              [[m.item_code, item_name(facts, m.item_code), m.material_class or "–",
                m.catalogue_class or "–", m.asked, num(m.normal_daily),
                num(m.ratio, 2), _reasons(m)] for m in p.material_classes]),
        Table("5 分配依据 Rules", "分配依据 / Rules applied (RULES §3)",
              ["规则 Rule", "行数 Lines"], [[code, n] for code, n in sorted(rules.items())]),
        Table("5 未满足 Unmet", "未满足及原因 / Unmet quantities and reasons",
              ["方案行 Plan line", "需求 Demand", "村居/单位 Requester", "物资编码 Item code",
               "物资名称 Item", "优先级 Tier", "申请 Asked", "分配 Allocated", "未满足 Unmet",
               "原因 Reasons"],
              [[ln.plan_line_id, ln.demand_id, _requester(facts, ln.requester_id), ln.item_code,
                item_name(facts, ln.item_code), tier_label(ln.tier), ln.asked, ln.allocated, ln.unmet,
                _reasons(ln)] for ln in unmet], MD_LIMIT),
        Table("5 分配明细 Allocations", "分配明细及依据 / Allocations and reasons",
              ["方案行 Plan line", "需求 Demand", "村居/单位 Requester", "物资编码 Item code",
               "物资名称 Item", "优先级 Tier", "申请 Asked", "分配 Allocated", "物资包 Package",
               "仓库 Depots", "依据 Reasons"],
              [[ln.plan_line_id, ln.demand_id, _requester(facts, ln.requester_id), ln.item_code,
                item_name(facts, ln.item_code), tier_label(ln.tier), ln.asked, ln.allocated,
                f"{ln.package_code} ×{ln.packages}" if ln.packages else "", ", ".join(ln.depots),
                _reasons(ln)] for ln in p.lines], MD_LIMIT),
    ])


def _trips(facts: DayFacts) -> Section:
    tz = facts.timezone
    stops = [(t, s) for t in facts.trips for s in t.stops]
    done = sum(1 for _, s in stops if s.delivered)
    text = [f"车次 {len(facts.trips)}，站点 {len(stops)}，已签收 {done} / {len(facts.trips)} trips, "
            f"{len(stops)} stops, {done} confirmed."]
    for d in facts.dispatches:
        text.append(f"方案 {d.plan_id}: 调度 {d.status}，配送人员需 {d.staffing_required} 缺 "
                    f"{d.staffing_short} / staffing required {d.staffing_required}, short "
                    f"{d.staffing_short} (每10户1人)")
    unmet = [(d, u) for d in facts.dispatches for u in d.unmet]
    return Section("六、配送与签收 / Trips and deliveries", text, [
        Table("6 车次 Trips", "车次 / Trips",
              ["车次 Trip", "车辆 Vehicle", "通行证 Pass", "仓库 Depot", "冷藏 Refrigerated",
               "两人随车 Crew of two", "站点 Stops", "已签收 Delivered", "载重 Load (kg)",
               "里程 Distance (km)", "出发 Depart", "状态 Status"],
              [[t.trip_id, t.vehicle_id, t.pass_number, t.depot_id, "是" if t.refrigerated else "否",
                "是" if t.crew_of_two else "否 NO", len(t.stops),
                sum(1 for s in t.stops if s.delivered), round(t.load_kg, 1),
                round(t.distance_m / 1000, 1), local_time(t.depart_at, tz), t.status]
               for t in facts.trips]),
        Table("6 配送站点 Stops", "配送站点 / Stops",
              ["车次 Trip", "站序 Seq", "村居/单位 Requester", "存放点 Drop point", "预计到达 ETA",
               "物资 Items", "已签收 Delivered"],
              [[t.trip_id, s.seq, _requester(facts, s.requester_id), s.drop_point_id,
                local_time(s.eta, tz), "; ".join(f"{item_name(facts, c)} ×{q}" for _, _, c, q in s.lines),
                "是 yes" if s.delivered else "否 no"] for t, s in stops], MD_LIMIT),
        Table("6 未能配送 Not dispatched", "未能拣货或排线 / Not picked or not routed",
              ["方案行 Plan line", "需求 Demand", "物资编码 Item code", "物资名称 Item",
               "仓库 Depot", "数量 Quantity", "原因 Reason"],
              [[u.plan_line_id, u.demand_id, u.item_code, item_name(facts, u.item_code), u.depot_id,
                u.quantity, f"{u.reason.zh} / {u.reason.en}" if u.reason.zh else u.reason.code]
               for _, u in unmet]),
    ])


def _alerts(facts: DayFacts) -> Section:
    headers = ["开始 Opened", "类型 Kind", "级别 Severity", "状态 State", "仓库 Depot", "库区 Zone",
               "规则 Rule", "对象 Subject", "内容 Title"]
    if facts.alerts is None:
        why = next((n for n in facts.notes if n.startswith("alerts:")), "")
        return Section("七、预警 / Alerts", [f"**监测服务不可用，本节缺 / unavailable**: {why}"], [
            Table("7 预警 Alerts", "预警 / Alerts", headers,
                  [["不可用 / unavailable", why, "", "", "", "", "", "", ""]])])
    sev = Counter(a.severity for a in facts.alerts)
    text = [f"当日预警 {len(facts.alerts)} 条 / {len(facts.alerts)} alerts opened on the day: "
            + ", ".join(f"{SEVERITY.get(k, k)} {k} {n}" for k, n in sorted(sev.items()))]
    return Section("七、预警 / Alerts", text, [
        Table("7 预警 Alerts", "预警 / Alerts", headers,
              [[local_time(a.opened_at, facts.timezone), f"{ALERT_KINDS.get(a.kind, a.kind)} {a.kind}",
                f"{SEVERITY.get(a.severity, a.severity)} {a.severity}",
                f"{ALERT_STATE.get(a.state, a.state)} {a.state}", a.depot, a.zone, a.rule_code,
                a.subject, f"{a.title_zh} / {a.title_en}"] for a in facts.alerts])])


def _ledger(facts: DayFacts) -> Section:
    r = facts.reconciliation
    if r is None:
        why = next((n for n in facts.notes if n.startswith("ledger")), "")
        return Section("八、台账核对 / Ledger reconciliation",
                       [f"未核对 / not checked: {why}"], [])
    verdict = ("一致：哈希链完整，余额与台账相符 / OK: the hash chain verifies and every balance "
               "matches the ledger" if r.ok else
               "不一致，请核查 / MISMATCH: see logistics ReconcileLedger")
    anchor = (f"链头锚点 / Chain head anchor: {r.head_seq}:{r.head_hash} — 请纪委留存；日后以 "
              f"`python -m services.logistics.reconcile --anchor {r.head_seq}:{r.head_hash}` 核对 "
              f"/ kept by the discipline commission, checked later against the ledger with that command")
    return Section("八、台账核对 / Ledger reconciliation", [verdict, anchor] if r.head_seq else [verdict], [
        Table("8 台账核对 Ledger", "台账核对 / Reconciliation", ["项目 Item", "数值 Value"],
              [["结论 Result", "一致 OK" if r.ok else "不一致 MISMATCH"],
               ["核对行数 Lines checked", r.lines_checked], ["批次 Lots checked", r.lots_checked],
               ["台账末行 Head seq", r.head_seq], ["链头哈希 Head HMAC", r.head_hash],
               ["链断点 Chain breaks", r.chain_breaks],
               ["余额不符 Balance mismatches", r.mismatches]])])


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}" if fen >= 0 else f"-{yuan(-fen)}"


def _channel(facts: DayFacts) -> Section:
    title = "九、商超保供 / Supermarket channel"
    ch = facts.channel
    if ch is None:
        why = next((n for n in facts.notes if n.startswith("channel:")), "")
        return Section(title, [f"商超保供服务未接入或不可用 / the market service is not there: {why}"], [])
    text = [f"居民订单 {ch.household_orders} 单，社区汇总 {ch.community_orders} 单，包裹 {ch.parcels} 个；"
            f"已签收 {ch.parcels_received}、短少 {ch.parcels_short}、拒收 {ch.parcels_refused} / "
            f"{ch.household_orders} household orders in {ch.community_orders} community orders, "
            f"{ch.parcels} parcels: {ch.parcels_received} received, {ch.parcels_short} short, "
            f"{ch.parcels_refused} refused.",
            f"金额（元）：订购 {yuan(ch.ordered_fen)}，备货确认 {yuan(ch.confirmed_fen)}，送达 {yuan(ch.delivered_fen)} / "
            f"amounts (yuan): ordered {yuan(ch.ordered_fen)}, confirmed {yuan(ch.confirmed_fen)}, "
            f"delivered {yuan(ch.delivered_fen)}."]
    return Section(title, text, [
        Table("9 商超保供 Channel", "商超保供 / Supermarket channel", ["项目 Item", "数值 Value"], [
            ["居民订单 Household orders", ch.household_orders],
            ["其中在线支付 Paid online", ch.online_orders],
            ["其中网格员统收 Collected in advance", ch.collected_orders],
            ["其中代付记账 On account (代付)", ch.on_account_orders],
            ["社区汇总订单 Community orders", ch.community_orders],
            ["包裹 Parcels", ch.parcels],
            ["签收 / 短少 / 拒收 Received / short / refused",
             f"{ch.parcels_received} / {ch.parcels_short} / {ch.parcels_refused}"],
            ["订购金额（元）Ordered (yuan)", yuan(ch.ordered_fen)],
            ["确认金额（元）Confirmed (yuan)", yuan(ch.confirmed_fen)],
            ["送达金额（元）Delivered (yuan)", yuan(ch.delivered_fen)],
            ["在线已付（元）Paid online (yuan)", yuan(ch.paid_online_fen)],
            ["统收（元）Collected (yuan)", yuan(ch.collected_fen)],
            ["代付待结（元）On account owed (yuan)", yuan(ch.on_account_owed_fen)],
            ["已结算社区订单 Community orders settled", ch.settled_community_orders],
            ["封控结束总结算 Accounts closed", "是 yes" if ch.accounts_closed else "否 no"],
        ])])


def daily_sections(facts: DayFacts) -> list[Section]:
    return [_receipts(facts), _donations(facts), _stock(facts), _demands(facts), _plan(facts),
            _trips(facts), _alerts(facts), _ledger(facts), _channel(facts)]
