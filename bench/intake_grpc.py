"""Intake write path: demands accepted per second through gRPC with a durable commit (the
demand, its outbox event and its idempotency key in one transaction) while the relay publishes
the events to RabbitMQ with confirms — next to a bare grpcio echo server answering the same
messages from the same client, in the same run (the ratio is what our code costs).

    python bench/intake_grpc.py [--quick] [--database-url URL] [--seconds N] [--clients N]
                                [--threads N] [--api-processes N] [--no-relay]

Figures: single SubmitDemand/s (3 lines each), SubmitDemandBatch lines/s (500 demands × 39
lines per call), echo RPC/s, relay lag (time from the last accepted demand until every event
is confirmed by the broker), CPU per demand of the API and the relay, how busy the machine was
and its busiest processes during the single-submission phase. Profiling: SPY=/tmp/p.txt
(py-spy raw output of the API; SPY_FLAGS, default --gil).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

import grpc  # noqa: E402
from supply.v1 import common_pb2 as c  # noqa: E402
from supply.v1 import intake_pb2 as pb  # noqa: E402
from supply.v1 import intake_pb2_grpc as rpc  # noqa: E402

TOKEN = [("authorization", "Bearer bench-admin-token-00001")]
ITEMS = ["RICE-10KG", "OIL-5L", "NOODLE-1KG", "POTATO-KG", "CABBAGE-KG", "ONION-KG", "CARROT-KG",
         "EGG-30", "MILK-UHT-250", "SALT-500G", "SOAP-BAR", "TOILET-PAPER-10", "PORK-FROZEN-KG",
         "RADISH-KG", "FLOUR-5KG", "DUMPLING-FRZ-1KG", "MASK-SURGICAL-50", "ANTIGEN-TEST-20",
         "MED-ANTIPYRETIC", "GLOVE-NITRILE-100", "HAND-SANITIZER-500ML", "DISINF-84-1L",
         "ADULT-DIAPER-10", "MILK-1L", "PORK-KG", "VEG-PACK-STD", "LIVING-PACK-STD",
         "MASK-N95", "FACE-SHIELD", "GOWN-PROTECTIVE", "MED-ANTIHYPERTENSIVE", "MED-METFORMIN",
         "FORMULA-STAGE1", "FORMULA-STAGE2", "CLO2-POWDER-1KG", "ETHANOL-75-500ML",
         "PERACETIC-5L", "VACCINE-DOSE", "MED-INSULIN-PEN"]
VILLAGES = 300


def demand(i: int, n_lines: int, tag: str) -> pb.SubmitDemandRequest:
    return pb.SubmitDemandRequest(
        idempotency_key=f"{tag}-{i}", requester_id=f"V-{i % VILLAGES:04d}",
        lines=[c.ItemLine(item_code=ITEMS[(i + k) % len(ITEMS)], quantity=1 + (i + k) % 20)
               for k in range(n_lines)])


# ---- the bare echo server: same messages, no work -----------------------------------------
class Echo(rpc.IntakeServiceServicer):
    ANSWER = pb.Demand(id="D-echo", requester_id="V-0000", delivery_day="2026-11-29",
                       lines=[pb.DemandLine(item_code="RICE-10KG", quantity=1)] * 3)

    def SubmitDemand(self, request, context):
        return self.ANSWER


def serve_echo(port: int, ready) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    rpc.add_IntakeServiceServicer_to_server(Echo(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.set()
    server.wait_for_termination()


# ---- load generation: several client processes, each with threads --------------------------
def _client(target: str, seconds: float, concurrency: int, tag: str, out) -> None:
    """One load-generating process: `concurrency` calls in flight on one asyncio channel (an
    asyncio client costs less CPU per call than threads, leaving more of the 2 cores to the
    server under test; both servers get the same client)."""
    import asyncio

    async def run() -> tuple[int, int]:
        counts = [0, 0]
        stop_at = time.monotonic() + seconds
        async with grpc.aio.insecure_channel(target) as channel:
            stub = rpc.IntakeServiceStub(channel)

            async def loop(t: int) -> None:
                i = 0
                while time.monotonic() < stop_at:
                    try:
                        await stub.SubmitDemand(demand(i * concurrency + t, 3, f"{tag}-{t}"),
                                                metadata=TOKEN, timeout=10)
                        counts[0] += 1
                    except grpc.RpcError:
                        counts[1] += 1
                    i += 1

            await asyncio.gather(*(loop(t) for t in range(concurrency)))
        return counts[0], counts[1]

    out.put(asyncio.run(run()))


LOADGEN = ROOT / "var/bin/grpc-loadgen"  # bench/loadgen/build.sh (make bench builds it)


def request_file(seconds: float, tag: str) -> Path:
    """Requests for the native client, built and serialized before the clock starts: more than
    the echo server can take in `seconds`, each with its own idempotency key."""
    import struct

    path = Path(tempfile.mkdtemp(prefix="bench-requests-")) / f"{tag}.bin"
    with open(path, "wb") as f:
        for i in range(int(5000 * seconds) + 1000):
            data = demand(i, 3, tag).SerializeToString()
            f.write(struct.pack(">I", len(data)) + data)
    return path


def load_native(target: str, seconds: float, in_flight: int, connections: int,
                requests: Path) -> tuple[float, int]:
    import json

    out = subprocess.run([str(LOADGEN), target, "/supply.v1.IntakeService/SubmitDemand", str(requests),
                          str(seconds), str(in_flight), str(connections), TOKEN[0][1].split()[1]],
                         capture_output=True, text=True, check=True)
    requests.unlink()
    result = json.loads(out.stdout)
    return result["ok"] / result["seconds"], result["errors"]


def load(target: str, seconds: float, clients: int, threads: int, tag: str,
         native: bool = False, requests: dict[str, Path] | None = None) -> tuple[float, int]:
    """`clients` connections with `threads` calls in flight on each, from the native client
    (sending requests[tag], a request_file) or from as many Python processes."""
    if native:
        return load_native(target, seconds, clients * threads, clients, requests[tag])
    q: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_client, args=(target, seconds, threads, f"{tag}{p}", q))
             for p in range(clients)]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    elapsed = time.monotonic() - started
    for p in procs:
        p.join()
    ok = sum(r[0] for r in results)
    return ok / elapsed, sum(r[1] for r in results)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of every core so far, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def cpu_by_process() -> dict[str, float]:
    """CPU seconds so far of every process on the machine, keyed "pid name"."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cpu = cpu_seconds(int(pid))
        except OSError:
            continue
        name = " ".join(a.decode(errors="replace").rsplit("/", 1)[-1] for a in args[:4] if a)[:60]
        found[f"{pid} {name}"] = cpu
    return found


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(target: str, timeout: float = 30) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(target) as ch:
                if health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"intake api at {target} not SERVING after {timeout} s")


