"""supplyctl as the operator runs it (the console script make setup installs), on intake's
processes started by `supplyctl up`: status shows the outbox lag while the relay is stopped and
0 once it has drained; logs prints the processes' lines. The relays of the services brought up
run in one process (issue #16 item 5)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support import intake
from tests.support.polling import eventually
from tests.support.processes import ROOT

SUPPLYCTL = ROOT / ".venv" / "bin" / "supplyctl"


@pytest.fixture
def ctl(service_env):
    env = {**os.environ, **service_env, "COLUMNS": "250"}

    def run(*args: str, check: bool = True) -> str:
        done = subprocess.run([str(SUPPLYCTL), *args], env=env, capture_output=True, text=True,
                              timeout=120)
        assert not check or done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    yield run
    run("down", check=False)


def outbox_row(status: str, service: str) -> str:
    section = status.split("outboxes, not yet relayed")[1].split("event queues")[0]
    return next(line for line in section.splitlines() if re.search(rf"│ {service}\s+│", line))


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
    eventually(lambda: not Path(f"/proc/{relay_pid}").exists()
               or Path(f"/proc/{relay_pid}/stat").read_text().split()[2] == "Z",
               timeout=20, what="relay stopped")
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
