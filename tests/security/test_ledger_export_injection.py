"""Issue #14, finding 2 (the ledger export): user text in the ledger (lot numbers in a receipt's
reason, a quarantine's reason) never becomes a live formula in the CSV or XLSX export (OWASP: a
leading apostrophe), and the export read back gives the original text, so the chain verifies from
the file alone (`python -m services.logistics.reconcile --verify-export FILE`). Real logistics API
process on SQLite; the files come from ExportLedger."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys

import pytest
from openpyxl import load_workbook
from supply.v1 import logistics_pb2 as pb

from services.common.cells import FORMULA_START
from tests.support.logistics import api_with_depot, day, key
from tests.support.processes import ROOT

EVIL = '=HYPERLINK("http://evil.example/","x")'
ODD = ("'=already quoted", "@SUM(1+1)", "+cmd|' /C calc'!A0", "-2+3")
NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, amqp_url):
    tmp = tmp_path_factory.mktemp("ledger-export")
    with api_with_depot(tmp, amqp_url) as (env, api):
        r = api.ReceiveStock(pb.ReceiveStockRequest(
            idempotency_key=key(), kind=pb.RECEIPT_KIND_PURCHASE, depot_id="D1", origin_ref="PO-1",
            lines=[pb.ReceiptLineSpec(item_code="RICE-10KG", quantity=5, lot_number=EVIL,
                                      expiry=day(200))]))
        api.QuarantineLot(pb.QuarantineLotRequest(idempotency_key=key(), lot_id=r.lots[0].lot_id,
                                                  inspection_ref="INS-1", reason=EVIL))
        for n, odd in enumerate(ODD):
            api.ReceiveStock(pb.ReceiveStockRequest(
                idempotency_key=key(), kind=pb.RECEIPT_KIND_PURCHASE, depot_id="D1",
                origin_ref="PO-2", lines=[pb.ReceiptLineSpec(
                    item_code="OIL-5L", quantity=1 + n, lot_number=odd, expiry=day(200))]))
        yield env, api, tmp


def export(api, fmt: int) -> bytes:
    return b"".join(c.data for c in api.ExportLedger(pb.ExportLedgerRequest(format=fmt)))


def live(value) -> bool:
    """A cell a spreadsheet would evaluate."""
    return isinstance(value, str) and value.startswith(FORMULA_START) and not NUMBER.match(value)


def verify_export(env: dict, path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.logistics.reconcile", "--verify-export",
                           str(path)], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60)


def test_the_csv_export_has_no_live_formula_and_verifies_read_back(stack):
    env, api, tmp = stack
    data = export(api, pb.EXPORT_FORMAT_CSV)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    cells = [c for row in rows[1:] for c in row]
    assert any(EVIL in c for c in cells)
    assert [c for c in cells if live(c)] == []
    assert f"'{EVIL}" in cells  # the quarantine's reason, neutralised
    assert api.ReconcileLedger(pb.ReconcileLedgerRequest()).ok
    path = tmp / "ledger.csv"
    path.write_bytes(data)
    ok = verify_export(env, path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the check is real: a changed quantity in the file is caught
    changed = data.replace(b",5,5,0,0,", b",6,6,0,0,", 1)
    assert changed != data
    path.write_bytes(changed)
    bad = verify_export(env, path)
    assert bad.returncode == 1 and "hash" in bad.stdout, bad.stdout + bad.stderr


def test_the_xlsx_export_has_no_formula_cell_and_verifies_read_back(stack):
    env, api, tmp = stack
    data = export(api, pb.EXPORT_FORMAT_XLSX)
    ws = load_workbook(io.BytesIO(data)).active
    cells = [c for row in ws.iter_rows(min_row=2) for c in row]
    assert [c.coordinate for c in cells if c.data_type == "f" or live(c.value)] == []
    assert f"'{EVIL}" in [c.value for c in cells]
    path = tmp / "ledger.xlsx"
    path.write_bytes(data)
    ok = verify_export(env, path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
