"""A county day end to end (`make demo`): start the services on a simulated clock, play the
scenario through their public gRPC APIs as villages, units, grid workers and HQ would, check
that every outcome happened as the scenario says, print a summary and write the day's outputs
under var/reports/<day>/. Exits non-zero if anything did not happen.

    python -m simulators.county_day [--scenario simulators/scenarios/county_day.yaml] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from supply.v1 import allocation_pb2 as apb
from supply.v1 import allocation_pb2_grpc as arpc
from supply.v1 import common_pb2 as c
from supply.v1 import intake_pb2 as ipb
from supply.v1 import intake_pb2_grpc as irpc
from supply.v1 import logistics_pb2 as lpb
from supply.v1 import logistics_pb2_grpc as lrpc
from supply.v1 import market_pb2_grpc as krpc
from supply.v1 import monitoring_pb2 as mpb
from supply.v1 import monitoring_pb2_grpc as mrpc

from services.common.auth import mint_token
from services.common.broker_admin import fresh_vhost
from services.common.catalogue import load_catalogue
from services.common.clock import SimulatedClock
from services.common.config import DEFAULT_GRPC_PORTS, REPORTS_GRPC_PORT, ROOT, load_settings
from services.common.grpc_client import open_channel
from services.common.tiers import TIER_NAMES
from services.intake.entrypoints.import_cli import import_file
from simulators.market_day import act_market_delivery, act_market_orders, act_market_send

TZ = ZoneInfo("Asia/Shanghai")
STARTUP_BUDGET_S = 40  # real seconds for every process to come up before the county day starts
TOKEN = "demo-hq-token-0000000001"
TOKENS = f"{TOKEN}=county-hq:admin"
RISK = {"sealed": c.RISK_LEVEL_SEALED, "controlled": c.RISK_LEVEL_CONTROLLED,
        "prevention": c.RISK_LEVEL_PREVENTION}
UNIT = {"hospital": ipb.UNIT_TYPE_HOSPITAL, "fever_clinic": ipb.UNIT_TYPE_FEVER_CLINIC,
        "isolation_site": ipb.UNIT_TYPE_ISOLATION_SITE, "school": ipb.UNIT_TYPE_SCHOOL,
        "nursing_home": ipb.UNIT_TYPE_NURSING_HOME, "enterprise": ipb.UNIT_TYPE_ENTERPRISE}
SERVICES = ("intake", "logistics", "allocation", "monitoring", "market")
KINDS = {"monitoring": ("api", "worker", "relay", "ingest")}


@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Day:
    scenario: dict
    console: Console
    var: Path
    clock: SimulatedClock
    env: dict[str, str]
    checks: list[Check] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def reports_dir(self) -> Path:
        return Path(os.environ.get("SUPPLY_REPORTS_DIR", ROOT / "var" / "reports")) / self.scenario["day"]

    @property
    def day(self) -> date:
        return date.fromisoformat(self.scenario["day"])

    def local_now(self) -> datetime:
        return self.clock.now().astimezone(TZ)

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(what, bool(ok), detail))
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        self.console.print(f"  {mark} {what}" + (f" [dim]({detail})[/]" if detail else ""))

    def wait_until(self, hhmm: str) -> None:
        """Let the simulated clock reach `hhmm` local on the day (it runs by itself)."""
        hh, mm = map(int, hhmm.split(":"))
        target = datetime.combine(self.day, dtime(hh, mm), TZ)
        while self.clock.now() < target:
            time.sleep(0.05)


# ---- setting the county up ------------------------------------------------------------------
def villages(scenario: dict) -> list[dict]:
    rng = random.Random(scenario["seed"])
    spec = scenario["villages"]
    risks = [r for r, n in spec["risk_mix"].items() for _ in range(n)]
    rng.shuffle(risks)
    out = []
    for i in range(spec["count"]):
        town = scenario["townships"][i % len(scenario["townships"])]
        pop = rng.randint(*spec["population"])
        lat = town["lat"] + rng.uniform(-0.04, 0.04)
        lon = town["lon"] + rng.uniform(-0.05, 0.05)
        kind = "社区" if i % 4 == 0 else "村"
        out.append({"id": f"V-{i + 1:03d}", "name": f"{town['name']}{'第' if kind == '社区' else ''}{i + 1}{kind}",
                    "kind": kind, "township": town["name"], "population": pop,
                    "households": pop // 3, "risk": risks[i % len(risks)], "lat": round(lat, 5),
                    "lon": round(lon, 5), "elderly_alone": rng.randint(3, 40),
                    "chronic": rng.randint(20, 300), "infants": rng.randint(5, 80)})
    return out


def village_sheet(rows: list[dict]) -> bytes:
    """The village list as a county clerk would send it: XLSX with Chinese headers."""
    import io

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "村居"
    ws.append(["编号", "名称", "类型", "乡镇", "常住人口", "户数", "风险等级", "纬度", "经度",
               "独居老人", "慢性病患者", "婴幼儿", "物资存放点", "存放点纬度", "存放点经度"])
    words = {"sealed": "封控区", "controlled": "管控区", "prevention": "防范区"}
    for v in rows:
        ws.append([v["id"], v["name"], v["kind"], v["township"], v["population"], v["households"],
                   words[v["risk"]], v["lat"], v["lon"], v["elderly_alone"], v["chronic"], v["infants"],
                   f"{v['name']}物资存放点", round(v["lat"] + 0.0004, 5), round(v["lon"] + 0.0004, 5)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def demand_sheet(rows: list[dict], day: date, bad_rows: int) -> bytes:
    """A WeChat-group demand list (CSV, GBK as Excel on Chinese Windows saves it)."""
    lines = ["村居编号,物资名称,数量,配送日期,备注"]
    for v in rows[:8]:
        lines.append(f"{v['id']},食盐(500克),{max(1, v['population'] // 200)},{day:%Y/%m/%d},群内汇总")
    for i in range(bad_rows):
        lines.append(f"{rows[8 + i]['id']},食盐(500克),十二袋,{day:%Y/%m/%d},数量写成了汉字")
    return ("\r\n".join(lines) + "\r\n").encode("gb18030")


# ---- processes ------------------------------------------------------------------------------
def start_services(d: Day) -> None:
    subprocess.run([sys.executable, "-m", "services.cli", "migrate", *SERVICES, "console", "reports"], env=d.env,
                   cwd=ROOT, check=True, capture_output=True)
    log_dir = d.var / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        for kind in KINDS.get(service, ("api", "worker", "relay")):
            log = (log_dir / f"{service}-{kind}.log").open("wb")
            d.procs.append(subprocess.Popen([sys.executable, "-m", f"services.{service}", kind],
                                            env=d.env, cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True))
    log = (log_dir / "reports-scheduler.log").open("wb")  # the 17:30 report; GetDailyReport
    d.procs.append(subprocess.Popen([sys.executable, "-m", "services.reports", "scheduler"], env=d.env,
                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    log = (log_dir / "console-web.log").open("wb")
    d.procs.append(subprocess.Popen([sys.executable, "-m", "services.console", "web"], env=d.env, cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + 60
    tls = load_settings("tools", d.env).grpc_tls
    for service in SERVICES:
        target = f"127.0.0.1:{d.env[f'{service.upper()}_GRPC_PORT']}"
        while True:
            try:
                with open_channel(target, tls) as ch:
                    if health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                            timeout=1).status == 1:
                        break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in d.procs):
                raise SystemExit(f"{service} did not start; see {log_dir}")
            time.sleep(0.1)
    import requests

    while True:
        try:
            if requests.get(f"{console_url(d)}/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or any(p.poll() is not None for p in d.procs):
            raise SystemExit(f"the console did not start; see {log_dir}/console-web.log")
        time.sleep(0.1)


def ports_in_use(d: Day) -> list[int]:
    """The day's ports (gRPC, reports, console) something already listens on."""
    ports = [int(v) for k, v in d.env.items() if k.endswith("_GRPC_PORT")]
    ports.append(int(d.env.get("CONSOLE_HTTP_PORT", "8080")))
    busy = []
    for port in sorted(set(ports)):
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


