"""Intake's write path in process, without gRPC: concurrent SubmitDemand calls as the group
commit writes them (the servicer's bulk path through GroupCommitter._apply, groups of 10, one
SQLite file), against a baseline of the same three tables' rows written by bare SQLAlchemy Core
inserts in the same groups (no domain checks, no idempotency, no answer).

    python bench/intake_write_path.py [--quick] [--group N] [--instructions]

Figures: CPU of the writing thread per demand (time.thread_time: the other threads — SQLite's
checkpointer — and the other processes on the machine are left out, so it holds steadier than
the gRPC bench on a busy or drifting machine), and the ratio to the baseline.

--instructions counts instead of timing: each path runs under valgrind's callgrind for
SMALL and for LARGE demands, in a process of its own, and the difference of the two totals
divided by LARGE − SMALL is its instructions per demand (start-up and set-up cancel out). The
count is the same from run to run and whatever the machine's speed, so it is the figure to
compare code changes by; it takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gen"), str(ROOT / "bench")]

from intake_grpc import VILLAGES, demand  # noqa: E402

SMALL, LARGE = 300, 1300


def intake(var: Path, checkpoint_every: float | None = 0.2):
    os.environ.update({"SUPPLY_VAR_DIR": str(var), "INTAKE_DATABASE_URL": f"sqlite:///{var / 'intake.db'}",
                       "SUPPLY_LOG_LEVEL": "WARNING"})
    subprocess.run([sys.executable, "-m", "services.cli", "migrate", "intake"], cwd=ROOT, check=True,
                   capture_output=True)
    from services.common.auth import Caller
    from services.common.config import load_settings
    from services.intake.bootstrap import build_context
    from services.intake.handlers.requesters import register_requester

    ctx = build_context(load_settings("intake"), checkpoint_every=checkpoint_every)
    actor = Caller("bench", "admin", "")
    with ctx.uow() as uow:
        for v in range(VILLAGES):
            register_requester(ctx, uow, actor, {
                "id": f"V-{v:04d}", "kind": "village", "name": f"村{v}", "township": f"镇{v % 3}",
                "location": {"lat": 30, "lon": 114}, "population": 1000 + v, "households": 300,
                "risk_level": ("sealed", "controlled", "prevention")[v % 3]})
        uow.commit()
    return ctx, actor


def run_intake(ctx, actor, n: int, group: int, tag: str) -> float:
    """Thread CPU seconds to write n demands through the servicer's bulk path."""
    from services.common.group_commit import GroupCommitter
    from services.intake.entrypoints.grpc_api import IntakeServicer

    servicer = IntakeServicer(ctx)
    committer = GroupCommitter(ctx.uow)
    requests = [demand(i, 3, tag) for i in range(n)]
    started = time.thread_time()
    for g in range(0, n, group):
        batch = [(servicer._submit_many, servicer._submission(actor, r), Future())
                 for r in requests[g:g + group]]
        committer._apply(batch)
        for _, _, done in batch:
            assert isinstance(done.result(), bytes)
    return time.thread_time() - started


def run_bare(ctx, n: int, group: int, tag: str) -> float:
    """Thread CPU seconds to insert the rows of n demands (a stored demand, its outbox event and
    its idempotency key, of the sizes the intake path writes) with bare Core inserts."""
    import json

    from sqlalchemy import insert

    from services.common.db import utcnow
    from services.intake.adapters.schema import tables

    with ctx.uow() as uow:
        stored = uow.conn.execute(tables["demands"].select().limit(1)).mappings().first()
        body = uow.conn.execute(tables["outbox"].select().limit(1)).mappings().first()["body"]
    started = time.thread_time()
    for g in range(0, n, group):
        with ctx.uow() as uow:
            ids = [f"{tag}-{i}" for i in range(g, min(g + group, n))]
            now = utcnow()
            uow.conn.execute(insert(tables["demands"]), [{**stored, "id": i} for i in ids])
            uow.conn.execute(insert(tables["outbox"]), [
                {"event_id": i, "exchange": "intake.events", "routing_key": "demand_registered",
                 "body": body, "created_at": now, "attempts": 0} for i in ids])
            uow.conn.execute(insert(tables["idempotency_keys"]), [
                {"scope": "bench", "key": i, "request_hash": "0" * 64, "response": json.dumps(i).encode(),
                 "created_at": now} for i in ids])
            uow.commit()
    return time.thread_time() - started


def count_one(path: str, n: int, group: int) -> None:
    """The process callgrind watches: write n demands by one path. SQLite checkpoints as it
    does by default (the API's checkpoint thread runs by the clock, which would make the count
    vary)."""
    ctx, actor = intake(Path(tempfile.mkdtemp(prefix="bench-write-path-")), checkpoint_every=None)
    if path == "intake":
        run_intake(ctx, actor, n, group, "c")
    else:
        run_intake(ctx, actor, 1, group, "seed")  # a stored demand to copy
        run_bare(ctx, n, group, "c")


def instructions(path: str, n: int, group: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        sys.executable, __file__, "--count-one", path, str(n), "--group", str(group)],
                       check=True, capture_output=True)
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no total in callgrind's output for {path} × {n}")


def count_instructions(group: int) -> None:
    print(f"intake write path, instructions per demand (callgrind; {LARGE} − {SMALL} demands, "
          f"groups of {group})", flush=True)
    per = {}
    for path in ("bare", "intake"):
        small, large = instructions(path, SMALL, group), instructions(path, LARGE, group)
        per[path] = (large - small) / (LARGE - SMALL)
    print(f"  bare Core inserts of the same rows   {per['bare']:12,.0f}")
    print(f"  SubmitDemand's bulk path             {per['intake']:12,.0f}")
    print(f"  ratio to bare inserts                {per['intake'] / per['bare']:12.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--group", type=int, default=10)
    ap.add_argument("--instructions", action="store_true", help="count instructions (valgrind)")
    ap.add_argument("--count-one", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.count_one:
        return count_one(args.count_one[0], int(args.count_one[1]), args.group)
    if args.instructions:
        return count_instructions(args.group)
    n, rounds = (2000, 3) if args.quick else (5000, 5)
    ctx, actor = intake(Path(tempfile.mkdtemp(prefix="bench-write-path-")))
    run_intake(ctx, actor, 500, args.group, "warm")
    ours, bare = [], []
    for r in range(rounds):  # interleaved, so that a drift of the machine's speed hits both
        ours.append(run_intake(ctx, actor, n, args.group, f"r{r}") / n * 1000)
        bare.append(run_bare(ctx, n, args.group, f"b{r}") / n * 1000)
    print(f"intake write path in process — SQLite, groups of {args.group}, {rounds} × {n} demands "
          f"(median of the rounds, writing thread's CPU)")
    print(f"  bare Core inserts of the same rows   {statistics.median(bare):8.3f} ms per demand")
    print(f"  SubmitDemand's bulk path             {statistics.median(ours):8.3f} ms per demand "
          f"(rounds {', '.join(f'{x:.3f}' for x in ours)})")
    print(f"  ratio to bare inserts                {statistics.median(ours) / statistics.median(bare):8.2f}")


if __name__ == "__main__":
    main()