def outbox_pending(db_url: str) -> int:
    from services.common.db import make_engine
    from services.common.relay import pending_count
    from services.intake.adapters.schema import tables

    return pending_count(make_engine(db_url), tables["outbox"])


def cpu_model() -> str:
    """The processor, as /proc/cpuinfo names it: machines of one kind differ (the echo server
    ran 1 500 – 7 970 calls/s on four of them), so a figure is only read with its machine."""
    info = {}
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
            if not line.strip():
                break
    return f"{info.get('model name', 'unknown')}, family {info.get('cpu family', '?')} model {info.get('model', '?')}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=2, help="client connections")
    ap.add_argument("--threads", type=int, default=8, help="calls in flight per connection")
    ap.add_argument("--client", choices=["native", "python"], default="",
                    help="load generator: native (C++, the default once built) or python (asyncio)")
    ap.add_argument("--no-relay", action="store_true",
                    help="diagnostic: no relay process (events stay in the outbox; not the target figure)")
    ap.add_argument("--database-url", default="")
    ap.add_argument("--api-processes", type=int, default=1,
                    help="API processes sharing the port (SO_REUSEPORT); use with PostgreSQL")
    args = ap.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    native = args.client == "native" or (not args.client and LOADGEN.exists())
    if args.client == "native" and not LOADGEN.exists():
        raise SystemExit(f"{LOADGEN} is missing: run bench/loadgen/build.sh")
    var = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    port = free_port()
    db_url = args.database_url or f"sqlite:///{var / 'intake.db'}"
    from services.common.broker_admin import fresh_vhost
    from services.common.config import load_settings

    env = {**os.environ, "AMQP_URL": fresh_vhost(load_settings("tools").amqp_url, "supply-bench"),
           "SUPPLY_VAR_DIR": str(var), "INTAKE_GRPC_PORT": str(port),
           "INTAKE_DATABASE_URL": db_url, "SUPPLY_LOG_LEVEL": "WARNING",
           "SUPPLY_AUTH_TOKENS": "bench-admin-token-00001=bench:admin",
           "SUPPLY_GRPC_REUSEPORT": "1" if args.api_processes > 1 else "0"}
    subprocess.run([sys.executable, "-m", "services.cli", "migrate", "intake"], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    logs = open(var / "intake.log", "wb")
    procs = [subprocess.Popen([sys.executable, "-m", "services.intake", kind], env=env, cwd=ROOT,
                              stdout=logs, stderr=subprocess.STDOUT)
             for kind in ["api"] * args.api_processes + ([] if args.no_relay else ["relay"])]
    echo_port = free_port()
    ready = mp.Event()
    echo = mp.Process(target=serve_echo, args=(echo_port, ready), daemon=True)
    echo.start()
    try:
        target = f"127.0.0.1:{port}"
        wait_serving(target)
        ready.wait(10)
        stub = rpc.IntakeServiceStub(grpc.insecure_channel(target))
        for v in range(VILLAGES):
            stub.RegisterRequester(pb.RegisterRequesterRequest(
                idempotency_key=f"reg-{v}", requester=pb.Requester(
                    id=f"V-{v:04d}", kind=pb.REQUESTER_KIND_VILLAGE, name=f"村{v}", township=f"镇{v % 3}",
                    location=c.GeoPoint(lat=30 + v / 1000, lon=114 + v / 1000), population=1000 + v,
                    households=300, risk_level=1 + v % 3)), metadata=TOKEN)
        files = {tag: request_file(seconds, tag) for tag in ("warm", "warm-echo", "echo", "single")} \
            if native else {}
        load(target, 1.0, args.clients, args.threads, "warm", native, files)  # warm-up, not counted
        load(f"127.0.0.1:{echo_port}", 1.0, args.clients, args.threads, "warm-echo", native, files)
        echo_cpu0 = cpu_seconds(echo.pid)
        echo_rate, _ = load(f"127.0.0.1:{echo_port}", seconds, args.clients, args.threads, "echo", native, files)
        echo_cpu_ms = (cpu_seconds(echo.pid) - echo_cpu0) / (echo_rate * seconds) * 1000
        if os.environ.get("SPY"):
            subprocess.Popen([str(ROOT / ".venv/bin/py-spy"), "record", "-o", os.environ["SPY"], "-d",
                              str(int(seconds)), "-p", str(procs[0].pid), "-f", "raw",
                              *os.environ.get("SPY_FLAGS", "--gil").split()])
        cpu0 = [cpu_seconds(p.pid) for p in procs]
        busy0, by0 = machine_busy(), cpu_by_process()
        rate, errors = load(target, seconds, args.clients, args.threads, "single", native, files)
        busy1, by1 = machine_busy(), cpu_by_process()
        # the load generator's processes have exited by now: they are the missing remainder
        top = sorted(((by1[k] - by0[k]) / seconds, k) for k in by1 if k in by0)[-5:]
        cpu1 = [cpu_seconds(p.pid) for p in procs]
        busy = (busy1[0] - busy0[0]) / (busy1[1] - busy0[1]) * 100
        api_cpu_ms = sum(cpu1[i] - cpu0[i] for i in range(args.api_processes)) / (rate * seconds) * 1000
        relay_cpu_ms = 0.0 if args.no_relay else (cpu1[-1] - cpu0[-1]) / (rate * seconds) * 1000
        t_end = time.monotonic()
        deadline = t_end + 120
        while not args.no_relay and outbox_pending(db_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        relay_lag = time.monotonic() - t_end

        batches = 2 if args.quick else 6
        lines_per_batch = 500 * len(ITEMS)
        requests = [pb.SubmitDemandBatchRequest(  # built before the clock starts: the server is measured
            idempotency_key=f"batch-{b}", demands=[demand(b * 500 + i, len(ITEMS), f"b{b}") for i in range(500)])
            for b in range(batches)]
        t0 = time.monotonic()
        for request in requests:
            resp = stub.SubmitDemandBatch(request, metadata=TOKEN, timeout=120)
            assert resp.accepted == 500, resp.results[0]
        batch_rate = batches * lines_per_batch / (time.monotonic() - t0)
        db_kind = "PostgreSQL" if db_url.startswith("postgres") else "SQLite (embedded default)"
        print(f"intake write path — {db_kind}, {args.api_processes} API process(es), "
              f"{'native client' if native else 'Python asyncio client processes'}: "
              f"{args.clients} connections × {args.threads} calls in flight, "
              f"{seconds:.0f} s per phase, {os.cpu_count()} cores ({cpu_model()})")
        print(f"  bare grpcio echo (same messages)     {echo_rate:10.0f} RPC/s")
        print(f"  SubmitDemand, durable + outbox       {rate:10.0f} demands/s   errors {errors}")
        print(f"  ratio intake / echo                  {rate / echo_rate:10.2f}")
        print(f"  CPU per demand: api {api_cpu_ms:.2f} ms ({api_cpu_ms / echo_cpu_ms:.2f} × the echo "
              f"server's {echo_cpu_ms:.2f} ms per call), relay {relay_cpu_ms:.2f} ms; "
              f"machine {busy:.0f} % busy (all cores, clients and broker included)")
        print("  busiest processes (cores): " + ", ".join(f"{k.split(' ', 1)[1]} {v:.2f}"
                                                         for v, k in reversed(top) if v > 0.01))
        print(f"  relay lag after load (all confirmed) {relay_lag:10.2f} s")
        print(f"  SubmitDemandBatch (500 × 39 lines)   {batch_rate:10.0f} lines/s")
        print(f"  targets: ≥ 1 000 demands/s {'MET' if rate >= 1000 else 'NOT MET'}; "
              f"≥ 20 000 lines/s {'MET' if batch_rate >= 20000 else 'NOT MET'}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)
        echo.terminate()


if __name__ == "__main__":
    main()