def console_url(d: Day) -> str:
    return f"http://127.0.0.1:{d.env.get('CONSOLE_HTTP_PORT', '8080')}"


def add_console_users(d: Day) -> list:
    """The demo's console accounts, one per role (simulators/county_seed.py)."""
    from services.common.db import make_engine
    from services.console.adapters.store import AccountStore
    from simulators.county_seed import add_demo_users

    engine = make_engine(f"sqlite:///{d.var / 'console.db'}")
    users = add_demo_users(AccountStore(engine, lambda: datetime.now(UTC)), d.scenario)
    engine.dispose()
    return users


def check_console(d: Day) -> None:
    """At the end of the day HQ's board and the day's plan open in the console for the demo user."""
    import re

    import requests

    from simulators.county_seed import DEMO_PASSWORD

    with requests.Session() as s:
        form = s.get(f"{console_url(d)}/login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        s.post(f"{console_url(d)}/login", data={"username": "hq", "password": DEMO_PASSWORD, "csrf_token": token},
               timeout=10)
        plan = s.get(f"{console_url(d)}/hq/plan?day={d.scenario['day']}", timeout=30)
    d.check("HQ signs in to the console and sees the approved plan of the day",
            plan.status_code == 200 and 'id="plan-status"' in plan.text, f"HTTP {plan.status_code}")


def print_console(d: Day, users: list, keep: bool) -> None:
    from simulators.county_seed import DEMO_PASSWORD

    table = Table(title=f"the console / 控制台: {console_url(d)}")
    for col in ("user / 用户", "role / 角色", "village or unit / 村居或单位", "name / 名称"):
        table.add_column(col)
    for u in users:
        table.add_row(u.username, u.role, u.scope, u.display_name)
    d.console.print(table)
    d.console.print(f"password for every demo user / 演示账号密码: [bold]{DEMO_PASSWORD}[/] (dev only)")
    if keep:
        d.console.print(f"[bold]the stack and the console keep running[/]: open {console_url(d)}; "
                        "stop with `make down-demo` / 结束: make down-demo")
    else:
        d.console.print("to look around in the browser afterwards / 会后在浏览器中查看: make demo KEEP=1")


def stop_services(d: Day) -> None:
    for p in d.procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in d.procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


# ---- the acts of the day --------------------------------------------------------------------
def md() -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {TOKEN}")]


def person(d: Day, sub: str, role: str, scope: str = "") -> list[tuple[str, str]]:
    """A person's own signed token, as the console mints it: a requisition or a donation is
    decided by someone other than who filed or registered it (申请人 ≠ 审核人)."""
    token = mint_token(load_settings("intake", d.env).jwt_key, sub=sub, role=role, scope=scope)
    return [("authorization", f"Bearer {token}")]


def key() -> str:
    return str(uuid.uuid4())


def act_register(d: Day, intake: irpc.IntakeServiceStub) -> None:
    d.console.rule("07:00 登记村居与单位 · registering villages and units")
    rows = villages(d.scenario)
    d.facts["villages"] = rows
    report = import_file(intake, village_sheet(rows), "xlsx", "requesters", True, TOKEN, d.console)
    d.check(f"village list imported from XLSX: {report.rows_accepted}/{len(rows)} rows",
            report.committed and report.rows_accepted == len(rows),
            "; ".join(f"row {e.row} {e.column}: {e.reason}" for e in report.errors[:3]))
    for u in d.scenario["units"]:
        intake.RegisterRequester(ipb.RegisterRequesterRequest(idempotency_key=f"unit-{u['id']}", requester=ipb.Requester(
            id=u["id"], kind=ipb.REQUESTER_KIND_UNIT, unit_type=UNIT[u["kind"]], name=u["name"],
            township=u["township"], location=c.GeoPoint(lat=u["lat"], lon=u["lon"]),
            headcount=u["headcount"], beds=u["beds"])), metadata=md())
    listed = intake.ListRequesters(ipb.ListRequestersRequest(page=c.PageRequest(page_size=500)), metadata=md())
    d.check("every village and unit registered", len(listed.requesters) == len(rows) + len(d.scenario["units"]),
            f"{len(listed.requesters)} requesters")


