"""The backup drill (issue #16, item 3): a day's work through the real intake, allocation and
logistics processes on PostgreSQL, readings in InfluxDB; `supplyctl backup`; every database,
the InfluxDB database and the RabbitMQ vhost wiped; `supplyctl restore`; the processes again.
The ledger reconciles and its chain holds, the demands, plans and receipts are what they were,
the readings are there, and an event written after the restore is applied once while the
events the restore sends again are not applied twice."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlparse

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from supply.v1 import allocation_pb2, common_pb2
from supply.v1 import logistics_pb2 as lpb

from services.common.broker_admin import fresh_vhost
from services.common.clock import parse_clock
from services.common.config import load_settings
from services.common.db import make_engine
from services.common.migrate import upgrade
from services.logistics.audit import reconcile
from services.logistics.config import ledger_key
from services.monitoring.adapters.influx import InfluxWriter
from services.monitoring.adapters.line_protocol import env_line
from tests.integration.test_allocation_service import Allocation
from tests.support import infra
from tests.support.intake import Intake, key, make_env, queue_idle
from tests.support.logistics import Logistics
from tests.support.polling import eventually
from tests.support.processes import ROOT, ServiceProcess

DAY = "2026-12-01"
RUNNING = ("intake", "allocation", "logistics")
MIGRATED = (*RUNNING, "monitoring", "console")  # every database the drill backs up and wipes
DEMAND_QUEUE = "evt-intake-demand_registered--allocation.on_demand_registered"
READINGS = 120
CUTOFF_IN_S = 15.0  # real seconds from the processes' start to the 11:00 cut-off: demands come before


def supplyctl(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT,
                          env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=180)


class County:
    """The three services' api, worker and relay on one environment, started and stopped whole."""

    def __init__(self, env: dict, log_dir):
        self.env, self.log_dir, self.procs = env, log_dir, []
        self.clock = parse_clock(env["SUPPLY_CLOCK"])

    def start(self) -> County:
        for service in RUNNING:
            for kind in ("worker", "relay", "api"):
                self.procs.append(ServiceProcess(service, kind, self.env, self.log_dir).start())
        for p in self.procs:
            if p.kind == "api":
                p.wait_healthy(f"127.0.0.1:{self.env[f'{p.service.upper()}_GRPC_PORT']}", timeout=45)
        self.intake, self.allocation, self.logistics = (
            Intake(self.env), Allocation(self.env), Logistics(self.env))
        eventually(lambda: self._alive() and infra.queue_consumers(self.env["AMQP_URL"], DEMAND_QUEUE),
                   timeout=30, interval=0.2, what="allocation's worker consuming")
        return self

    def _alive(self) -> bool:
        for p in self.procs:
            if not p.alive():
                raise AssertionError(f"{p.service} {p.kind} exited:\n{p.log()[-3000:]}")
        return True

    def stop(self) -> None:
        for client in (self.intake, self.allocation, self.logistics):
            client.channel.close()
        with ThreadPoolExecutor(len(self.procs)) as pool:  # each takes seconds to drain
            codes = list(pool.map(ServiceProcess.stop, self.procs))
        assert codes == [0] * len(self.procs), [(p.service, p.kind, p.log()[-2000:])
                                                for p, c in zip(self.procs, codes, strict=True) if c != 0]
        self.procs = []


