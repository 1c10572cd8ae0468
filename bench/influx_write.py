"""Bare InfluxDB /write rate of this machine: the baseline the monitoring bench compares against.

    .venv/bin/python bench/influx_write.py [--quick] [--url http://127.0.0.1:8086] [--batch 5000]

One Python writer, sequential POSTs of `--batch` lines (precision ms) into a throwaway database
on the shared InfluxDB (dropped at the end). Figures:
  encode only       env_line() per reading (no I/O)
  bare /write       pre-encoded batches, one requests.Session
  encode + /write   encoding inside the timed loop
  InfluxWriter      the adapter: add() + flush() (spool idle), encoding outside
Every run writes distinct points (new timestamps), and the total is counted back at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.monitoring.adapters.influx import InfluxWriter  # noqa: E402
from services.monitoring.adapters.line_protocol import env_line  # noqa: E402

T0_MS = 1795852800000  # 2026-11-28T08:00:00Z


def readings(start: int, n: int, sensors: int):
    """(depot, zone, sensor, class, ts_ms, temp, rh, seq): `sensors` series, 1 s apart."""
    for i in range(start, start + n):
        s = i % sensors
        yield (f"D{s // 100:02d}", f"Z{s // 10 % 10}", f"S{s:04d}", "cold_chain",
               T0_MS + (i // sensors) * 1000, 2.0 + (i % 61) / 10, 40.0 + (i % 37), i)


def encode(rows) -> list[str]:
    return [env_line(*r) for r in rows]


def post_batches(session: requests.Session, url: str, db: str, lines: list[str], batch: int) -> None:
    for i in range(0, len(lines), batch):
        body = ("\n".join(lines[i:i + batch]) + "\n").encode()
        r = session.post(f"{url}/write", params={"db": db, "precision": "ms"}, data=body, timeout=30)
        if r.status_code != 204:
            raise SystemExit(f"/write answered {r.status_code}: {r.text[:300]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one run of 100 000 points per figure instead of 3 of 300 000")
    ap.add_argument("--url", default=os.environ.get("INFLUX_URL", "http://127.0.0.1:8086"))
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--sensors", type=int, default=1000)
    args = ap.parse_args()
    n, rounds = (100_000, 1) if args.quick else (300_000, 3)
    db = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    session = requests.Session()
    session.post(f"{args.url}/query", data={"q": f'CREATE DATABASE "{db}"'}, timeout=10).raise_for_status()
    figures: dict[str, list[float]] = {}
    offset = 0

    def fresh() -> list[tuple]:
        nonlocal offset
        rows = list(readings(offset, n, args.sensors))
        offset += n
        return rows

    def timed(name: str, fn) -> None:
        t = time.perf_counter()
        fn()
        figures.setdefault(name, []).append(n / (time.perf_counter() - t))

    def bare(lines):
        post_batches(session, args.url, db, lines, args.batch)

    def encode_and_write(rows):
        for i in range(0, n, args.batch):
            post_batches(session, args.url, db, encode(rows[i:i + args.batch]), args.batch)

    def adapter(w, lines):
        for i in range(0, n, args.batch):
            w.add(lines[i:i + args.batch])
            w.flush()

    try:
        # warm-up: series creation and connection set-up are not what we measure
        post_batches(session, args.url, db, encode(fresh()[:args.sensors * 2]), args.batch)
        with tempfile.TemporaryDirectory() as spool, \
                InfluxWriter(args.url, db, spool, batch_lines=args.batch) as w:
            for _ in range(rounds):  # interleaved, so server-side compactions hit all alike
                rows = fresh()
                timed("encode only", lambda rows=rows: encode(rows))
                lines = encode(fresh())
                timed("bare /write (pre-encoded)", lambda lines=lines: bare(lines))
                rows = fresh()
                timed("encode + /write", lambda rows=rows: encode_and_write(rows))
                lines = encode(fresh())
                timed("InfluxWriter add+flush", lambda lines=lines: adapter(w, lines))
            assert w.spooled_lines == 0 and w.dead_lines == 0
            stored = w.query("SELECT COUNT(seq) FROM env")[0]["values"][0][1]
        expected = args.sensors * 2 + 3 * n * rounds
        if stored != expected:
            raise SystemExit(f"counted {stored} points back, expected {expected}")
    finally:
        session.post(f"{args.url}/query", data={"q": f'DROP DATABASE "{db}"'}, timeout=30)

    print(f"InfluxDB {args.url}: batches of {args.batch}, {n} points per run, {rounds} run(s), "
          f"{args.sensors} series, one Python writer, {stored} points counted back")
    print(f"  {'':<28} {'median':>12} {'min':>10} {'max':>10}  points/s")
    for name, rates in figures.items():
        print(f"  {name:<28} {statistics.median(rates):>12,.0f} {min(rates):>10,.0f} "
              f"{max(rates):>10,.0f}")
    print(json.dumps({"bench": "influx_write", "batch": args.batch, "points": n, "rounds": rounds,
                      **{k: round(statistics.median(v)) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