def act_morning(d: Day, intake: irpc.IntakeServiceStub, at_1030) -> None:
    d.console.rule("08:00–10:45 报需求 · the morning's demands")
    m = d.scenario["morning"]
    rows = d.facts["villages"]
    rng = random.Random(d.scenario["seed"] + 1)
    batch = []
    for i, v in enumerate(rows):
        factor = 10 if i == m["over_norm_village"] else 1
        lines = [c.ItemLine(item_code=item, quantity=max(1, round(per100 * v["population"] / 100
                                                                  * rng.uniform(0.8, 1.2) * factor)))
                 for item, per100 in m["household_basket_per_100"].items()]
        batch.append(ipb.SubmitDemandRequest(idempotency_key=f"morning-{v['id']}", requester_id=v["id"],
                                             delivery_day=d.scenario["day"], lines=lines))
    d.wait_until("08:00")
    resp = intake.SubmitDemandBatch(ipb.SubmitDemandBatchRequest(idempotency_key="morning-batch", demands=batch),
                                    metadata=md(), timeout=60)
    flagged = [r.demand.requester_id for r in resp.results if r.demand.flagged]
    d.check(f"village demands accepted in one batch: {resp.accepted}/{len(batch)}", resp.accepted == len(batch))
    d.check("the over-norm village is flagged, not refused (按实申领)",
            rows[m["over_norm_village"]]["id"] in flagged, ", ".join(flagged))
    tiers: dict[int, int] = {}
    for r in resp.results:
        tiers[r.demand.top_tier] = tiers.get(r.demand.top_tier, 0) + 1
    for uid, lines in m["units"].items():
        dm = intake.SubmitDemand(ipb.SubmitDemandRequest(
            idempotency_key=f"unit-demand-{uid}", requester_id=uid, delivery_day=d.scenario["day"],
            lines=[c.ItemLine(item_code=k, quantity=q) for k, q in lines.items()]), metadata=md())
        tiers[dm.top_tier] = tiers.get(dm.top_tier, 0) + 1
        if uid == "U-HOSP-1":
            d.check("the hospital's lines are tier 1, frontline medical (首先保障医疗救护)",
                    all(ln.tier == c.TIER_FRONTLINE_MEDICAL for ln in dm.lines))
    d.facts["tiers"] = tiers
    try:
        intake.SubmitDemand(ipb.SubmitDemandRequest(
            idempotency_key="baijiu", requester_id=rows[1]["id"], delivery_day=d.scenario["day"],
            lines=[c.ItemLine(item_code="BAIJIU-500ML", quantity=10)]), metadata=md())
        d.check("a demand for baijiu is refused (烟酒等非必须品除外)", False, "it was accepted")
    except grpc.RpcError as exc:
        d.check("a demand for baijiu is refused (烟酒等非必须品除外)",
                exc.code() == grpc.StatusCode.FAILED_PRECONDITION and "NON_ESSENTIAL" in exc.details(),
                exc.details()[:60])

    d.console.rule("09:00 特殊需求与申领 · special needs, a unit requisition")
    d.wait_until("09:00")
    for n in m["special_needs"]:
        v = rows[n["village"]]
        resp = intake.RegisterSpecialNeed(ipb.RegisterSpecialNeedRequest(
            idempotency_key=f"sn-{n['name']}", requester_id=v["id"],
            beneficiary=ipb.Beneficiary(name=n["name"], phone=n["phone"]),
            category=getattr(ipb, f"SPECIAL_NEED_CATEGORY_{n['category'].upper()}"),
            lines=[c.ItemLine(item_code=k, quantity=q) for k, q in n["lines"].items()],
            period_days=n.get("period_days", 0), delivery_day=d.scenario["day"]), metadata=md())
        raw = resp.SerializeToString()
        d.check(f"special need for {resp.special_need.masked_name} registered as tier 2; name and phone never echoed",
                resp.demand.top_tier == c.TIER_VULNERABLE and n["name"].encode() not in raw
                and n["phone"].encode() not in raw, resp.special_need.masked_phone)
    rq = m["requisition"]
    req = intake.FileRequisition(ipb.FileRequisitionRequest(
        idempotency_key="req-1", unit_id=rq["unit"], purpose=rq["purpose"], headcount_basis=620,
        lines=[c.ItemLine(item_code=k, quantity=q) for k, q in rq["lines"].items()],
        delivery_day=d.scenario["day"]), metadata=person(d, "hosp-nurse", "unit", rq["unit"]))
    intake.ApproveRequisition(ipb.ApproveRequisitionRequest(
        idempotency_key="req-1-head", requisition_id=req.id, step=ipb.APPROVAL_STEP_HEAD,
        reason="一把手审核同意"), metadata=person(d, "hosp-head", "unit_head", rq["unit"]))
    done = intake.ApproveRequisition(ipb.ApproveRequisitionRequest(
        idempotency_key="req-1-hq", requisition_id=req.id, step=ipb.APPROVAL_STEP_HQ,
        reason="指挥部批准"), metadata=md())
    d.check("the hospital's requisition: head approval, then HQ approval → a demand",
            done.requisition.status == ipb.REQUISITION_STATUS_HQ_APPROVED and bool(done.demand.id),
            f"{len(done.requisition.approvals)} approval records")

    d.console.rule("10:00 微信群表格 · the WeChat demand list")
    d.wait_until("10:00")
    report = import_file(intake, demand_sheet(rows, d.day, m["spreadsheet_bad_rows"]), "csv", "demands",
                         False, TOKEN, d.console)
    d.facts["import_errors"] = [(e.row, e.column, e.reason) for e in report.errors]
    d.check(f"the demand list: good rows imported, {m['spreadsheet_bad_rows']} bad row reported with row and column",
            report.committed and len(report.errors) == m["spreadsheet_bad_rows"] and report.rows_accepted == 8,
            "; ".join(f"row {e.row} {e.column}: {e.reason}" for e in report.errors))

    at_1030()
    d.console.rule("10:30 捐赠登记与检验 · a donation arrives and is inspected")
    d.wait_until("10:30")
    dn = m["donation"]
    today = d.local_now().date()
    donation = intake.RegisterDonation(ipb.RegisterDonationRequest(
        idempotency_key="donation-1", donor=ipb.Donor(name=dn["donor"]["name"], contact=dn["donor"]["contact"],
                                                      kind=ipb.DONOR_KIND_ORGANIZATION),
        lines=[ipb.DonationLineSpec(item_code=ln["item_code"], quantity=ln["quantity"], lot=ln["lot"],
                                    expiry=date.fromordinal(today.toordinal() + ln["expiry_days"]).isoformat(),
                                    certificates=["CERT-" + ln["lot"]]) for ln in dn["lines"]]), metadata=md())
    decisions = {"accept": ipb.INSPECTION_DECISION_ACCEPT, "redirect": ipb.INSPECTION_DECISION_REDIRECT,
                 "return": ipb.INSPECTION_DECISION_RETURN}
    for i, ln in enumerate(dn["lines"]):
        req = ipb.InspectDonationLineRequest(
            idempotency_key=f"inspect-{i}", donation_id=donation.id, line_no=i,
            decision=decisions[ln["decision"]], reason=ln.get("reason", "符合标准 / meets the standard"),
            redirect_to=ln.get("redirect_to", ""))
        if "medical_grade" in ln and ln["decision"] == "accept":
            req.medical_grade = ln["medical_grade"]
        intake.InspectDonationLine(req, metadata=person(d, "donation-inspector", "inspector"))
    summary = intake.GetDonationSummary(ipb.GetDonationSummaryRequest(day=today.isoformat()), metadata=md())
    returned = sum(i.returned.lines for i in summary.items)
    accepted = sum(i.accepted.lines for i in summary.items)
    d.facts["donations"] = {"received": summary.donations_received, "accepted": accepted, "returned": returned}
    d.check("donation: one line accepted, one redirected, one returned to the donor with a reason",
            accepted == 1 and returned == 1, f"{summary.donations_received} donation(s) today")

    d.console.rule("11:00 截止 · the cut-off")
    d.wait_until("11:05")
    late = []
    for i in range(m["late_demands"]):
        v = rows[-1 - i]
        dm = intake.SubmitDemand(ipb.SubmitDemandRequest(
            idempotency_key=f"late-{v['id']}", requester_id=v["id"], delivery_day=d.scenario["day"],
            lines=[c.ItemLine(item_code="NOODLE-1KG", quantity=20)]), metadata=md())
        late.append(dm)
    nxt = date.fromordinal(d.day.toordinal() + 1).isoformat()
    d.check(f"{len(late)} demands after 11:00 roll over to {nxt}, and the reply says so",
            all(x.rolled_over and x.delivery_day == nxt and any(n.code == "ROLLED_OVER" for n in x.notices)
                for x in late))
    open_today = intake.ListDemands(ipb.ListDemandsRequest(delivery_day=d.scenario["day"],
                                                           page=c.PageRequest(page_size=500)), metadata=md())
    d.facts["demands_today"] = len(open_today.demands)
    d.facts["lines_today"] = sum(len(x.lines) for x in open_today.demands)


