"""The county day end to end (`make demo`) through the real servers, isolated: its own RabbitMQ
vhost, MQTT topic root and client ids, InfluxDB database, ports and directories. Asserts the
day's outcomes from what the demo recorded and from the services' own stores."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.config import SERVICES
from tests.support.infra import free_port, run_id

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def day(tmp_path_factory, amqp_url, influx_db):
    tmp = tmp_path_factory.mktemp("county-day")
    rid = run_id()
    env = {
        "PATH": "/usr/bin:/bin", "AMQP_URL": amqp_url, "INFLUX_DB": influx_db,
        "SUPPLY_DEMO_DIR": str(tmp / "demo"), "SUPPLY_REPORTS_DIR": str(tmp / "reports"),
        "SUPPLY_MQTT_ROOT": f"{rid}/supply", "SUPPLY_MQTT_CLIENT_ID": f"{rid}-ingest",
        **{f"{s.upper()}_GRPC_PORT": str(free_port()) for s in (*SERVICES, "market", "reports")},
        "CONSOLE_HTTP_PORT": str(free_port()),
    }
    proc = subprocess.run([sys.executable, "-m", "simulators.county_day"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    checks = json.loads((tmp / "reports" / "2026-11-29" / "demo-checks.json").read_text())
    return proc, checks, tmp


def test_the_day_exits_zero_with_every_check_passed(day):
    proc, checks, _ = day
    failed = [c for c in checks["checks"] if not c["ok"]]
    assert proc.returncode == 0 and not failed, (failed, proc.stdout[-3000:], proc.stderr[-2000:])
    assert len(checks["checks"]) >= 30


def test_the_day_ends_with_the_console_address_and_its_demo_users(day):
    proc, _, _ = day
    assert "the console / 控制台: http://127.0.0.1:" in proc.stdout
    assert all(user in proc.stdout for user in ("hq", "village1", "keeper", "inspector", "head1"))


def test_every_demand_is_fulfilled_partly_fulfilled_or_rolled(day):
    _, _, tmp = day
    with sqlite3.connect(tmp / "demo" / "intake.db") as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM demands WHERE delivery_day = '2026-11-29' "
                                   "GROUP BY status").fetchall())
        partly = [json.loads(r[0]) for r in db.execute(
            "SELECT data FROM demands WHERE delivery_day = '2026-11-29' AND status = 'partly_fulfilled'")]
    assert "open" not in statuses and statuses.get("fulfilled", 0) > 0, statuses
    assert all(d["carry_over_demand_id"] for d in partly)  # the rest goes on to the next day


def test_the_quarantined_lot_never_ships_and_the_ledger_reconciles(day):
    _, checks, tmp = day
    with sqlite3.connect(tmp / "demo" / "logistics.db") as db:
        issued_from_bad_lot = db.execute(
            "SELECT count(*) FROM ledger WHERE lot_id = 'PORK-CS01-A' AND kind = 'issue'").fetchone()[0]
        status = db.execute("SELECT status FROM lot_balances WHERE lot_id = 'PORK-CS01-A'").fetchone()[0]
    assert issued_from_bad_lot == 0 and status == "quarantined"
    assert checks["facts"]["ledger"]["ok"] is True


def _csv(path: Path) -> list[dict]:
    import csv

    with path.open(encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def test_the_report_totals_match_the_ledger(day):
    """What the public lists say was delivered and is in stock is what the ledger says."""
    from collections import Counter

    from services.common.catalogue import load_catalogue

    _, checks, tmp = day
    assert checks["facts"]["ledger"]["ok"] is True  # stored balances = the ledger, chain intact
    out = tmp / "reports" / "2026-11-29"
    with sqlite3.connect(tmp / "demo" / "logistics.db") as db:
        issued = Counter(dict(db.execute(
            "SELECT l.item_code, -sum(g.quantity) FROM ledger g JOIN lots l ON l.lot_id = g.lot_id "
            "WHERE g.kind = 'issue' GROUP BY l.item_code").fetchall()))
        on_hand = Counter(dict(db.execute(
            "SELECT l.item_code, sum(b.on_hand) FROM lot_balances b JOIN lots l ON l.lot_id = b.lot_id "
            "GROUP BY l.item_code").fetchall()))
    catalogue = load_catalogue()
    reported = Counter()
    for row in _csv(out / "disclosure-allocation.csv"):
        code, packages = row["物资编码 Item code"], int(row["物资包 Packages"] or 0)
        per_package = next((c.quantity for p in catalogue.packages_containing(code) for c in p.components
                            if c.item_code == code), 0)
        reported[code] += int(row["送达 Delivered"] or 0) - packages * per_package
        if packages:
            reported[catalogue.packages_containing(code)[0].code] += packages
    assert issued and +reported == +issued
    stock = {row["物资编码 Item code"]: int(row["在库 On hand"]) for row in _csv(out / "disclosure-stock.csv")}
    assert stock == {k: v for k, v in on_hand.items() if v}
