"""Issue #14, finding 11: the ledger's hash chain is keyed (HMAC-SHA256 under SUPPLY_LEDGER_KEY).

Real processes: logistics' API on PostgreSQL (and intake's and allocation's APIs for the daily
report). The attacker writes to PostgreSQL directly: rewrites one ledger row and recomputes every
later hash (plain SHA-256, an HMAC under a wrong key, or a downgrade to the unkeyed scheme) and
moves the head. ReconcileLedger names the rewritten row first. The daily report prints the chain
head; verifying against that anchor catches even someone who holds the key."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text
from supply.v1 import common_pb2
from supply.v1 import logistics_pb2 as pb

from services.common.config import load_settings
from services.common.db import make_engine
from services.common.migrate import upgrade
from services.logistics.domain.ledger import canonical
from services.logistics.domain.model import DocRef
from tests.support.intake import HQ
from tests.support.logistics import Logistics, key
from tests.support.processes import ROOT, ServiceProcess

DAY = "2026-12-01"
LEDGER_KEY = "county-ledger-key-for-the-security-tests-0001"
REWRITTEN = 2  # the row the attacker rewrites (of 4)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, amqp_url, pg_url_factory):
    from tests.support.intake import make_env

    tmp = tmp_path_factory.mktemp("ledger-keyed")
    env = make_env(tmp / "var", amqp_url, LOGISTICS_DATABASE_URL=pg_url_factory("ledgerkey"),
                   SUPPLY_LEDGER_KEY=LEDGER_KEY,
                   SUPPLY_CLOCK=f"sim:{DAY}T16:00:00+08:00;speed=1;anchor={time.time():.3f}")
    for service in ("intake", "allocation", "logistics"):
        upgrade(service, load_settings(service, env).database_url)
    procs = [ServiceProcess(s, "api", env, tmp).start() for s in ("intake", "allocation", "logistics")]
    api = None
    engine = make_engine(env["LOGISTICS_DATABASE_URL"])
    try:
        for p in procs:
            p.wait_healthy(f"127.0.0.1:{env[f'{p.service.upper()}_GRPC_PORT']}", timeout=45)
        api = Logistics(env)
        api.RegisterDepot(pb.RegisterDepotRequest(idempotency_key=key(), depot=pb.Depot(
            id="D1", name="城关中心仓", location=common_pb2.GeoPoint(lat=30.3, lon=120.1))))
        api.RegisterZone(pb.RegisterZoneRequest(idempotency_key=key(), zone=pb.Zone(
            id="D1-AMB", depot_id="D1", storage_class="ambient", capacity_l=100_000)))
        for n, item in enumerate(("RICE-10KG", "FLOUR-5KG", "OIL-5L", "NOODLE-1KG")):
            api.ReceiveStock(pb.ReceiveStockRequest(
                idempotency_key=key(), kind=pb.RECEIPT_KIND_PURCHASE, depot_id="D1",
                origin_ref=f"PO-{n}", lines=[pb.ReceiptLineSpec(
                    item_code=item, quantity=10 + n, lot_number=f"B-{n}", expiry="2027-06-01")]))
        yield env, api, engine, tmp
    finally:
        if api is not None:
            api.close()
        for p in procs:
            p.stop()
        engine.dispose()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hmac_under(secret: str) -> Callable[[bytes], str]:
    return lambda data: hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def _bytes(r: dict, prev_hash: str) -> bytes:
    """The published canonical form of a row (services.logistics.domain.ledger.canonical)."""
    return canonical(r["seq"], r["kind"], r["lot_id"], r["item_code"], r["depot_id"], r["zone_id"],
                     r["quantity"], r["on_hand_delta"], r["reserved_delta"],
                     r["quarantined_delta"], r["actor"], r["at"], r["reason"],
                     DocRef(r["doc_type"], r["doc_id"]), r["plan_line_id"], r["expiry"], prev_hash)


def rewrite(engine, seq: int, sign: Callable[[bytes], str], *, actor: str = "someone-else",
            set_scheme: str | None = None) -> list[dict]:
    """Change row `seq`'s actor, re-sign it and every later row with `sign`, move the head.
    Returns the rows as they were, for restore()."""
    with engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            text("SELECT * FROM ledger WHERE seq >= :s ORDER BY seq"), {"s": seq})]
        prev_hash = rows[0]["prev_hash"]
        for r in rows:
            r = {**r, "actor": actor} if r["seq"] == seq else r
            digest = sign(_bytes(r, prev_hash))
            conn.execute(text("UPDATE ledger SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                         {"a": r["actor"], "p": prev_hash, "h": digest, "s": r["seq"]})
            if set_scheme is not None:
                conn.execute(text("UPDATE ledger SET scheme = :x WHERE seq = :s"),
                             {"x": set_scheme, "s": r["seq"]})
            prev_hash = digest
        conn.execute(text("UPDATE ledger_head SET hash = :h"), {"h": prev_hash})
    return rows


def restore(engine, rows: list[dict]) -> None:
    with engine.begin() as conn:
        for r in rows:
            conn.execute(text("UPDATE ledger SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                         {"a": r["actor"], "p": r["prev_hash"], "h": r["hash"], "s": r["seq"]})
            if "scheme" in r:
                conn.execute(text("UPDATE ledger SET scheme = :x WHERE seq = :s"),
                             {"x": r["scheme"], "s": r["seq"]})
        conn.execute(text("UPDATE ledger_head SET hash = :h"), {"h": rows[-1]["hash"]})


def breaks(api) -> list[tuple[int, str]]:
    report = api.ReconcileLedger(pb.ReconcileLedgerRequest())
    return [(b.seq, b.problem) for b in report.chain_breaks]


@pytest.mark.parametrize("sign", [sha256, hmac_under("a-wrong-key-of-the-right-length-0123456789")],
                         ids=["plain-sha256", "wrong-key"])
def test_a_rewritten_row_with_every_later_hash_recomputed_is_caught_at_its_seq(stack, sign):
    _, api, engine, _ = stack
    assert breaks(api) == []
    rows = rewrite(engine, REWRITTEN, sign)
    try:
        found = breaks(api)
        assert found and found[0] == (REWRITTEN, "hash"), found
        assert all(seq >= REWRITTEN for seq, _ in found)
    finally:
        restore(engine, rows)
    assert breaks(api) == []


def test_a_row_downgraded_to_the_unkeyed_scheme_is_caught(stack):
    _, api, engine, _ = stack
    rows = rewrite(engine, REWRITTEN, sha256, set_scheme="sha256")
    try:
        found = breaks(api)
        assert found and found[0][0] == REWRITTEN and found[0][1] in ("scheme", "hash"), found
    finally:
        restore(engine, rows)
    assert breaks(api) == []


def _reconcile_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.logistics.reconcile", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_the_daily_report_prints_the_chain_head_and_that_anchor_catches_a_key_holder(stack):
    env, api, engine, tmp = stack
    out = tmp / "reports"
    cli = subprocess.run([sys.executable, "-m", "services.reports", "--day", DAY, "--out", str(out),
                          "--token", HQ], cwd=ROOT, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=90)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    head = api.ReconcileLedger(pb.ReconcileLedgerRequest())
    md = (out / "daily-report.md").read_text(encoding="utf-8")
    ledger_section = md.split("八、")[-1]
    assert head.head_hash in ledger_section and str(head.head_seq) in ledger_section, ledger_section
    from openpyxl import load_workbook

    cells = {str(c) for ws in load_workbook(out / "daily-report.xlsx").worksheets
             for row in ws.iter_rows(values_only=True) for c in row if c is not None}
    assert head.head_hash in cells

    anchor = f"{head.head_seq}:{head.head_hash}"
    ok = _reconcile_cli(env, "--anchor", anchor)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # someone holding the key rewrites a row: the chain verifies again, the anchor does not
    rows = rewrite(engine, REWRITTEN, hmac_under(LEDGER_KEY))
    try:
        assert breaks(api) == []
        bad = _reconcile_cli(env, "--anchor", anchor)
        assert bad.returncode == 1 and "anchor" in bad.stdout, bad.stdout + bad.stderr
    finally:
        restore(engine, rows)
    refused = _reconcile_cli(env, "--anchor", "not-an-anchor")
    assert refused.returncode == 2 and "--anchor" in refused.stderr, refused.stderr


def test_production_refuses_logistics_without_a_ledger_key(tmp_path):
    from services.common.config import DEV_LEDGER_KEY, ConfigError
    from tests.security.test_production_settings import good_env

    base = {k: v for k, v in good_env(tmp_path).items() if k != "SUPPLY_LEDGER_KEY"}
    for weak in ({}, {"SUPPLY_LEDGER_KEY": "short"}, {"SUPPLY_LEDGER_KEY": DEV_LEDGER_KEY}):
        with pytest.raises(ConfigError, match="SUPPLY_LEDGER_KEY"):
            load_settings("logistics", {**base, **weak})
    assert load_settings("logistics", {**base, "SUPPLY_LEDGER_KEY": "k" * 40})


def test_a_chain_written_before_it_was_keyed_still_verifies_and_keyed_lines_follow_it(tmp_path):
    """Migration 0002 on a ledger of unkeyed lines: they keep verifying (scheme sha256), the
    lines after them are keyed, and a line signed with another key is caught."""
    import dataclasses
    from datetime import UTC, date, datetime

    from sqlalchemy import insert

    from services.logistics import audit
    from services.logistics.adapters import ledger_store, schema
    from services.logistics.domain.ledger import UNKEYED, Ledger, LedgerKind, Posting, line_hash
    from tests.unit.logistics.test_service_support import make_ctx, receive, setup_depot

    url = f"sqlite:///{tmp_path / 'logistics.db'}"
    upgrade("logistics", url, "0001")
    old = Ledger()
    for n in (1, 2):
        old.post(Posting(LedgerKind.RECEIPT, f"OLD-{n}", 5 * n, "keeper", datetime(2026, 11, 1, tzinfo=UTC),
                         "采购入库 / purchase receipt", DocRef("receipt", f"RC-{n}"), item_code="RICE-10KG",
                         depot_id="D1", zone_id="D1-AMB", expiry=date(2027, 6, 1)))
    prev, unkeyed = "0" * 64, []
    for ln in old.lines:  # as the code before the key wrote them: plain SHA-256
        ln = dataclasses.replace(ln, prev_hash=prev, scheme=UNKEYED)
        ln = dataclasses.replace(ln, hash=line_hash(ln))
        unkeyed.append(ln)
        prev = ln.hash
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(schema.ledger).values(
            [{k: v for k, v in ledger_store._line_row(ln).items() if k != "scheme"} for ln in unkeyed]))
        for b in old.balances.values():
            conn.execute(text("INSERT INTO lot_balances (lot_id, item_code, depot_id, zone_id, expiry, "
                              "on_hand, reserved, quarantined, status, reserved_by_plan, last_seq, "
                              "updated_at) VALUES (:l, 'RICE-10KG', 'D1', 'D1-AMB', '2027-06-01', :q, 0, "
                              "0, 'available', '{}', 0, '2026-11-01 00:00:00')"),
                         {"l": b.lot_id, "q": b.on_hand})
        conn.execute(text("UPDATE ledger_head SET seq = 2, hash = :h"), {"h": prev})
    engine.dispose()

    ctx = make_ctx(tmp_path, ledger_key=LEDGER_KEY.encode())  # upgrades to head
    setup_depot(ctx)
    receive(ctx, "OIL-5L", 3)
    report = audit.reconcile(ctx.engine, ctx.ledger_key)
    assert report.ok and report.lines_checked == 3, report
    with ctx.engine.connect() as conn:
        assert [r.scheme for r in conn.execute(text("SELECT scheme FROM ledger ORDER BY seq"))] == [
            UNKEYED, UNKEYED, "hmac-sha256"]
    ctx.ledger_key = b"x" * 40  # a line signed without the county key
    receive(ctx, "OIL-5L", 4)
    assert [(b.seq, b.problem) for b in audit.reconcile(ctx.engine, LEDGER_KEY.encode()).chain_breaks] == [
        (4, "hash")]