def act_depots(d: Day, logistics: lrpc.LogisticsServiceStub) -> None:
    d.console.rule("06:30 仓库、车辆与库存 · depots, vehicles, opening stock")
    sc = d.scenario
    for dep in sc["depots"]:
        logistics.RegisterDepot(lpb.RegisterDepotRequest(idempotency_key=f"depot-{dep['id']}", depot=lpb.Depot(
            id=dep["id"], name=dep["name"], location=c.GeoPoint(lat=dep["lat"], lon=dep["lon"]),
            loading_hours=c.LocalTimeWindow(start="06:00", end="22:00"))), metadata=md())
        for z in dep["zones"]:
            logistics.RegisterZone(lpb.RegisterZoneRequest(idempotency_key=f"zone-{z['id']}", zone=lpb.Zone(
                id=z["id"], depot_id=dep["id"], name=z["name"], storage_class=z["storage_class"],
                capacity_l=z["capacity_l"])), metadata=md())
    slots = [c.LocalTimeWindow(start=w.split("-")[0], end=w.split("-")[1]) for w in sc["slots"]]
    fleet = 0
    for v in sc["vehicles"]:
        prefix = v["id"].rsplit("-", 1)[0]
        for k in range(v["count"]):
            fleet += 1
            logistics.RegisterVehicle(lpb.RegisterVehicleRequest(idempotency_key=f"veh-{prefix}-{k}", vehicle=lpb.Vehicle(
                id=f"{prefix}-{k + 1:02d}", pass_number=f"{v['pass']}-{k + 1}", driver=f"drv-{prefix}-{k + 1}",
                clerk=f"clk-{prefix}-{k + 1}", capacity_kg=v["capacity_kg"], capacity_l=v["capacity_l"],
                refrigerated=v["refrigerated"], depot_id=v["depot"], slots=slots)), metadata=md())
    today = d.day
    by_depot: dict[str, list] = {}
    for i, line in enumerate(sc["stock"]):
        by_depot.setdefault(line["depot"], []).append(lpb.ReceiptLineSpec(
            item_code=line["item"], quantity=line["quantity"], zone_id=line["zone"],
            lot_number=line.get("lot", f"P-{i:03d}"), lot_id=line.get("lot", ""),
            expiry=date.fromordinal(today.toordinal() + line["expiry_days"]).isoformat()))
    refused = []
    for depot, lines in by_depot.items():
        receipt = logistics.ReceiveStock(lpb.ReceiveStockRequest(
            idempotency_key=f"opening-{depot}", kind=lpb.RECEIPT_KIND_PURCHASE, depot_id=depot,
            origin_ref=f"采购单 PO-{depot}-opening", lines=lines), metadata=md())
        if receipt.status != "accepted":
            refused.append(f"{depot}: {receipt.rule_code} {receipt.message}")
    d.check(f"{len(sc['depots'])} depots, {sum(len(x['zones']) for x in sc['depots'])} zones, "
            f"{fleet} vehicles registered; opening stock received", not refused, "; ".join(refused))
    try:
        logistics.ReceiveStock(lpb.ReceiveStockRequest(
            idempotency_key="wrong-zone", kind=lpb.RECEIPT_KIND_PURCHASE, depot_id="wh01", origin_ref="PO-mistake",
            lines=[lpb.ReceiptLineSpec(item_code="ETHANOL-75-500ML", quantity=50, zone_id="wh01-oxd", lot_number="ETH-X",
                                       expiry=date.fromordinal(today.toordinal() + 300).isoformat())]), metadata=md())
        d.check("alcohol put into the oxidizer cage is refused (segregation, 篇11)", False, "it was accepted")
    except grpc.RpcError as exc:
        d.check("alcohol put into the oxidizer cage is refused (segregation, 篇11)",
                exc.code() == grpc.StatusCode.FAILED_PRECONDITION and "SEGREGATION" in exc.details(), "SEGREGATION")


