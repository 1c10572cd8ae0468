"""Start-up and memory of the whole county stack (issue #16, item 5): `supplyctl up` from cold
until every process is up, and the stack's RSS at rest; next to N bare interpreters started at
once (N = the stack's process count), measured in the same run.

    .venv/bin/python bench/startup.py [--quick] [--idle-s 10]

"Up", per kind, from what the code exposes:
  api, web, scheduler   gRPC health (the console: /healthz) answers SERVING
  worker                its log says "worker started" (nameko's runner has started its consumers);
                        the light workers' one process (`python -m services.workers`) names
                        every service it runs in that record
  relay                 its log says "relay started" (schema at head, exchanges declared); the
                        relays' one process (`python -m services.relays`) says it once per outbox
  ingest                its log says "ingest started" (MQTT subscribed, InfluxDB database there)

If the stack runs when the bench starts (`make bench` brings it up first), it is stopped with
`supplyctl down` and brought up again at the end. Then per kind the import time of its entry
module (`python -X importtime`), the 10 biggest cumulative imports.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.intake_grpc import cpu_model  # noqa: E402
from bench.monitoring_ingest import rss_kb  # noqa: E402
from services.cli import PROCESSES, _health, _pid_alive, _run_dir, available_services  # noqa: E402
from services.common.config import load_settings  # noqa: E402
from services.workers import SHARED as SHARED_WORKERS  # noqa: E402

SUPPLYCTL = str(ROOT / ".venv" / "bin" / "supplyctl")
HEALTH_KINDS = ("api", "web", "scheduler")
LOG_LINE = {"worker": "worker started", "relay": "relay started", "ingest": "ingest started"}
# the module each kind's process imports to run (services/launcher.py, services/console/__main__.py)
ENTRY_MODULES = {
    "api": "services.intake.entrypoints.grpc_api",
    "worker": "services.intake.entrypoints.worker",
    "relay": "services.common.relay, services.intake.adapters.schema",
    "ingest": "services.monitoring.entrypoints.mqtt_ingest",
    "scheduler": "services.reports.entrypoints.scheduler",
    "web": "services.console.entrypoints.web",
    "notify worker": "services.notify.entrypoints.worker",
}
console = Console(width=130)


def stack() -> list[tuple[str, str]]:
    return [(s, k) for s in available_services() for k in PROCESSES[s]]


def running() -> dict[tuple[str, str], int]:
    pids = {}
    for service, kind in stack():
        f = _run_dir() / f"{service}-{kind}.pid"
        if f.exists() and _pid_alive(int(f.read_text())):
            pids[(service, kind)] = int(f.read_text())
    return pids


def supplyctl(*args: str) -> None:
    subprocess.run([SUPPLYCTL, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def log_path(service: str, kind: str) -> Path:
    """supplyctl up runs every relay in one process that logs to relays-relay.log, and the
    light workers in one that logs to workers-worker.log."""
    name = f"{service}-{kind}"
    if kind == "relay":
        name = "relays-relay"
    elif kind == "worker" and service in SHARED_WORKERS:
        name = "workers-worker"
    return load_settings("tools").var_dir / "log" / f"{name}.log"


def said(path: Path, offset: int, message: str, outbox: str | None = None) -> bool:
    """Whether the log, from OFFSET on, has a record with MESSAGE (records are JSON lines), about
    OUTBOX when given (the relays' process logs "relay started" once per outbox; the light
    workers' process names its services in one "worker started")."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            for line in f:
                try:
                    record = json.loads(line)
                    about = outbox is None or outbox in (record.get("outbox"), *record.get("services", ()))
                    if record.get("message") == message and about:
                        return True
                except ValueError:
                    continue
    except OSError:
        pass
    return False


def tree(pid: int) -> list[int]:
    """PID and its descendants (from /proc/*/stat's parent field)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def measure_stack(idle_s: float) -> dict:
    offsets = {(s, k): (log_path(s, k).stat().st_size if log_path(s, k).exists() else 0) for s, k in stack()}
    started = time.monotonic()
    up_cmd = subprocess.Popen([SUPPLYCTL, "up"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    up_at: dict[tuple[str, str], float] = {}
    launched_at: dict[tuple[str, str], float] = {}
    deadline = started + 90
    while len(up_at) < len(stack()) and time.monotonic() < deadline:
        pids = running()
        for sk in pids.keys() - launched_at.keys():
            launched_at[sk] = time.monotonic() - started
        for service, kind in stack():
            if (service, kind) in up_at or (service, kind) not in pids:
                continue
            if kind in HEALTH_KINDS:
                ok = _health(service, timeout=0.5) == "SERVING"
            else:
                ok = said(log_path(service, kind), offsets[(service, kind)], LOG_LINE[kind],
                          service if kind in ("relay", "worker") else None)
            if ok:
                up_at[(service, kind)] = time.monotonic() - started
        time.sleep(0.05)
    up_cmd.wait(timeout=120)
    up_returned = time.monotonic() - started
    missing = [f"{s} {k}" for s, k in stack() if (s, k) not in up_at]
    if missing:
        console.print(f"[red]not up after 90 s / 90 秒内未就绪: {', '.join(missing)}[/]")
    time.sleep(idle_s)  # at rest: nothing is sent to the stack
    pids = running()
    rss = {sk: sum(rss_kb(p) for p in tree(pid)) for sk, pid in pids.items()}
    nproc = {sk: len(tree(pid)) for sk, pid in pids.items()}
    # several pid files may name one process (the relays'): each interpreter counted once
    total_kb = sum(sum(rss_kb(p) for p in tree(pid)) for pid in set(pids.values()))
    return {"total_kb": total_kb, "interpreters": len(set(pids.values())), "up_at": up_at, "launched_at": launched_at, "up_returned": up_returned, "rss": rss, "nproc": nproc, "missing": missing}


def baseline(n: int) -> dict:
    python = sys.executable
    started = time.monotonic()
    procs = [subprocess.Popen([python, "-c", "pass"]) for _ in range(n)]
    for p in procs:
        p.wait()
    bare_s = time.monotonic() - started
    idle = [subprocess.Popen([python, "-c", "import time; time.sleep(30)"]) for _ in range(n)]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # each has reached its sleep: nothing left on its stack to run
        if all(_sleeping(p.pid) for p in idle):
            break
        time.sleep(0.05)
    rss = sum(rss_kb(p.pid) for p in idle)
    for p in idle:
        p.send_signal(signal.SIGTERM)
        p.wait()
    return {"start_s": bare_s, "rss_kb": rss}


def _sleeping(pid: int) -> bool:
    """Asleep in select() (time.sleep's syscall): interpreter start and `import time` are done."""
    try:
        syscall = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return syscall in ("7", "23", "270", "271")  # poll, select, pselect6, ppoll (x86-64)


def import_costs(module: str, top: int = 10) -> tuple[float, list[tuple[float, str]]]:
    """MODULE's import time (ms) and the TOP costliest packages it pulls in, from -X importtime:
    a package's cost is its first import's cumulative time (its own dependencies included), summed
    over the places it is imported from outside itself; the project's own modules are left out."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"},
                         capture_output=True, text=True)
    total, costs = 0.0, {}
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((depth, int(cumulative) / 1000, name.strip()))
    # importtime prints a module after its children: walk backwards so a parent comes first
    parents: list[str] = []
    for depth, ms, name in reversed(rows):
        del parents[depth:]
        package = name.split(".")[0]
        if depth == 0:
            total += ms
        if package != "services" and (not parents or parents[-1] != package):
            costs[package] = costs.get(package, 0.0) + ms
        parents.append(package)
    return total, sorted(((ms, p) for p, ms in costs.items()), reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="idle 5 s instead of 10 before reading RSS")
    parser.add_argument("--idle-s", type=float, default=None)
    args = parser.parse_args()
    idle_s = args.idle_s if args.idle_s is not None else (5.0 if args.quick else 10.0)

    console.print(f"machine: {os.cpu_count()} cores, {cpu_model()}; python {sys.version.split()[0]}")
    was_running = bool(running())
    if was_running:
        console.print("the stack runs: `supplyctl down` first (it is brought up again at the end)")
        supplyctl("down")
    try:
        result = measure_stack(idle_s)
    finally:
        supplyctl("down")
    n = result["interpreters"] or len(stack())
    base = baseline(n)

    per = Table(title=f"processes up after `supplyctl up` (RSS after {idle_s:.0f} s idle)")
    for col in ("service", "process", "launched at (s)", "up at (s)", "how", "procs in tree", "RSS (MiB)"):
        per.add_column(col, justify="right" if col in ("launched at (s)", "up at (s)", "procs in tree", "RSS (MiB)") else "left")
    for service, kind in sorted(stack(), key=lambda sk: result["up_at"].get(sk, 1e9)):
        at = result["up_at"].get((service, kind))
        launched = result["launched_at"].get((service, kind))
        per.add_row(service, kind, f"{launched:.2f}" if launched is not None else "",
                    f"{at:.2f}" if at is not None else "not up",
                    "health SERVING" if kind in HEALTH_KINDS else f'log "{LOG_LINE[kind]}"',
                    str(result["nproc"].get((service, kind), "")),
                    f"{result['rss'].get((service, kind), 0) / 1024:.0f}" + (" (all relays)" if kind == "relay" else "")
                    + (" (light workers)" if kind == "worker" and service in SHARED_WORKERS else ""))
    console.print(per)

    all_up = max(result["up_at"].values()) if result["up_at"] else float("nan")
    total_rss = result["total_kb"]
    summary = Table(title=f"the county stack against {n} bare interpreters, same run")
    for col in ("figure", "stack", f"bare python × {n}", "ratio"):
        summary.add_column(col, justify="left" if col == "figure" else "right")
    summary.add_row("time to every process up (s)", f"{all_up:.2f}", f"{base['start_s']:.2f} (`-c pass`, all exited)",
                    f"{all_up / base['start_s']:.0f}×")
    summary.add_row("`supplyctl up` returned (s)", f"{result['up_returned']:.2f}", "", "")
    summary.add_row("RSS at rest (MiB)", f"{total_rss / 1024:.0f}", f"{base['rss_kb'] / 1024:.0f} (idle sleep)",
                    f"{total_rss / base['rss_kb']:.1f}×")
    console.print(summary)

    for kind, modules in ENTRY_MODULES.items():
        total, top = import_costs(modules)
        console.print(f"\n[bold]{kind}[/]: import {modules} — {total:.0f} ms; the 10 costliest packages")
        t = Table()
        t.add_column("ms", justify="right")
        t.add_column("package (with what it imports)")
        for ms, name in top:
            t.add_row(f"{ms:.0f}", name)
        console.print(t)

    if was_running:
        supplyctl("up")
    if result["missing"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
