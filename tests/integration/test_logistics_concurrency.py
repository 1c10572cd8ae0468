"""Two processes issuing from one lot at once on PostgreSQL: the ledger head lock serializes
appends, so the lot never goes below zero and the hash chain never forks.

The module is also the child process: `python -m tests.integration.test_logistics_concurrency
<database url> <lot> <plan line> <count> <go file>` issues `count` times one unit through
run_idempotent (as the gRPC API does) and prints what happened as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from services.common.auth import Caller
from services.common.config import load_settings
from services.common.db import make_engine
from services.common.errors import RuleRefused
from services.common.idempotency import run_idempotent
from services.common.migrate import upgrade
from services.logistics import audit
from services.logistics.adapters import schema
from services.logistics.bootstrap import build_context
from services.logistics.handlers import base, dispatch, queries, receipts, sites, stock

KEEPER = Caller("keeper-1", "depot_keeper")
ROOT = Path(__file__).resolve().parents[2]


def _ctx(url: str) -> base.LogisticsContext:
    return build_context(load_settings("logistics", {"LOGISTICS_DATABASE_URL": url}), pool_size=2)


def child(url: str, lot_id: str, plan_line_id: str, count: int, go: Path) -> dict:
    ctx = _ctx(url)
    with ctx.engine.connect():
        pass  # connected before the start
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    issued, refused = 0, Counter()
    for i in range(count):
        try:
            run_idempotent(ctx.uow(), "keeper-1:IssueStock", f"{os.getpid()}-{i}", f"{os.getpid()}-{i}",
                           lambda uow: repr(stock.issue_stock(ctx, uow, KEEPER, lot_id=lot_id, quantity=1,
                                                          plan_line_id=plan_line_id)).encode())
            issued += 1
        except RuleRefused as exc:
            refused[exc.rule] += 1
    return {"issued": issued, "refused": dict(refused)}


def test_two_processes_issuing_from_one_lot_never_overdraw_or_fork_the_chain(pg_url_factory, tmp_path):
    url = pg_url_factory("logistics")
    upgrade("logistics", url)
    ctx = _ctx(url)

    def seed(fn, *args, **kw):
        with ctx.uow() as uow:
            out = fn(ctx, uow, *args, **kw)
            uow.commit()
            return out

    hq = Caller("hq-1", "hq")
    seed(sites.register_depot, hq, {"id": "D1", "name": "城关仓", "lat": 30.3, "lon": 120.1})
    seed(sites.register_zone, hq, {"id": "D1-AMB", "depot_id": "D1", "storage_class": "ambient",
                               "capacity_l": 100_000})
    lot_id = seed(receipts.receive_stock, KEEPER, kind="purchase", depot_id="D1", origin_ref="PO-1", lines=[
        receipts.ReceiptLineSpec("RICE-10KG", 60, "B-1", "2099-01-01")])["lot_ids"][0]
    seed(dispatch.apply_plan_approved, {"plan_id": "P1", "delivery_day": "2099-01-01", "approved_by": "hq",
                                 "lines": [{"plan_line_id": "PL-1", "demand_id": "DM-1",
                                            "requester_id": "V1", "drop_point_id": "DP1",
                                            "item_code": "RICE-10KG", "quantity": 100,
                                            "depot_id": "D1", "lots": [], "tier": 3}]})
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.integration.test_logistics_concurrency",
                               url, lot_id, "PL-1", "50", str(go)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["issued"] for r in results) == 60
    assert all(r["issued"] > 0 for r in results), results  # both really took part
    refused = Counter()
    for r in results:
        refused.update(r["refused"])
    assert refused == {"NEGATIVE_STOCK": 40}
    with ctx.engine.connect() as conn:
        lot = queries.lot_row(conn, lot_id)
        assert (lot.on_hand, lot.reserved, lot.quarantined) == (0, 0, 0)
        t = schema.ledger
        seqs = [s for (s,) in conn.execute(select(t.c.seq).order_by(t.c.seq))]
        issues = conn.execute(select(func.count(), func.sum(t.c.quantity))
                              .where(t.c.kind == "issue")).one()
    assert seqs == list(range(1, len(seqs) + 1))
    assert tuple(issues) == (60, -60)
    report = audit.reconcile(ctx.engine, ctx.ledger_key)
    assert report.ok and report.lines_checked == len(seqs), report
    ctx.engine.dispose()


def test_migrated_postgres_matches_the_model(pg_url_factory):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = pg_url_factory("logistics_schema")
    upgrade("logistics", url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    schema.metadata)
        assert diff == []
    finally:
        engine.dispose()


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]))))