def start_sensors(d: Day) -> None:
    """The cold stores' and warehouses' sensor gateways, on the county clock."""
    log = (d.var / "log" / "sensor-gateways.log").open("wb")
    d.procs.append(subprocess.Popen(
        [sys.executable, "-m", "simulators.gateway", "--scenario",
         str(ROOT / d.scenario["sensors"]), "--clock", "env", "--duration-min", "300", "--batch", "200",
         "--root", d.env.get("SUPPLY_MQTT_ROOT", "supply")],
        env=d.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))


def act_cold_store(d: Day, monitoring: mrpc.MonitoringServiceStub, logistics: lrpc.LogisticsServiceStub) -> None:
    cf = d.scenario["compressor_failure"]
    d.console.rule("08:30 冷库压缩机故障 · the cold store's compressor fails")
    deadline = time.monotonic() + 60
    alerts = []
    while time.monotonic() < deadline:
        alerts = monitoring.ListAlerts(mpb.ListAlertsRequest(depot=cf["depot"], zone=cf["zone"]),
                                       metadata=md()).alerts
        if any(a.spoilage for a in alerts):
            break
        time.sleep(0.3)
    spoil = [a for a in alerts if a.spoilage]
    d.facts["alerts"] = [(a.rule_code, a.title_en) for a in alerts]
    d.check(f"the chilled room's temperature alarm opened ({', '.join(sorted({a.rule_code for a in alerts})) or 'none'})",
            bool(spoil), spoil[0].title_zh if spoil else "")
    lot = None
    while time.monotonic() < deadline:
        lots = logistics.ListLots(lpb.ListLotsRequest(lot_id=cf["lot"], include_empty=True), metadata=md()).lots
        lot = lots[0] if lots else None
        if lot is not None and lot.status == lpb.LOT_STATUS_QUARANTINED:
            break
        time.sleep(0.3)
    d.check(f"the pork lot {cf['lot']} in that room was quarantined automatically before the cut-off",
            lot is not None and lot.status == lpb.LOT_STATUS_QUARANTINED and d.local_now().hour < 11,
            f"at {d.local_now():%H:%M}")


def act_plan(d: Day, allocation: arpc.AllocationServiceStub, logistics: lrpc.LogisticsServiceStub) -> None:
    d.console.rule("11:00 调配方案 · the daily plan at the cut-off")
    deadline = time.monotonic() + 90
    plan = None
    while time.monotonic() < deadline:
        plans = allocation.ListPlans(apb.ListPlansRequest(delivery_day=d.scenario["day"]), metadata=md()).plans
        proposed = [p for p in plans if p.status == apb.PLAN_STATUS_PROPOSED]
        if proposed:
            plan = max(proposed, key=lambda p: p.version)
            break
        time.sleep(0.2)
    d.check("a plan was proposed by itself at the 11:00 cut-off", plan is not None,
            f"at {d.local_now():%H:%M} county time")
    if plan is None:
        return
    lines, token = [], ""
    while True:
        page = allocation.GetPlan(apb.GetPlanRequest(plan_id=plan.plan_id, lines_page=c.PageRequest(
            page_size=500, page_token=token)), metadata=md())
        lines.extend(page.lines)
        plan = page.plan
        token = page.page.next_page_token
        if not token:
            break
    d.facts["plan"] = {"plan_id": plan.plan_id, "lines": plan.totals.lines, "asked": plan.totals.asked,
                       "allocated": plan.totals.allocated, "unmet": plan.totals.unmet,
                       "packages": plan.totals.substituted_packages,
                       "tiers": {int(t.tier): (t.asked, t.allocated) for t in plan.tiers}}
    t1 = next((t for t in plan.tiers if t.tier == c.TIER_FRONTLINE_MEDICAL), None)
    d.check("frontline medical (tier 1) is served in full first (急用优先, 首先保障医疗救护)",
            t1 is not None and t1.allocated == t1.asked, f"{t1.allocated}/{t1.asked}" if t1 else "")
    vulnerable = next((t for t in plan.tiers if t.tier == c.TIER_VULNERABLE), None)
    d.check("vulnerable people's special needs (tier 2) are served in full",
            vulnerable is not None and vulnerable.allocated == vulnerable.asked)
    codes = {r.code for ln in lines for r in ln.reasons}
    d.check("under shortage ordinary tiers stop at the reserve floor (储备底线) and say so",
            "RESERVE_FLOOR" in codes, ", ".join(sorted(codes & {"RESERVE_FLOOR", "FAIR_SHARE", "NO_STOCK"})))
    d.check("the standard vegetable package stands in for short cabbage (标准化蔬菜包)",
            plan.totals.substituted_packages > 0, f"{plan.totals.substituted_packages} packages")
    d.check("every line says why, in Chinese and English", all(ln.reasons and ln.reasons[0].zh and ln.reasons[0].en
                                                                 for ln in lines))
    d.facts["plan_lines"] = lines
    d.wait_until("11:30")
    approved = allocation.ApprovePlan(apb.ApprovePlanRequest(idempotency_key=f"approve-{plan.plan_id}",
                                                             plan_id=plan.plan_id), metadata=md())
    d.check("HQ approved the plan (报指挥部批准) before the 17:00 dispatch deadline",
            approved.status == apb.PLAN_STATUS_APPROVED and not approved.late)


