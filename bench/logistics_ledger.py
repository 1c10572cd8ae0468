"""Benchmark of the ledger (台账, services.logistics.domain.ledger), in memory.

    .venv/bin/python bench/logistics_ledger.py            # 1 000 000 lines
    .venv/bin/python bench/logistics_ledger.py --quick    # 50 000 lines

A seeded stream of receipts, reservations against plan lines, issues of approved plan lines,
reservation releases, stocktake adjustments, quarantines and releases is posted through
`Ledger.post` (every rule checked, every line hash-chained). A shadow model kept by the
generator, independent of the ledger, gives the balances the lines must produce.
Reports: lines appended per second; whether balances are exact; `reconcile` time over all
lines (and that it finds one planted off-by-one); `verify_chain` time over all lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import random
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.logistics.domain.ledger import Ledger, LedgerKind, Posting  # noqa: E402
from services.logistics.domain.ledger_audit import reconcile, verify_chain  # noqa: E402
from services.logistics.domain.model import DocRef  # noqa: E402

K = LedgerKind
ITEMS = ["RICE-10KG", "OIL-5L", "NOODLE-1KG", "MASK-N95", "PORK-KG", "MILK-1L"]
START = datetime(2026, 3, 2, 6, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def run(n_lines: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    led = Ledger()
    approved: set[str] = set()
    shadow: dict[str, list[int]] = {}  # lot -> [on_hand, reserved, quarantined]
    open_res: dict[str, tuple[str, int]] = {}  # lot -> (plan line, reserved qty)
    lots: list[str] = []
    stocktake = DocRef("stocktake", "ST-1")
    alert = DocRef("alert", "ALM-1")
    inspection = DocRef("inspection", "INS-1")
    n_lots = max(10, n_lines // 25)
    counts: dict[str, int] = {}

    def post(p: Posting, eff: tuple[int, int, int]) -> None:
        led.post(p, approved)
        s = shadow[p.lot_id]
        s[0] += eff[0]
        s[1] += eff[1]
        s[2] += eff[2]
        counts[p.kind] = counts.get(p.kind, 0) + 1

    gc.disable()
    t0 = time.perf_counter()
    i = -1
    while led.head_seq < n_lines:
        i += 1
        at = START + timedelta(seconds=i)
        if len(lots) < n_lots and (not lots or rng.random() < 0.05):
            lot = f"LOT-{len(lots):07d}"
            lots.append(lot)
            shadow[lot] = [0, 0, 0]
            q = rng.randint(500, 5000)
            post(Posting(K.RECEIPT, lot, q, "keeper", at, "purchase receipt",
                         DocRef("receipt", f"R-{lot}"), item_code=rng.choice(ITEMS),
                         depot_id=f"D{rng.randint(1, 4)}", zone_id="Z1",
                         expiry=date(2027, 12, 31)), (q, 0, 0))
            continue
        lot = lots[rng.randrange(len(lots))]
        s = shadow[lot]
        if s[2]:  # quarantined: release it
            post(Posting(K.RELEASE, lot, -s[2], "qa", at, "inspected, fit", inspection),
                 (0, 0, -s[2]))
        elif lot in open_res:
            plan, q = open_res.pop(lot)
            give = rng.randint(0, q)
            if give:
                post(Posting(K.ISSUE, lot, -give, "keeper", at, "delivered",
                             DocRef("delivery", f"DLV-{i}"), plan_line_id=plan), (-give, -give, 0))
            if q - give:
                post(Posting(K.RESERVATION_RELEASE, lot, -(q - give), "planner", at,
                             "plan changed", DocRef("plan_line", plan), plan_line_id=plan),
                     (0, -(q - give), 0))
        else:
            avail = s[0] - s[1] - s[2]
            r = rng.random()
            if avail <= 0 or r < 0.05:
                q = rng.randint(1, 200)
                post(Posting(K.ADJUSTMENT, lot, q, "keeper", at, "stocktake surplus", stocktake),
                     (q, 0, 0))
            elif r < 0.08:
                post(Posting(K.QUARANTINE, lot, avail, "monitoring", at, "spoilage alarm", alert),
                     (0, 0, avail))
            elif r < 0.12:
                q = -rng.randint(1, min(avail, 20))
                post(Posting(K.ADJUSTMENT, lot, q, "keeper", at, "stocktake loss", stocktake),
                     (q, 0, 0))
            else:
                plan = f"PL-{i}"
                approved.add(plan)
                q = rng.randint(1, min(avail, 300))
                post(Posting(K.RESERVATION, lot, q, "planner", at, "reserve FEFO",
                             DocRef("plan_line", plan), plan_line_id=plan), (0, q, 0))
                open_res[lot] = (plan, q)
    append_s = time.perf_counter() - t0
    gc.enable()
    n = len(led.lines)
    exact = all((b.on_hand, b.reserved, b.quarantined) == tuple(shadow[lot])
                for lot, b in led.balances.items()) and len(shadow) == len(led.balances)
    never_negative = all(b.available >= 0 and b.on_hand >= 0 and b.reserved >= 0
                         for b in led.balances.values())

    t0 = time.perf_counter()
    mism = reconcile(led.lines, led.balances)
    rec_s = time.perf_counter() - t0
    planted = dict(led.balances)
    victim = lots[len(lots) // 2]
    planted[victim] = dataclasses.replace(led.balances[victim],
                                          on_hand=led.balances[victim].on_hand - 1)
    found = reconcile(led.lines, planted)

    t0 = time.perf_counter()
    breaks = verify_chain(led.lines, expected_head=(led.head_seq, led.head_hash))
    chain_s = time.perf_counter() - t0

    print(f"ledger: {n:,} lines, {len(lots):,} lots, kinds "
          + ", ".join(f"{k}={v:,}" for k, v in sorted(counts.items())))
    print(f"  append (rules + sha256 chain): {append_s:7.2f} s  {n / append_s:>10,.0f} lines/s")
    print(f"  balances exact vs shadow model: {'yes' if exact else 'NO'}; "
          f"never below zero: {'yes' if never_negative else 'NO'}")
    print(f"  reconcile {n:,} lines:          {rec_s:7.2f} s  {n / rec_s:>10,.0f} lines/s  "
          f"mismatches {len(mism)}; planted off-by-one found: "
          f"{'yes' if [(m.lot_id, m.field) for m in found] == [(victim, 'on_hand')] else 'NO'}")
    print(f"  verify_chain {n:,} lines:       {chain_s:7.2f} s  {n / chain_s:>10,.0f} lines/s  "
          f"breaks {len(breaks)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="50 000 lines")
    ap.add_argument("--lines", type=int, default=None)
    args = ap.parse_args()
    run(args.lines or (50_000 if args.quick else 1_000_000))


if __name__ == "__main__":
    main()
