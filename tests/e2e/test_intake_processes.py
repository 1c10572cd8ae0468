"""The intake service as it is operated: migrated with supplyctl, its three processes (api,
worker, relay) started, a demand carried from gRPC to a downstream nameko service and closed by
logistics' delivery result, then every process stopped by SIGTERM with exit code 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from supply.v1 import intake_pb2

from services.common.db import make_engine
from services.common.messaging import EventPublisher, make_envelope
from tests.support import probe_worker
from tests.support.intake import (
    Intake,
    start_api,
    start_relay,
    start_worker,
)
from tests.support.polling import eventually
from tests.support.processes import ROOT, start_probe

pb = intake_pb2


def supplyctl(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


def probe_effects(engine, event_type: str) -> dict[str, dict]:
    t = probe_worker.effects
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.payload).where(t.c.event_type == event_type)).scalars()
        return {p["demand_id"]: p for p in map(json.loads, rows)}


def test_a_demand_goes_end_to_end_and_all_processes_stop_on_sigterm(tmp_path, service_env):
    migrated = supplyctl(service_env, "migrate", "intake")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    probe = start_probe(service_env, tmp_path, tmp_path / "probe.db",
                        "intake:demand_registered", "intake:demand_closed")
    probe_db = make_engine(f"sqlite:///{tmp_path / 'probe.db'}")
    procs = {"api": start_api(service_env, tmp_path), "relay": start_relay(service_env, tmp_path),
             "worker": start_worker(service_env, tmp_path)}
    api = Intake(service_env)
    try:
        village = api.village()
        demand = api.demand(village.id, ("RICE-10KG", 8), ("EGG-30", 4))
        seen = eventually(lambda: probe_effects(probe_db, "demand_registered").get(demand.id),
                          timeout=30, what="demand_registered at the probe")
        assert [(ln["item_code"], ln["quantity"]) for ln in seen["lines"]] == [
            ("RICE-10KG", 8), ("EGG-30", 4)]

        envelope = make_envelope("logistics", "delivery_confirmed", {
            "delivery_id": "DL-e2e-1",
            "lines": [{"demand_id": demand.id, "item_code": "RICE-10KG", "received": 8},
                      {"demand_id": demand.id, "item_code": "EGG-30", "received": 4}]})
        pub = EventPublisher(service_env["AMQP_URL"])
        try:
            pub.declare(("logistics",))
            pub.publish("logistics.events", "delivery_confirmed", json.dumps(envelope),
                        envelope["event_id"])
        finally:
            pub.close()
        closed = eventually(lambda: probe_effects(probe_db, "demand_closed").get(demand.id),
                            timeout=30, what="demand_closed at the probe")
        assert closed["status"] == "fulfilled"
        assert api.GetDemand(pb.GetDemandRequest(demand_id=demand.id)).status == \
            pb.DEMAND_STATUS_FULFILLED
    finally:
        api.close()
        for proc in procs.values():
            if proc.alive():
                os.killpg(proc.proc.pid, signal.SIGTERM)
        codes = {}
        for kind, proc in procs.items():
            try:
                codes[kind] = proc.wait_exit(timeout=15)
            finally:
                proc.stop()  # kills whatever did not stop, closes the log
        probe.stop()
    logs = {k: p.log()[-2000:] for k, p in procs.items()}
    assert codes == {"api": 0, "relay": 0, "worker": 0}, logs


def test_supplyctl_up_status_and_down(tmp_path, service_env):
    up = supplyctl(service_env, "up", "intake")
    run_dir = tmp_path / "var" / "run"
    pids = {f.stem: int(f.read_text()) for f in run_dir.glob("intake-*.pid")}
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert set(pids) == {"intake-api", "intake-worker", "intake-relay"}
        api = Intake(service_env)
        try:
            assert api.village().version == 1
        finally:
            api.close()
        status = supplyctl(service_env, "status")
        assert status.returncode == 0 and "SERVING" in status.stdout, status.stdout
        down = supplyctl(service_env, "down", timeout=60)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "killed" not in down.stdout  # every process stopped on SIGTERM within 20 s
        assert not list(run_dir.glob("*.pid"))
    finally:
        for pid in pids.values():  # only if up/down failed: ours, checked by command line
            cmdline = Path(f"/proc/{pid}/cmdline")
            if cmdline.exists() and b"services.intake" in cmdline.read_bytes():
                os.killpg(pid, signal.SIGKILL)