def act_dispatch(d: Day, logistics: lrpc.LogisticsServiceStub) -> None:
    d.console.rule("12:00 配送 · trips and proof of delivery")
    deadline = time.monotonic() + 120
    trips = []
    while time.monotonic() < deadline:
        trips = logistics.ListTrips(lpb.ListTripsRequest(delivery_day=d.scenario["day"]), metadata=md()).trips
        if trips:
            break
        time.sleep(0.3)
    stops = sum(len(t.stops) for t in trips)
    d.check(f"trips built: {len(trips)} trips, {stops} stops, {sum(t.distance_m for t in trips) / 1000:.0f} km",
            bool(trips))
    cold_ok = all(t.refrigerated or not any(ln.cold for s in t.stops for ln in s.lines) for t in trips)
    d.check("cold goods ride only in refrigerated vehicles", cold_ok)
    bad_lot = d.scenario.get("compressor_failure", {}).get("lot")
    shipped_lots = {ln.lot_id for t in trips for s in t.stops for ln in s.lines}
    d.facts["trips"] = {"trips": len(trips), "stops": stops, "km": round(sum(t.distance_m for t in trips) / 1000)}
    d.wait_until("13:00")
    disc = d.scenario["deliveries"]["discrepancy"]
    disc_done = False
    confirmed = 0
    for trip in trips:
        for stop in trip.stops:
            received = []
            for ln in stop.lines:
                if not disc_done and ln.item_code == disc["item"] and ln.quantity > disc["quantity"]:
                    received.append(lpb.ReceivedLine(plan_line_id=ln.plan_line_id, lot_id=ln.lot_id,
                                                     received=ln.quantity - disc["quantity"],
                                                     discrepancies=[lpb.Discrepancy(reason=disc["reason"],
                                                                                    quantity=disc["quantity"],
                                                                                    note=disc["note"])]))
                    disc_done = True
                else:
                    received.append(lpb.ReceivedLine(plan_line_id=ln.plan_line_id, lot_id=ln.lot_id,
                                                     received=ln.quantity))
            d.facts["signed_units"] = d.facts.get("signed_units", 0) + sum(
                r.received * _units_covered(ln.item_code) for r, ln in zip(received, stop.lines, strict=True))
            at = d.clock.now()
            ts = ipb.Demand().submitted_at.__class__()
            ts.FromDatetime(at)
            logistics.ConfirmDelivery(lpb.ConfirmDeliveryRequest(
                idempotency_key=f"pod-{trip.trip_id}-{stop.seq}", trip_id=trip.trip_id,
                requester_id=stop.requester_id, drop_point_id=stop.drop_point_id,
                receiver=f"{stop.requester_id}专班", received_at=ts,
                proof_ref="signature:" + hashlib.sha256(f"{trip.trip_id}/{stop.seq}".encode()).hexdigest(),
                lines=received), metadata=md())
            confirmed += 1
    d.check(f"every stop signed for its goods (无接触配送, {confirmed} proofs of delivery), one with a discrepancy",
            confirmed == stops and disc_done)
    if bad_lot:
        d.check(f"the quarantined pork lot {bad_lot} never shipped", bad_lot not in shipped_lots)


def _units_covered(item_code: str) -> int:
    """Units of demand one delivered unit counts for: a standard package (asked for by nobody in
    this scenario, so only ever a substitute) counts as its recipe's quantity of the short item."""
    item = load_catalogue().item(item_code)
    return item.components[0].quantity if item.is_package else 1


def act_close(d: Day, intake: irpc.IntakeServiceStub, logistics: lrpc.LogisticsServiceStub) -> None:
    d.console.rule("17:00 闭环 · closing the loop")
    deadline = time.monotonic() + 60
    statuses: dict[int, int] = {}
    while time.monotonic() < deadline:
        demands, token = [], ""
        while True:
            page = intake.ListDemands(ipb.ListDemandsRequest(delivery_day=d.scenario["day"], page=c.PageRequest(
                page_size=500, page_token=token)), metadata=md())
            demands.extend(page.demands)
            token = page.page.next_page_token
            if not token:
                break
        statuses = {}
        for x in demands:
            statuses[x.status] = statuses.get(x.status, 0) + 1
        if demands and ipb.DEMAND_STATUS_OPEN not in statuses:
            break
        time.sleep(0.3)
    names = {ipb.DEMAND_STATUS_FULFILLED: "fulfilled", ipb.DEMAND_STATUS_PARTLY_FULFILLED: "partly_fulfilled",
             ipb.DEMAND_STATUS_ROLLED: "rolled", ipb.DEMAND_STATUS_OPEN: "open", ipb.DEMAND_STATUS_CANCELLED: "cancelled"}
    d.facts["demand_status"] = {names[k]: v for k, v in statuses.items()}
    d.check("every demand of the day is fulfilled, partly fulfilled (rest carried over) or rolled over",
            ipb.DEMAND_STATUS_OPEN not in statuses, ", ".join(f"{names[k]} {v}" for k, v in statuses.items()))
    report = logistics.ReconcileLedger(lpb.ReconcileLedgerRequest(), metadata=md())
    d.facts["ledger"] = {"lines": report.lines_checked, "lots": report.lots_checked, "ok": report.ok}
    d.check(f"the ledger reconciles and its hash chain holds ({report.lines_checked} lines, {report.lots_checked} lots)",
            report.ok)


