"""The whole county stack as real processes (every service's api, worker and relay, monitoring's
ingest, the console), on its own ports, broker vhost, MQTT topic root, InfluxDB database and var
dir, on a simulated clock; seeded with the demo county and its users. For the browser tests.

    python -m tests.support.county_stack     # the same stack by hand, until Ctrl-C (prints the URL)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path

import requests
import yaml

from services.common.clock import SimulatedClock
from services.common.config import SERVICES
from simulators import county_day as demo
from simulators.county_seed import DEMO_PASSWORD, SCENARIO, add_demo_users, seed_county
from tests.support.infra import free_port, run_id
from tests.support.polling import eventually
from tests.support.processes import ROOT, ServiceProcess

GATEWAY_TOKEN = "test-gateway-token-0000001"
KINDS = {"monitoring": ("api", "worker", "relay", "ingest")}
# gRPC services the stack runs: the four of SERVICES, and the market (商超保供) when it is built
GRPC_SERVICES = (*SERVICES, *(s for s in ("market",) if (ROOT / "services" / s / "entrypoints" / "grpc_api.py").exists()
                              and s not in SERVICES))


@dataclass
class CountyStack:
    var: Path
    amqp_url: str
    influx_db: str
    start_local: dtime = dtime(10, 50)  # the county clock reads this `warm_up_s` after start()
    speed: float = 20.0
    warm_up_s: float = 60.0  # real seconds the stack has to come up before start_local
    leave: tuple[str, ...] = ("V-001", "V-002")  # the demo users' villages: their demands are the tests'
    villages: int | None = None  # the scenario's village count when None; else this many (bench/console_load.py)
    env: dict[str, str] = field(default_factory=dict)
    procs: list[ServiceProcess] = field(default_factory=list)
    scenario: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['CONSOLE_HTTP_PORT']}"

    @property
    def targets(self) -> dict[str, str]:
        return {s: f"127.0.0.1:{self.env[f'{s.upper()}_GRPC_PORT']}" for s in GRPC_SERVICES}

    @property
    def day(self) -> date:
        return date.fromisoformat(self.scenario["day"])

    @property
    def clock(self) -> SimulatedClock:
        from services.common.clock import parse_clock

        return parse_clock(self.env["SUPPLY_CLOCK"])

    def start(self) -> CountyStack:
        self.scenario = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
        if self.villages is not None:
            scale_villages(self.scenario, self.villages)
        rid = run_id()
        start = datetime.combine(self.day, self.start_local, demo.TZ).astimezone(UTC)
        clock = SimulatedClock(start=start, speed=self.speed, anchor_wall=time.time() + self.warm_up_s)
        self.env = {
            "AMQP_URL": self.amqp_url, "INFLUX_DB": self.influx_db, "SUPPLY_VAR_DIR": str(self.var),
            "SUPPLY_CLOCK": clock.spec(), "SUPPLY_LOG_LEVEL": "INFO",
            "SUPPLY_AUTH_TOKENS": f"{demo.TOKEN}=county-hq:admin,{GATEWAY_TOKEN}=gateway-cs01:gateway",
            "SUPPLY_MQTT_ROOT": f"{rid}/supply", "SUPPLY_MQTT_CLIENT_ID": f"{rid}-ingest",
            "SUPPLY_ROUTING_SECONDS": "3", "SUPPLY_ALLOCATION_TICK_SECONDS": "0.5",
            "SUPPLY_DELIVERY_STAFF_PER_DROP_POINT": "3",
            "CONSOLE_HTTP_PORT": str(free_port()), "CONSOLE_LOGIN_PER_MINUTE": "1000",
            **{f"{s.upper()}_GRPC_PORT": str(free_port()) for s in GRPC_SERVICES},
            "REPORTS_GRPC_PORT": str(free_port()),
        }
        env = {**os.environ, **self.env}
        self.var.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "services.cli", "migrate", *GRPC_SERVICES, "console", "reports"], cwd=ROOT,
                       env=env, check=True, capture_output=True)
        log_dir = self.var / "log"
        log_dir.mkdir(exist_ok=True)
        for service in GRPC_SERVICES:
            for kind in KINDS.get(service, ("api", "worker", "relay")):
                self.procs.append(ServiceProcess(service, kind, self.env, log_dir).start())
        self.procs.append(ServiceProcess("reports", "scheduler", self.env, log_dir).start())  # GetDailyReport
        console = ServiceProcess("console", "web", self.env, log_dir).start()
        self.procs.append(console)
        for service in GRPC_SERVICES:
            api = next(p for p in self.procs if p.service == service and p.kind == "api")
            api.wait_healthy(self.targets[service], timeout=60)
        eventually(lambda: self._console_up(console), timeout=30, interval=0.1, what="console /healthz")
        seed_county(self.targets, demo.TOKEN, self.scenario, leave=self.leave, clock_spec=self.env["SUPPLY_CLOCK"])
        add_demo_users(self.account_store(), self.scenario)
        return self

    def _console_up(self, console: ServiceProcess) -> bool:
        if not console.alive():
            raise AssertionError(f"console exited:\n{console.log()[-3000:]}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def account_store(self):
        from datetime import datetime as dt

        from services.common.db import make_engine
        from services.console.adapters.store import AccountStore

        return AccountStore(make_engine(f"sqlite:///{self.var / 'console.db'}"), lambda: dt.now(UTC))

    def process(self, service: str, kind: str) -> ServiceProcess:
        return next(p for p in self.procs if p.service == service and p.kind == kind)

    def local_now(self) -> datetime:
        return self.clock.now().astimezone(demo.TZ)

    def stop(self) -> None:
        """Every process at once: each drains on its own, so one by one only adds the waits up."""
        with ThreadPoolExecutor(len(self.procs) or 1) as pool:
            list(pool.map(lambda p: p.stop(timeout=20), self.procs))


def scale_villages(scenario: dict, count: int) -> None:
    """`count` villages instead of the scenario's, its risk mix scaled to sum to `count`
    (largest remainders; ties to the mix's order)."""
    spec = scenario["villages"]
    mix = spec["risk_mix"]
    total = sum(mix.values())
    exact = {risk: n * count / total for risk, n in mix.items()}
    scaled = {risk: int(x) for risk, x in exact.items()}
    short = count - sum(scaled.values())
    for risk in sorted(exact, key=lambda r: scaled[r] - exact[r])[:short]:
        scaled[risk] += 1
    spec["count"] = count
    spec["risk_mix"] = scaled


PASSWORD = DEMO_PASSWORD


def main() -> None:
    """Run the stack by hand (for looking at the console): needs `make up` and a RabbitMQ vhost."""
    from tests.support.infra import RabbitVhost, create_influx_database

    rid = run_id()
    vhost = RabbitVhost(f"supply-console-{rid}")
    influx = f"supply_{rid}"
    create_influx_database(influx)
    var = ROOT / "var" / "console-stack"
    import shutil

    shutil.rmtree(var, ignore_errors=True)
    stack = CountyStack(var, vhost.create(), influx, speed=float(os.environ.get("STACK_SPEED", "1"))).start()
    print(f"console at {stack.url}  (users: admin hq village1 grid1 village2 keeper inspector unit1 head1 "
          f"auditor; password {PASSWORD}); Ctrl-C stops", flush=True)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        vhost.drop()


if __name__ == "__main__":
    main()
