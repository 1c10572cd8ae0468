"""Console load (issue #13): the HQ board for 50 signed-in sessions at once, on a county of 300
villages; next to the console's /healthz (one SQLite read, no gRPC) for the same sessions in the
same run.

    .venv/bin/python bench/console_load.py [--quick] [--sessions 50] [--villages 300]
                                           [--seconds 20] [--connections 6] [--keep]

Everything runs for real on this machine: the whole county stack of tests.support.county_stack
(every service's api, worker and relay, monitoring's ingest, the console) on its own RabbitMQ
vhost, InfluxDB database and var dir under a temp dir, on a simulated clock at speed 1 that
reads about 10:49 once the stack is up (so the day does not move during the run: before the
11:00 cut-off, no plan, no trips yet), seeded with the demo county scaled to --villages villages, each of which has sent its
morning demand. The load generator is this process (httpx on asyncio), on the same cores.

1. sign in    --sessions hq accounts (hq00, hq01, …), each through the login form (its CSRF
              field and cookie), each session an httpx.AsyncClient of its own with its cookies
              and at most --connections connections, as a browser holds per host over HTTP/1.1
2. check      one board; the list of every demand (opened on request) has every village's
3. alone      one session loads the board in a loop for --seconds: the page time with nothing
              else on the console (the floor under the figures of phase 6)
4. warm-up    every other session loads the board once, five at a time (not counted)
5. baseline   every session GETs /healthz in a closed loop (no think time) for --seconds
6. paced      every session loads the board (GET /hq: the page with its seven panels, whose
              data the console fetches at once: clock, alerts, plan, demands, stock, trips,
              donations), then waits --think seconds (±20 %), for 3 × --think seconds at least:
              50 people with the board open. The target is judged on this phase.
7. stress     the same in a closed loop (no think time) for --seconds

A closed loop of 50 sessions with no think time keeps 50 boards in flight: by Little's law its
mean page time is 50 ÷ boards/s (a p95 under 150 ms there would need more than 333 boards/s):
it shows the capacity, not what 50 people see.

Reported: boards, boards/s, page time p50/p95/p99, p95 of /hq and of each panel, the baseline's
p95 and the ratio; the CPU seconds of the console and of each API process during each phase
(/proc/<pid>/stat), and of this load generator; the gRPC calls one board costs, from the code
(pages_hq.py) with the number of pages of each paged list counted against the same services.
Exits non-zero if anything failed (an HTTP error, a timeout, a board short of demands), not for
missing the target (p95 page time < 150 ms), which it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import platform
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "gen"))

from tests.support import infra  # noqa: E402
from tests.support.county_stack import CountyStack  # noqa: E402

TARGET_P95_MS = 150.0
PASSWORD = "county-bench-2026"
CSRF = re.compile(r'name="csrf_token"\s+value="([^"]+)"|value="([^"]+)"\s+name="csrf_token"')
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The gRPC calls of each board panel (services/console/entrypoints/pages_hq.py): (service, method,
# the request's paged list if the panel reads every page of it through Services.all_pages, its
# limit). /hq itself makes none. The demands panel's ListRequesters is read once a minute per
# console process and role (pages_hq.RequesterDirectory), not per board. Every request, /hq and
# each panel, also reads the session and the user from the console's SQLite database
# (web.load_viewer), and /healthz reads one user.
PANEL_CALLS: dict[str, list[tuple[str, str, str, int]]] = {
    "clock": [("allocation", "GetPolicy", "", 0)],
    "demands": [("intake", "SummarizeDemands", "", 0)],  # the list of every demand only when opened
    "plan": [("allocation", "GetPlan", "", 0)],
    "stock": [("logistics", "GetDaysOfSupply", "", 0),
              ("logistics", "ListLots", "quarantined lots", 200),
              ("logistics", "ListLots", "available lots", 5_000)],
    "alerts": [("monitoring", "ListAlerts", "", 0)],
    "trips": [("logistics", "ListTrips", "", 0)],
    "donations": [("intake", "GetDonationSummary", "", 0)],
}


def pct(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


# ---- CPU -----------------------------------------------------------------------------------
def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (every thread), in seconds; 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of every CPU of the machine."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    total = sum(parts[:8])
    return total - idle, total


def self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class CpuWindow:
    """CPU seconds per stack process (and of this process, and the machine) over one phase."""

    stack: CountyStack
    start: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    loadavg: str = ""

    def _names(self) -> dict[str, int]:
        return {f"{p.service} {p.kind}": p.proc.pid for p in self.stack.procs}

    def __enter__(self) -> CpuWindow:
        self.start = {n: proc_cpu_s(pid) for n, pid in self._names().items()}
        self.start["load generator (this process)"] = self_cpu_s()
        self.m0 = machine_ticks()
        return self

    def __exit__(self, *exc) -> None:
        now = {n: proc_cpu_s(pid) for n, pid in self._names().items()}
        now["load generator (this process)"] = self_cpu_s()
        self.used = {n: now[n] - self.start[n] for n in now}
        busy, total = machine_ticks()
        self.machine_busy = (busy - self.m0[0]) / max(total - self.m0[1], 1)
        self.loadavg = Path("/proc/loadavg").read_text().split(" ", 3)[:3]


# ---- sessions ------------------------------------------------------------------------------
@dataclass
class Results:
    boards: list[float] = field(default_factory=list)  # page times, s, of every board (failed too)
    failed: int = 0  # boards with a part that failed (an HTTP error: the person sees a banner)
    retried: int = 0  # GETs sent again after a kept-alive connection closed under them
    per_url: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # every answer
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    elapsed: float = 0.0


def new_client(url: str, connections: int) -> httpx.AsyncClient:
    """A session's client. Idle connections are dropped after 3 s, before uvicorn's 5 s: with
    both at 5 s a request now and then goes out on a connection the server is closing
    (RemoteProtocolError), which a browser sends again without a word and httpx does not. Under
    load this process sees answers late, so that still happens: timed_get sends such a GET again
    once, and counts it."""
    return httpx.AsyncClient(base_url=url, timeout=30.0, follow_redirects=False,
                             limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                                                 keepalive_expiry=3.0))


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    r = await client.get("/login")
    r.raise_for_status()
    m = CSRF.search(r.text)
    if not m:
        raise RuntimeError("no csrf_token field on /login")
    token = html.unescape(m.group(1) or m.group(2))
    r = await client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                          "next": ""})
    if r.status_code != 303 or "console_session" not in client.cookies:
        raise RuntimeError(f"sign-in of {username}: HTTP {r.status_code}: {r.text[:200]}")


def short(url: str) -> str:
    return url.split("?", 1)[0].removeprefix("/hq/panel/") if url.startswith("/hq/panel/") else url


async def timed_get(client: httpx.AsyncClient, url: str, res: Results) -> tuple[float, httpx.Response | None]:
    t = time.perf_counter()
    headers = {"hx-request": "true"} if url.startswith("/hq/panel/") else None
    try:
        try:
            r = await client.get(url, headers=headers)
        except (httpx.RemoteProtocolError, httpx.ReadError):  # as a browser does, once
            res.retried += 1
            r = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        res.errors.append(f"{short(url)}: {type(exc).__name__}: {exc}")
        return time.perf_counter() - t, None
    dt = time.perf_counter() - t
    res.requests += 1
    res.per_url[short(url)].append(dt)
    if r.status_code != 200:
        res.errors.append(f"{short(url)}: HTTP {r.status_code}: {r.text[:200]!r}")
        return dt, None
    return dt, r


async def load_board(client: httpx.AsyncClient, res: Results) -> tuple[bool, dict[str, str]]:
    """GET /hq: the board with every panel in it (the console fetches the panels' data at once
    and renders them into the page); a board whose page failed or has a panel's problem banner
    counts as failed, with its time."""
    t0 = time.perf_counter()
    _, page = await timed_get(client, "/hq", res)
    res.boards.append(time.perf_counter() - t0)
    if page is not None and 'data-service="' in page.text and 'class="card problem' in page.text:
        res.errors.append("/hq: a panel shows a service problem: "
                          + re.search(r'data-service="([^"]*)"', page.text).group(1))
        page = None
    if page is None:
        res.failed += 1
        return False, {}
    return True, {"/hq": page.text}


async def closed_loop(clients: list[httpx.AsyncClient], seconds: float, one) -> Results:
    """Every client runs `one(client, res)` back to back (no think time) until `seconds` pass;
    a round started before the end is counted."""
    res = Results()
    t0 = time.perf_counter()
    end = t0 + seconds

    async def session(client):
        while time.perf_counter() < end:
            await one(client, res)

    await asyncio.gather(*(session(c) for c in clients))
    res.elapsed = time.perf_counter() - t0
    return res


async def paced_loop(clients: list[httpx.AsyncClient], seconds: float, think: float, one) -> Results:
    """Every client runs `one(client, res)`, then waits `think` seconds (±20 %, first start spread
    over one think time), until `seconds` pass: people with the board open, not a stress loop."""
    import random

    res = Results()
    t0 = time.perf_counter()
    end = t0 + seconds
    rng = random.Random(7)

    async def session(client):
        await asyncio.sleep(rng.uniform(0, think))
        while time.perf_counter() < end:
            await one(client, res)
            await asyncio.sleep(think * rng.uniform(0.8, 1.2))

    await asyncio.gather(*(session(c) for c in clients))
    res.elapsed = time.perf_counter() - t0
    return res


async def healthz(client: httpx.AsyncClient, res: Results) -> None:
    dt, r = await timed_get(client, "/healthz", res)
    res.boards.append(dt)
    res.failed += r is None


# ---- gRPC calls per board -------------------------------------------------------------------
def grpc_calls(stack: CountyStack, day: str) -> tuple[dict[str, int], dict[str, int]]:
    """The calls each panel makes (PANEL_CALLS), with each paged list's pages counted by reading
    the same lists through the same services page by page, as Services.all_pages does (500 a page)."""
    import grpc
    from supply.v1 import common_pb2 as cpb
    from supply.v1 import intake_pb2 as ipb
    from supply.v1 import intake_pb2_grpc as irpc
    from supply.v1 import logistics_pb2 as lpb
    from supply.v1 import logistics_pb2_grpc as lrpc

    from simulators import county_day as demo

    md = [("authorization", f"Bearer {demo.TOKEN}")]
    with grpc.insecure_channel(stack.targets["intake"]) as ich, grpc.insecure_channel(stack.targets["logistics"]) as lch:
        intake, logistics = irpc.IntakeServiceStub(ich), lrpc.LogisticsServiceStub(lch)
        lists = {
            "every requester": (intake.ListRequesters, ipb.ListRequestersRequest(), "requesters"),
            "quarantined lots": (logistics.ListLots, lpb.ListLotsRequest(status=lpb.LOT_STATUS_QUARANTINED), "lots"),
            "available lots": (logistics.ListLots, lpb.ListLotsRequest(status=lpb.LOT_STATUS_AVAILABLE), "lots"),
        }
        limits = {what: limit for calls in PANEL_CALLS.values() for _, _, what, limit in calls if what}
        limits["every requester"] = 20_000  # once a minute, not per board
        pages: dict[str, int] = {}
        items: dict[str, int] = {}
        for what, (rpc, request, fld) in lists.items():
            n = got = 0
            request.page.CopyFrom(cpb.PageRequest(page_size=500))
            while True:
                answer = rpc(request, metadata=md, timeout=30)
                n += 1
                got += len(getattr(answer, fld))
                if not answer.page.next_page_token or got >= limits[what]:
                    break
                request.page.page_token = answer.page.next_page_token
            pages[what], items[what] = n, min(got, limits[what])
    per_panel = {name: sum(pages[what] if what else 1 for _, _, what, _ in calls)
                 for name, calls in PANEL_CALLS.items()}
    return per_panel, {**{f"{w} (items)": n for w, n in items.items()}, **{f"{w} (pages)": n for w, n in pages.items()}}


# ---- the run -------------------------------------------------------------------------------
async def run(stack: CountyStack, args, out: Console) -> dict:
    store = stack.account_store()
    names = [f"hq{i:02d}" for i in range(args.sessions)]
    t = time.perf_counter()
    await asyncio.gather(*(asyncio.to_thread(store.add_user, n, "hq", "", PASSWORD) for n in names))
    clients = [new_client(stack.url, args.connections) for _ in names]
    try:
        sem = asyncio.Semaphore(8)

        async def one(client, name):
            async with sem:
                await sign_in(client, name)

        await asyncio.gather(*(one(c, n) for c, n in zip(clients, names, strict=True)))
        out.print(f"{len(names)} hq accounts added and signed in in {time.perf_counter() - t:.1f} s")

        check = Results()
        ok, texts = await load_board(clients[0], check)
        if not ok:
            raise RuntimeError("the board does not load: " + "; ".join(check.errors[:3]))
        listed = Results()
        _, every = await timed_get(clients[0], f"/hq/panel/demand-list?day={stack.local_now().date().isoformat()}",
                                   listed)
        demand_rows = every.text.count("data-requester=") if every is not None else 0
        problems = [] if demand_rows == args.villages else [
            f"the demands panel lists {demand_rows} demands, not one per village ({args.villages})"]
        day = stack.local_now().date().isoformat()
        per_panel, lists = grpc_calls(stack, day)

        with CpuWindow(stack) as cpu_alone:  # warmed up by the check
            alone = await closed_loop(clients[:1], args.seconds, load_board)
        warm = asyncio.Semaphore(5)  # five at a time: no backlog of calls left in the services

        async def warm_up(client):
            async with warm:
                await load_board(client, Results())

        await asyncio.gather(*(warm_up(c) for c in clients[1:]))  # one board each, not counted
        with CpuWindow(stack) as cpu_base:
            base = await closed_loop(clients, args.seconds, healthz)
        with CpuWindow(stack) as cpu_paced:
            paced = await paced_loop(clients, max(args.seconds, 3 * args.think), args.think, load_board)
        with CpuWindow(stack) as cpu_board:
            boards = await closed_loop(clients, args.seconds, load_board)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return {"alone": alone, "cpu_alone": cpu_alone, "base": base, "cpu_base": cpu_base, "boards": boards,
            "paced": paced, "cpu_paced": cpu_paced,
            "cpu_board": cpu_board, "per_panel": per_panel, "lists": lists, "demand_rows": demand_rows,
            "problems": problems}


def report(args, r: dict, out: Console, started: str, load_before: str) -> int:
    base, boards, paced = r["base"], r["boards"], r["paced"]
    cpu_b, cpu_p = r["cpu_base"], r["cpu_board"]
    n = len(boards.boards)
    p95 = pct(paced.boards, 95) * 1000  # the target: people with the board open (the paced phase)
    stress_p95 = pct(boards.boards, 95) * 1000
    base_p95 = pct(base.boards, 95) * 1000
    calls = sum(r["per_panel"].values())

    t = Table(title=f"HQ board, {args.sessions} sessions, {args.villages} villages ({started})")
    t.add_column("figure")
    t.add_column("result", justify="right")
    t.add_column("note")
    pn = len(paced.boards)
    t.add_row(f"PACED: a board every {args.think:g} s per session", f"{pn:,} boards",
              f"{(pn - paced.failed) / paced.elapsed:,.2f} boards/s; {paced.failed} failed, {len(paced.errors)} errors")
    for p in (50, 95, 99):
        t.add_row(f"  page time p{p}", f"{pct(paced.boards, p) * 1000:,.0f} ms",
                  f"target < {TARGET_P95_MS:.0f} ms" if p == 95 else "")
    cpu_pc = r["cpu_paced"]
    t.add_row("  CPU per board", f"{sum(v for k, v in cpu_pc.used.items() if 'load generator' not in k) * 1000 / max(pn, 1):,.0f} ms",
              f"machine busy {cpu_pc.machine_busy * 100:.0f} %")
    t.add_row("STRESS: closed loop, no think time", f"{args.seconds:.0f} s", "every session loads the board back to back")
    late = sum(" HTTP 503" in e for e in boards.errors)
    t.add_row("boards loaded", f"{n:,}", f"{boards.failed:,} of them failed: {len(boards.errors)} errors"
              + (f", {late} of them 503 (a service past the console's 8 s deadline)" if late else "")
              + f"; {boards.requests:,} HTTP requests, {boards.retried} sent again after a kept-alive "
              "connection closed")
    t.add_row("boards/s, whole ones", f"{(n - boards.failed) / boards.elapsed:,.2f}",
              f"{boards.requests / boards.elapsed:,.0f} HTTP requests/s")
    for p in (50, 95, 99):
        t.add_row(f"page time p{p}", f"{pct(boards.boards, p) * 1000:,.0f} ms", "")
    t.add_row("page time max", f"{max(boards.boards, default=float('nan')) * 1000:,.0f} ms", "")
    for url, lat in sorted(boards.per_url.items(), key=lambda kv: -pct(kv[1], 95)):
        grpc_n = r["per_panel"].get(url)
        t.add_row(f"  {url} p50 / p95", f"{pct(lat, 50) * 1000:,.0f} / {pct(lat, 95) * 1000:,.0f} ms",
                  f"{grpc_n} gRPC call{'s' if grpc_n != 1 else ''}" if grpc_n is not None else "no gRPC")
    alone, cpu_a = r["alone"], r["cpu_alone"]
    t.add_row("one session alone: boards", f"{len(alone.boards):,}", f"{len(alone.boards) / alone.elapsed:,.1f}/s")
    t.add_row("  page time p50 / p95", f"{pct(alone.boards, 50) * 1000:,.0f} / {pct(alone.boards, 95) * 1000:,.0f} ms",
              "slowest part: " + max(alone.per_url, key=lambda u: pct(alone.per_url[u], 50), default="-"))
    a_n = max(len(alone.boards), 1)
    t.add_row("  CPU per board", f"{sum(v for k, v in cpu_a.used.items() if 'load generator' not in k) * 1000 / a_n:,.0f} ms",
              ", ".join(f"{k.split()[0]} {v * 1000 / a_n:,.0f}" for k, v in cpu_a.used.items()
                        if (k == "console web" or k.endswith(" api")) and v * 1000 / a_n >= 0.5) + " ms")
    t.add_row("baseline /healthz", f"{len(base.boards):,} requests",
              f"{len(base.boards) / base.elapsed:,.0f}/s, {len(base.errors)} errors")
    t.add_row("baseline p50 / p95", f"{pct(base.boards, 50) * 1000:,.1f} / {base_p95:,.1f} ms", "")
    t.add_row("board p95 ÷ baseline p95 (stress)", f"{stress_p95 / base_p95:,.1f}", "")
    t.add_row("gRPC calls per board", f"{calls}", ", ".join(f"{k} {v}" for k, v in r["per_panel"].items())
              + f"; and ListRequesters ({r['lists']['every requester (pages)']} page) once a minute per console")
    t.add_row("console SQLite reads per board", f"{1 + len(r['per_panel'])}",
              "session and user in one query on each of the 8 requests")
    unit_b = "board" if not boards.failed else "board, failed ones too"
    for label, cpu, phase_n, unit in (("board", cpu_p, n, unit_b), ("baseline", cpu_b, len(base.boards), "request")):
        apis = {k: v for k, v in cpu.used.items() if k.endswith(" api")}
        others = sum(v for k, v in cpu.used.items()
                     if not k.endswith(" api") and k not in ("console web", "load generator (this process)"))
        t.add_row(f"CPU s, {label} phase: console", f"{cpu.used.get('console web', 0):.1f} s",
                  f"{cpu.used.get('console web', 0) * 1000 / max(phase_n, 1):.2f} ms per {unit}")
        for k, v in apis.items():
            t.add_row(f"  {k}", f"{v:.1f} s", f"{v * 1000 / max(phase_n, 1):.2f} ms per {unit}")
        t.add_row("  workers, relays, ingest", f"{others:.1f} s", "")
        t.add_row("  load generator", f"{cpu.used['load generator (this process)']:.1f} s",
                  f"{cpu.used['load generator (this process)'] * 1000 / max(phase_n, 1):.2f} ms per {unit}")
        t.add_row("  machine busy", f"{cpu.machine_busy * 100:.0f} %",
                  f"{os.cpu_count()} CPUs; load average at the end {' '.join(cpu.loadavg)}")
    out.print(t)
    for what, v in r["lists"].items():
        out.print(f"  {what}: {v}")
    out.print(f"load average before the run: {load_before}")
    errors = alone.errors + paced.errors + base.errors + r["problems"]  # the stress phase may shed load (503)
    kinds: dict[str, list[str]] = defaultdict(list)
    for e in errors:  # "<part>: HTTP 503: <body>" or "<part>: <exception>: <message>"
        kinds[":".join(e.split(":", 2)[:2])].append(e)
    for kind, es in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        sample = " ".join(es[0].split())[:160]
        out.print(f"[red]error[/red] ×{len(es)} {kind}  (e.g. {sample})", highlight=False)
    met = p95 < TARGET_P95_MS
    out.print(f"p95 page time {p95:,.0f} ms: " + ("[green]target met[/green]" if met else "[yellow]target missed[/yellow]")
              + f" (< {TARGET_P95_MS:.0f} ms)")
    print(json.dumps({
        "bench": "console_load", "quick": args.quick, "sessions": args.sessions, "villages": args.villages,
        "seconds": args.seconds, "connections": args.connections, "boards": n, "boards_failed": boards.failed,
        "boards_s": round((n - boards.failed) / boards.elapsed, 2), "requests_s": round(boards.requests / boards.elapsed, 1),
        "page_ms": {f"p{p}": round(pct(boards.boards, p) * 1000, 1) for p in (50, 95, 99)},
        "per_url_p95_ms": {u: round(pct(v, 95) * 1000, 1) for u, v in boards.per_url.items()},
        "alone_page_ms": {f"p{p}": round(pct(alone.boards, p) * 1000, 1) for p in (50, 95)},
        "alone_per_url_p50_ms": {u: round(pct(v, 50) * 1000, 1) for u, v in alone.per_url.items()},
        "cpu_s_alone": {k: round(v, 2) for k, v in cpu_a.used.items()}, "boards_alone": len(alone.boards),
        "errors_503": late, "retried": boards.retried + base.retried + alone.retried, "baseline_requests": len(base.boards), "baseline_p95_ms": round(base_p95, 2),
        "ratio_p95": round(stress_p95 / base_p95, 1),
        "paced_think_s": args.think, "paced_boards": pn, "paced_failed": paced.failed,
        "paced_page_ms": {f"p{p}": round(pct(paced.boards, p) * 1000, 1) for p in (50, 95, 99)},
        "stress_errors": len(boards.errors), "grpc_calls_per_board": calls, "grpc_per_panel": r["per_panel"],
        "cpu_s_board": {k: round(v, 2) for k, v in cpu_p.used.items()},
        "cpu_s_baseline": {k: round(v, 2) for k, v in cpu_b.used.items()},
        "machine_busy_board": round(cpu_p.machine_busy, 2), "demand_rows": r["demand_rows"],
        "errors": len(errors), "target_met": met, "cpu": platform.processor() or platform.machine(),
    }, ensure_ascii=False))
    return 1 if errors else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 s per phase")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--villages", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=None, help="per phase (default 20, quick 5)")
    ap.add_argument("--connections", type=int, default=6, help="per session, as a browser per host (default 6)")
    ap.add_argument("--think", type=float, default=10.0,
                    help="seconds between one session's boards in the paced phase (default 10)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    args = ap.parse_args()
    args.seconds = args.seconds if args.seconds is not None else (5.0 if args.quick else 20.0)
    out = Console(width=None if sys.stdout.isatty() else 132)
    started = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    load_before = Path("/proc/loadavg").read_text().strip()
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "?")
    out.print(f"machine: {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}; "
              f"load average {load_before}")

    tag = infra.run_id()
    tmp = Path(tempfile.mkdtemp(prefix="bench-console-"))
    vhost = infra.RabbitVhost(f"bench-console-{tag}")
    influx_db = f"bench_console_{tag}"
    stack = None
    rc = 1
    try:
        infra.create_influx_database(influx_db)
        t = time.perf_counter()
        stack = CountyStack(tmp / "var", vhost.create(), influx_db, speed=1.0, leave=(), villages=args.villages)
        stack.start()
        out.print(f"stack up and seeded with {args.villages} villages in {time.perf_counter() - t:.0f} s "
                  f"({len(stack.procs)} processes; county clock {stack.local_now():%H:%M})")
        results = asyncio.run(run(stack, args, out))
        rc = report(args, results, out, started, load_before)
    except Exception as exc:  # noqa: BLE001 - say what failed, tear down, exit non-zero
        out.print(f"[red]failed:[/red] {type(exc).__name__}: {exc}")
        if stack is not None:
            for p in stack.procs:
                if not p.alive():
                    out.print(f"{p.service} {p.kind} exited:\n{p.log()[-2000:]}")
    finally:
        if stack is not None:
            stack.stop()
        vhost.drop()
        infra.drop_influx_database(influx_db)
        if args.keep:
            out.print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