def act_report(d: Day, allocation: arpc.AllocationServiceStub) -> None:
    """17:30: the daily report to HQ and the discipline commission (报指挥部和纪委备案), and the
    public disclosure lists (定期公开), from the services' own APIs."""
    d.console.rule("17:30 日报与公开 · the daily report and the public lists")
    d.wait_until("17:30")
    from services.reports import render
    from services.reports.collect import bearer, collect_day, connect

    out = d.reports_dir  # where the reports scheduler writes the day's files (REPORTS_DIR/<day>)
    wanted = ("daily-report.md", "daily-report.xlsx", "disclosure.html")
    deadline = time.monotonic() + 90
    made = 0  # the scheduler writes the files, then commits its row: wait for both
    while time.monotonic() < deadline:
        if all((out / n).exists() for n in wanted) and (made := _report_marker(d)) >= 1:
            break
        time.sleep(0.2)
    d.facts["report_files"] = sorted(p.name for p in out.glob("*") if p.is_file()) if out.exists() else []
    d.check(f"the 17:30 daily report made by the reports scheduler on its own ({', '.join(d.facts['report_files'])})",
            all(n in d.facts["report_files"] for n in wanted) and made == 1,
            f"files {d.facts['report_files']}, made {made} time(s)")
    targets = {s: f"127.0.0.1:{d.env[f'{s.upper()}_GRPC_PORT']}" for s in SERVICES}
    with connect(targets, load_settings("tools", d.env).grpc_tls) as stubs:
        facts = collect_day(d.day, stubs, metadata=bearer(TOKEN), tz=TZ, catalogue=load_catalogue(),
                            now=d.clock.now(), timeout=60)
    markdown, disclosure = ((out / n).read_text(encoding="utf-8") if (out / n).exists() else ""
                            for n in ("daily-report.md", "disclosure.html"))
    names = [n["name"] for n in d.scenario["morning"]["special_needs"]]
    phones = [n["phone"] for n in d.scenario["morning"]["special_needs"]]
    delivered = sum(x.delivered for x in facts.tier_fills())
    d.check("the report's delivered total matches what was signed for at the drop points",
            delivered is not None and delivered == d.facts.get("signed_units", -1),
            f"report {delivered}, signed {d.facts.get('signed_units')}")
    addresses = [h["address"] for h in d.scenario["market"]["households"]]
    d.check("the public lists carry no beneficiary names, phone numbers or household addresses",
            not any(x in disclosure or x in markdown for x in names + phones + addresses))
    channel = markdown.split("## 九、商超保供 / Supermarket channel")[-1] if "九、商超保供" in markdown else ""
    market = d.facts.get("market", {})
    d.check("the report carries the supermarket channel: orders, parcels, amounts, settlement (商超保供)",
            f"| 居民订单 Household orders | {market.get('orders')} |" in channel
            and f"| 包裹 Parcels | {market.get('parcels')} |" in channel, channel[:200] or "no channel section")
    d.console.print(render.to_markdown(facts).split("\n## ")[0][:600] if hasattr(render, "to_markdown") else "")


def _report_marker(d: Day) -> int:
    """How many times the scheduler made the day's report (its own row per day), 0 when not."""
    from sqlalchemy import create_engine, text

    engine = create_engine(load_settings("reports", d.env).database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT times_made FROM report_days WHERE day = :d"),
                                {"d": d.day.isoformat()}).scalar() or 0
    finally:
        engine.dispose()