def scalar(url: str, sql: str) -> int:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def settled(env: dict) -> bool:
    """Every outbox sent and allocation's demand queue empty."""
    return all(scalar(env[f"{s.upper()}_DATABASE_URL"],
                      "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0 for s in RUNNING) \
        and queue_idle(env["AMQP_URL"], DEMAND_QUEUE)


def processed(env: dict, service: str) -> int:
    """Events the service's consumers applied, but allocation's policy announcement: every
    allocation worker announces its current policy as it starts (docs/adr/0008), a new event each
    time, which intake applies once per version."""
    return scalar(env[f"{service.upper()}_DATABASE_URL"],
                  "SELECT count(*) FROM processed_events WHERE consumer NOT LIKE '%policy_changed%'")


def dead_letters(env: dict) -> int:
    return sum(scalar(env[f"{s.upper()}_DATABASE_URL"], "SELECT count(*) FROM dead_letters")
               for s in RUNNING)


def readings(writer: InfluxWriter) -> int:
    series = writer.query("SELECT count(temp_c) FROM env")
    return series[0]["values"][0][1] if series else 0


def the_days_work(county: County, writer: InfluxWriter) -> None:
    """Depot and stock, a village and a hospital with their demands, a plan approved, an issue,
    a cold store's readings."""
    lg, it, al = county.logistics, county.intake, county.allocation
    lg.RegisterDepot(lpb.RegisterDepotRequest(idempotency_key=key(), depot=lpb.Depot(
        id="D1", name="城关中心仓", location=common_pb2.GeoPoint(lat=30.30, lon=120.10))))
    lg.RegisterZone(lpb.RegisterZoneRequest(idempotency_key=key(), zone=lpb.Zone(
        id="D1-AMB", depot_id="D1", storage_class="ambient", capacity_l=100_000)))
    lg.ReceiveStock(lpb.ReceiveStockRequest(
        idempotency_key=key(), kind=lpb.RECEIPT_KIND_PURCHASE, depot_id="D1", origin_ref="PO-1",
        lines=[lpb.ReceiptLineSpec(item_code="RICE-10KG", quantity=400, lot_number="B-1",
                                   expiry="2027-06-01"),
               lpb.ReceiptLineSpec(item_code="OIL-5L", quantity=200, lot_number="B-2",
                                   expiry="2027-06-01")]))
    village, hospital = it.village("V-DRILL"), it.unit("U-DRILL")
    for requester, lines in ((village.id, (("RICE-10KG", 40), ("OIL-5L", 20))),
                             (hospital.id, (("RICE-10KG", 30),))):
        it.demand(requester, *lines, delivery_day=DAY)
    assert county.clock.now() < datetime.fromisoformat(f"{DAY}T11:00:00+08:00"), "started too slowly"
    plans = eventually(lambda: al.ListPlans(allocation_pb2.ListPlansRequest(delivery_day=DAY)).plans,
                       timeout=CUTOFF_IN_S + 20, interval=0.2, what="the cut-off's plan")
    al.ApprovePlan(allocation_pb2.ApprovePlanRequest(idempotency_key=key(), plan_id=plans[0].plan_id))
    eventually(lambda: settled(county.env), timeout=20, what="plan_approved reached logistics")
    line = next(x for x in al.GetPlan(allocation_pb2.GetPlanRequest(plan_id=plans[0].plan_id)).lines
                if x.picks)
    lg.IssueStock(lpb.IssueStockRequest(idempotency_key=key(), lot_id=line.picks[0].lot_id,
                                        quantity=line.picks[0].quantity, plan_line_id=line.plan_line_id,
                                        reason="按方案出库 / issued by the plan"))
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    writer.add(env_line("D1", "D1-AMB", "S1", "ambient", start + timedelta(minutes=i), 4.0 + i % 3,
                        60.0, i) for i in range(READINGS))
    writer.flush()


def snapshot(county: County) -> dict:
    al, lg = county.allocation, county.logistics
    plans = al.ListPlans(allocation_pb2.ListPlansRequest(delivery_day=DAY)).plans
    return {
        "demands": sorted(d.SerializeToString(deterministic=True) for d in county.intake.list_demands()),
        "plans": [p.SerializeToString(deterministic=True) for p in plans],
        "plan_lines": al.GetPlan(allocation_pb2.GetPlanRequest(plan_id=plans[-1].plan_id)).lines,
        "receipts": lg.ListReceipts(lpb.ListReceiptsRequest(depot_id="D1")).receipts,
        "ledger_head": lg.ReconcileLedger(lpb.ReconcileLedgerRequest()).head_seq,
    }


@pytest.fixture
def drill(tmp_path, amqp_url, pg_url_factory, run_id):
    influx = f"supply_{run_id}_drill"
    infra.create_influx_database(influx)
    env = make_env(tmp_path / "var", amqp_url, INFLUX_DB=influx,
                   SUPPLY_LEDGER_KEY="county-ledger-key-for-the-backup-drill-0001",
                   SUPPLY_ROUTING_SECONDS="2", SUPPLY_ROUTING_POLL_SECONDS="1",
                   **{f"{s.upper()}_DATABASE_URL": pg_url_factory(f"drill{s}") for s in MIGRATED})
    for service in MIGRATED:
        upgrade(service, load_settings(service, env).database_url)
    # 11:00 on the county clock CUTOFF_IN_S from now, then a minute a second
    env["SUPPLY_CLOCK"] = f"sim:{DAY}T11:00:00+08:00;speed=60;anchor={time.time() + CUTOFF_IN_S:.3f}"
    writer = InfluxWriter(infra.INFLUX_URL, influx, tmp_path / "spool")
    try:
        yield env, writer
    finally:
        writer.close()
        infra.drop_influx_database(influx)


def test_a_wiped_machine_comes_back_from_the_backup(drill, tmp_path):
    env, writer = drill
    county = County(env, tmp_path).start()
    try:
        the_days_work(county, writer)
        eventually(lambda: settled(env), timeout=20, what="every event delivered")
        before = snapshot(county)
        applied = {s: processed(env, s) for s in RUNNING}
        backup = supplyctl(env, "backup", str(tmp_path / "backup"))  # online, as every night
        assert backup.returncode == 0, backup.stdout + backup.stderr
    finally:
        county.stop()
    assert readings(writer) == READINGS and before["ledger_head"] >= 3

    # a wiped machine: every database, the readings, the broker's queues
    for service in MIGRATED:
        infra.drop_pg_database(make_url(env[f"{service.upper()}_DATABASE_URL"]).database)
    infra.drop_influx_database(env["INFLUX_DB"])
    fresh_vhost(env["AMQP_URL"], unquote(urlparse(env["AMQP_URL"]).path[1:]))

    restored = supplyctl(env, "restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "intake: " in restored.stdout and "event(s) to send again" in restored.stdout

    report = reconcile(make_engine(env["LOGISTICS_DATABASE_URL"], pool_size=1),
                       ledger_key(load_settings("logistics", env)))
    assert report.ok and report.head_seq == before["ledger_head"], report
    assert readings(writer) == READINGS

    county = County(env, tmp_path).start()
    try:
        assert snapshot(county) == before
        # the restore sent the day's events again: consumers knew them all
        eventually(lambda: settled(env), timeout=20, what="the events sent again delivered")
        assert {s: processed(env, s) for s in RUNNING} == applied
        county.intake.demand("V-DRILL", ("OIL-5L", 3), delivery_day=DAY)
        eventually(lambda: processed(env, "allocation") == applied["allocation"] + 1 and settled(env),
                   timeout=20, what="the new demand applied by allocation")
        assert processed(env, "allocation") == applied["allocation"] + 1  # once
        assert dead_letters(env) == 0
    finally:
        county.stop()
