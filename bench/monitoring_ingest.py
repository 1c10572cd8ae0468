"""Monitoring ingest: readings per second from MQTT to InfluxDB with the alarm rules evaluated,
alarm latency under load, and the ingest's memory over a soak; next to the bare InfluxDB /write
rate of the same machine measured in the same run.

    .venv/bin/python bench/monitoring_ingest.py [--quick] [--rate 20000] [--soak-s 600]
                                                [--processes 1] [--postgres]
    .venv/bin/python bench/monitoring_ingest.py --drain-only [--rounds 3]

--drain-only measures the rate goal alone: the bare /write, then N rounds of (drain, bare
/write), each drain's ratio taken against the bare runs just before and just after it. On a
shared VM the CPU's speed drifts within minutes (InfluxDB's own CPU per point moved from 3.2 to
5.6 µs between runs of one hour), so a ratio of two measurements a minute apart says more about
that drift than about the ingest; neighbours in time, and the median over rounds, say less of it.

Everything runs for real on this machine: Mosquitto, InfluxDB, RabbitMQ (a vhost of its own),
the monitoring ingest process(es) and relay (SQLite under a temp dir, or PostgreSQL with
--postgres and --processes 2 for the shared-subscription scale-out), and the load generator:
`simulators.gateway` with the load scenario (20 depots × 10 zones × 10 sensors = 2 000 sensors,
batches of 500 readings) at speed 0, its transport faults (garbage, duplicates, reordering)
removed so that every published reading must be counted back exactly once.

1. bare /write   pre-encoded batches of 5 000 lines, one Python writer (bench/influx_write.py)
2. throughput    N readings published as fast as the generator goes (100 000 in --quick,
                 400 000 otherwise: the broker queues at most 1 000 unacked messages per
                 session by default, 500 000 readings); rate = readings counted in InfluxDB per
                 second while the stream is flowing, and over the whole run
3. soak          the generator paced at --rate readings/s for --soak-s seconds (20 s in
                 --quick); every second a probe reading at 9 °C is published for a chilled
                 zone of its own (CHL_HOT_INSTANT): latency = publish → `alert_raised` received
                 from the `monitoring.events` exchange; the ingest's RSS every 5 s; the stored
                 rate from the ingest's own count of lines InfluxDB acknowledged (a COUNT over
                 millions of points every few seconds would itself load InfluxDB)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "gen"))

from bench.influx_write import encode, post_batches, readings  # noqa: E402
from simulators.gateway import load_scenario  # noqa: E402
from simulators.sensors import THERMAL_FAULTS  # noqa: E402
from tests.support import infra  # noqa: E402

PY = sys.executable
INFLUX = os.environ.get("INFLUX_URL", "http://127.0.0.1:8086")
LOAD = ROOT / "simulators" / "scenarios" / "sensors_load.yaml"
READINGS_PER_SIM_MIN = 2000  # the load scenario: 2 000 sensors, one reading a minute
PACING_SLACK = 1.13


def influx(q: str, db: str | None = None) -> dict:
    data = {"q": q}
    if db:
        data["db"] = db
    r = requests.post(f"{INFLUX}/query", data=data, timeout=30)
    r.raise_for_status()
    return r.json()


def count(db: str, where: str = "") -> int:
    res = influx("SELECT COUNT(seq) FROM env" + (f" WHERE {where}" if where else ""), db)["results"][0]
    return res["series"][0]["values"][0][1] if "series" in res else 0


BARE_BATCH = 5000  # the bare /write of issue #15's goal: InfluxDB's recommended batch
INGEST_BATCH = 50_000  # the ingest's SUPPLY_INFLUX_BATCH default: the like-for-like bare /write


def bare_write(n: int, batch: int = BARE_BATCH) -> tuple[float, float]:
    """Points/s of pre-encoded batches to /write, and InfluxDB's CPU µs per point meanwhile."""
    db = f"bench_bare_{uuid.uuid4().hex[:6]}"
    influx(f'CREATE DATABASE "{db}"')
    s = requests.Session()
    try:
        post_batches(s, INFLUX, db, encode(readings(0, 2000, 1000)), 5000)  # warm-up: series
        lines = encode(readings(10_000, n, 1000))
        influxd = pids_of("influxd")
        c0 = sum(cpu_s(p) for p in influxd)
        t = time.perf_counter()
        post_batches(s, INFLUX, db, lines, batch)
        rate = n / (time.perf_counter() - t)
        cpu = sum(cpu_s(p) for p in influxd) - c0
        assert count(db) == n + 2000
        return rate, cpu * 1e6 / n
    finally:
        influx(f'DROP DATABASE "{db}"')


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def pids_of(name: str) -> list[int]:
    out = subprocess.run(["pidof", name], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class AlertListener:
    """A temporary queue bound to monitoring.events / alert_raised: when each probe zone's
    alert arrives."""

    def __init__(self, amqp_url: str, prefix: str):
        import pika

        self.prefix = prefix
        self.arrived: dict[str, float] = {}
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        ch = self.conn.channel()
        ch.exchange_declare("monitoring.events", exchange_type="topic", durable=True)
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(q, "monitoring.events", routing_key="alert_raised")
        ch.basic_consume(q, self._on, auto_ack=True)
        self.ch = ch
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on(self, ch, method, props, body) -> None:
        now = time.monotonic()
        p = json.loads(body)["payload"]
        if (p.get("zone") or "").startswith(self.prefix):
            self.arrived.setdefault(p["zone"], now)

    def _run(self) -> None:  # pika is not thread-safe: this thread alone touches the connection
        try:
            while not self.stop.is_set():
                self.conn.process_data_events(time_limit=0.2)
        finally:
            self.conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tag = f"b{os.getpid()}{uuid.uuid4().hex[:4]}"
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-mon-"))
        self.root = self.tag
        self.db = f"bench_{self.tag}"
        self.procs: list[subprocess.Popen] = []
        self.ingests: list[subprocess.Popen] = []
        self.vhost = infra.RabbitVhost(f"bench-{self.tag}")
        self.pg_name = None

    # -- set-up ------------------------------------------------------------------------------

    def env(self, **extra) -> dict:
        e = {**os.environ, "AMQP_URL": self.amqp_url, "SUPPLY_VAR_DIR": str(self.tmp / "var"),
             "INFLUX_DB": self.db, "SUPPLY_MQTT_ROOT": self.root, "SUPPLY_MQTT_SHARE_GROUP": self.tag,
             "SUPPLY_MQTT_SESSION_EXPIRY_S": "600", "SUPPLY_ZONES_FILE": str(self.zones_file),
             "SUPPLY_INGEST_STATS_S": "1", "SUPPLY_LOG_LEVEL": "WARNING",
             "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"}
        if self.pg_name:
            e["MONITORING_DATABASE_URL"] = self.pg_url
        e.update(extra)
        return e

    def setup(self, probes: int) -> None:
        self.amqp_url = self.vhost.create()
        influx(f'CREATE DATABASE "{self.db}"')
        cfg = load_scenario(LOAD)
        zones = [{"depot": d.id, "zone": z.id, "storage_class": z.storage_class, "sensors": list(z.sensors)}
                 for d in cfg.depots for z in d.zones]
        zones += [{"depot": "probe", "zone": f"p{i:04d}", "storage_class": "chilled", "sensors": ["s1"]}
                  for i in range(probes)]
        self.zones_file = self.tmp / "zones.yaml"
        self.zones_file.write_text(yaml.safe_dump({"zones": zones}))
        raw = yaml.safe_load(LOAD.read_text())
        raw["faults"] = [f for f in raw.get("faults", []) if f["fault"] in THERMAL_FAULTS]
        self.scenario = self.tmp / "load.yaml"
        self.scenario.write_text(yaml.safe_dump(raw))
        if self.args.postgres:
            self.pg_name = f"bench_{self.tag}"
            self.pg_url = infra.create_pg_database(self.pg_name)
        subprocess.run([PY, "-m", "services.cli", "migrate", "monitoring"], env=self.env(), cwd=ROOT,
                       check=True, capture_output=True)

    def start(self, relay: bool = True, **extra_env: str) -> None:
        if relay:
            log = (self.tmp / "relay.log").open("wb")
            self.procs.append(subprocess.Popen([PY, "-m", "services.monitoring", "relay"], env=self.env(),
                                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        for i in range(self.args.processes):
            cid = f"{self.tag}-ingest-{i + 1}"
            log = (self.tmp / f"ingest-{i + 1}.log").open("ab")
            p = subprocess.Popen([PY, "-m", "services.monitoring", "ingest"], cwd=ROOT, stdout=log,
                                 stderr=subprocess.STDOUT, env=self.env(SUPPLY_MQTT_CLIENT_ID=cid, **extra_env))
            self.procs.append(p)
            self.ingests.append(p)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(self.status(i).get("mqtt") == "subscribed" for i in range(self.args.processes)):
                return
            for p in self.procs:
                if p.poll() is not None:
                    raise SystemExit(f"a process exited; logs in {self.tmp}")
            time.sleep(0.2)
        raise SystemExit(f"ingest not subscribed within 60 s; logs in {self.tmp}")

    def status_path(self, i: int) -> Path:
        return self.tmp / "var" / "monitoring" / f"ingest-{self.tag}-ingest-{i + 1}.json"

    def status(self, i: int) -> dict:
        try:
            return json.loads(self.status_path(i).read_text())
        except (OSError, ValueError):
            return {}

    def written(self) -> int:
        """Lines the ingest process(es) had InfluxDB acknowledge (from their status files, 1 s old)."""
        return sum(self.status(i).get("influx", {}).get("written_lines", 0) for i in range(self.args.processes))

    def generator(self, minutes: float, start: datetime, max_rate: float | None = None,
                  progress: float = 0) -> subprocess.Popen:
        cmd = [PY, "-m", "simulators.gateway", "--scenario", str(self.scenario), "--speed", "0",
               "--duration-min", str(minutes), "--root", self.root, "--batch", "500",
               "--start", start.isoformat(), "--client-prefix", f"{self.tag}-",
               "--keep-online", "--ack-timeout", "600"]
        if max_rate:
            cmd += ["--max-rate", str(max_rate)]
        if progress:
            cmd += ["--progress", str(progress)]
        return subprocess.Popen(cmd, cwd=ROOT, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    # -- phases ------------------------------------------------------------------------------

    def windows(self, n: int, rate: float, seconds: float, rounds: int = 1) -> None:
        """Simulated time of the three phases: throughput, soak, drain, all in the past (a
        reading ahead of the clock is refused) and in that order: a reading more than
        SUPPLY_LATE_WINDOW_S behind its sensor's newest one is refused as too late, and one not
        newer than a sensor's last reading skips the alarm rules, which would make the drain
        measure less work than a real stream needs."""
        self.tp_minutes = n / READINGS_PER_SIM_MIN
        self.soak_minutes = rate * PACING_SLACK * seconds / READINGS_PER_SIM_MIN * 1.2 + 10
        step = timedelta(minutes=self.tp_minutes + 5)  # one drain round after the other
        first = datetime.now(UTC) - timedelta(minutes=25) - rounds * step
        self.drain_starts = [first + i * step for i in range(rounds)]
        self.soak_start = first - timedelta(minutes=self.soak_minutes + 5)
        self.tp_start = self.soak_start - timedelta(minutes=self.tp_minutes + 5)

    def stop_ingests(self) -> None:
        for p in self.ingests:
            p.terminate()
        for p in self.ingests:
            p.wait(30)
        for i in range(len(self.ingests)):  # its counts and state are the next process's
            self.status_path(i).unlink(missing_ok=True)
        self.procs = [p for p in self.procs if p not in self.ingests]
        self.ingests = []

    def drain(self, n: int, round_: int = 0) -> dict:
        """The ingest alone: N readings queued in its persistent session while it is stopped, then
        the time from its connection (a persistent session's queued messages flow from the
        CONNACK on) to InfluxDB's acknowledgement of the write that held its last reading
        (`influx.written_at`; not the status file's own time, which can lag by a stats interval),
        both instants the ingest's own, and its CPU over the same span. The generator has finished by
        then, so the 2 cores are shared only by the ingest, Mosquitto, InfluxDB, RabbitMQ and the
        relay, as the bare /write run shares them only with InfluxDB."""
        self.stop_ingests()
        gen = self.generator(self.tp_minutes, self.drain_starts[round_])
        out = gen.communicate()[0]
        if gen.returncode:
            raise SystemExit(f"generator failed: {out[-2000:]}")
        before = count(self.db)
        servers = {name: pids_of(name) for name in ("influxd", "mosquitto")}
        cpu0 = {n: sum(cpu_s(p) for p in ps) for n, ps in servers.items()}
        self.start(relay=False, SUPPLY_INGEST_STATS_S="0.1")
        # the ingest's own count of lines InfluxDB acknowledged (its status file, every 0.1 s):
        # COUNT() queries while it drains would load InfluxDB and slow what they measure
        last, last_change, statuses = -1, time.monotonic(), []
        while time.monotonic() - last_change < 10:
            statuses = [self.status(i) for i in range(self.args.processes)]
            written = sum(st.get("influx", {}).get("written_lines", 0) for st in statuses)
            if written >= n:
                break
            if written != last:
                last, last_change = written, time.monotonic()
            time.sleep(0.05)
        if not all(st.get("mqtt_connected_at") and st.get("influx", {}).get("written_at") for st in statuses):
            raise SystemExit(f"an ingest's status file lacks its instants; logs in {self.tmp}")
        t0 = min(st["mqtt_connected_at"] for st in statuses)
        t_end = max(st["influx"]["written_at"] for st in statuses)
        cpu = {"ingest": sum(cpu_s(p.pid) - st["cpu_at_connect"] for p, st in zip(self.ingests, statuses, strict=True)),
               **{k: sum(cpu_s(p) for p in ps) - cpu0[k] for k, ps in servers.items()}}
        c_end = count(self.db) - before
        return {"queued": n, "stored": c_end, "exact": c_end == n,
                "rate": c_end / (t_end - t0), "seconds": round(t_end - t0, 2),
                "cpu_us_per_reading": {k: round(v * 1e6 / max(c_end, 1), 2) for k, v in cpu.items()}}

    def throughput(self, n: int) -> dict:
        minutes, start = self.tp_minutes, self.tp_start
        before = count(self.db)
        t_launch = time.monotonic()
        gen = self.generator(minutes, start)
        samples = []
        while True:
            c = count(self.db) - before
            samples.append((time.monotonic(), c))
            if c >= n:
                break
            if gen.poll() is not None and len(samples) > 40 and samples[-40][1] == c:
                break  # nothing new for 10 s after the generator finished: report what arrived
            time.sleep(0.25)
        out = gen.communicate()[0]
        flowing = [(t, c) for t, c in samples if c > 0]
        t1, c1 = flowing[0] if flowing else (t_launch, 0)
        t_end, c_end = samples[-1]
        gen_line = next((ln for ln in out.splitlines() if ln.startswith("gateway summary")), out[-300:])
        return {"published": n, "stored": c_end, "exact": c_end == n,
                "rate_flowing": (c_end - c1) / max(t_end - t1, 1e-9),
                "rate_overall": c_end / (t_end - t_launch), "generator": gen_line}

    def soak(self, rate: float, seconds: float) -> dict:
        from tests.support.monitoring import Publisher

        minutes, start = self.soak_minutes, self.soak_start
        listener = AlertListener(self.amqp_url, "p")
        pub = Publisher()
        before = self.written()
        # the simulator's rate limiter does not catch up on overslept waits and runs ~12 % slow:
        # ask for more, and report what it offered (measured from its progress lines)
        gen = self.generator(minutes, start, max_rate=rate / 500 * PACING_SLACK, progress=1)
        offered: list[tuple[float, int]] = []

        def follow():  # "progress: sim +X min, N readings, R readings/s"
            for line in gen.stdout:
                if line.startswith("progress:"):
                    offered.append((time.monotonic(), int(line.split(",")[1].split()[0])))

        threading.Thread(target=follow, daemon=True).start()
        sent: dict[str, float] = {}
        rss: list[tuple[float, list[int]]] = []
        stored: list[tuple[float, int]] = []
        t0 = time.monotonic()
        i = 0
        next_rss = t0
        try:
            while time.monotonic() - t0 < seconds:
                zone = f"p{i:04d}"
                ts = int((datetime.now(UTC) - timedelta(seconds=1)).timestamp() * 1000)
                payload = json.dumps({"gateway": "gw-probe", "readings": [
                    {"depot": "probe", "zone": zone, "sensor": "s1", "ts": ts, "seq": 1, "temp_c": 9.0,
                     "rh": 85.0}]}).encode()
                sent[zone] = time.monotonic()
                pub.publish(f"{self.root}/probe/gw/gw-probe/batch", payload)
                i += 1
                now = time.monotonic()
                if now >= next_rss:
                    rss.append((now - t0, [rss_kb(p.pid) for p in self.ingests]))
                    stored.append((now, self.written()))  # not COUNT(): it would load InfluxDB
                    next_rss = now + 5
                time.sleep(max(0.0, t0 + i * 1.0 - time.monotonic()))
            stored.append((time.monotonic(), self.written()))
            elapsed = time.monotonic() - t0
            deadline = time.monotonic() + 20
            while len(listener.arrived) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            gen.terminate()
            gen.wait(30)
            pub.close()
            listener.close()
        lat = sorted((listener.arrived[z] - t) * 1000 for z, t in sent.items() if z in listener.arrived)
        missing = len(sent) - len(lat)
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else lat * 99
        first_rss = [r for t, r in rss if t >= min(10.0, seconds / 2)] or [rss[0][1]]
        lag = [self.status(k).get("queue", 0) for k in range(self.args.processes)]
        refused = sum(self.status(k).get("rejected", 0) for k in range(self.args.processes))
        def steady(samples):  # rate between the first sample after 5 s and the last one
            samples = [x for x in samples if x[0] - t0 >= min(5.0, seconds / 4)] or samples
            (ta, a), (tb, b) = samples[0], samples[-1]
            return (b - a) / (tb - ta) if tb > ta else 0.0

        return {"target_rate": rate, "seconds": round(elapsed, 1),
                "published": offered[-1][1] if offered else 0, "offered_rate": steady(offered),
                "stored": stored[-1][1] - before, "achieved_rate": steady(stored),
                "probes": len(sent), "alerts": len(lat), "missing": missing,
                "p50_ms": q[49] if lat else None, "p99_ms": q[98] if lat else None,
                "max_ms": lat[-1] if lat else None,
                "rss_mb_start": [round(x / 1024, 1) for x in first_rss[0]],
                "rss_mb_end": [round(x / 1024, 1) for x in rss[-1][1]],
                "rss_mb_max": [round(max(r[k] for _, r in rss) / 1024, 1) for k in range(len(self.ingests))],
                "rss_samples": [(round(t), [round(x / 1024, 1) for x in r]) for t, r in rss],
                "ingest_queue_at_end": lag, "rejected": refused}

    # -- tear-down ---------------------------------------------------------------------------

    def teardown(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        try:
            from tests.support.monitoring import clear_retained, drop_session

            for i in range(self.args.processes):
                drop_session(f"{self.tag}-ingest-{i + 1}")
            for d in load_scenario(LOAD).depots:
                drop_session(f"{self.tag}-{d.gateway}")
            clear_retained(self.root)
        except Exception as exc:  # noqa: BLE001 - best effort on the shared broker
            print(f"(broker clean-up: {exc})", file=sys.stderr)
        influx(f'DROP DATABASE "{self.db}"')
        self.vhost.drop()
        if self.pg_name:
            infra.drop_pg_database(self.pg_name)
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few seconds: 100 000 readings, 20 s soak")
    ap.add_argument("--rate", type=float, default=20_000, help="soak load, readings/s (default 20 000)")
    ap.add_argument("--soak-s", type=float, default=None, help="soak seconds (default 600, quick 20)")
    ap.add_argument("--processes", type=int, default=1, help="ingest processes (shared subscription)")
    ap.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    ap.add_argument("--drain-only", action="store_true",
                    help="only the bare /write and the drain (the rate goal), a minute or two instead of several")
    ap.add_argument("--rounds", type=int, default=3,
                    help="with --drain-only: drains, each between two bare /write runs (default 3)")
    args = ap.parse_args()
    if args.processes > 1 and not args.postgres:
        print("note: several ingest processes on one SQLite file serialize on its write lock")
    n = 100_000 if args.quick else 400_000
    soak_s = args.soak_s if args.soak_s is not None else (20 if args.quick else 600)

    points = 100_000 if args.quick else 300_000
    rounds = args.rounds if args.drain_only else 1
    bare, bare_cpu = bare_write(points)
    bare_big, bare_big_cpu = bare_write(points, INGEST_BATCH)
    b = Bench(args)
    try:
        b.setup(probes=int(soak_s) + 5)
        b.windows(n, args.rate, soak_s, rounds)
        b.start()  # the ingest's persistent session: what the drain queues in while it is stopped
        if not args.drain_only:
            tp = b.throughput(n)
            soak = b.soak(args.rate, soak_s)
        drains, bares = [], [bare]
        for r in range(rounds):
            drains.append(b.drain(n, r))
            if args.drain_only:
                bares.append(bare_write(points)[0])
        drain = drains[0]
    finally:
        b.teardown()
    if args.drain_only:
        ratios = []
        print(f"\nthe ingest alone, draining {n:,} readings, against the bare /write ({BARE_BATCH:,}-line batches) "
              f"measured just before and just after each drain:")
        for r, d in enumerate(drains):
            base = (bares[r] + bares[r + 1]) / 2
            ratios.append(d["rate"] / base)
            print(f"  round {r + 1}: {d['rate']:,.0f} readings/s ({d['stored']:,} stored in {d['seconds']} s, "
                  f"exact={d['exact']}); bare /write {bares[r]:,.0f} before, {bares[r + 1]:,.0f} after: "
                  f"{ratios[-1]:.0%}; CPU µs per reading {d['cpu_us_per_reading']}")
        print(f"  median {statistics.median(ratios):.0%} of the bare /write; in the ingest's own batch size "
              f"({INGEST_BATCH:,} lines) the bare /write was {bare_big:,.0f} points/s at the start "
              f"(InfluxDB {bare_cpu:.2f} µs per point in the first bare run, {bare_big_cpu:.2f} in the larger batches)")
        print(json.dumps({"bench": "monitoring_ingest", "drain_only": True, "rounds": rounds,
                          "drain_readings_s": [round(d["rate"]) for d in drains],
                          "bare_write_points_s": [round(x) for x in bares],
                          "ratios": [round(x, 3) for x in ratios], "median_ratio": round(statistics.median(ratios), 3),
                          "exact": all(d["exact"] for d in drains)}))
        return

    print(f"\nmonitoring ingest, {args.processes} process(es), {'PostgreSQL' if args.postgres else 'SQLite'}, "
          f"{os.cpu_count()} CPUs, load scenario 2 000 sensors, batches of 500")
    print(f"  bare InfluxDB /write (one Python writer)   {bare:>10,.0f} points/s (batches of {BARE_BATCH:,}); "
          f"{bare_big:,.0f} in batches of {INGEST_BATCH:,}, as the ingest sends them")
    print(f"  MQTT → rules → InfluxDB, while flowing     {tp['rate_flowing']:>10,.0f} readings/s "
          f"({tp['stored']:,} of {tp['published']:,} counted back, exact={tp['exact']})")
    print(f"  … over the whole run incl. start-up        {tp['rate_overall']:>10,.0f} readings/s")
    print(f"  the ingest alone, draining its queue       {drain['rate']:>10,.0f} readings/s "
          f"({drain['stored']:,} of {drain['queued']:,} in {drain['seconds']} s, exact={drain['exact']}); "
          f"{drain['rate'] / bare:.0%} of the bare /write ({drain['rate'] / bare_big:.0%} of the larger batches)")
    print(f"  … CPU µs per reading while draining: {drain['cpu_us_per_reading']} "
          f"(InfluxDB in the bare /write: {bare_cpu:.2f} µs per point)")
    print(f"  soak {soak['seconds']:.0f} s, generator paced at {soak['target_rate']:,.0f}/s: offered "
          f"{soak['offered_rate']:,.0f}/s, stored {soak['achieved_rate']:,.0f} readings/s, ingest queue "
          f"at the end {soak['ingest_queue_at_end']} messages, refused readings {soak['rejected']}")
    print(f"  alarm latency publish → alert_raised       p50 {soak['p50_ms'] or float('nan'):.0f} ms, "
          f"p99 {soak['p99_ms'] or float('nan'):.0f} ms, max {soak['max_ms'] or float('nan'):.0f} ms "
          f"({soak['alerts']}/{soak['probes']} probes)")
    print(f"  ingest RSS MB start {soak['rss_mb_start']} → end {soak['rss_mb_end']}, max {soak['rss_mb_max']}")
    print(f"  generator: {tp['generator']}")
    print(json.dumps({"bench": "monitoring_ingest", "quick": args.quick, "processes": args.processes,
                      "postgres": args.postgres, "bare_write_points_s": round(bare),
                      "bare_write_points_s_ingest_batch": round(bare_big),
                      "ingest_readings_s_flowing": round(tp["rate_flowing"]),
                      "ingest_readings_s_overall": round(tp["rate_overall"]), "exact": tp["exact"],
                      "drain_readings_s": round(drain["rate"]), "drain_exact": drain["exact"],
                      "drain_cpu_us_per_reading": drain["cpu_us_per_reading"],
                      "bare_influxd_cpu_us_per_point": round(bare_cpu, 2),
                      **{k: v for k, v in soak.items() if k != "rss_samples"},
                      "rss_samples": soak["rss_samples"]}, default=str))


if __name__ == "__main__":
    main()
