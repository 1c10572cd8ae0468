"""The sensor gateway against the real Mosquitto of this machine (127.0.0.1:1883), isolated under
a topic root of its own; the retained messages it creates are cleared at the end."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from services.common.clock import SimulatedClock
from simulators.gateway import GatewayOptions, GatewayRunner
from simulators.sensors import Simulation, encode_batches, encode_single
from tests.support import infra
from tests.support.polling import eventually

HOST, PORT = "127.0.0.1", 1883
ROOT_DIR = Path(__file__).resolve().parents[2]

SCENARIO = {
    "name": "it",
    "start": "2026-11-28T09:00:00+08:00",
    "interval_s": 60,
    "depots": [
        {"id": "cs", "zones": [{"id": "chl", "storage_class": "chilled", "sensors": 2},
                               {"id": "frz", "storage_class": "frozen", "sensors": 2}]},
        {"id": "wh", "zones": [{"id": "oxd", "storage_class": "oxidizer", "sensors": 2},
                               {"id": "amb", "storage_class": "ambient", "sensors": 2}]},
    ],
    "faults": [
        {"at": "10:00", "depot": "cs", "zone": "chl", "fault": "compressor_failure",
         "duration_min": 60},
        {"at": 30, "depot": "wh", "zone": "amb", "sensor": "s1", "fault": "garbage",
         "duration_min": 20},
        {"at": 30, "depot": "wh", "zone": "amb", "sensor": "s2", "fault": "duplicate",
         "duration_min": 10},
    ],
}
STATUS_TOPICS = ["cs/gw/gw-cs/status", "wh/gw/gw-wh/status"] + [
    f"{d}/{z}/{s}/status" for d, zones in (("cs", ("chl", "frz")), ("wh", ("oxd", "amb")))
    for z in zones for s in ("s1", "s2")
]


class Recorder:
    """A QoS 1 subscriber that keeps every message it gets: (topic, payload, retain).

    `sync()` publishes a marker on a topic of its own and waits for it: the broker queues the
    retained messages of a subscription before anything published after it, so once the marker
    is back every retained message is in."""

    def __init__(self, pattern: str, root: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._sync_topic = f"{root}/_sync/{uuid.uuid4().hex[:10]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"rec-{uuid.uuid4().hex[:10]}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(pattern, 1), (self._sync_topic, 1)])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(HOST, PORT)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError(f"subscription to {pattern} not acknowledged")

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return [m for m in self.messages if m[0] != self._sync_topic]

    def sync(self) -> None:
        marker = uuid.uuid4().hex.encode()
        self.client.publish(self._sync_topic, marker, qos=1)

        def back():
            with self._lock:
                return any(t == self._sync_topic and p == marker for t, p, _ in self.messages)

        eventually(back, timeout=10, what="sync marker")

    def retained(self) -> dict[str, bytes]:
        return {t: p for t, p, r in self.snapshot() if r and p}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(root: str, pattern: str) -> dict[str, bytes]:
    """The retained messages under `pattern` now, seen by a fresh subscription."""
    rec = Recorder(pattern, root)
    try:
        rec.sync()
        return rec.retained()
    finally:
        rec.close()


def retained_becomes(root: str, pattern: str, expect: dict[str, bytes], what: str) -> dict[str, bytes]:
    def probe():
        got = retained(root, pattern)
        return got if all(got.get(t) == v for t, v in expect.items()) else None

    return eventually(probe, timeout=20, interval=0.2, what=what)


def status_topics(root: str) -> list[str]:
    return [f"{root}/{t}" for t in STATUS_TOPICS]


@pytest.fixture
def root():
    infra.require(PORT, "Mosquitto")
    root = f"t{uuid.uuid4().hex[:12]}/supply"
    yield root
    # clear every retained message left under the root, then check that nothing is left
    rec = Recorder(f"{root}/#", root)
    try:
        rec.sync()
        topics = set(status_topics(root)) | set(rec.retained())
        infos = [rec.client.publish(t, b"", qos=1, retain=True) for t in sorted(topics)]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        rec.close()
    leftovers = retained(root, f"{root}/#")
    assert not leftovers, f"retained messages left under {root}: {sorted(leftovers)}"
    # drop the gateways' persistent sessions: a clean-session connect discards them
    prefix = GatewayOptions(root=root).prefix()
    for gw in ("gw-cs", "gw-wh"):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}{gw}", clean_session=True,
                        protocol=mqtt.MQTTv311)
        c.connect(HOST, PORT)
        c.loop_start()
        c.disconnect()
        c.loop_stop()


def test_gateway_publishes_every_batch_announces_online_and_leaves_a_will(root):
    model = Simulation(SCENARIO, seed=11)
    produced = model.step(model.start_ms + 90 * 60_000) + model.drain()
    expected = encode_batches(produced, batch_size=7)
    broken_expected = sum(1 for m in expected if not parses(m.payload))
    assert broken_expected > 0  # the scenario's garbage includes malformed JSON

    sim = Simulation(SCENARIO, seed=11)
    runner = GatewayRunner(sim, GatewayOptions(root=root, batch_size=7, speed=0, chunk_s=600),
                           log=lambda line: None)
    sub = Recorder(f"{root}/#", root)
    try:
        runner.connect()
        online = {t: b"online" for t in status_topics(root)}
        retained_becomes(root, f"{root}/+/+/+/status", online, "retained online statuses")

        stats = runner.run(duration_min=90)
        assert stats.unacked == 0 and not stats.stopped_early
        assert stats.readings == len(produced)  # the same seed gives the same readings
        assert stats.batches == len(expected)
        assert stats.garbage == sum(m.garbage for m in expected) > 0
        assert stats.duplicates > 0

        def all_received():
            batches = [(t, p) for t, p, _ in sub.snapshot() if t.endswith("/batch")]
            return batches if len(batches) >= len(expected) else None

        batches = eventually(all_received, timeout=20, what="every batch at the subscriber")
        assert sorted(batches) == sorted((f"{root}/{m.topic}", m.payload) for m in expected)
        entries = sum(len(json.loads(p)["readings"]) for _, p in batches if parses(p))
        assert entries + broken_expected == len(produced)

        # lose the connection without DISCONNECT: the broker publishes the retained will
        link = runner.links["gw-cs"]
        link.client.loop_stop()
        link.client._sock.shutdown(socket.SHUT_RDWR)
        link.client._sock.close()
        eventually(lambda: (link.status_topic, b"offline") in
                   [(t, p) for t, p, _ in sub.snapshot()], timeout=15, what="the will")
        now = retained(root, f"{root}/+/gw/+/status")
        assert now[link.status_topic] == b"offline"
        assert now[runner.links["gw-wh"].status_topic] == b"online"  # the other gateway is up

        # the network loop runs again: the gateway reconnects and announces itself again
        link.client.loop_start()
        retained_becomes(root, f"{root}/+/gw/+/status", {link.status_topic: b"online"},
                         "re-announced online")
    finally:
        runner.close()
        sub.close()
    # a clean exit marks the gateways and their sensors offline (no will on DISCONNECT)
    offline = {t: b"offline" for t in status_topics(root)}
    retained_becomes(root, f"{root}/+/+/+/status", offline, "offline statuses after a clean exit")


@pytest.mark.parametrize("paced_by", ["speed", "clock"])
def test_accelerated_run_keeps_pace_and_delivers_everything(root, paced_by):
    sim = Simulation(SCENARIO, seed=3)
    clock = None
    if paced_by == "clock":
        clock = SimulatedClock(start=sim.config.start.astimezone(UTC), speed=3000.0,
                               anchor_wall=time.time())
    runner = GatewayRunner(sim, GatewayOptions(root=root, batch_size=500, speed=3000.0, tick_s=0.1),
                           log=lambda line: None, clock=clock)
    sub = Recorder(f"{root}/#", root)
    try:
        runner.connect()
        t0 = time.monotonic()
        stats = runner.run(duration_min=60)  # 3 600 simulated s at ×3 000: ≥ 1.2 s of wall time
        assert time.monotonic() - t0 >= 1.1
        assert stats.unacked == 0 and stats.readings == 8 * 60 + stats.duplicates
        assert stats.batches > 6  # sent as it goes (every tick), not all at the end

        def carried():
            batches = [p for t, p, _ in sub.snapshot() if t.endswith("/batch")]
            if len(batches) < stats.batches:
                return None
            return sum(len(json.loads(p)["readings"]) if parses(p) else 1 for p in batches)

        assert eventually(carried, timeout=20, what="every batch") == stats.readings
    finally:
        runner.close()
        sub.close()


def parses(payload: bytes) -> bool:
    try:
        json.loads(payload)
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("single", [False, True], ids=["batches", "single"])
def test_cli_publishes_everything_waits_for_pubacks_and_prints_a_summary(root, tmp_path, single):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(SCENARIO, allow_unicode=True), encoding="utf-8")
    sim = Simulation(SCENARIO, seed=5)
    produced = sim.step(sim.start_ms + 60 * 60_000) + sim.drain()
    expected = encode_single(produced) if single else encode_batches(produced, 20)
    sub = Recorder(f"{root}/#", root)
    try:
        cmd = [sys.executable, "-m", "simulators.gateway", "--scenario", str(path),
               "--speed", "0", "--duration-min", "60", "--mqtt", f"mqtt://{HOST}:{PORT}",
               "--root", root, "--seed", "5", "--batch", "20"] + (["--single"] if single else [])
        env = {**os.environ, "PYTHONPATH": str(ROOT_DIR)}
        proc = subprocess.run(cmd, cwd=ROOT_DIR, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        line = proc.stdout.strip().splitlines()[-1]
        fields = dict(re.findall(r"(\w+)=(\d+(?:/\d+)?)", line))
        assert int(fields["readings"]) == len(produced)
        assert int(fields["messages"]) == len(expected)
        assert int(fields["garbage"]) == sum(m.garbage for m in expected) > 0
        acked, total = fields["acked"].split("/")
        assert acked == total and int(total) >= len(expected)
        assert "readings/s" in line

        kind = "/telemetry" if single else "/batch"

        def received():
            got = [(t, p) for t, p, _ in sub.snapshot() if t.endswith(kind)]
            return got if len(got) >= len(expected) else None

        got = eventually(received, timeout=20, what="every message at the subscriber")
        assert sorted(got) == sorted((f"{root}/{m.topic}", m.payload) for m in expected)
    finally:
        sub.close()
    offline = {t: b"offline" for t in status_topics(root)}
    assert retained(root, f"{root}/+/+/+/status") == offline