# ---- the end of the day ---------------------------------------------------------------------
def summarize(d: Day, started: float) -> int:
    table = Table(title=f"{d.scenario['name']} · {d.scenario['day']}")
    table.add_column("figure / 指标")
    table.add_column("value / 数值", justify="right")
    tier_names = {t: f"{zh} {en}" for t, (zh, en) in TIER_NAMES.items()}
    table.add_row("demands for the day / 当日需求", str(d.facts.get("demands_today", 0)))
    table.add_row("demand lines / 需求行", str(d.facts.get("lines_today", 0)))
    for t, n in sorted(d.facts.get("tiers", {}).items()):
        table.add_row(f"  demands with top tier {t} {tier_names.get(t, '')}", str(n))
    plan = d.facts.get("plan")
    if plan:
        table.add_row("plan: asked / allocated / unmet", f"{plan['asked']} / {plan['allocated']} / {plan['unmet']}")
        table.add_row("standard packages substituted / 标准化物资包", str(plan["packages"]))
    if "trips" in d.facts:
        tr = d.facts["trips"]
        table.add_row("trips / stops / km", f"{tr['trips']} / {tr['stops']} / {tr['km']}")
    if "demand_status" in d.facts:
        table.add_row("demands closed / 需求闭环", ", ".join(f"{k} {v}" for k, v in d.facts["demand_status"].items()))
    if "ledger" in d.facts:
        table.add_row("ledger lines reconciled / 台账核对", f"{d.facts['ledger']['lines']} ({'ok' if d.facts['ledger']['ok'] else 'MISMATCH'})")
    if "market" in d.facts:
        mk = d.facts["market"]
        table.add_row("supermarket channel: orders / parcels / on account owed (商超保供)",
                      f"{mk['orders']} / {mk['parcels']} / {mk['on_account_owed_fen'] / 100:.2f} yuan")
    dn = d.facts.get("donations", {})
    table.add_row("donation lines accepted / returned", f"{dn.get('accepted', 0)} / {dn.get('returned', 0)}")
    table.add_row("spreadsheet rows refused / 表格错误行", str(len(d.facts.get("import_errors", []))))
    passed = sum(ch.ok for ch in d.checks)
    table.add_row("checks passed / 核验通过", f"{passed}/{len(d.checks)}")
    table.add_row("wall time / 用时", f"{time.monotonic() - started:.1f} s")
    d.console.print(table)
    out = d.reports_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo-checks.json").write_text(json.dumps(
        {"scenario": d.scenario["name"], "day": d.scenario["day"], "facts":
         {k: v for k, v in d.facts.items() if k not in ("villages", "plan_lines") and not k.startswith("market_")},
         "checks": [{"what": ch.what, "ok": ch.ok, "detail": ch.detail} for ch in d.checks]},
        ensure_ascii=False, indent=2))
    d.console.print(f"outputs in {out}/")
    failed = [ch for ch in d.checks if not ch.ok]
    if failed:
        d.console.print(f"[red]{len(failed)} check(s) failed / 未通过:[/]")
        for ch in failed:
            d.console.print(f"  [red]✗ {ch.what}[/] {ch.detail}")
        return 1
    d.console.print("[green]the day went as the scenario says / 全部按预案完成[/]")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default=str(ROOT / "simulators" / "scenarios" / "county_day.yaml"))
    ap.add_argument("--keep", action="store_true", help="leave the services running afterwards")
    args = ap.parse_args(argv)
    console = Console()
    scenario = yaml.safe_load(Path(args.scenario).read_text(encoding="utf-8"))
    started = time.monotonic()
    var = Path(os.environ.get("SUPPLY_DEMO_DIR", ROOT / "var" / "demo"))
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    hh, mm = map(int, scenario["start"].split(":"))
    start = datetime.combine(date.fromisoformat(scenario["day"]), dtime(hh, mm), TZ)
    clock = SimulatedClock(start=start.astimezone(UTC), speed=float(scenario["speed"]),
                           anchor_wall=time.time() + STARTUP_BUDGET_S)
    reports = Path(os.environ.get("SUPPLY_REPORTS_DIR", ROOT / "var" / "reports"))
    shutil.rmtree(reports / scenario["day"], ignore_errors=True)  # the scheduler writes the day anew
    env = {**os.environ, "SUPPLY_VAR_DIR": str(var), "SUPPLY_CLOCK": clock.spec(), "REPORTS_DIR": str(reports),
           "SUPPLY_AUTH_TOKENS": TOKENS, "SUPPLY_LOG_LEVEL": "INFO", "SUPPLY_ROUTING_SECONDS": "3",
           "SUPPLY_ALLOCATION_TICK_SECONDS": "0.5", "SUPPLY_DELIVERY_STAFF_PER_DROP_POINT": "3",
           # the supermarket channel delivers the same day: orders close at 10:00 on the day
           "MARKET_ORDER_CUTOFF": "10:00", "MARKET_ORDER_CUTOFF_DAYS_BEFORE": "0"}
    for service, port in DEFAULT_GRPC_PORTS.items():
        env.setdefault(f"{service.upper()}_GRPC_PORT", str(port))
    env.setdefault("REPORTS_GRPC_PORT", str(REPORTS_GRPC_PORT))
    if "AMQP_URL" not in os.environ:  # a clean broker for the day: no events left from other runs
        env["AMQP_URL"] = fresh_vhost(load_settings("tools").amqp_url, "supply-demo")
    d = Day(scenario, console, var, clock, env)
    console.print(f"[bold]{scenario['name']}[/] — delivery day {scenario['day']}, simulated clock ×{scenario['speed']:g}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("starting services / 启动服务", total=None)
        busy = ports_in_use(d)
        if busy:  # a stack left running would answer in place of this day's, on another clock
            raise SystemExit(f"ports {', '.join(map(str, busy))} are already in use: another demo still running? "
                             f"`make down-demo` stops it / 端口已被占用")
        try:
            start_services(d)
        except BaseException:
            stop_services(d)  # nothing left running when the day could not start
            raise
        progress.update(task, completed=1, total=1)
    users = add_console_users(d)
    try:
        tls = load_settings("tools", env).grpc_tls
        with open_channel(f"127.0.0.1:{env['INTAKE_GRPC_PORT']}", tls) as ich, \
                open_channel(f"127.0.0.1:{env['LOGISTICS_GRPC_PORT']}", tls) as lch, \
                open_channel(f"127.0.0.1:{env['ALLOCATION_GRPC_PORT']}", tls) as ach, \
                open_channel(f"127.0.0.1:{env['MONITORING_GRPC_PORT']}", tls) as mch, \
                open_channel(f"127.0.0.1:{env['MARKET_GRPC_PORT']}", tls) as kch:
            intake = irpc.IntakeServiceStub(ich)
            logistics = lrpc.LogisticsServiceStub(lch)
            allocation = arpc.AllocationServiceStub(ach)
            monitoring = mrpc.MonitoringServiceStub(mch)
            market = krpc.MarketServiceStub(kch)
            if d.local_now() > datetime.combine(d.day, dtime(6, 30), TZ):
                d.check("the services started within the start-up budget", False,
                        f"the county clock already reads {d.local_now():%H:%M}")
            d.wait_until("06:30")
            start_sensors(d)
            act_depots(d, logistics)
            act_register(d, intake)
            act_market_orders(d, market, md(), person)
            act_morning(d, intake, lambda: act_cold_store(d, monitoring, logistics))
            act_market_send(d, market, person)
            act_plan(d, allocation, logistics)
            act_dispatch(d, logistics)
            act_close(d, intake, logistics)
            act_market_delivery(d, market, md(), person)
            act_report(d, allocation)
            check_console(d)
    except grpc.RpcError as exc:
        d.check("the day ran without an unexpected error", False, f"{exc.code().name}: {exc.details()}")
    finally:
        if not args.keep:
            stop_services(d)
        else:
            (var / "demo.pids").write_text("\n".join(str(p.pid) for p in d.procs))
    code = summarize(d, started)
    print_console(d, users, args.keep)
    return code


if __name__ == "__main__":
    sys.exit(main())
