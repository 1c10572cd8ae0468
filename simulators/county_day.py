"""A county day end to end (`make demo`): start the services on a simulated clock, play the
scenario through their public gRPC APIs as villages, units, grid workers and HQ would, check
that every outcome happened as the scenario says, print a summary and write the day's outputs
under var/reports/<day>/. Exits non-zero if anything did not happen.

    python -m simulators.county_day [--scenario simulators/scenarios/county_day.yaml] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
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
from supply.v1 import common_pb2 as c
from supply.v1 import intake_pb2 as ipb
from supply.v1 import intake_pb2_grpc as irpc

from services.common.clock import SimulatedClock
from services.common.config import DEFAULT_GRPC_PORTS, ROOT
from services.intake.entrypoints.import_cli import import_file

TZ = ZoneInfo("Asia/Shanghai")
TOKEN = "demo-hq-token-0000000001"
TOKENS = f"{TOKEN}=county-hq:admin"
RISK = {"sealed": c.RISK_LEVEL_SEALED, "controlled": c.RISK_LEVEL_CONTROLLED,
        "prevention": c.RISK_LEVEL_PREVENTION}
UNIT = {"hospital": ipb.UNIT_TYPE_HOSPITAL, "fever_clinic": ipb.UNIT_TYPE_FEVER_CLINIC,
        "isolation_site": ipb.UNIT_TYPE_ISOLATION_SITE, "school": ipb.UNIT_TYPE_SCHOOL,
        "nursing_home": ipb.UNIT_TYPE_NURSING_HOME, "enterprise": ipb.UNIT_TYPE_ENTERPRISE}
SERVICES = ("intake",)


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
    for service in SERVICES:
        subprocess.run([sys.executable, "-m", "services.cli", "migrate", service], env=d.env,
                       cwd=ROOT, check=True, capture_output=True)
    log_dir = d.var / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        for kind in ("api", "worker", "relay"):
            log = (log_dir / f"{service}-{kind}.log").open("wb")
            d.procs.append(subprocess.Popen([sys.executable, "-m", f"services.{service}", kind],
                                            env=d.env, cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True))
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + 60
    for service in SERVICES:
        target = f"127.0.0.1:{d.env[f'{service.upper()}_GRPC_PORT']}"
        while True:
            try:
                with grpc.insecure_channel(target) as ch:
                    if health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                            timeout=1).status == 1:
                        break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in d.procs):
                raise SystemExit(f"{service} did not start; see {log_dir}")
            time.sleep(0.1)


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


def act_morning(d: Day, intake: irpc.IntakeServiceStub) -> None:
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
        delivery_day=d.scenario["day"]), metadata=md())
    intake.ApproveRequisition(ipb.ApproveRequisitionRequest(
        idempotency_key="req-1-head", requisition_id=req.id, step=ipb.APPROVAL_STEP_HEAD,
        reason="一把手审核同意"), metadata=md())
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
        intake.InspectDonationLine(req, metadata=md())
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


# ---- the end of the day ---------------------------------------------------------------------
def summarize(d: Day, started: float) -> int:
    table = Table(title=f"{d.scenario['name']} · {d.scenario['day']}")
    table.add_column("figure / 指标")
    table.add_column("value / 数值", justify="right")
    tier_names = {1: "一线医疗 frontline", 2: "特殊群体 vulnerable", 3: "封控区 sealed",
                  4: "管控区 controlled", 5: "其他 general"}
    table.add_row("demands for the day / 当日需求", str(d.facts.get("demands_today", 0)))
    table.add_row("demand lines / 需求行", str(d.facts.get("lines_today", 0)))
    for t, n in sorted(d.facts.get("tiers", {}).items()):
        table.add_row(f"  demands with top tier {t} {tier_names.get(t, '')}", str(n))
    dn = d.facts.get("donations", {})
    table.add_row("donation lines accepted / returned", f"{dn.get('accepted', 0)} / {dn.get('returned', 0)}")
    table.add_row("spreadsheet rows refused / 表格错误行", str(len(d.facts.get("import_errors", []))))
    passed = sum(ch.ok for ch in d.checks)
    table.add_row("checks passed / 核验通过", f"{passed}/{len(d.checks)}")
    table.add_row("wall time / 用时", f"{time.monotonic() - started:.1f} s")
    d.console.print(table)
    out = ROOT / "var" / "reports" / d.scenario["day"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo-checks.json").write_text(json.dumps(
        {"scenario": d.scenario["name"], "day": d.scenario["day"], "facts":
         {k: v for k, v in d.facts.items() if k != "villages"},
         "checks": [{"what": ch.what, "ok": ch.ok, "detail": ch.detail} for ch in d.checks]},
        ensure_ascii=False, indent=2))
    d.console.print(f"outputs in {out.relative_to(ROOT)}/")
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
    var = ROOT / "var" / "demo"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    hh, mm = map(int, scenario["start"].split(":"))
    start = datetime.combine(date.fromisoformat(scenario["day"]), dtime(hh, mm), TZ)
    clock = SimulatedClock(start=start.astimezone(UTC), speed=float(scenario["speed"]),
                           anchor_wall=time.time() + 5)  # 5 s for the services to start
    env = {**os.environ, "SUPPLY_VAR_DIR": str(var), "SUPPLY_CLOCK": clock.spec(),
           "SUPPLY_AUTH_TOKENS": TOKENS, "SUPPLY_LOG_LEVEL": "INFO"}
    for service, port in DEFAULT_GRPC_PORTS.items():
        env.setdefault(f"{service.upper()}_GRPC_PORT", str(port))
    d = Day(scenario, console, var, clock, env)
    console.print(f"[bold]{scenario['name']}[/] — delivery day {scenario['day']}, simulated clock ×{scenario['speed']:g}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("starting services / 启动服务", total=None)
        start_services(d)
        progress.update(task, completed=1, total=1)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{env['INTAKE_GRPC_PORT']}") as ch:
            intake = irpc.IntakeServiceStub(ch)
            act_register(d, intake)
            act_morning(d, intake)
    except grpc.RpcError as exc:
        d.check("the day ran without an unexpected error", False, f"{exc.code().name}: {exc.details()}")
    finally:
        if not args.keep:
            stop_services(d)
    return summarize(d, started)


if __name__ == "__main__":
    sys.exit(main())
