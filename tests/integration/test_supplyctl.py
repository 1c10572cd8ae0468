"""supplyctl as the operator runs it (the console script make setup installs), on intake's
processes started by `supplyctl up`: status shows the outbox lag while the relay is stopped and
0 once it has drained; logs prints the processes' lines. The relays of the services brought up
run in one process, and so do intake's, market's and notify's workers (issue #16 item 5, ADR 0009)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support import infra, intake
from tests.support.polling import eventually
from tests.support.processes import ROOT

SUPPLYCTL = ROOT / ".venv" / "bin" / "supplyctl"


@pytest.fixture
def ctl(service_env):
    env = {**os.environ, **service_env, "MARKET_GRPC_PORT": str(infra.free_port()), "COLUMNS": "250"}

    def run(*args: str, check: bool = True) -> str:
        done = subprocess.run([str(SUPPLYCTL), *args], env=env, capture_output=True, text=True,
                              timeout=120)
        assert not check or done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    yield run
    run("down", check=False)


def queue_row(status: str, queue: str) -> tuple[int, int]:
    """(messages, consumers) of an event queue in status's table."""
    section = status.split("event queues")[1]
    line = next(line for line in section.splitlines() if f"│ {queue} " in line)
    messages, consumers = (cell.strip() for cell in line.split("│")[2:4])
    return int(messages), int(consumers)


def outbox_row(status: str, service: str) -> str:
    section = status.split("outboxes, not yet relayed")[1].split("event queues")[0]
    return next(line for line in section.splitlines() if re.search(rf"│ {service}\s+│", line))


def gone(pid: int) -> bool:
    """The process has exited (a zombie its launcher has not reaped counts as gone)."""
    return not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_status_shows_the_outbox_lag_until_the_relay_drains_it_and_logs_prints_lines(
        ctl, service_env):
    assert SUPPLYCTL.exists(), "make setup installs the console script"
    ctl("up", "intake", "allocation")
    run_dir = Path(service_env["SUPPLY_VAR_DIR"]) / "run"
    relay_pid = int((run_dir / "intake-relay.pid").read_text())
    assert int((run_dir / "allocation-relay.pid").read_text()) == relay_pid  # one relay process
    assert Path(f"/proc/{relay_pid}/cmdline").read_text().split("\0")[1:5] == ["-m", "services.relays", "intake",
                                                                             "allocation"]
    os.killpg(relay_pid, signal.SIGTERM)
    eventually(lambda: gone(relay_pid), timeout=20, what="relay stopped")
    client = intake.Intake(service_env)
    try:
        for _ in range(3):
            client.village()
    finally:
        client.close()
    lagging = outbox_row(ctl("status"), "intake")
    assert re.search(r"│ intake\s+│\s+3\s+│\s+\d+ s\s+│", lagging), lagging
    status = ctl("status")
    assert "evt-intake-requester_registered--allocation.on_requester_registered" in status
    assert "dead letters" in status and "last reading per depot" in status

    ctl("up", "intake")  # starts the relay again, the others are running
    eventually(lambda: re.search(r"│ intake\s+│\s+0\s+│", outbox_row(ctl("status"), "intake")),
               timeout=30, what="the outbox drained")

    logs = ctl("logs", "intake", "--process", "api", "-n", "500")
    assert "grpc api listening" in logs
    assert "relay started" in ctl("logs", "intake", "--process", "relay", "-n", "500")  # the one relay process's log
    assert (Path(service_env["SUPPLY_VAR_DIR"]) / "log" / "intake-api.log").exists()


def test_the_light_workers_run_in_one_process_that_consumes_for_each(ctl, service_env):
    ctl("up", "intake", "allocation")
    run_dir = Path(service_env["SUPPLY_VAR_DIR"]) / "run"
    first = {kind: int((run_dir / f"intake-{kind}.pid").read_text()) for kind in ("worker", "relay")}
    ctl("up", "market", "notify")  # the shared processes take them in: still one of each
    for kind, pid in first.items():
        eventually(lambda pid=pid: gone(pid), timeout=20, what=f"the first {kind} gone")
    relay_pid = int((run_dir / "intake-relay.pid").read_text())
    assert {int((run_dir / f"{s}-relay.pid").read_text()) for s in ("allocation", "market")} == {relay_pid}
    assert Path(f"/proc/{relay_pid}/cmdline").read_text().split("\0")[3:] == ["intake", "allocation", "market", ""]
    worker_pid = int((run_dir / "intake-worker.pid").read_text())
    assert {int((run_dir / f"{s}-worker.pid").read_text()) for s in ("market", "notify")} == {worker_pid}
    assert Path(f"/proc/{worker_pid}/cmdline").read_text().split("\0")[1:6] == ["-m", "services.workers", "intake",
                                                                              "market", "notify"]
    assert int((run_dir / "allocation-worker.pid").read_text()) != worker_pid  # the plan engine's own process
    eventually(lambda: "worker started" in ctl("logs", "market", "--process", "worker", "-n", "500"),
               timeout=30, what="the light workers started")
    for queue in ("evt-intake-requester_registered--market.on_requester_registered",
                  "evt-logistics-delivery_confirmed--intake.on_delivery_confirmed",
                  "evt-monitoring-alert_raised--notify.on_alert_raised"):  # each service's consumer
        eventually(lambda queue=queue: infra.queue_consumers(service_env["AMQP_URL"], queue) == 1,
                   timeout=30, what=f"one consumer on {queue}")
    status = ctl("status")
    assert re.search(rf"│ notify\s+│ worker\s+│ {worker_pid}\s+│ running", status)

    client = intake.Intake(service_env)
    try:
        for _ in range(3):
            client.village()  # requester_registered: market's worker takes its communities from it
    finally:
        client.close()
    eventually(lambda: queue_row(ctl("status"), "evt-intake-requester_registered--market.on_requester_registered")
               == (0, 1), timeout=30, what="market's handler consumed the requesters")

    ctl("down")
    status = ctl("status")
    for service in ("intake", "market", "notify"):
        assert re.search(rf"│ {service}\s+│ worker\s+│\s+│ stopped", status), service
