"""GetDailyReport over real processes: intake, allocation and logistics API processes and the reports
process (allocation forwards the call to it; no
monitoring: its section must say "unavailable" without failing the report). A village, its
demand, a special need with a phone number and a purchase receipt go in through the public APIs;
the report for the day shows the demand and the receipt with the right totals, and the public
disclosure page carries no phone number and no name of the person with the special need."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

import grpc
import pytest
from openpyxl import load_workbook
from supply.v1 import (
    allocation_pb2,
    allocation_pb2_grpc,
    common_pb2,
    intake_pb2,
    logistics_pb2,
    logistics_pb2_grpc,
)

from services.common.config import load_settings
from services.common.migrate import upgrade
from tests.support.infra import free_port
from tests.support.intake import ADMIN, HQ, VILLAGE, Intake, auth, key, village_spec
from tests.support.processes import ROOT, ServiceProcess

DAY = "2026-12-01"
PHONE, NAME = "139-1234-5678", "李小花"
PHONES = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)|(?<!\d)1[3-9]\d-\d{4}-\d{4}(?!\d)")


def _target(env: dict, service: str) -> str:
    return f"127.0.0.1:{env[f'{service.upper()}_GRPC_PORT']}"


@pytest.fixture
def stack(service_env, tmp_path):
    # 08:00 on DAY, county time, for every process: before the 11:00 cut-off of DAY
    env = {**service_env, "REPORTS_GRPC_PORT": str(free_port()),
           "SUPPLY_CLOCK": f"sim:{DAY}T08:00:00+08:00;speed=1;anchor={time.time():.3f}"}
    for service in ("intake", "allocation", "logistics", "reports"):
        upgrade(service, load_settings(service, env).database_url)
    procs = [ServiceProcess(s, "api", env, tmp_path).start()
             for s in ("intake", "allocation", "logistics")]
    procs.append(ServiceProcess("reports", "scheduler", env, tmp_path).start())  # serves GetDailyReport
    channels: list[grpc.Channel] = []
    try:
        for proc in procs:
            proc.wait_healthy(_target(env, proc.service), timeout=45)
        yield env, channels, tmp_path
    finally:
        for ch in channels:
            ch.close()
        for proc in procs:
            proc.stop()


def test_daily_report_shows_the_days_demand_and_receipt_and_discloses_no_phone(stack):
    env, channels, tmp = stack
    intake = Intake(env)
    channels.append(intake.channel)
    logistics_ch = grpc.insecure_channel(_target(env, "logistics"))
    allocation_ch = grpc.insecure_channel(
        _target(env, "allocation"), options=[("grpc.max_receive_message_length", 64 << 20)])
    channels += [logistics_ch, allocation_ch]
    logistics = logistics_pb2_grpc.LogisticsServiceStub(logistics_ch)
    allocation = allocation_pb2_grpc.AllocationServiceStub(allocation_ch)

    # intake: a village, its demand for DAY, a special need with a name and a phone
    intake.RegisterRequester(intake_pb2.RegisterRequesterRequest(
        idempotency_key=key(), requester=village_spec("V-RPT", township="城关镇")))
    demand = intake.SubmitDemand(intake_pb2.SubmitDemandRequest(
        idempotency_key=key(), requester_id="V-RPT", delivery_day=DAY,
        lines=[common_pb2.ItemLine(item_code="RICE-10KG", quantity=30),
               common_pb2.ItemLine(item_code="OIL-5L", quantity=5)]))
    assert demand.delivery_day == DAY and not demand.rolled_over
    need = intake.RegisterSpecialNeed(intake_pb2.RegisterSpecialNeedRequest(
        idempotency_key=key(), requester_id="V-RPT",
        beneficiary=intake_pb2.Beneficiary(name=NAME, phone=PHONE),
        category=intake_pb2.SPECIAL_NEED_CATEGORY_INFANT_FORMULA,
        lines=[common_pb2.ItemLine(item_code="FORMULA-STAGE1", quantity=2)], delivery_day=DAY))
    assert need.demand.delivery_day == DAY

    # logistics: a depot with an ambient zone, and a purchase received on DAY
    md = auth(ADMIN)
    logistics.RegisterDepot(logistics_pb2.RegisterDepotRequest(
        idempotency_key=key(), depot=logistics_pb2.Depot(
            id="D-RPT", name="城关中心仓", location=common_pb2.GeoPoint(lat=30.30, lon=120.10))),
        metadata=md, timeout=20)
    logistics.RegisterZone(logistics_pb2.RegisterZoneRequest(
        idempotency_key=key(), zone=logistics_pb2.Zone(
            id="D-RPT-AMB", depot_id="D-RPT", name="常温库", storage_class="ambient",
            capacity_l=100_000)), metadata=md, timeout=20)
    receipt = logistics.ReceiveStock(logistics_pb2.ReceiveStockRequest(
        idempotency_key=key(), kind=logistics_pb2.RECEIPT_KIND_PURCHASE, depot_id="D-RPT",
        origin_ref="PO-2026-118", lines=[logistics_pb2.ReceiptLineSpec(
            item_code="RICE-10KG", quantity=200, lot_number="B-77", expiry="2027-06-01")]),
        metadata=md, timeout=20)

    def report(fmt: int, token: str = HQ) -> allocation_pb2.DailyReport:
        return allocation.GetDailyReport(allocation_pb2.GetDailyReportRequest(day=DAY, format=fmt),
                                         metadata=auth(token), timeout=60)

    rep = report(allocation_pb2.REPORT_FORMAT_MARKDOWN)
    text = rep.content.decode("utf-8")
    assert rep.content_type.startswith("text/markdown") and rep.day == DAY
    assert "## 一、当日接收与采购 / Receipts and purchases" in text
    # the demand and the special need's demand, 30 + 5 + 2 asked, nothing delivered yet
    assert (rep.demands, rep.lines, rep.asked, rep.delivered) == (2, 3, 37, 0)
    assert {(t.tier, t.asked) for t in rep.tiers} == {(common_pb2.TIER_VULNERABLE, 2),
                                                      (common_pb2.TIER_GENERAL, 35)}
    assert demand.id in text and need.demand.id in text
    assert "| 申请数量 Units asked | 37 |" in text and "| 需求 Demands | 2 |" in text
    # the receipt: its id, the ledger's quantity, and the totals
    assert receipt.receipt_id in text
    assert "| 入库单 Receipts | 1 |" in text and "| 入库数量 Units received | 200 |" in text
    assert "| 采购 / purchase | 1 | 1 | 200 |" in text
    assert rep.ledger_ok and rep.plan_id == ""
    # monitoring is not running: the alerts section says so, the report is still made
    assert not rep.alerts_available and any(n.startswith("alerts:") for n in rep.notes)
    assert "unavailable" in text.split("## 七、预警 / Alerts")[1]

    page = report(allocation_pb2.REPORT_FORMAT_DISCLOSURE_HTML).content.decode("utf-8")
    assert page.startswith("<!DOCTYPE html>") and receipt.receipt_id in page
    assert not PHONES.search(page) and "5678" not in page and NAME not in page
    assert "小花" not in page

    book = load_workbook(io.BytesIO(report(allocation_pb2.REPORT_FORMAT_XLSX).content))
    assert "4 需求明细 Demand lines" in book.sheetnames

    with pytest.raises(grpc.RpcError) as exc:
        report(allocation_pb2.REPORT_FORMAT_MARKDOWN, token=VILLAGE)
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as exc:
        report(allocation_pb2.REPORT_FORMAT_UNSPECIFIED)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # the same files from the command line (monitoring down is not an error there either)
    out = tmp / "reports"
    cli = subprocess.run([sys.executable, "-m", "services.reports", "--day", DAY, "--out", str(out),
                          "--token", HQ], cwd=ROOT, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "daily-report.md", "daily-report.xlsx", "disclosure-allocation.csv",
        "disclosure-donations.csv", "disclosure-procurement.csv", "disclosure-stock.csv",
        "disclosure.html"]
    assert (out / "daily-report.md").read_text(encoding="utf-8").count(demand.id) >= 1
    assert "RICE-10KG" in (out / "disclosure-procurement.csv").read_text(encoding="utf-8-sig")
    assert "37" in cli.stdout  # the summary table's total asked


FORMULA = '=HYPERLINK("http://evil.example/","x")'


def test_user_text_never_becomes_a_formula_or_markup_in_the_report(stack):
    """Issue #14, finding 2, through the public call: a village named like a formula, a township
    carrying a script and a purchase order number starting with @ come out as text."""
    env, channels, _ = stack
    intake = Intake(env)
    channels.append(intake.channel)
    allocation_ch = grpc.insecure_channel(
        _target(env, "allocation"), options=[("grpc.max_receive_message_length", 64 << 20)])
    logistics_ch = grpc.insecure_channel(_target(env, "logistics"))
    channels += [allocation_ch, logistics_ch]
    spec = village_spec("V-EVIL", township="<script>alert(1)</script>")
    spec.name = FORMULA
    intake.RegisterRequester(intake_pb2.RegisterRequesterRequest(idempotency_key=key(), requester=spec))
    demand = intake.SubmitDemand(intake_pb2.SubmitDemandRequest(
        idempotency_key=key(), requester_id="V-EVIL", delivery_day=DAY,
        lines=[common_pb2.ItemLine(item_code="RICE-10KG", quantity=3)]))
    logistics = logistics_pb2_grpc.LogisticsServiceStub(logistics_ch)
    md = auth(ADMIN)
    logistics.RegisterDepot(logistics_pb2.RegisterDepotRequest(
        idempotency_key=key(), depot=logistics_pb2.Depot(
            id="D-EVIL", name="城关仓", location=common_pb2.GeoPoint(lat=30.3, lon=120.1))), metadata=md)
    logistics.RegisterZone(logistics_pb2.RegisterZoneRequest(
        idempotency_key=key(), zone=logistics_pb2.Zone(
            id="D-EVIL-AMB", depot_id="D-EVIL", storage_class="ambient", capacity_l=10_000)), metadata=md)
    logistics.ReceiveStock(logistics_pb2.ReceiveStockRequest(
        idempotency_key=key(), kind=logistics_pb2.RECEIPT_KIND_PURCHASE, depot_id="D-EVIL",
        origin_ref="@SUM(1+1)*cmd|' /C calc'!A0", lines=[logistics_pb2.ReceiptLineSpec(
            item_code="RICE-10KG", quantity=10, lot_number="=1+1", expiry="2027-06-01")]), metadata=md)
    allocation = allocation_pb2_grpc.AllocationServiceStub(allocation_ch)

    def report(fmt: int) -> bytes:
        return allocation.GetDailyReport(allocation_pb2.GetDailyReportRequest(day=DAY, format=fmt),
                                         metadata=auth(HQ), timeout=60).content

    book = load_workbook(io.BytesIO(report(allocation_pb2.REPORT_FORMAT_XLSX)))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"], "a formula in the workbook"
    texts = [str(c.value) for c in cells]
    assert any(demand.id in t for t in texts)
    starts_formula = [t for t in texts if t[:1] in ("=", "+", "-", "@", "\t", "\r")
                      and not t.lstrip("-").replace(".", "").isdigit()]
    assert not starts_formula
    markdown = report(allocation_pb2.REPORT_FORMAT_MARKDOWN).decode("utf-8")
    assert "<script>" not in markdown and demand.id in markdown
    page = report(allocation_pb2.REPORT_FORMAT_DISCLOSURE_HTML).decode("utf-8")
    assert "<script>alert(1)</script>" not in page
